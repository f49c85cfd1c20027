"""A workshop room on one cluster (CONFORMANCE.md: Authentication): a cluster that other machines
reach needs credentials, and with them every endpoint that Mesos puts in a realm asks for HTTP
Basic, while the executors' API, /health and /version stay open; the steps run with
--principal and --secret."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localmesos.authentication import advertised_ip
from localmesos.cluster import LocalCluster
from tests.integration import raw_http as rh
from tests.integration.localmesos_procs import need_zookeeper
from tests.integration.step3_support import Schedulers, failing_python, schedulers_fixture

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ALICE = {"alice": "s3cret"}
MASTER_READONLY = 'Basic realm="mesos-master-readonly"'
MASTER_READWRITE = 'Basic realm="mesos-master-readwrite"'
AGENT_READONLY = 'Basic realm="mesos-agent-readonly"'
AGENT_READWRITE = 'Basic realm="mesos-agent-readwrite"'


def basic(principal: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode()


GOOD = {"Authorization": basic("alice", "s3cret")}
BAD = [
    {},
    {"Authorization": basic("alice", "wrong")},
    {"Authorization": basic("mallory", "s3cret")},
    {"Authorization": "basic " + basic("alice", "s3cret").split()[1]},  # libprocess: "Basic"
    {"Authorization": "Bearer s3cret"},
]


def localmesos(*args: str) -> list[str]:
    return [sys.executable, "-m", "localmesos", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def room() -> Iterator[LocalCluster]:
    """A cluster with credentials, on loopback: the authentication is the same on any address."""
    with LocalCluster(agents=1, credentials=ALICE, allocation_interval=0.1) as cluster:
        yield cluster


def agent_address(cluster: LocalCluster) -> str:
    return cluster.agent_url(cluster.agents[0]).removeprefix("http://")


# -- a bind that other machines reach needs credentials -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--ip", "0.0.0.0", "--port", "0", "--agents", "0"],
        ["--ip", "192.0.2.7", "--port", "0"],
        ["master", "--ip", "0.0.0.0", "--port", "0"],
        ["agents", "--ip", "0.0.0.0", "--master", "127.0.0.1:1"],
    ],
    ids=" ".join,
)
def test_a_bind_beyond_loopback_without_credentials_is_refused_in_one_line(
    args: list[str],
) -> None:
    result = subprocess.run(
        localmesos(*args),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    ip = args[args.index("--ip") + 1]
    assert lines[0].startswith(f"localmesos: refusing to bind {ip} without --credentials: "), lines
    assert "could run any command on this machine" in lines[0]


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.0.2.7", "10.0.0.1"])
def test_local_cluster_refuses_a_bind_beyond_loopback_without_credentials(ip: str) -> None:
    with pytest.raises(ValueError, match=rf"refusing to bind {re.escape(ip)} without credentials"):
        LocalCluster(agents=0, ip=ip)


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.0.0.2"])
def test_loopback_needs_no_credentials(ip: str) -> None:
    with LocalCluster(agents=0, ip=ip) as cluster:
        assert rh.get(cluster.leader, "/master/state").status == 200


def test_the_room_on_the_machines_address_prints_the_offer_timeout(tmp_path: Path) -> None:
    """With credentials the same command starts, says that offers expire in a room, and asks
    for HTTP Basic on its own address."""
    ip = advertised_ip("0.0.0.0")
    if ip.startswith("127."):
        pytest.skip("this machine has no address beyond loopback")
    credentials = tmp_path / "credentials"
    credentials.write_text(json.dumps({"credentials": [{"principal": "alice", "secret": "s3"}]}))
    process = subprocess.Popen(
        localmesos("--ip", ip, "--port", "0", "--agents", "1", "--credentials", str(credentials)),
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = first_lines(process, 2)
        assert len(lines) == 2, (lines, process.poll())
        match = re.search(rf"master at http://({re.escape(ip)}:\d+) ", lines[0])
        assert match, lines
        assert "offers unanswered for 30 s are rescinded (--offer-timeout" in lines[1], lines
        assert "open TCP ports" in lines[1], lines
        master = match.group(1)
        refused = rh.get(master, "/master/state")
        assert refused.status == 401
        assert refused.all("WWW-Authenticate") == [MASTER_READONLY]
        reply = rh.request(
            master, "GET", "/master/flags", headers={"Authorization": basic("alice", "s3")}
        )
        assert reply.status == 200
        assert reply.json()["flags"]["offer_timeout"] == "30secs"
        # What the room's machines are told: this address, not a name they may not resolve.
        auth = {"Authorization": basic("alice", "s3")}
        slaves = rh.request(master, "GET", "/master/slaves", headers=auth).json()["slaves"]
        assert [(a["hostname"], a["pid"].split("@")[1].split(":")[0]) for a in slaves] == [(ip, ip)]
        assert rh.request(master, "GET", "/master/state", headers=auth).json()["hostname"] == ip
    finally:
        process.kill()
        process.wait(15)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def first_lines(process: subprocess.Popen, count: int, timeout: float = 60) -> list[str]:
    """Up to ``count`` lines of the process's stdout, read on a thread so that a process that
    prints fewer cannot hang the test."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        try:
            found.append(lines.get(timeout=0.5))
        except queue.Empty:
            if process.poll() is not None and lines.empty():
                break
    return found


