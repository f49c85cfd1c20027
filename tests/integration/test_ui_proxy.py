"""`localmesos ui` (localmesos/ui/proxy.py): the page served from its static directory, and the
page's read-only calls forwarded to the leading master and to its agents, against a LocalCluster
and against small fake masters where a real one cannot show the behaviour (what headers arrive,
a 307 to the leader). Raw sockets (tests/integration/raw_http.py), so that every status and byte
is the one the proxy sent. No browser."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from localmesos.cluster import LocalCluster
from localmesos.ui.proxy import Proxy, split_address
from localmesos.web import Limits
from tests.conftest import ROOT
from tests.integration import raw_http as rh
from tests.integration.localmesos_procs import need_zookeeper

pytestmark = pytest.mark.integration

INDEX = b"<!doctype html><title>page under test</title>\n"


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("static")
    (root / "index.html").write_bytes(INDEX)
    (root / "app.js").write_text("console.log('app');\n")
    (root / "style.css").write_text("body { margin: 0; }\n")
    (root / "icons").mkdir()
    (root / "icons" / "agent.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    # The master's own copy; the proxy must answer with its own instead.
    (root / "mode.js").write_text('window.MESOS_UI_MODE = {agents: "direct"};\n')
    (root / ".hidden").write_text("not for the page\n")
    (tmp_path_factory.getbasetemp() / "outside.txt").write_text("outside the static dir\n")
    return root


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(agents=1, allocation_interval=0.3) as c:
        yield c


@pytest.fixture(scope="module")
def proxy(cluster: LocalCluster, static_dir: Path) -> Iterator[Proxy]:
    with Proxy(cluster.master, port=0, static_dir=static_dir) as p:
        yield p


# -- the page ---------------------------------------------------------------------------------


def test_the_page_is_served_from_the_static_directory(proxy: Proxy) -> None:
    for path in ("/", "/index.html"):
        reply = rh.get(proxy.address, path)
        assert (reply.status, reply.body) == (200, INDEX), path
        assert reply.header("Content-Type") == "text/html; charset=utf-8"
    expected = {
        "/ui/app.js": "text/javascript; charset=utf-8",
        "/ui/style.css": "text/css; charset=utf-8",
        "/ui/icons/agent.svg": "image/svg+xml",
    }
    for path, content_type in expected.items():
        reply = rh.get(proxy.address, path)
        assert reply.status == 200, (path, reply.body)
        assert reply.header("Content-Type") == content_type, path
    head = rh.request(proxy.address, "HEAD", "/ui/app.js")
    assert (head.status, head.body) == (200, b"")
    assert rh.request(proxy.address, "POST", "/", "x").status == 405


def test_mode_js_tells_the_page_to_go_through_the_proxy(proxy: Proxy) -> None:
    reply = rh.get(proxy.address, "/ui/mode.js")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/javascript; charset=utf-8"
    assert reply.text.strip() == 'window.MESOS_UI_MODE = {agents: "proxy"};'


@pytest.mark.parametrize(
    "target",
    [
        "/ui/../outside.txt",
        "/ui/icons/../../outside.txt",
        "/ui/.hidden",
        "/ui/missing.js",
        "/ui/",
        "/ui//etc/passwd",
        "/ui/%2e%2e/outside.txt",
    ],
)
def test_only_files_inside_the_static_directory_are_served(proxy: Proxy, target: str) -> None:
    reply = rh.get(proxy.address, target)
    assert reply.status == 404, (target, reply.body)
    assert b"outside the static dir" not in reply.body
    assert b"not for the page" not in reply.body


def test_a_missing_static_directory_is_named(cluster: LocalCluster, tmp_path: Path) -> None:
    missing = tmp_path / "no-page"
    with Proxy(cluster.master, port=0, static_dir=missing) as p:
        reply = rh.get(p.address, "/")
        assert reply.status == 404
        assert str(missing) in reply.text
        # The forwarding works without the page.
        assert rh.get(p.address, "/master/state").status == 200


# -- the master -------------------------------------------------------------------------------


def test_read_only_endpoints_are_forwarded_to_the_master(
    cluster: LocalCluster, proxy: Proxy
) -> None:
    state = rh.get(proxy.address, "/master/state")
    assert state.status == 200
    assert state.header("Content-Type") == "application/json"
    assert state.json()["id"] == cluster.state()["id"]
    metrics = rh.get(proxy.address, "/metrics/snapshot").json()
    assert metrics["master/elected"] == 1
    slaves = rh.get(proxy.address, "/master/slaves").json()["slaves"]
    assert [s["id"] for s in slaves] == cluster.agents
    assert "version" in rh.get(proxy.address, "/version").json()
    # The query goes along (JSONP here).
    jsonp = rh.get(proxy.address, "/master/state?jsonp=show")
    assert jsonp.body.startswith(b"show(") and jsonp.body.endswith(b")")


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/master/teardown", 404),
        ("GET", "/master/link", 404),
        ("GET", "/api/v1/scheduler", 404),
        ("POST", "/api/v1/scheduler", 404),
        ("POST", "/master/state", 405),
        ("GET", "/api/v1", 405),
        ("GET", "/nothing", 404),
    ],
)
def test_everything_else_is_refused(proxy: Proxy, method: str, target: str, status: int) -> None:
    reply = rh.request(proxy.address, method, target, "{}" if method == "POST" else b"")
    assert reply.status == status, (method, target, reply.body)
    assert reply.body, "a refusal says why"


def test_the_operator_stream_flows_through_live(cluster: LocalCluster, proxy: Proxy) -> None:
    stream = rh.open_stream(proxy.address, {"type": "SUBSCRIBE"}, path="/api/v1")
    assert isinstance(stream, rh.EventStream), stream
    try:
        assert stream.head.chunked
        subscribed = stream.next_event()
        assert subscribed is not None and subscribed["type"] == "SUBSCRIBED"
        # Only now does the task exist: its events can only come live through the proxy.
        with rh.subscribe(cluster.master) as sub:
            rh.run_command_task(sub, "through-proxy", "true")
            added = stream.wait_for(lambda e: e["type"] == "TASK_ADDED")
            assert added["task_added"]["task"]["task_id"]["value"] == "through-proxy"
            finished = stream.wait_for(
                lambda e: (
                    e["type"] == "TASK_UPDATED" and e["task_updated"]["state"] == "TASK_FINISHED"
                )
            )
            assert finished["task_updated"]["status"]["task_id"]["value"] == "through-proxy"
    finally:
        stream.close()


def test_a_subscriber_that_leaves_ends_the_masters_stream(static_dir: Path) -> None:
    with (
        LocalCluster(agents=0) as cluster,
        Proxy(cluster.master, port=0, static_dir=static_dir) as p,
    ):

        def subscribers() -> int:
            metrics = rh.get(cluster.master, "/metrics/snapshot").json()
            return int(metrics["master/operator_event_stream_subscribers"])

        assert subscribers() == 0
        stream = rh.open_stream(p.address, {"type": "SUBSCRIBE"}, path="/api/v1")
        assert isinstance(stream, rh.EventStream), stream
        stream.wait_for(lambda e: e["type"] == "SUBSCRIBED")
        assert subscribers() == 1
        stream.close()
        rh.wait_until(lambda: subscribers() == 0, what="the master to lose its subscriber")


def test_read_only_operator_calls_are_forwarded(cluster: LocalCluster, proxy: Proxy) -> None:
    reply = rh.post_json(proxy.address, "/api/v1", {"type": "GET_AGENTS"})
    assert reply.status == 200, reply.body
    agents = reply.json()["get_agents"]["agents"]
    assert [a["agent_info"]["id"]["value"] for a in agents] == cluster.agents


@pytest.mark.parametrize(
    ("body", "headers", "status", "said"),
    [
        ({"type": "TEARDOWN", "teardown": {"framework_id": {"value": "x"}}}, {}, 403, "TEARDOWN"),
        ({"type": "MARK_AGENT_GONE"}, {}, 403, "MARK_AGENT_GONE"),
        ({"type": "UPDATE_MAINTENANCE_SCHEDULE"}, {}, 403, "read-only"),
        ({"kind": "SUBSCRIBE"}, {}, 400, '"type"'),
        ("not json", {}, 400, "not JSON"),
        ({"type": "SUBSCRIBE"}, {"Content-Type": "application/x-protobuf"}, 415, "JSON only"),
    ],
)
def test_calls_that_change_the_cluster_are_refused(
    cluster: LocalCluster,
    proxy: Proxy,
    body: Any,
    headers: dict[str, str],
    status: int,
    said: str,
) -> None:
    data = body if isinstance(body, str) else json.dumps(body)
    reply = rh.request(proxy.address, "POST", "/api/v1", data, {**rh.JSON_HEADERS, **headers})
    assert reply.status == status, reply.body
    assert said in reply.text
    assert cluster.state()["id"]  # the master is still there and untouched


# -- agents -----------------------------------------------------------------------------------


def find_directory(value: Any, executor_id: str) -> str | None:
    """The sandbox of ``executor_id`` anywhere in an agent's /state."""
    if isinstance(value, dict):
        if value.get("id") == executor_id and "directory" in value:
            return str(value["directory"])
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = find_directory(item, executor_id)
            if found:
                return found
    return None


