"""The HTTP layer under floods (localmesos/web.py; CONFORMANCE.md, "HTTP limits"): stalled and
slow subscribers, backlogs, idle and surplus connections, a process out of descriptors, HTTP/1.0
clients, large bodies at once. Each experiment is short and bounded; `make soak` (bench/soak/
http.py) runs the long versions with figures. No test here asserts how long anything took: the
timeouts only keep a broken server from hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from localmesos.cluster import LocalCluster
from localmesos.web import EventStream, Limits, recordio
from tests.integration import raw_http as rh

LOCALMESOS = Path(sys.executable).parent / "localmesos"
MIB = 1024 * 1024


# -- helpers --------------------------------------------------------------------------------------


def idle_sockets(address: str, count: int) -> list[socket.socket]:
    host, _, port = address.rpartition(":")
    return [socket.create_connection((host, int(port)), timeout=10) for _ in range(count)]


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); False if it is still open
    after ``timeout``. Whatever the server sent first is read and dropped."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def health(address: str) -> int | None:
    """/health's status on a new connection; None if the connection broke."""
    try:
        return rh.get(address, "/health").status
    except (OSError, rh.ProtocolError):
        return None


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


@contextlib.contextmanager
def localmesos(
    tmp_path: Path, env: dict[str, str], agents: int = 1, nofile: int | None = None
) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """`localmesos` in a process of its own (its log in a file), optionally with a lower
    RLIMIT_NOFILE; yields the process, the master's address and the log's path."""
    log = tmp_path / "localmesos.log"
    argv = [str(LOCALMESOS), "--port", "0", "--agents", str(agents), "--work-dir", str(tmp_path)]

    def lower_limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*argv, "--allocation-interval", "200ms"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **env},
            preexec_fn=lower_limit,
        )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(60), "localmesos printed nothing within 60 s"
        line = process.stdout.readline()
        found = re.search(r"http://(127\.0\.0\.1:\d+)", line)
        assert found, f"no master address in {line!r}; log: {log.read_text()}"
        yield process, found.group(1), log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def hand_back_offers(cluster_state: dict, sub: rh.Subscription) -> None:
    held = [
        {"value": offer["id"]}
        for framework in cluster_state["frameworks"]
        if framework["id"] == sub.framework_id
        for offer in framework["offers"]
    ]
    if held:
        decline = {"type": "DECLINE", "decline": {"offer_ids": held, "filters": {}}}
        assert sub.call(decline).status == 202


def run_one_task(address: str, task_id: str) -> str:
    """A fresh framework runs one command task; returns its last state."""
    with rh.subscribe(address, rh.framework_info(name=f"runs-{task_id}")) as sub:
        _, statuses = rh.run_command_task(sub, task_id, "true")
        return statuses[-1]["state"]


# -- event streams ------------------------------------------------------------------------------


