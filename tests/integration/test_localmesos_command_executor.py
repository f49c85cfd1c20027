"""The command executor as users observe it, with the unmodified pymesos scheduler driver: what
Mesos's `mesos-executor` writes in the sandbox's stderr (src/launcher/executor.cpp), how a kill
follows the grace period and escalates, what SHUTDOWN does, and how the agent accounts for the
executor (`Slave::getExecutorInfo`). CONFORMANCE.md: Command tasks.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pymesos_harness import (
    Harness,
    command_task,
    framework_info,
    harness_fixture,
    only,
    sandbox,
    wait_state,
    wait_until,
)
from tests.integration.sandbox_support import agent_state, glog, parse, read_sandbox

pytestmark = pytest.mark.integration

NANOSECONDS = 1_000_000_000


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def start(harness: Harness, framework: dict | None = None) -> tuple:
    cluster = harness.cluster(agents=1)
    scheduler, driver, framework_id = harness.subscribe(cluster, framework)
    offer = only(scheduler.wait_offers(1))
    return cluster, scheduler, driver, framework_id, offer, offer["agent_id"]["value"]


def startup(agent_id: str, hostname: str, task_id: str, pid: int) -> list[tuple[str, str]]:
    """mesos-executor's lines from its start to the fork, with the v0 driver."""
    return [
        ("exec.cpp:164", "Version: 1.11.0"),
        ("exec.cpp:237", f"Executor registered on agent {agent_id}"),
        ("executor.cpp:190", "Received SUBSCRIBED event"),
        ("executor.cpp:194", f"Subscribed executor on {hostname}"),
        ("executor.cpp:190", "Received LAUNCH event"),
        ("executor.cpp:722", f"Starting task {task_id}"),
        ("executor.cpp:740", f"Forked command at {pid}"),
    ]


def tree_after(stderr: str, header: str) -> str:
    """The process-tree list printed after ``header`` (stout's `stringify` of a list of
    trees: "[ ", the trees, "]", each on lines of their own)."""
    match = re.search(re.escape(header) + r"\n(\[ \n.*?\n\])\n", stderr, re.S)
    assert match, f"no process trees after {header!r} in:\n{stderr}"
    return match.group(1)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == str(pid):
            found.append(int(name))
    return found


def shutdown_call(driver: object, framework_id: str, executor_id: str, agent_id: str) -> None:
    driver._send(  # type: ignore[attr-defined]  # pymesos has no method for SHUTDOWN
        {
            "type": "SHUTDOWN",
            "framework_id": {"value": framework_id},
            "shutdown": {"executor_id": {"value": executor_id}, "agent_id": {"value": agent_id}},
        }
    )


def kill_call(driver: object, framework_id: str, task_id: str, grace: float) -> None:
    """KILL with a kill policy of its own (pymesos's killTask cannot send one)."""
    driver._send(  # type: ignore[attr-defined]
        {
            "type": "KILL",
            "framework_id": {"value": framework_id},
            "kill": {
                "task_id": {"value": task_id},
                "kill_policy": {"grace_period": {"nanoseconds": int(grace * NANOSECONDS)}},
            },
        }
    )