def test_an_agents_files_are_read_through_the_proxy(cluster: LocalCluster, proxy: Proxy) -> None:
    with rh.subscribe(cluster.master) as sub:
        _, statuses = rh.run_command_task(sub, "files-task", "echo proxied-output")
    assert statuses[-1]["state"] == "TASK_FINISHED", statuses
    agent_id = statuses[-1]["agent_id"]["value"]
    prefix = f"/agent/{agent_id}"
    state = rh.get(proxy.address, f"{prefix}/state")
    assert state.status == 200, state.body
    assert state.json()["id"] == agent_id
    directory = find_directory(state.json(), "files-task")
    assert directory, state.json()
    listing = rh.get(proxy.address, f"{prefix}/files/browse?path={directory}")
    assert listing.status == 200, listing.body
    assert f"{directory}/stdout" in [entry["path"] for entry in listing.json()]

    def read_stdout() -> bytes:
        reply = rh.get(proxy.address, f"{prefix}/files/read?path={directory}/stdout&offset=0")
        assert reply.status == 200, reply.body
        return reply.json()["data"].encode()

    rh.wait_until(lambda: b"proxied-output" in read_stdout(), what="the task's stdout")
    assert rh.get(proxy.address, f"{prefix}/metrics/snapshot").status == 200
    assert rh.get(proxy.address, f"{prefix}/monitor/statistics").status == 200