def test_agents_of_another_process_are_told_the_credentials(tmp_path: Path) -> None:
    """`localmesos master` and `localmesos agents`, each with --credentials: the agents register
    over /link (its own secret, untouched by the credentials) and ask for HTTP Basic too."""
    credentials = tmp_path / "credentials"
    credentials.write_text("alice s3cret\n")
    env = {**environment(), "LOCALMESOS_LINK_SECRET": "room-test-link-secret"}
    started: list[subprocess.Popen] = []

    def start(*args: str) -> str:
        process = subprocess.Popen(
            localmesos(*args, "--credentials", str(credentials), "--work-dir", str(tmp_path)),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(process)
        lines = first_lines(process, 1)
        assert lines, f"{args[0]} exited with {process.poll()} before its ready line"
        return lines[0]

    try:
        ready = start("master", "--port", "0")
        match = re.search(r"master at http://(127\.0\.0\.1:\d+) ", ready)
        assert match, ready
        master = match.group(1)
        ready = start("agents", "--master", master, "--agents", "1")
        match = re.search(r"\(ports (\d+)\) registered", ready)
        assert match, ready
        agent = f"127.0.0.1:{match.group(1)}"
        reply = rh.request(agent, "GET", "/state")
        assert (reply.status, reply.all("WWW-Authenticate")) == (401, [AGENT_READONLY])
        assert rh.request(agent, "GET", "/state", headers=GOOD).status == 200
        slaves = rh.request(master, "GET", "/master/slaves", headers=GOOD).json()["slaves"]
        assert [s["port"] for s in slaves] == [int(match.group(1))]
    finally:
        for process in started:
            process.kill()
            process.wait(15)
            assert process.stdout is not None
            process.stdout.close()


# -- the master's realms --------------------------------------------------------------------------

MASTER_READS = [
    "/state",
    "/frameworks",
    "/slaves",
    "/tasks",
    "/roles",
    "/flags",
    "/metrics/snapshot",
    "/maintenance/status",
]


@pytest.mark.parametrize("headers", BAD, ids=["none", "wrong secret", "unknown", "case", "bearer"])
def test_every_master_endpoint_in_a_realm_refuses_without_good_credentials(
    room: LocalCluster, headers: dict[str, str]
) -> None:
    master = room.leader
    for path in MASTER_READS:
        for target in (f"/master{path}", path):
            reply = rh.request(master, "GET", target, headers=headers)
            assert reply.status == 401, (target, reply.status)
            assert reply.all("WWW-Authenticate") == [MASTER_READONLY], target
    # master.cpp routes /maintenance/schedule in the read-write realm (a schedule can be
    # posted), and the operator API there too.
    reply = rh.request(master, "GET", "/master/maintenance/schedule", headers=headers)
    assert (reply.status, reply.all("WWW-Authenticate")) == (401, [MASTER_READWRITE])
    for path in ("/api/v1", "/master/api/v1", "/api/v1/operator"):
        reply = rh.post_json(master, path, {"type": "GET_HEALTH"}, headers)
        assert (reply.status, reply.all("WWW-Authenticate")) == (401, [MASTER_READWRITE]), path
    # The page and its files, read-only here (Mesos serves its web UI in no realm).
    for path in ("/", "/ui/app.js"):
        reply = rh.request(master, "GET", path, headers=headers)
        assert (reply.status, reply.all("WWW-Authenticate")) == (401, [MASTER_READONLY]), path
    # Frameworks: the scheduler realm, for SUBSCRIBE and every other call.
    for call in (rh.subscribe_call(), {"type": "REVIVE", "framework_id": {"value": "f"}}):
        reply = rh.post_json(master, "/api/v1/scheduler", call, headers)
        assert reply.status == 401
        assert reply.all("WWW-Authenticate") == ['Basic realm="mesos-master-scheduler"']


def test_authentication_comes_before_anything_else_the_endpoint_checks(
    room: LocalCluster,
) -> None:
    """libprocess authenticates before the handler runs: a bad method or body is 401 first."""
    master = room.leader
    assert rh.request(master, "PUT", "/maintenance/status").status == 401
    assert rh.request(master, "GET", "/api/v1/scheduler").status == 401
    assert rh.request(master, "POST", "/api/v1", "{not json", rh.JSON_HEADERS).status == 401
    assert rh.request(master, "PUT", "/maintenance/status", headers=GOOD).status == 405


def test_a_standby_master_authenticates_before_it_redirects() -> None:
    need_zookeeper()
    with LocalCluster(agents=0, masters=2, credentials=ALICE) as cluster:
        standby = next(m for m in cluster._masters if not m.serving)
        for path, realm in (
            ("/master/state", MASTER_READONLY),
            ("/master/api/v1/scheduler", 'Basic realm="mesos-master-scheduler"'),
        ):
            refused = rh.request(standby.address, "GET", path)
            assert (refused.status, refused.all("WWW-Authenticate")) == (401, [realm]), path
        reply = rh.request(standby.address, "GET", "/master/state", headers=GOOD)
        assert reply.status == 307
        assert reply.header("Location") is not None


def test_the_master_answers_with_good_credentials(room: LocalCluster) -> None:
    master = room.leader
    for path in [*MASTER_READS, "/maintenance/schedule"]:
        reply = rh.request(master, "GET", f"/master{path}", headers=GOOD)
        assert reply.status == 200, (path, reply.status)
    flags = rh.request(master, "GET", "/master/flags", headers=GOOD).json()["flags"]
    for flag in (
        "authenticate_frameworks",
        "authenticate_http_frameworks",
        "authenticate_http_readonly",
        "authenticate_http_readwrite",
    ):
        assert flags[flag] == "true", flag
    reply = rh.post_json(master, "/api/v1", {"type": "GET_HEALTH"}, GOOD)
    assert reply.status == 200
    assert reply.json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}


