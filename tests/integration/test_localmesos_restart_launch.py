"""An agent restart meets the launch path: command tasks, whose executor the agent plays
itself (agent/command_executor.py), and URIs that the fetcher brings into sandboxes. A
framework that checkpoints keeps its command task through `restart_agent`, with what
mesos-executor would log in the sandbox and with its kills going through the executor's grace
and escalation; the agent's death during a fetch starts nothing afterwards, and the task fails
as Mesos fails a task whose executor never ran.

CONFORMANCE.md: "Agent failures and recovery", "Command tasks", "The fetcher".
"""

from __future__ import annotations

import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localmesos.agent.checkpoint import executor_dir
from localmesos.cluster import LocalCluster
from localmesos.processes import start_time
from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    alive,
    command_task,
    framework_info,
    harness_fixture,
    only,
    sandbox,
    scalar,
    wait_until,
)
from tests.integration.sandbox_support import FileServer, file_server, glog, parse, read_sandbox
from tests.integration.test_localmesos_executor import (
    container_of,
    encode,
    launch,
    pid_of,
    run_directory,
    wait_gone,
    wait_logged,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECOVERY_WAIT = 20.0  # seconds: a restart waits executor_reregistration_timeout, then more
NANOSECONDS = 1_000_000_000


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fetcher honours the *_proxy variables as curl does; these tests fetch from loopback.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    (root / "hello.txt").write_text("hello over http\n")
    with tarfile.open(root / "executor.tar.gz", "w:gz") as archive:
        archive.add(ROOT / "tests" / "integration" / "echo_executor.py", "echo_executor.py")
    return root


@pytest.fixture
def server(served: Path) -> Iterator[FileServer]:
    yield from file_server(served)


def start(
    harness: Harness, reregistration_timeout: float = 1.0
) -> tuple[LocalCluster, RecordingScheduler, Any, str, dict, str]:
    """One agent and a pymesos framework that checkpoints. Recovery lasts the executor
    reregistration timeout: short, unless a pymesos executor has to come back in it."""
    cluster = harness.cluster(
        agents=1, allocation_interval=0.05, executor_reregistration_timeout=reregistration_timeout
    )
    scheduler, driver, framework_id = harness.subscribe(cluster, framework_info(checkpoint=True))
    offer = only(scheduler.wait_offers(1))
    return cluster, scheduler, driver, framework_id, offer, offer["agent_id"]["value"]


def updates_file(
    cluster: LocalCluster, agent_id: str, framework_id: str, executor_id: str, status: dict
) -> Path:
    run = executor_dir(cluster.work_dir, agent_id, framework_id, executor_id)
    return (
        run
        / "runs"
        / container_of(status)
        / "tasks"
        / status["task_id"]["value"]
        / ("task.updates")
    )


def wait_acknowledged(path: Path, count: int) -> None:
    """Until the agent has checkpointed ``count`` acknowledgements: pymesos acknowledges after
    its callback, and an update not acknowledged would (rightly) go out again after the
    restart."""

    def acks() -> int:
        lines = path.read_text().splitlines() if path.exists() else []
        return sum(json.loads(line)["type"] == "ACK" for line in lines)

    wait_until(lambda: acks() == count, what=f"{count} acknowledgements in {path}")


def executor_lines(stderr: str) -> list[tuple[str, str]]:
    """mesos-executor's glog lines (its v0 driver's and its own), the fetcher's left out."""
    return [line for line in glog(parse(stderr)) if not line[0].startswith("fetcher.cpp")]


def reconnected(agent_id: str, hostname: str) -> list[tuple[str, str]]:
    return [
        (
            "exec.cpp:551",
            "Agent exited, but framework has checkpointing enabled. Waiting 15mins to "
            f"reconnect with agent {agent_id}",
        ),
        ("exec.cpp:283", f"Received reconnect request from agent {agent_id}"),
        ("exec.cpp:260", f"Executor reregistered on agent {agent_id}"),
        ("executor.cpp:190", "Received SUBSCRIBED event"),
        ("executor.cpp:194", f"Subscribed executor on {hostname}"),
    ]


def fetch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("fetch-")]


# -- command tasks through a restart --------------------------------------------------------------