def test_a_large_download_goes_through_at_the_clients_pace(
    cluster: LocalCluster, static_dir: Path
) -> None:
    """6 MiB, more than the socket buffers hold, to a client that waits before it reads,
    through a proxy whose streams may fall only 256 KiB behind: the proxy must slow its
    reading of the agent down rather than drop the client."""
    size = 6 * 1024 * 1024
    with rh.subscribe(cluster.master) as sub:
        _, statuses = rh.run_command_task(sub, "big-file", f"head -c {size} /dev/urandom > big.bin")
    assert statuses[-1]["state"] == "TASK_FINISHED", statuses
    agent_id = statuses[-1]["agent_id"]["value"]
    limits = Limits(stream_bound=256 * 1024)
    with Proxy(cluster.master, port=0, static_dir=static_dir, limits=limits) as p:
        state = rh.get(p.address, f"/agent/{agent_id}/state").json()
        directory = find_directory(state, "big-file")
        assert directory, state
        expected = Path(directory, "big.bin").read_bytes()
        assert len(expected) == size
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(rh.TIMEOUT)
        sock.connect(split_address(p.address))
        conn = rh.Connection.__new__(rh.Connection)
        conn.sock, conn.buffer, conn.eof = sock, b"", False
        with conn:
            target = f"/agent/{agent_id}/files/download?path={directory}/big.bin"
            conn.send(rh.encode_request("GET", target))
            time.sleep(1.0)  # a slow client, not an assertion
            reply = rh.read_reply(conn)
        assert reply.status == 200
        assert reply.chunked
        assert reply.header("Content-Disposition") == "attachment; filename=big.bin"
        assert len(reply.body) == size
        assert reply.body == expected


class EndlessSource:
    """An agent's answer that never ends: what the pump reads."""

    length = None

    def read1(self, size: int) -> bytes:
        return b"x" * size


def test_a_stream_not_served_yet_holds_no_more_than_the_servers_bound(static_dir: Path) -> None:
    """The pump starts before the server serves the stream: it must wait at the server's
    bound from the first byte, not at a default, or the first write overflows it."""
    limits = Limits(stream_bound=256 * 1024)
    with Proxy("127.0.0.1:1", port=0, static_dir=static_dir, limits=limits) as p:
        connection = SimpleNamespace(sock=None, close=lambda: None)
        stream = p._stream(connection, EndlessSource(), {}, None, "a test source")  # type: ignore[arg-type]
        try:
            rh.wait_until(lambda: stream.backlog > 0, what="the pump to queue")
            time.sleep(0.3)  # the pump would go on queueing, were it not held back
            assert 0 < stream.backlog <= limits.stream_bound
            assert not stream.overflowed
        finally:
            stream.close()
            stream.closed = True  # never served: the pump stops at its next look