def test_health_version_and_redirect_stay_open(room: LocalCluster) -> None:
    for address in (room.leader, agent_address(room)):
        assert rh.get(address, "/health").status == 200
        assert rh.get(address, "/version").status == 200
    assert rh.get(room.leader, "/master/redirect").status == 307


# -- the agents' realms ---------------------------------------------------------------------------

AGENT_READS = [
    "/state",
    "/flags",
    "/monitor/statistics",
    "/metrics/snapshot",
    "/files/read?path=/nowhere&offset=0",
    "/files/browse?path=/nowhere",
    "/files/download?path=/nowhere",
]


@pytest.mark.parametrize("headers", BAD, ids=["none", "wrong secret", "unknown", "case", "bearer"])
def test_every_agent_endpoint_in_a_realm_refuses_without_good_credentials(
    room: LocalCluster, headers: dict[str, str]
) -> None:
    agent = agent_address(room)
    for path in AGENT_READS:
        for target in (f"/slave(1){path}", path):
            reply = rh.request(agent, "GET", target, headers=headers)
            assert reply.status == 401, (target, reply.status)
            assert reply.all("WWW-Authenticate") == [AGENT_READONLY], target
    for path in ("/api/v1", "/slave(1)/api/v1", "/api/v1/operator"):
        reply = rh.post_json(agent, path, {"type": "GET_HEALTH"}, headers)
        assert (reply.status, reply.all("WWW-Authenticate")) == (401, [AGENT_READWRITE]), path