def test_a_stalled_subscriber_is_disconnected_while_another_framework_runs_tasks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A framework whose stream nobody reads falls past its bound and is disconnected; a
    framework beside it runs its tasks throughout; the stalled one may subscribe again."""
    monkeypatch.setenv("LOCALMESOS_HTTP_STREAM_BOUND", str(256 * 1024))
    caplog.set_level(logging.WARNING, "localmesos.http")
    info = rh.framework_info(name="stalled", failover_timeout=600.0)
    with LocalCluster(agents=1, allocation_interval=0.2) as cluster:
        stalled = rh.subscribe(cluster.master, info)
        # From here on nobody reads the stream: once the kernel's buffers (some megabytes)
        # are full, what the master writes to it queues in the master.
        assert stalled.call({"type": "SUPPRESS"}).status == 202
        hand_back_offers(cluster.state(), stalled)
        working = rh.subscribe(cluster.master, rh.framework_info(name="working"))
        # Each explicit reconciliation of unknown tasks is one TASK_LOST update per task to
        # the stalled stream, about a megabyte per call.
        ghosts = [{"task_id": {"value": f"ghost-{i}"}} for i in range(4000)]
        reconcile = {"type": "RECONCILE", "reconcile": {"tasks": ghosts}}
        finished = []
        disconnected = False
        for round_ in range(20):
            for _ in range(3):
                reply = stalled.call(reconcile)
                if reply.status != 202:
                    # 403 "Framework is not subscribed": the master dropped its stream.
                    assert reply.status == 403, (reply.status, reply.body)
                    disconnected = True
                    break
            _, statuses = rh.run_command_task(working, f"task-{round_}", "true")
            finished.append(statuses[-1]["state"])
            if disconnected:
                break
        assert disconnected, "20 rounds of updates (60 MB) never got the stalled stream dropped"
        assert finished and set(finished) == {"TASK_FINISHED"}, finished
        assert closed_by_server(stalled.stream.conn.sock, 10), "the stalled socket is still open"
        assert any("fell" in r.getMessage() and "behind" in r.getMessage() for r in caplog.records)
        state = cluster.state()
        [framework] = [f for f in state["frameworks"] if f["id"] == stalled.framework_id]
        assert not framework["connected"], framework
        stalled.close()
        # As after any disconnection, the scheduler subscribes again, with its ID.
        again = rh.subscribe(cluster.master, {**info, "id": {"value": stalled.framework_id}})
        with again:
            assert again.framework_id == stalled.framework_id
        working.close()


def deliver(events: int, payload: int) -> tuple[int, int, list[int]]:
    """Queue ``events`` records, then hand the backlog over to a reader that keeps up.
    Returns the bytes on the wire, the bytes the stream copied to write them (None on a stream
    that does not count), and the size of each write."""
    server_side, client_side = socket.socketpair()
    writes: list[int] = []

    class Writer:
        def write(self, data: bytes) -> None:
            writes.append(len(data))
            server_side.sendall(data)

    handler = SimpleNamespace(
        connection=server_side,
        wfile=Writer(),
        request_version="HTTP/1.1",
        client_address=("127.0.0.1", 1),
        close_connection=False,
        server=SimpleNamespace(name="test"),
    )
    stream = EventStream()
    event = {"type": "UPDATE", "padding": "x" * payload}
    for _ in range(events):
        stream.send(event)
    stream.close()
    received = bytearray()

    def read() -> None:
        client_side.settimeout(120)
        while not received.endswith(b"0\r\n\r\n"):
            data = client_side.recv(1 << 20)
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    stream.serve(handler)  # type: ignore[arg-type]
    reader.join(120)
    server_side.close()
    client_side.close()
    records = rh.RecordIOParser()
    data = bytes(received)
    at = data.index(b"\r\n\r\n") + 4
    count = 0
    while True:
        end = data.index(b"\r\n", at)
        size = int(data[at:end], 16)
        if size == 0:
            break
        count += len(records.feed(data[end + 2 : end + 2 + size]))
        at = end + 2 + size + 2
    assert count == events
    return len(received), getattr(stream, "assembled_bytes", -1), writes


def test_a_backlog_is_handed_over_in_work_linear_in_its_size() -> None:
    """Handing over N queued events copies each byte once, in writes of bounded size: four
    times the backlog is four times the copying, and no write holds the whole backlog."""
    record = len(recordio({"type": "UPDATE", "padding": "x" * 400}))
    small = deliver(2_000, 400)
    large = deliver(8_000, 400)
    for wire, _, writes in (small, large):
        # The backlog is 0.9 and 3.6 MB; a write of it all would double it in memory.
        assert max(writes) <= MIB, f"a write of {max(writes)} bytes for a {wire}-byte backlog"
    (small_wire, small_copied, _), (large_wire, large_copied, _) = small, large
    assert small_wire - 30 < 2_000 * (record + 8)  # the framing adds a few bytes per record
    assert small_copied > 0 and large_copied > 0, "the stream does not count what it copies"
    # Each byte on the wire (but the head and the last chunk) copied exactly once.
    head = small_wire - small_copied
    assert large_wire - large_copied == head
    assert large_copied == 4 * small_copied


# -- connections ----------------------------------------------------------------------------------


def test_idle_sockets_are_closed_after_the_request_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sockets that never send a request, or stop halfway through one, are closed after the
    request timeout and their threads end; a kept-alive connection that made a request stays
    (pymesos reuses its connection and fails the next call if the server closed it)."""
    monkeypatch.setenv("LOCALMESOS_HTTP_REQUEST_TIMEOUT", "1")
    with LocalCluster(agents=0) as cluster:
        kept = rh.Connection(cluster.master)
        kept.send(rh.encode_request("GET", "/health", b"", {}))
        assert rh.read_reply(kept).status == 200
        before = threading.active_count()
        sockets = idle_sockets(cluster.master, 40)
        half = idle_sockets(cluster.master, 5)
        for sock in half:
            sock.sendall(b"POST /api/v1/scheduler HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
        still_open = [s for s in sockets + half if not closed_by_server(s, 15)]
        assert not still_open, f"{len(still_open)} of 45 idle sockets still open after 15 s"
        for sock in sockets + half:
            sock.close()
        rh.wait_until(lambda: threading.active_count() <= before, 10, "handler threads to end")
        time.sleep(2)  # twice the request timeout: the kept-alive connection must outlive it
        kept.send(rh.encode_request("GET", "/health", b"", {}))
        assert rh.read_reply(kept).status == 200
        kept.close()


def test_connections_over_the_cap_get_503_and_the_server_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCALMESOS_HTTP_MAX_CONNECTIONS", "20")
    with LocalCluster(agents=0) as cluster:
        flood = idle_sockets(cluster.master, 20)
        refused = rh.wait_until(lambda: health(cluster.master) == 503, 10, "a 503 at the cap")
        assert refused
        with rh.Connection(cluster.master) as conn:
            conn.send(rh.encode_request("GET", "/health", b"", {}))
            try:
                reply = rh.read_reply(conn)
            except (OSError, rh.ProtocolError):
                reply = None  # the refusal may race the request; the next check is the point
            if reply is not None:
                assert reply.status == 503
                assert "Too many connections" in reply.text
        for sock in flood:
            sock.close()
        rh.wait_until(lambda: health(cluster.master) == 200, 10, "/health to answer again")


def test_a_flood_past_the_descriptor_limit_is_survived_and_logged(tmp_path: Path) -> None:
    """With the connection cap lifted above RLIMIT_NOFILE, a flood runs the master's process
    out of descriptors: accept() fails with EMFILE, which is logged (and the surplus refused),
    and once the flood is gone the master answers and a task runs."""
    env = {"LOCALMESOS_HTTP_MAX_CONNECTIONS": "5000", "LOCALMESOS_HTTP_REQUEST_TIMEOUT": "3"}
    with localmesos(tmp_path, env, agents=1, nofile=256) as (process, master, log):
        flood = idle_sockets(master, 400)
        rh.wait_until(lambda: "EMFILE" in log.read_text(), 15, "a log line naming EMFILE")
        for sock in flood:
            sock.close()
        rh.wait_until(lambda: health(master) == 200, 20, "/health to answer again")
        assert run_one_task(master, "after-the-flood") == "TASK_FINISHED"
        assert process.poll() is None
    line = next(line for line in log.read_text().splitlines() if "EMFILE" in line)
    assert "Too many open files" in line, line


def test_a_flood_under_the_default_cap_leaves_descriptors_for_tasks(tmp_path: Path) -> None:
    """With the default cap (a quarter of RLIMIT_NOFILE), the same flood is refused with 503
    before descriptors run out: a task runs while the flood holds its connections, and the
    idle ones are closed after the request timeout."""
    env = {"LOCALMESOS_HTTP_REQUEST_TIMEOUT": "3"}
    with localmesos(tmp_path, env, agents=1, nofile=256) as (process, master, log):
        # Subscribed before the flood: its connections are among those the master serves.
        with rh.subscribe(master, rh.framework_info(name="during-the-flood")) as sub:
            assert sub.call({"type": "REVIVE"}).status == 202  # its call connection, opened
            flood = idle_sockets(master, 400)
            rh.wait_until(lambda: threads_of(process.pid) < 200, 15, "the flood to be capped")
            _, statuses = rh.run_command_task(sub, "during-the-flood", "true")
            assert statuses[-1]["state"] == "TASK_FINISHED", statuses
            assert sum(closed_by_server(sock, 15) for sock in flood) == len(flood)
            for sock in flood:
                sock.close()
        rh.wait_until(lambda: health(master) == 200, 20, "/health to answer again")
    text = log.read_text()
    assert "EMFILE" not in text, text
    assert "refused with 503" in text, text


# -- HTTP/1.0 -------------------------------------------------------------------------------------


def http10_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.0\r\nHost: localhost\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(agents=1, allocation_interval=0.2) as c:
        yield c


def test_http10_subscribe_gets_a_stream_it_can_read(cluster: LocalCluster) -> None:
    """No chunks for an HTTP/1.0 client (it cannot read them): the records come as a body
    that the connection's close ends."""
    body = json.dumps(rh.subscribe_call(rh.framework_info(name="http10"))).encode()
    with rh.Connection(cluster.master) as conn:
        conn.send(http10_request("POST", "/api/v1/scheduler", body))
        head = rh.read_head(conn)
        assert head.status == 200
        assert head.header("Transfer-Encoding") is None, head.headers
        assert head.header("Content-Length") is None, head.headers
        assert (head.header("Connection") or "").lower() == "close"
        parser = rh.RecordIOParser()
        records = parser.feed(conn.buffer)
        conn.buffer = b""
        while len(records) < 2:
            data = conn.sock.recv(65536)
            assert data, "the stream ended before two records"
            records += parser.feed(data)
        events = [json.loads(record) for record in records]
        assert events[0]["type"] == "SUBSCRIBED"
        assert events[1]["type"] == "HEARTBEAT"


def test_http10_get_is_answered_and_closed(cluster: LocalCluster) -> None:
    with rh.Connection(cluster.master) as conn:
        conn.send(http10_request("GET", "/health"))
        reply = rh.read_reply(conn)
        assert reply.status == 200
        assert (reply.header("Connection") or "").lower() == "close"
        assert conn.at_eof()


# -- request bodies -------------------------------------------------------------------------------


def test_concurrent_large_bodies_do_not_multiply_memory(tmp_path: Path) -> None:
    """Ten 15 MiB calls at once: the body budget (16 MiB) lets one be read and parsed at a
    time, the others wait their turn; every one gets its answer, and the master's peak memory
    grows by what one takes."""
    # Parsed, many short strings take six times their size in memory.
    junk = b'{"type":"MESSAGE","junk":[' + b'"abcdefgh",' * (15 * MIB // 11) + b'"end"]}'
    with localmesos(tmp_path, {}, agents=0) as (process, master, _):
        assert health(master) == 200
        before = peak_rss(process.pid)
        statuses: list[int | None] = []

        def post() -> None:
            try:
                reply = rh.request(
                    master, "POST", "/api/v1/scheduler", junk, rh.JSON_HEADERS, timeout=120
                )
                statuses.append(reply.status)
            except (OSError, rh.ProtocolError):
                statuses.append(None)

        threads = [threading.Thread(target=post) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        grown = peak_rss(process.pid) - before
        assert statuses == [400] * 10, statuses  # MESSAGE without a framework_id
        assert health(master) == 200
    # One body parsed at a time takes ~140 MiB; without the budget it has been 330-550 MiB.
    assert grown < 220 * MIB, f"peak RSS grew by {grown // MIB} MiB"


# -- configuration --------------------------------------------------------------------------------


def test_limits_come_from_the_environment_and_bad_ones_are_named() -> None:
    limits = Limits.from_env(
        {"LOCALMESOS_HTTP_REQUEST_TIMEOUT": "2.5", "LOCALMESOS_HTTP_MAX_CONNECTIONS": "7"}
    )
    assert (limits.request_timeout, limits.connection_cap) == (2.5, 7)
    with pytest.raises(ValueError, match="LOCALMESOS_HTTP_STREAM_BOUND='lots'"):
        Limits.from_env({"LOCALMESOS_HTTP_STREAM_BOUND": "lots"})
    with pytest.raises(ValueError, match="LOCALMESOS_HTTP_REQUEST_TIMEOUT='-1'"):
        Limits.from_env({"LOCALMESOS_HTTP_REQUEST_TIMEOUT": "-1"})
    result = subprocess.run(
        [str(LOCALMESOS), "--agents", "0"],
        env={**os.environ, "LOCALMESOS_HTTP_BODY_BUDGET": "16MB"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LOCALMESOS_HTTP_BODY_BUDGET='16MB'" in result.stderr, result.stderr