def test_an_unknown_agent_is_404(cluster: LocalCluster, proxy: Proxy) -> None:
    reply = rh.get(proxy.address, "/agent/no-such-agent-S9/files/read?path=/x")
    assert reply.status == 404
    assert "no-such-agent-S9" in reply.text
    # A known agent, but an endpoint that is not on the list.
    reply = rh.get(proxy.address, f"/agent/{cluster.agents[0]}/api/v1")
    assert reply.status == 404
    assert "files/read" in reply.text


# -- failures, redirects and credentials ------------------------------------------------------


def test_a_stopped_master_and_a_dead_agent_are_502(static_dir: Path) -> None:
    # The master keeps listing the dead agent (no health check ends within the test).
    cluster = LocalCluster(agents=1, allocation_interval=0.3, agent_timeout=300).start()
    try:
        with Proxy(cluster.master, port=0, static_dir=static_dir) as p:
            agent_id = cluster.agents[0]
            assert rh.get(p.address, f"/agent/{agent_id}/state").status == 200
            cluster.kill_host(agent_id)
            reply = rh.get(p.address, f"/agent/{agent_id}/state")
            assert reply.status == 502, reply.body
            assert agent_id in reply.text and "Cannot reach" in reply.text
            cluster.stop()
            reply = rh.get(p.address, "/master/state")
            assert reply.status == 502, reply.body
            assert cluster.master in reply.text
            stream = rh.open_stream(p.address, {"type": "SUBSCRIBE"}, path="/api/v1")
            assert isinstance(stream, rh.Reply) and stream.status == 502
            # The page is still served.
            assert rh.get(p.address, "/").status == 200
    finally:
        cluster.stop()