def test_the_agent_answers_with_good_credentials(room: LocalCluster) -> None:
    agent = agent_address(room)
    for path in AGENT_READS[:4]:
        reply = rh.request(agent, "GET", f"/slave(1){path}", headers=GOOD)
        assert reply.status == 200, (path, reply.status)
    # Past authentication, files.cpp's own answer: no such file.
    reply = rh.request(agent, "GET", "/files/read?path=/nowhere&offset=0", headers=GOOD)
    assert reply.status == 404
    flags = rh.request(agent, "GET", "/flags", headers=GOOD).json()["flags"]
    assert flags["authenticate_http_readonly"] == flags["authenticate_http_readwrite"] == "true"
    assert flags["authenticate_http_executors"] == "false"
    reply = rh.post_json(agent, "/api/v1", {"type": "GET_HEALTH"}, GOOD)
    assert reply.status == 200
    assert reply.json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}


def test_the_executor_api_asks_for_no_credentials(room: LocalCluster) -> None:
    """--authenticate_http_executors is off by default in Mesos: the agent answers the call
    itself (here: no such framework), with no challenge."""
    call = {
        "type": "SUBSCRIBE",
        "framework_id": {"value": "no-such-framework"},
        "executor_id": {"value": "e"},
        "subscribe": {},
    }
    reply = rh.post_json(agent_address(room), "/api/v1/executor", call)
    assert reply.status == 400, reply.status
    assert reply.text == "Framework cannot be found"
    assert reply.all("WWW-Authenticate") == []


def test_a_scheduler_with_good_credentials_subscribes_under_its_principal(
    room: LocalCluster,
) -> None:
    stream = rh.open_stream(room.leader, rh.subscribe_call(), headers=GOOD)
    assert isinstance(stream, rh.EventStream), stream
    try:
        event = stream.next_event()
        assert event is not None and event["type"] == "SUBSCRIBED"
        framework_id = event["subscribed"]["framework_id"]["value"]
        (framework,) = [f for f in room.state()["frameworks"] if f["id"] == framework_id]
        assert framework["principal"] == "alice"
    finally:
        stream.close()


# -- the steps in a room --------------------------------------------------------------------------


def step1(cluster: LocalCluster, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "step1_scheduler",
            "--master",
            cluster.master,
            "--size",
            "small",
            "--quiet",
            "--chart",
            str(tmp_path / "chart.png"),
            *extra,
        ],
        cwd=ROOT,
        env={k: v for k, v in environment().items() if not k.startswith("MESOS_")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_step1_runs_in_a_room_with_its_principal_and_secret(tmp_path: Path) -> None:
    """Every result comes from a sandbox read, so a whole job proves that the reads carry the
    credential as well as the subscription."""
    with LocalCluster(agents=2, credentials=ALICE, allocation_interval=0.1) as cluster:
        result = step1(cluster, tmp_path, "--principal", "alice", "--secret", "s3cret")
        assert result.returncode == 0, result.stderr
        assert re.match(r"4 chunks on \d agents? in ", result.stdout), result.stdout
        (framework,) = cluster.state()["completed_frameworks"]
        assert framework["principal"] == "alice"


def test_step1_without_credentials_is_refused_by_a_room(tmp_path: Path) -> None:
    with LocalCluster(agents=1, credentials=ALICE, allocation_interval=0.1) as cluster:
        result = step1(cluster, tmp_path, "--connect-timeout", "3")
        assert result.returncode == 1
        assert result.stderr.startswith("error: "), result.stderr
        assert "the master wants a valid --principal and --secret" in result.stderr
        assert cluster.state()["frameworks"] == []


@pytest.fixture
def schedulers(tmp_path: Path) -> Iterator[Schedulers]:
    yield from schedulers_fixture(tmp_path)


def test_step3_reads_a_failed_executors_stderr_from_a_room(
    schedulers: Schedulers, tmp_path: Path
) -> None:
    """The executor cannot start: step 3 quotes its stderr, which it read from the agent's
    /state and /files/read with its credential (a 401 would say "could not be read")."""
    with LocalCluster(agents=1, credentials=ALICE, allocation_interval=0.1) as cluster:
        python = failing_python(tmp_path)
        argv = ["--master", cluster.master, "--state", str(tmp_path / "state")]
        argv += ["--size", "small", "--quiet", "--executor-python", python, "--max-attempts", "1"]
        a = schedulers.start("a", *argv, "--principal", "alice", "--secret", "s3cret")
        assert a.wait(90) == 1, a.log()
        log = a.log()
        assert "the executor ended before it ran the chunk" in log, log
        assert "could not be read" not in log, log
        assert "failing-python: cannot run -m step3_failover.executor" in log, log