def test_a_fetched_command_task_survives_a_restart_and_its_stderr_ends_with_its_exit(
    harness: Harness, server: FileServer
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    command = {
        "value": "cat hello.txt; until [ -e done ]; do sleep 0.05; done",
        "uris": [{"value": server.url("hello.txt")}],
    }
    launch(driver, offer, [command_task("c", offer, command)])
    running = scheduler.wait_update("c", "TASK_RUNNING", timeout=10)
    pid, started = pid_of(running), start_time(pid_of(running))
    directory = sandbox(cluster, framework_id, agent_id, "c")
    wait_until(lambda: (directory / "stdout").read_text() == "hello over http\n")
    # The pid is checkpointed once the fetch (on its worker thread) is over and the command
    # has been spawned, so that the restarted agent can adopt it.
    run = executor_dir(cluster.work_dir, agent_id, framework_id, "c") / "runs"
    assert (run / container_of(running) / "pids" / "forked.pid").read_text() == str(pid)
    wait_acknowledged(updates_file(cluster, agent_id, framework_id, "c", running), 2)

    mark = scheduler.mark()
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    assert alive(pid) and start_time(pid) == started
    hostname = "localhost"
    before = executor_lines(read_sandbox(cluster, agent_id, framework_id, "c", "stderr"))
    assert before[6] == ("executor.cpp:740", f"Forked command at {pid}")
    assert before[7:] == reconnected(agent_id, hostname)

    # The command ends after the restart: its executor says so, and so does the update.
    (directory / "done").touch()
    finished = scheduler.wait_update("c", "TASK_FINISHED", since=mark, timeout=10)
    assert finished["source"] == "SOURCE_EXECUTOR"
    assert finished["message"] == "Command exited with status 0"
    assert pid_of(finished) == pid
    assert scheduler.states("c")[-1:] == ["TASK_FINISHED"]
    assert [s["state"] for s in scheduler.updates("c", since=mark)] == ["TASK_FINISHED"]
    stderr = read_sandbox(cluster, agent_id, framework_id, "c", "stderr")
    assert parse(stderr)[0].text.startswith("Fetcher Info: ")  # the fetcher's log is still first
    assert executor_lines(stderr)[12:] == [
        ("executor.cpp:1041", f"Command exited with status 0 (pid: {pid})")
    ]


def test_a_kill_of_a_recovered_command_task_goes_through_grace_and_escalation(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    grace = {"grace_period": {"nanoseconds": NANOSECONDS // 2}}  # 0.5 s
    task = command_task("s", offer, "trap '' TERM; touch ready; sleep 100", kill_policy=grace)
    launch(driver, offer, [task])
    running = scheduler.wait_update("s", "TASK_RUNNING", timeout=10)
    pid = pid_of(running)
    directory = sandbox(cluster, framework_id, agent_id, "s")
    wait_until((directory / "ready").exists, what="the task to ignore SIGTERM")
    wait_acknowledged(updates_file(cluster, agent_id, framework_id, "s", running), 2)
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    assert alive(pid)

    driver.killTask({"value": "s"})
    killed = scheduler.wait_update("s", "TASK_KILLED", timeout=10)
    assert killed["message"] == "Command terminated with signal Killed"
    lines = executor_lines((directory / "stderr").read_text())
    assert lines[7:12] == reconnected(agent_id, "localhost")
    assert [where for where, _ in lines[12:]] == [
        "executor.cpp:190",
        "executor.cpp:835",
        "executor.cpp:956",
        "executor.cpp:969",
        "executor.cpp:973",
        "executor.cpp:1082",
        "executor.cpp:1102",
        "executor.cpp:1041",
    ]
    assert lines[13][1] == "Received kill for task s with grace period of 500ms"
    assert lines[17][1] == (
        f"Process {pid} did not terminate after 500ms, sending SIGKILL to process tree at {pid}"
    )
    wait_gone(pid)


def test_a_kill_under_way_when_the_agent_dies_is_carried_on_after_the_restart(
    harness: Harness,
) -> None:
    """mesos-executor's escalation timer outlives its agent; here the agent is that executor,
    so the kill is checkpointed and its escalation resumed (at once if it fell due while the
    agent was away)."""
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    grace = {"grace_period": {"nanoseconds": 2 * NANOSECONDS}}
    task = command_task("s", offer, "trap '' TERM; touch ready; sleep 100", kill_policy=grace)
    launch(driver, offer, [task])
    running = scheduler.wait_update("s", "TASK_RUNNING", timeout=10)
    pid = pid_of(running)
    directory = sandbox(cluster, framework_id, agent_id, "s")
    wait_until((directory / "ready").exists, what="the task to ignore SIGTERM")

    mark = scheduler.mark()
    driver.killTask({"value": "s"})
    wait_until(
        lambda: "Scheduling escalation to SIGKILL" in (directory / "stderr").read_text(),
        what="the kill to begin",
    )
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    killed = scheduler.wait_update("s", "TASK_KILLED", since=mark, timeout=10)
    assert killed["source"] == "SOURCE_EXECUTOR"
    assert killed["message"] == "Command terminated with signal Killed"
    lines = executor_lines((directory / "stderr").read_text())
    assert lines[11] == ("executor.cpp:973", "Scheduling escalation to SIGKILL in 2secs from now")
    assert lines[12:17] == reconnected(agent_id, "localhost")
    assert [where for where, _ in lines[17:]] == [
        "executor.cpp:1082",
        "executor.cpp:1102",
        "executor.cpp:1041",
    ]
    wait_gone(pid)


# -- URIs being fetched when the agent dies -------------------------------------------------------


def test_a_fetch_under_way_when_the_agent_dies_starts_nothing_and_its_task_fails(
    harness: Harness, server: FileServer
) -> None:
    """Mesos checkpoints the task before the fetch; the restarted agent finds an executor
    that never ran (`Slave::executorTerminated`): TASK_FAILED, REASON_EXECUTOR_TERMINATED."""
    server.held.add("/hello.txt")
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    command = {"value": "touch ran; sleep 100", "uris": [{"value": server.url("hello.txt")}]}
    launch(driver, offer, [command_task("slow", offer, command)])
    wait_until(lambda: server.gets("hello.txt") == 1, what="the download to start")

    mark = scheduler.mark()
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    failed = scheduler.wait_update("slow", "TASK_FAILED", since=mark, timeout=10)
    assert failed["source"] == "SOURCE_AGENT"
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["message"] == "Executor terminated"
    assert failed["executor_id"] == {"value": "slow"}
    assert scheduler.states("slow") == ["TASK_FAILED"]  # never STARTING: no executor ran

    # The dead agent's download ends; nothing comes of it.
    container = container_of(failed)
    server.release()
    wait_until(lambda: f"fetch-{container[:8]}" not in fetch_threads(), what="the fetch to be over")
    directory = run_directory(cluster, framework_id, agent_id, "slow", container)
    assert not (directory / "ran").exists()
    assert executor_lines((directory / "stderr").read_text()) == []
    assert not (directory / "hello.txt").exists()


def test_a_custom_executor_fetched_from_a_uri_survives_a_restart(
    harness: Harness, server: FileServer
) -> None:
    # pymesos's executor subscribes again 1.5 to 2.5 s after its agent went away.
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness, 5.0)
    executor = {
        "executor_id": {"value": "fetched"},
        "name": "fetched echo executor",
        "command": {
            "shell": False,
            "value": sys.executable,
            "arguments": [sys.executable, "echo_executor.py"],
            "uris": [{"value": server.url("executor.tar.gz")}],
        },
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    }
    task = command_task("work", offer, None, executor=executor, data=encode({"do": "hold"}))
    launch(driver, offer, [task])
    running = scheduler.wait_update("work", "TASK_RUNNING", timeout=20)
    pid = pid_of(running)
    directory = run_directory(cluster, framework_id, agent_id, "fetched", container_of(running))
    wait_acknowledged(updates_file(cluster, agent_id, framework_id, "fetched", running), 1)

    mark = scheduler.mark()
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    wait_logged(directory, f"reregistered on agent {agent_id}")
    assert alive(pid)
    driver.sendFrameworkMessage(
        {"value": "fetched"}, {"value": agent_id}, encode({"finish": "work"})
    )
    finished = scheduler.wait_update("work", "TASK_FINISHED", since=mark, timeout=10)
    assert pid_of(finished) == pid
    assert [s["state"] for s in scheduler.updates("work", since=mark)] == ["TASK_FINISHED"]
