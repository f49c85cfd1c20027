"""The `localmesos` command as a user runs it: flags, the ready line, signals and bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.localmesos_procs import (
    LOCALMESOS,
    Cli,
    Proc,
    Subscription,
    describe,
    in_sessions,
    kill_all,
    run_leak_checked,
    survivors,
    wait_for_file,
    watchdogs,
)

pytestmark = pytest.mark.integration

# A task that leaves a background grandchild in its session, and writes both pids.
FAMILY = "echo $$ > pid; sleep 300 & echo $! > grandchild; wait"


@pytest.fixture
def clis() -> Iterator[list[Cli]]:
    """Every Cli a test starts is killed and reaped afterwards, whatever happened."""
    started: list[Cli] = []
    yield started
    for cli in started:
        cli.stop()


def start(clis: list[Cli], *args: str) -> Cli:
    cli = Cli("--port", "0", *args)
    clis.append(cli)
    return cli


def sandbox(work_dir: Path, status: dict, framework_id: str) -> Path:
    agent_id = status["agent_id"]["value"]
    task_id = status["task_id"]["value"]
    return (
        work_dir / "slaves" / agent_id / "frameworks" / framework_id / "executors" / task_id
    ) / "runs/latest"


def test_port_0_picks_a_free_port_and_the_url_says_which(clis: list[Cli]) -> None:
    cli = start(clis)
    assert cli.port != 0
    assert cli.ready_line.startswith("localmesos: master at http://127.0.0.1:")
    status, _ = cli.get("/health")
    assert status == 200
    assert cli.state()["flags"]["port"] == str(cli.port)


def test_health_and_version(clis: list[Cli]) -> None:
    cli = start(clis)
    assert cli.get("/health")[0] == 200
    status, body = cli.get("/version")
    assert status == 200
    version = json.loads(body)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version["version"]), version


def test_agents_and_resources_flags(clis: list[Cli]) -> None:
    cli = start(
        clis, "--agents", "3", "--resources", "cpus:3;mem:1000;disk:500;ports:[32000-32009]"
    )
    assert "with 3 agents" in cli.ready_line
    state = cli.state()
    assert state["activated_slaves"] == 3
    assert len(state["slaves"]) == 3
    for agent in state["slaves"]:
        resources = agent["resources"]
        assert resources["cpus"] == 3.0
        assert resources["mem"] == 1000.0
        assert resources["disk"] == 500.0
        assert resources["ports"] == "[32000-32009]"


def test_offer_timeout_and_gc_flags_reach_the_master_and_the_agents(clis: list[Cli]) -> None:
    cli = start(
        clis,
        "--agents",
        "1",
        "--offer-timeout",
        "5secs",
        "--gc-delay",
        "2hrs",
        "--gc-disk-headroom",
        "0.25",
        "--disk-watch-interval",
        "30secs",
    )
    assert cli.state()["flags"]["offer_timeout"] == "5secs"
    (agent,) = cli.state()["slaves"]
    status, body = get_url(f"http://{agent['hostname']}:{agent['port']}/flags")
    assert status == 200
    flags = json.loads(body)["flags"]
    assert (flags["gc_delay"], flags["gc_disk_headroom"]) == ("2hrs", "0.25")
    assert flags["disk_watch_interval"] == "30secs"


def get_url(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_offers_carry_the_resources_flag(clis: list[Cli]) -> None:
    cli = start(clis, "--agents", "1", "--resources", "cpus:0.5;mem:64")
    subscription = Subscription(cli.master)
    try:
        offer = subscription.wait_for("OFFERS")["offers"]["offers"][0]
    finally:
        subscription.close()
    scalars = {r["name"]: r["scalar"]["value"] for r in offer["resources"]}
    assert scalars == {"cpus": 0.5, "mem": 64.0}


def test_work_dir_receives_the_sandboxes(clis: list[Cli], tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    cli = start(clis, "--agents", "1", "--work-dir", str(work_dir))
    assert str(work_dir) in cli.ready_line
    subscription = Subscription(cli.master)
    try:
        running = subscription.run_tasks({"hello": "echo hello; echo $$ > pid; sleep 300"})
        directory = sandbox(work_dir, running["hello"], subscription.framework_id)
        wait_for_file(directory / "pid")
        assert (directory / "stdout").read_text() == "hello\n"
        assert (directory / "stderr").is_file()
    finally:
        subscription.close()
    assert cli.signal(signal.SIGTERM) == 0
    assert directory.is_dir(), "a --work-dir given by the user is kept"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_the_cluster_and_its_tasks(
    clis: list[Cli], tmp_path: Path, sig: signal.Signals
) -> None:
    work_dir = tmp_path / "work"
    cli = start(clis, "--agents", "2", "--work-dir", str(work_dir))
    # The subscription stays open: a framework that goes away has its tasks killed at once
    # (failover_timeout 0), which would hide what the signal does.
    subscription = Subscription(cli.master)
    tasks: set[Proc] = set()
    try:
        running = subscription.run_tasks({"one": "exec sleep 300", "two": FAMILY})
        two = sandbox(work_dir, running["two"], subscription.framework_id)
        grandchild = int(wait_for_file(two / "grandchild"))
        sessions = {s["container_status"]["executor_pid"] for s in running.values()}
        tasks = in_sessions(sessions)
        assert grandchild in {p.pid for p in tasks}, "the grandchild is in its task's session"
        assert len(tasks) == 3, describe(tasks)  # sleep; sh and its background sleep
        watchdog = watchdogs(cli.process.pid)
        assert len(watchdog) == 1
        tasks |= watchdog
        assert cli.signal(sig) == 0
        assert cli.process.stderr is not None
        assert "Traceback" not in cli.process.stderr.read()
        left = survivors(tasks | in_sessions(sessions), timeout=5)
        assert not left, f"still running after {sig.name}: {describe(left)}"
    finally:
        subscription.close()
        kill_all(tasks)


# -- bad input ------------------------------------------------------------------------------------


@pytest.fixture
def run_bad(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `localmesos --port 0 ARGS` to its end, and checks that it left no process behind
    (the watchdog starts before the master binds its port, for one)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result, leaked = run_leak_checked(
            [str(LOCALMESOS), "--port", "0", *args], tmp_path / "leaks.json"
        )
        assert not leaked, f"left running: {leaked}"
        return result

    return run


def one_message(stderr: str) -> str:
    """The error message: exactly one line starting with `localmesos:`, and no traceback.
    Before it may stand argparse's usage block (`usage:` and its indented continuation)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    messages = [line for line in lines if line.startswith("localmesos:")]
    assert len(messages) == 1, stderr
    assert lines[-1] == messages[0], stderr
    usage = lines[:-1]
    assert all(line.startswith(("usage:", " ")) for line in usage), stderr
    return messages[0]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--resources", "cpus:abc"], ["--resources", "cpus:abc"]),
        (["--allocation-interval", "5"], ["--allocation-interval", "'5'"]),
        (["--agent-timeout", "fast"], ["--agent-timeout", "'fast'"]),
        (["--port", "99999"], ["--port", "99999"]),
        (["--agents", "-1"], ["--agents", "-1"]),
        (["--agents", "two"], ["--agents", "'two'"]),
        (["--credentials", "/nonexistent"], ["/nonexistent"]),
        (["--offer-timeout", "0secs"], ["Invalid value '0secs' for --offer_timeout"]),
        (["--offer-timeout", "soon"], ["--offer-timeout", "'soon'"]),
        (["--gc-disk-headroom", "1.5"], ["Invalid value '1.5' for --gc_disk_headroom"]),
        (["--gc-delay", "1week"], ["--gc-delay", "'1week'"]),
        (["--disk-watch-interval", "0ms"], ["Invalid value '0ms' for --disk_watch_interval"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_input_exits_2_naming_the_value(
    run_bad: Callable[..., subprocess.CompletedProcess[str]], args: list[str], named: list[str]
) -> None:
    result = run_bad(*args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    message = one_message(result.stderr)
    for fragment in named:
        assert fragment in message, message


@pytest.mark.parametrize(
    "text",
    [
        '{"credentials": [{"principal": "a", "secret": ',
        '{"credentials": [{"principal": "a"}]}',
        "principal-without-secret\n",
        "\n\n",
    ],
    ids=["truncated JSON", "JSON without secret", "line without secret", "empty"],
)
def test_a_bad_credentials_file_exits_2_naming_it(
    run_bad: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "credentials"
    path.write_text(text)
    result = run_bad("--credentials", str(path))
    assert result.returncode == 2, result
    assert str(path) in one_message(result.stderr)


# -- credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"credentials": [{"principal": "alice", "secret": "s3cret"}]}),
        "alice s3cret\n",
    ],
    ids=["json", "lines"],
)
def test_credentials_require_authentication(clis: list[Cli], tmp_path: Path, text: str) -> None:
    path = tmp_path / "credentials"
    path.write_text(text)
    cli = start(clis, "--agents", "1", "--credentials", str(path))
    anonymous = Subscription(cli.master)
    anonymous.close()
    assert anonymous.status == 401
    assert anonymous.response_headers["www-authenticate"].startswith("Basic ")
    wrong = Subscription(cli.master, credentials=("alice", "guess"))
    wrong.close()
    assert wrong.status == 401
    alice = Subscription(cli.master, credentials=("alice", "s3cret"))
    try:
        assert alice.status == 200
        assert alice.wait_for("OFFERS")
    finally:
        alice.close()


# -- a port in use --------------------------------------------------------------------------------


def test_a_port_in_use_exits_1_with_a_clear_message(
    run_bad: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bad("--port", str(port))
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr


# -- agents of another process ------------------------------------------------------------------


def test_agents_with_another_link_secret_exit_1_saying_so(clis: list[Cli], tmp_path: Path) -> None:
    cli = start(clis, "--agents", "0")
    result = subprocess.run(
        [str(LOCALMESOS), "agents", "--master", cli.master, "--work-dir", str(tmp_path)],
        env={**os.environ, "LOCALMESOS_LINK_SECRET": "not-the-masters"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("localmesos: agent on port "), result.stderr
    assert "refuses this process's messages (401)" in last
    assert "LOCALMESOS_LINK_SECRET" in last
    assert "Traceback" not in result.stderr


def test_a_signal_interrupts_agents_that_wait_to_register(tmp_path: Path) -> None:
    with socket.socket() as nobody:  # a master address where nothing answers
        nobody.bind(("127.0.0.1", 0))
        port = nobody.getsockname()[1]
    work_dir = tmp_path / "work"
    process = subprocess.Popen(
        [str(LOCALMESOS), "agents", "--master", f"127.0.0.1:{port}", "--work-dir", str(work_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Once its work dir exists, the cluster is starting (its signal handlers are in
        # place): its agent waits for a registration that never comes.
        deadline = time.monotonic() + 30
        while not work_dir.exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the cluster never made its work dir"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "localmesos: interrupted while starting"