class Recorder(ThreadingHTTPServer):
    """A fake master (and agent) that records each request; `answer(handler)` replies."""

    daemon_threads = True

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler, Recorder], None]) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.answer = answer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server: Recorder = self.server  # type: ignore[assignment]
                server.requests.append((self.command, self.path, dict(self.headers.items())))
                server.answer(self, server)

            do_POST = do_GET

        super().__init__(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def reply_json(handler: BaseHTTPRequestHandler, value: Any, status: int = 200) -> None:
    body = json.dumps(value).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def fake_master(handler: BaseHTTPRequestHandler, server: Recorder) -> None:
    """Lists one agent, A1, which is this same server."""
    port = server.server_address[1]
    if handler.path.startswith("/master/slaves"):
        agent = {"id": "A1", "pid": f"slave(1)@127.0.0.1:{port}", "hostname": "127.0.0.1"}
        reply_json(handler, {"slaves": [agent]})
    else:
        reply_json(handler, {"path": handler.path})


def test_credentials_go_with_every_forwarded_call(static_dir: Path) -> None:
    expected = "Basic " + base64.b64encode(b"watcher:s3cret").decode()
    with (
        Recorder(fake_master) as fake,
        Proxy(
            fake.address, port=0, static_dir=static_dir, principal="watcher", secret="s3cret"
        ) as p,
    ):
        assert rh.get(p.address, "/master/state").json() == {"path": "/master/state"}
        assert rh.post_json(p.address, "/api/v1", {"type": "GET_HEALTH"}).status == 200
        reply = rh.get(p.address, "/agent/A1/files/read?path=/tmp/x&offset=0")
        assert reply.json() == {"path": "/files/read?path=%2Ftmp%2Fx&offset=0"}
        # A browser's own credentials do not replace the proxy's.
        rh.request(p.address, "GET", "/master/tasks", headers={"Authorization": "Basic eDp5"})
        # The page's own files are not forwarded.
        rh.get(p.address, "/ui/mode.js")
        paths = [path for _, path, _ in fake.requests]
        assert paths == [
            "/master/state",
            "/api/v1",
            "/master/slaves",
            "/files/read?path=%2Ftmp%2Fx&offset=0",
            "/master/tasks",
        ]
        for _, path, headers in fake.requests:
            assert headers.get("Authorization") == expected, path


def test_without_credentials_the_browsers_are_passed_on(static_dir: Path) -> None:
    """A master that wants credentials answers 401 with a challenge, which must reach the
    browser (it then asks its user and sends them); those go on to the master."""

    def guarded(handler: BaseHTTPRequestHandler, server: Recorder) -> None:
        if handler.headers.get("Authorization") == "Basic eDp5":
            fake_master(handler, server)
            return
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", 'Basic realm="mesos"')
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with Recorder(guarded) as fake, Proxy(fake.address, port=0, static_dir=static_dir) as p:
        refused = rh.get(p.address, "/master/state")
        assert refused.status == 401
        assert refused.header("WWW-Authenticate") == 'Basic realm="mesos"'
        allowed = rh.request(
            p.address, "GET", "/master/tasks", headers={"Authorization": "Basic eDp5"}
        )
        assert allowed.status == 200
        assert "Authorization" not in fake.requests[0][2]
        assert fake.requests[1][2].get("Authorization") == "Basic eDp5"


def test_with_its_own_credentials_a_401_reaches_the_browser_without_its_challenge(
    static_dir: Path,
) -> None:
    """The proxy's credentials replace the browser's, so a 401 says they are wrong: a challenge
    would only make the browser ask its user for others, which the proxy would not send."""

    def guarded(handler: BaseHTTPRequestHandler, server: Recorder) -> None:
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", 'Basic realm="mesos"')
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with (
        Recorder(guarded) as fake,
        Proxy(fake.address, port=0, static_dir=static_dir, principal="x", secret="no") as p,
    ):
        refused = rh.get(p.address, "/master/state")
        assert refused.status == 401
        assert refused.header("WWW-Authenticate") is None


def test_a_credentialed_master_is_watched_with_the_proxys_credentials(
    static_dir: Path,
) -> None:
    """A localmesos started with credentials asks for them on the scheduler API only, not
    (yet) on the read-only endpoints and the operator API: this shows that a proxy that sends
    them still works end to end; the fake masters above show that it sends them."""
    with (
        LocalCluster(agents=0, credentials={"watcher": "s3cret"}) as cluster,
        Proxy(
            cluster.master, port=0, static_dir=static_dir, principal="watcher", secret="s3cret"
        ) as p,
    ):
        stream = rh.open_stream(p.address, {"type": "SUBSCRIBE"}, path="/api/v1")
        assert isinstance(stream, rh.EventStream), stream
        try:
            assert stream.wait_for(lambda e: e["type"] == "SUBSCRIBED")
        finally:
            stream.close()
        assert rh.get(p.address, "/master/state").status == 200


def test_a_source_that_breaks_off_breaks_the_clients_stream(static_dir: Path) -> None:
    """A download cut short at the agent must not reach the client as a complete file."""

    def short_agent(handler: BaseHTTPRequestHandler, server: Recorder) -> None:
        if not handler.path.startswith("/files/download"):
            fake_master(handler, server)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(4 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b"x" * (2 * 1024 * 1024))
        handler.wfile.flush()
        handler.close_connection = True

    with (
        Recorder(short_agent) as fake,
        Proxy(fake.address, port=0, static_dir=static_dir) as p,
        rh.Connection(p.address) as conn,
    ):
        conn.send(rh.encode_request("GET", "/agent/A1/files/download?path=/x"))
        head = rh.read_head(conn)
        assert head.status == 200 and head.chunked
        received = b""
        with pytest.raises(rh.ProtocolError):
            while (chunk := rh.read_chunk(conn)) is not None:
                received += chunk
        assert len(received) <= 2 * 1024 * 1024


def test_a_redirect_to_the_leader_is_followed(cluster: LocalCluster, static_dir: Path) -> None:
    """A standby answers with a protocol-relative 307 (http.cpp `Master::Http::redirect`)."""

    def standby(handler: BaseHTTPRequestHandler, server: Recorder) -> None:
        handler.send_response(307)
        handler.send_header("Location", f"//{cluster.master}{handler.path}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with (
        Recorder(standby) as fake,
        Proxy(fake.address, port=0, static_dir=static_dir) as first_get,
        Proxy(fake.address, port=0, static_dir=static_dir) as first_subscribe,
    ):
        state = rh.get(first_get.address, "/master/state")
        assert state.status == 200, state.body
        assert state.json()["id"] == cluster.state()["id"]
        # A POST is sent again with its body, as a 307 asks.
        stream = rh.open_stream(first_subscribe.address, {"type": "SUBSCRIBE"}, path="/api/v1")
        assert isinstance(stream, rh.EventStream), stream
        try:
            assert stream.wait_for(lambda e: e["type"] == "SUBSCRIBED")
        finally:
            stream.close()
        # Each proxy asks the leader it found first from then on.
        for p in (first_get, first_subscribe):
            assert rh.get(p.address, "/master/frameworks").status == 200
            assert rh.post_json(p.address, "/api/v1", {"type": "GET_HEALTH"}).status == 200
        assert [path for _, path, _ in fake.requests] == ["/master/state", "/api/v1"]


def test_a_redirect_loop_ends_in_502(static_dir: Path) -> None:
    def loop(handler: BaseHTTPRequestHandler, server: Recorder) -> None:
        handler.send_response(307)
        handler.send_header("Location", f"//{server.address}{handler.path}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with Recorder(loop) as fake, Proxy(fake.address, port=0, static_dir=static_dir) as p:
        reply = rh.get(p.address, "/master/state")
        assert reply.status == 502
        assert "redirected" in reply.text


def test_standbys_and_zookeeper_lead_to_the_leader(static_dir: Path) -> None:
    need_zookeeper()
    with LocalCluster(agents=1, masters=2, allocation_interval=0.3) as cluster:
        leader = cluster.leader
        standby = next(m for m in cluster.masters if m != leader)
        with (
            Proxy(standby, port=0, static_dir=static_dir) as through_standby,
            Proxy(cluster.master, port=0, static_dir=static_dir) as through_zk,
        ):
            for p in (through_standby, through_zk):
                state = rh.get(p.address, "/master/state")
                assert state.status == 200, state.body
                assert state.json()["pid"].endswith(f"@{leader}")
                agent = rh.get(p.address, f"/agent/{cluster.agents[0]}/state")
                assert agent.status == 200, agent.body
            cluster.kill_master()
            new_leader = cluster.wait_for_leader()
            assert new_leader == standby

            def leader_through(p: Proxy) -> bool:
                reply = rh.get(p.address, "/master/state")
                return reply.status == 200 and reply.json()["pid"].endswith(f"@{new_leader}")

            # The proxy given the standby falls back to it once the old leader is gone; the
            # one following ZooKeeper hears of the new leader.
            rh.wait_until(lambda: leader_through(through_standby), 30, "the new leader")
            rh.wait_until(lambda: leader_through(through_zk), 30, "the new leader from zk")


# -- the command ------------------------------------------------------------------------------


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localmesos", "ui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "--master"),
        (["--master", "nowhere"], "invalid master 'nowhere'"),
        (["--master", "127.0.0.1:99999"], "invalid master"),
        (["--master", "zk://"], "zk"),
        (["--master", "127.0.0.1:5050", "--port", "x"], "invalid port 'x'"),
        (["--master", "127.0.0.1:5050", "--principal", "p"], "go together"),
        (["--master", "127.0.0.1:5050", "--secret", "s"], "go together"),
        (["--master", "127.0.0.1:5050", "--secret", "s", "--secret-file", "f"], "not allowed"),
        (["--master", "127.0.0.1:5050", "--principal", "p", "--secret-file", "/no/file"], "/no"),
    ],
)
def test_bad_arguments_are_named(args: list[str], said: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result
    assert said in result.stderr, result.stderr


def test_the_command_prints_the_url_and_serves(cluster: LocalCluster, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "localmesos", "ui", "--master", f"http://{cluster.master}/"),
            *("--port", "0", "--principal", "watcher", "--secret-file", str(secret)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        lines = []
        while not (lines and "open http://" in lines[-1]):
            line = process.stdout.readline()
            assert line, (
                f"the command ended: {lines} {process.stderr.read() if process.stderr else ''}"
            )
            lines.append(line)
        assert any("runs Mesos" in line for line in lines), lines
        found = re.search(r"open http://(127\.0\.0\.1:[0-9]+),", lines[-1])
        assert found, lines
        url = found[1]
        assert rh.get(url, "/ui/mode.js").text.strip().endswith('{agents: "proxy"};')
        assert rh.get(url, "/master/state").json()["id"] == cluster.state()["id"]
    finally:
        process.terminate()
        assert process.wait(30) == 0