def test_a_command_writes_the_executors_lines_in_stderr_and_nothing_in_stdout(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    driver.launchTasks(offer["id"], [command_task("ok", offer, "echo out; echo err >&2")])
    finished = scheduler.wait_update("ok", "TASK_FINISHED")
    pid = finished["container_status"]["executor_pid"]

    stderr = read_sandbox(cluster, agent_id, framework_id, "ok", "stderr")
    lines = parse(stderr)
    hostname = agent_state(cluster, agent_id)["hostname"]
    assert glog(lines) == [
        *startup(agent_id, hostname, "ok", pid),
        ("executor.cpp:1041", f"Command exited with status 0 (pid: {pid})"),
    ]
    assert all(line.severity == "I" for line in lines if line.severity)
    # The task's own stderr goes to the same file; its stdout holds only the task's output.
    assert [line.text for line in lines if not line.severity] == ["err"]
    assert read_sandbox(cluster, agent_id, framework_id, "ok", "stdout") == "out\n"


def test_a_nonzero_exit_is_logged_with_its_status(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    driver.launchTasks(offer["id"], [command_task("three", offer, "exit 3")])
    failed = scheduler.wait_update("three", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    pid = failed["container_status"]["executor_pid"]
    stderr = read_sandbox(cluster, agent_id, framework_id, "three", "stderr")
    assert glog(parse(stderr))[-1] == (
        "executor.cpp:1041",
        f"Command exited with status 3 (pid: {pid})",
    )


def test_a_program_that_cannot_be_executed_exits_with_status_1(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    missing = "/nonexistent/program"
    command = {"shell": False, "value": missing, "arguments": ["program"]}
    driver.launchTasks(offer["id"], [command_task("nothing", offer, command)])
    failed = scheduler.wait_update("nothing", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 1"
    assert failed["source"] == "SOURCE_EXECUTOR"
    stderr = read_sandbox(cluster, agent_id, framework_id, "nothing", "stderr")
    assert f"Failed to execute '{missing}': No such file or directory" in stderr.splitlines()


def test_a_kill_within_the_grace_period_sends_sigterm_to_the_process_tree(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    driver.launchTasks(offer["id"], [command_task("t", offer, "sleep 100 & wait")])
    pid = scheduler.wait_update("t", "TASK_RUNNING")["container_status"]["executor_pid"]
    directory = sandbox(cluster, framework_id, agent_id, "t")
    wait_until(lambda: children(pid), what="the shell to fork its sleep")

    driver.killTask({"value": "t"})
    killed = scheduler.wait_update("t", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"
    stderr = (directory / "stderr").read_text()
    assert glog(parse(stderr))[7:] == [
        ("executor.cpp:190", "Received KILL event"),
        ("executor.cpp:835", "Received kill for task t with grace period of 3secs"),
        ("executor.cpp:956", f"Sending SIGTERM to process tree at pid {pid}"),
        ("executor.cpp:969", "Sent SIGTERM to the following process trees:"),
        ("executor.cpp:973", "Scheduling escalation to SIGKILL in 3secs from now"),
        ("executor.cpp:1041", f"Command terminated with signal Terminated (pid: {pid})"),
    ]
    # The shell and its child, as stout prints a tree (each command line from /proc, with a
    # space after every argument).
    tree = tree_after(stderr, "Sent SIGTERM to the following process trees:")
    assert re.fullmatch(
        rf"\[ \n-\+- {pid} sh -c sleep 100 & wait \n \\--- \d+ sleep 100 \n\]", tree
    ), tree


def test_a_task_that_ignores_sigterm_gets_sigkill_when_its_kill_policys_grace_is_over(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    grace = {"grace_period": {"nanoseconds": NANOSECONDS // 2}}  # 0.5 s
    task = command_task(
        "stubborn", offer, "trap '' TERM; touch ready; sleep 100", kill_policy=grace
    )
    driver.launchTasks(offer["id"], [task])
    pid = scheduler.wait_update("stubborn", "TASK_RUNNING")["container_status"]["executor_pid"]
    directory = sandbox(cluster, framework_id, agent_id, "stubborn")
    wait_until((directory / "ready").exists, what="the task to ignore SIGTERM")

    driver.killTask({"value": "stubborn"})
    killed = scheduler.wait_update("stubborn", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Killed"
    stderr = (directory / "stderr").read_text()
    assert glog(parse(stderr))[7:] == [
        ("executor.cpp:190", "Received KILL event"),
        ("executor.cpp:835", "Received kill for task stubborn with grace period of 500ms"),
        ("executor.cpp:956", f"Sending SIGTERM to process tree at pid {pid}"),
        ("executor.cpp:969", "Sent SIGTERM to the following process trees:"),
        ("executor.cpp:973", "Scheduling escalation to SIGKILL in 500ms from now"),
        (
            "executor.cpp:1082",
            f"Process {pid} did not terminate after 500ms, sending SIGKILL to process tree "
            f"at {pid}",
        ),
        ("executor.cpp:1102", "Killed the following process trees:"),
        ("executor.cpp:1041", f"Command terminated with signal Killed (pid: {pid})"),
    ]
    tree = tree_after(stderr, "Killed the following process trees:")
    assert tree.startswith(f"[ \n-+- {pid} sh -c trap '' TERM; touch ready; sleep 100 \n"), tree


def test_a_second_kill_can_only_bring_the_escalation_closer(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    driver.launchTasks(
        offer["id"], [command_task("t", offer, "trap '' TERM; touch ready; sleep 100")]
    )
    pid = scheduler.wait_update("t", "TASK_RUNNING")["container_status"]["executor_pid"]
    directory = sandbox(cluster, framework_id, agent_id, "t")
    wait_until((directory / "ready").exists, what="the task to ignore SIGTERM")

    driver.killTask({"value": "t"})  # 3 s, the default
    wait_until(lambda: "Scheduling escalation" in (directory / "stderr").read_text())
    kill_call(driver, framework_id, "t", 60.0)  # longer: changes nothing
    kill_call(driver, framework_id, "t", 0.0)  # shorter: SIGKILL now
    scheduler.wait_update("t", "TASK_KILLED", timeout=2.5)
    lines = glog(parse((directory / "stderr").read_text()))
    assert lines[12:] == [
        ("executor.cpp:190", "Received KILL event"),
        ("executor.cpp:835", "Received kill for task t with grace period of 1mins"),
        ("executor.cpp:190", "Received KILL event"),
        ("executor.cpp:835", "Received kill for task t with grace period of 0ns"),
        ("executor.cpp:917", "Rescheduling escalation to SIGKILL in 0ns from now"),
        (
            "executor.cpp:1082",
            f"Process {pid} did not terminate after 0ns, sending SIGKILL to process tree at {pid}",
        ),
        ("executor.cpp:1102", "Killed the following process trees:"),
        ("executor.cpp:1041", f"Command terminated with signal Killed (pid: {pid})"),
    ]


def test_shutdown_kills_the_task_with_the_shutdown_grace_less_two_seconds(
    harness: Harness,
) -> None:
    capable = framework_info(capabilities=[{"type": "TASK_KILLING_STATE"}])
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness, capable)
    driver.launchTasks(offer["id"], [command_task("t", offer, "sleep 100")])
    pid = scheduler.wait_update("t", "TASK_RUNNING")["container_status"]["executor_pid"]

    shutdown_call(driver, framework_id, "t", agent_id)
    killed = scheduler.wait_update("t", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"
    assert scheduler.states("t") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    stderr = read_sandbox(cluster, agent_id, framework_id, "t", "stderr")
    assert glog(parse(stderr))[7:] == [
        ("exec.cpp:478", "Executor asked to shutdown"),
        ("executor.cpp:190", "Received SHUTDOWN event"),
        ("executor.cpp:843", "Shutting down"),
        ("executor.cpp:956", f"Sending SIGTERM to process tree at pid {pid}"),
        ("executor.cpp:969", "Sent SIGTERM to the following process trees:"),
        # 5 s of executor shutdown grace, less the 2 s the agent keeps for itself.
        ("executor.cpp:973", "Scheduling escalation to SIGKILL in 3secs from now"),
        ("executor.cpp:1041", f"Command terminated with signal Terminated (pid: {pid})"),
    ]


def test_the_agent_accounts_the_executors_allowance_which_the_master_does_not(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, _, offer, agent_id = start(harness)
    shell_false = {"shell": False, "value": sys.executable, "arguments": ["python3", "-c", "1"]}
    tasks = [
        command_task("busy", offer, "sleep 100", cpus=0.5, mem=128),
        command_task("long", offer, "python3 -m http.server 0", cpus=0.2, mem=64),
        command_task("argv", offer, shell_false, cpus=0.1, mem=32),
    ]
    driver.launchTasks(offer["id"], tasks)
    scheduler.wait_update("busy", "TASK_RUNNING")
    scheduler.wait_update("argv", "TASK_FINISHED")
    wait_state(cluster, lambda s: only(s["slaves"])["used_resources"]["cpus"] == 0.7)

    executors = {
        e["id"]: e for e in only(agent_state(cluster, agent_id)["frameworks"])["executors"]
    }
    busy = executors["busy"]
    assert busy["name"] == "Command Executor (Task: busy) (Command: sh -c 'sleep 100')"
    assert busy["source"] == "busy"
    assert "type" not in busy
    assert busy["role"] == "*"
    # The task's resources and the executor's own 0.1 cpus and 32 MB.
    assert busy["resources"]["cpus"] == 0.6
    assert busy["resources"]["mem"] == 160
    # Commands longer than 15 characters are cut to 12.
    assert executors["long"]["name"] == (
        "Command Executor (Task: long) (Command: sh -c 'python3 -m h...')"
    )
    # The master counts the tasks alone (`Slave::getExecutorInfo`: "a small overcommit").
    master_agent = only(cluster.state()["slaves"])
    assert master_agent["used_resources"]["cpus"] == 0.7
    assert master_agent["used_resources"]["mem"] == 192

    # A completed command executor keeps only its own allowance.
    completed = wait_until(
        lambda: next(
            (
                e
                for e in only(agent_state(cluster, agent_id)["frameworks"])["completed_executors"]
                if e["id"] == "argv"
            ),
            None,
        ),
        what="the finished executor",
    )
    assert (
        completed["name"] == f"Command Executor (Task: argv) (Command: [{sys.executable[:12]}...])"
    )
    assert completed["resources"]["cpus"] == 0.1
    assert completed["resources"]["mem"] == 32
    assert [t["state"] for t in completed["completed_tasks"]] == ["TASK_FINISHED"]
