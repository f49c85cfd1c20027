"""Unmodified pymesos against LocalCluster: command tasks, KILL, ACCEPT validation,
acknowledgements, reconciliation, framework messages and executor faults. What Mesos does,
with its sources, is in localmesos/CONFORMANCE.md; the section headers below name its parts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, encode_data

from localmesos.cluster import LocalCluster
from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    alive,
    command_task,
    framework_info,
    harness_fixture,
    only,
    resources_by_name,
    sandbox,
    scalar,
    wait_state,
    wait_until,
)

pytestmark = pytest.mark.integration

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NANOSECONDS = 1_000_000_000


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def agent_of(offer: dict) -> str:
    return offer["agent_id"]["value"]


def framework_state(state: dict, framework_id: str) -> dict:
    return only([f for f in state["frameworks"] if f["id"] == framework_id])


def task_state(state: dict, framework_id: str, task_id: str) -> dict:
    return only([t for t in framework_state(state, framework_id)["tasks"] if t["id"] == task_id])


def metrics(cluster: LocalCluster) -> dict:
    with urllib.request.urlopen(cluster.url + "/metrics/snapshot", timeout=10) as response:
        return json.loads(response.read())


def assert_from_master(status: dict) -> None:
    """Master-generated updates are sent once and need no acknowledgement."""
    assert status["source"] == "SOURCE_MASTER"
    assert "uuid" not in status


def assert_from_agent(status: dict, agent_id: str, task_id: str, source: str) -> None:
    """Updates that come from an agent are acknowledged: uuid, agent and executor."""
    assert status["source"] == source
    assert len(base64.b64decode(status["uuid"], validate=True)) == 16
    assert status["agent_id"] == {"value": agent_id}
    assert status["executor_id"] == {"value": task_id}  # command executor ID = task ID
    assert re.fullmatch(UUID, status["container_status"]["container_id"]["value"])
    assert isinstance(status["timestamp"], float)


def running_task(
    harness: Harness,
    command: str = "sleep 100",
    framework: dict | None = None,
    **cluster_options: Any,
) -> tuple[LocalCluster, RecordingScheduler, MesosSchedulerDriver, str, str, dict]:
    """A one-agent cluster with one framework running task "t"; returns the cluster, the
    scheduler, the driver, the framework and agent IDs, and the TASK_RUNNING update."""
    cluster = harness.cluster(agents=1, **cluster_options)
    scheduler, driver, framework_id = harness.subscribe(cluster, framework)
    offer = only(scheduler.wait_offers(1))
    driver.launchTasks(offer["id"], [command_task("t", offer, command)])
    running = scheduler.wait_update("t", "TASK_RUNNING")
    return cluster, scheduler, driver, framework_id, agent_of(offer), running


# -- 5. The command task life cycle (CONFORMANCE.md: Command tasks; Sandboxes and files) -------


def test_command_task_reports_starting_running_finished_with_its_sandbox(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    agent_id = agent_of(offer)
    command = (
        'echo "sandbox=$MESOS_SANDBOX"; echo "ids=$MESOS_FRAMEWORK_ID $MESOS_EXECUTOR_ID"; '
        "echo oops >&2"
    )
    driver.launchTasks(offer["id"], [command_task("ok", offer, command)])

    finished = scheduler.wait_update("ok", "TASK_FINISHED")
    assert scheduler.states("ok") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert finished["message"] == "Command exited with status 0"
    assert "reason" not in finished
    updates = scheduler.updates("ok")
    for status in updates:
        assert_from_agent(status, agent_id, "ok", "SOURCE_EXECUTOR")
    assert len({s["uuid"] for s in updates}) == 3
    container_ids = {s["container_status"]["container_id"]["value"] for s in updates}
    container_id = only(list(container_ids))

    # The sandbox: <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>.
    directory = sandbox(cluster, framework_id, agent_id, "ok")
    assert os.readlink(directory) == container_id
    real = directory.parent / container_id
    stdout = (real / "stdout").read_text().splitlines()
    assert f"sandbox={real}" in stdout
    assert f"ids={framework_id} ok" in stdout
    assert "oops" in (real / "stderr").read_text().splitlines()
    assert "oops" not in stdout

    # Once the terminal update is acknowledged (implicitly), the task is completed.
    state = wait_state(
        cluster,
        lambda s: any(t["id"] == "ok" for t in framework_state(s, framework_id)["completed_tasks"]),
    )
    task = only(framework_state(state, framework_id)["completed_tasks"])
    assert task["state"] == "TASK_FINISHED"
    assert [s["state"] for s in task["statuses"]] == [
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_FINISHED",
    ]
    assert task["slave_id"] == agent_id


def test_command_exit_status_3_is_task_failed(harness: Harness) -> None:
    _, scheduler, *_, agent_id, _ = running_task(harness, "sleep 0.2; exit 3")
    failed = scheduler.wait_update("t", "TASK_FAILED")
    assert scheduler.states("t") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert failed["message"] == "Command exited with status 3"
    assert "reason" not in failed
    assert_from_agent(failed, agent_id, "t", "SOURCE_EXECUTOR")


def test_command_runs_in_its_own_session(harness: Harness) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    code = "import os; print(os.getsid(0), os.getpgid(0), os.getpid())"
    tasks = [
        # Without a shell, `arguments` is the whole argv (mesos.proto `CommandInfo`).
        command_task(
            "python",
            offer,
            {"value": sys.executable, "shell": False, "arguments": ["python3", "-c", code]},
        ),
        command_task("shell", offer, "echo $(ps -o sid= -p $$) $(ps -o pgid= -p $$) $$"),
    ]
    driver.launchTasks(offer["id"], tasks)
    for task_id in ("python", "shell"):
        scheduler.wait_update(task_id, "TASK_FINISHED")
        output = (sandbox(cluster, framework_id, agent_of(offer), task_id) / "stdout").read_text()
        sid, pgid, pid = (int(n) for n in output.split())
        assert sid == pgid == pid, f"{task_id}: not a session leader: {output!r}"
        assert sid != os.getsid(0)


def test_running_task_resources_are_accounted_on_its_agent(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    task = command_task("busy", offer, "sleep 100", cpus=0.5, mem=128)
    driver.launchTasks(offer["id"], [task], filters={"refuse_seconds": 0})
    scheduler.wait_update("busy", "TASK_RUNNING")

    state = cluster.state()
    agent = only(state["slaves"])
    assert agent["used_resources"]["cpus"] == 0.5
    assert agent["used_resources"]["mem"] == 128
    assert agent["resources"]["cpus"] == 2
    framework = framework_state(state, framework_id)
    assert framework["used_resources"]["cpus"] == 0.5
    listed = task_state(state, framework_id, "busy")
    assert listed["state"] == "TASK_RUNNING"
    assert listed["resources"]["cpus"] == 0.5
    assert listed["resources"]["mem"] == 128
    assert metrics(cluster)["master/cpus_used"] == 0.5

    # The rest of the agent is offered again (refuse_seconds=0), and only the rest.
    rest = scheduler.wait_offers(2)[1]
    assert resources_by_name(rest["resources"])["cpus"] == 1.5
    assert resources_by_name(rest["resources"])["mem"] == 2048 - 128

    driver.killTask({"value": "busy"})
    scheduler.wait_update("busy", "TASK_KILLED")
    state = wait_state(cluster, lambda s: only(s["slaves"])["used_resources"]["cpus"] == 0)
    assert only(state["slaves"])["used_resources"]["mem"] == 0


# -- 6. KILL (CONFORMANCE.md: Scheduler calls; Command tasks) ----------------------------------


def test_kill_ends_a_running_task_with_task_killed(harness: Harness) -> None:
    _, scheduler, driver, _, agent_id, running = running_task(harness)
    pid = running["container_status"]["executor_pid"]
    assert alive(pid)

    driver.killTask({"value": "t"})
    killed = scheduler.wait_update("t", "TASK_KILLED")
    # Without the TASK_KILLING_STATE capability there is no TASK_KILLING.
    assert scheduler.states("t") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]
    assert killed["message"] == "Command terminated with signal Terminated"
    assert_from_agent(killed, agent_id, "t", "SOURCE_EXECUTOR")
    wait_until(lambda: not alive(pid), what="the task's process to end")


def test_kill_sends_task_killing_first_to_a_capable_framework(harness: Harness) -> None:
    capable = framework_info(capabilities=[{"type": "TASK_KILLING_STATE"}])
    _, scheduler, driver, *_ = running_task(harness, framework=capable)
    driver.killTask({"value": "t"})
    scheduler.wait_update("t", "TASK_KILLED")
    assert scheduler.states("t") == [
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_KILLING",
        "TASK_KILLED",
    ]


def test_kill_uses_the_tasks_kill_policy_grace_for_a_task_that_ignores_sigterm(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    grace = {"grace_period": {"nanoseconds": NANOSECONDS // 5}}  # 0.2 s
    task = command_task(
        "stubborn", offer, "trap '' TERM; touch ready; sleep 100", kill_policy=grace
    )
    driver.launchTasks(offer["id"], [task])
    pid = scheduler.wait_update("stubborn", "TASK_RUNNING")["container_status"]["executor_pid"]
    ready = sandbox(cluster, framework_id, agent_of(offer), "stubborn") / "ready"
    wait_until(ready.exists, what="the task to ignore SIGTERM")

    driver.killTask({"value": "stubborn"})
    # The default grace is 3 s: waiting less than that shows the task's own policy was used.
    killed = scheduler.wait_update("stubborn", "TASK_KILLED", timeout=2.5)
    assert killed["message"] == "Command terminated with signal Killed"
    assert not alive(pid)


def test_kill_of_an_unknown_task_is_answered_by_reconciliation(harness: Harness) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, driver, _ = harness.subscribe(cluster)
    driver.killTask({"value": "nobody"})
    lost = scheduler.wait_update("nobody", "TASK_LOST")
    assert_from_master(lost)
    assert lost["reason"] == "REASON_RECONCILIATION"
    assert lost["message"] == "Reconciliation: Task is unknown"
    assert "agent_id" not in lost


# -- 7. ACCEPT validation (CONFORMANCE.md: ACCEPT validation) ----------------------------------


def test_accept_with_invalid_offers_loses_every_task(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))

    # An unknown offer ID, next to a good one: every task is lost, the good offer is given
    # back without a filter and comes straight back.
    bogus = {"value": "no-such-offer"}
    mark = scheduler.mark()
    driver.launchTasks([offer["id"], bogus], [command_task("a", offer, "true")])
    lost = scheduler.wait_update("a", "TASK_LOST")
    assert_from_master(lost)
    assert lost["reason"] == "REASON_INVALID_OFFERS"
    assert (
        lost["message"]
        == "Task launched with invalid offers: Offer no-such-offer is no longer valid"
    )
    assert scheduler.states("a") == ["TASK_LOST"]
    offer = only(scheduler.wait_offers(1, since=mark))

    # An offer that was already used is no longer valid either.
    driver.launchTasks(offer["id"], [command_task("b", offer, "sleep 100")])
    scheduler.wait_update("b", "TASK_RUNNING")
    driver.launchTasks(
        offer["id"], [command_task("c", offer, "true"), command_task("d", offer, "true")]
    )
    for task_id in ("c", "d"):
        lost = scheduler.wait_update(task_id, "TASK_LOST")
        assert_from_master(lost)
        assert lost["reason"] == "REASON_INVALID_OFFERS"
        assert lost["message"] == (
            f"Task launched with invalid offers: Offer {offer['id']['value']} is no longer valid"
        )


def test_accept_reports_invalid_tasks_and_launches_the_valid_ones(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    no_command = command_task("neither", offer, None)
    both = command_task(
        "both",
        offer,
        "true",
        executor={"executor_id": {"value": "e"}, "command": {"value": "true"}},
    )
    tasks = [
        command_task("huge", offer, "true", cpus=3),
        no_command,
        both,
        command_task("twin", offer, "sleep 100"),
        command_task("twin", offer, "sleep 100"),
        command_task("good", offer, "sleep 100"),
    ]
    mark = scheduler.mark()
    driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 0})

    expected = {
        "huge": (
            "Total resources cpus(allocated: *):3; mem(allocated: *):32 required by task and "
            "its executor is more than available cpus(allocated: *):2; mem(allocated: *):2048; "
            "disk(allocated: *):4096; ports(allocated: *):[31000-31999]"
        ),
        "neither": (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
        ),
        "both": (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
        ),
        "twin": "Task has duplicate ID: twin",
    }
    for task_id, message in expected.items():
        error = scheduler.wait_update(task_id, "TASK_ERROR", since=mark)
        assert_from_master(error)
        assert error["reason"] == "REASON_TASK_INVALID"
        assert error["message"] == message
    for task_id in ("huge", "neither", "both"):
        assert scheduler.states(task_id) == ["TASK_ERROR"]

    # The valid tasks of the same call run; the first "twin" is one of them.
    scheduler.wait_update("good", "TASK_RUNNING")
    scheduler.wait_update("twin", "TASK_RUNNING")
    assert scheduler.states("twin") == ["TASK_ERROR", "TASK_STARTING", "TASK_RUNNING"]

    # A later ACCEPT reusing the ID of a live task is refused too.
    rest = only(scheduler.wait_offers(1, since=mark))
    later = scheduler.mark()
    driver.launchTasks(rest["id"], [command_task("twin", rest, "true")])
    error = scheduler.wait_update("twin", "TASK_ERROR", since=later)
    assert error["message"] == "Task has duplicate ID: twin"
    assert scheduler.states("twin", since=later) == ["TASK_ERROR"]


def test_task_resources_must_fit_the_offer_even_in_small_amounts(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, resources="cpus:1;mem:256")
    scheduler, driver, _ = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    too_much = command_task("big", offer, "true", resources=[scalar("mem", 257)])
    driver.launchTasks(offer["id"], [too_much])
    error = scheduler.wait_update("big", "TASK_ERROR")
    assert error["reason"] == "REASON_TASK_INVALID"
    assert error["message"] == (
        "Total resources mem(allocated: *):257 required by task and its executor is more than "
        "available cpus(allocated: *):1; mem(allocated: *):256"
    )


def test_resources_left_unused_by_an_accept_are_filtered(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    mark = scheduler.mark()
    # No filters: the unused part is refused for the default 5 s (`Master::_accept`).
    driver.launchTasks(offer["id"], [command_task("t", offer, "sleep 100", cpus=0.5, mem=64)])
    scheduler.wait_update("t", "TASK_RUNNING")
    time.sleep(0.5)
    assert scheduler.offers(since=mark) == []
    assert only(cluster.state()["slaves"])["offered_resources"]["cpus"] == 0

    driver.reviveOffers()
    rest = only(scheduler.wait_offers(1, since=mark))
    assert resources_by_name(rest["resources"]) == {
        "cpus": 1.5,
        "mem": 2048.0 - 64,
        "disk": 4096.0,
        "ports": [(31000, 31999)],
    }


# -- 8. Acknowledgements (CONFORMANCE.md: Status updates and acknowledgements) -----------------


def test_unacknowledged_update_is_resent_and_holds_back_the_next(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, status_update_retry=0.2)
    scheduler = RecordingScheduler()
    driver = harness.driver(scheduler, cluster, implicit_acknowledgements=False)
    framework_id = scheduler.wait_registered()
    offer = only(scheduler.wait_offers(1))
    driver.launchTasks(offer["id"], [command_task("t", offer, "true")])

    # TASK_STARTING comes again and again, always the same update, while the task has long
    # finished: the master knows, the scheduler is not told yet.
    copies = scheduler.wait(lambda: len(scheduler.updates("t")) >= 3 and scheduler.updates("t"))
    assert {s["state"] for s in copies} == {"TASK_STARTING"}
    assert all(s == copies[0] for s in copies)
    wait_state(cluster, lambda s: task_state(s, framework_id, "t")["state"] == "TASK_FINISHED")
    assert {s["state"] for s in scheduler.updates("t")} == {"TASK_STARTING"}

    # Acknowledging TASK_STARTING releases TASK_RUNNING, and only that.
    starting = copies[0]
    mark = scheduler.mark()
    driver.acknowledgeStatusUpdate(starting)
    running = scheduler.wait_update("t", "TASK_RUNNING", since=mark)
    assert running["uuid"] != starting["uuid"]
    # A second acknowledgement of TASK_STARTING is stale: TASK_RUNNING stays in flight.
    mark = scheduler.mark()
    driver.acknowledgeStatusUpdate(starting)
    resent = scheduler.wait(lambda: scheduler.updates("t", since=mark), what="a re-sent update")
    assert resent == [running]

    mark = scheduler.mark()
    driver.acknowledgeStatusUpdate(running)
    finished = scheduler.wait_update("t", "TASK_FINISHED", since=mark)
    assert set(scheduler.states("t", since=mark)) <= {"TASK_RUNNING", "TASK_FINISHED"}
    assert finished["message"] == "Command exited with status 0"

    # The terminal update acknowledged, the task is completed and nothing is re-sent.
    driver.acknowledgeStatusUpdate(finished)
    wait_state(
        cluster,
        lambda s: [t["id"] for t in framework_state(s, framework_id)["completed_tasks"]] == ["t"],
    )
    # A retry sent just before the agent got the acknowledgement may still come: look later.
    time.sleep(0.3)
    mark = scheduler.mark()
    time.sleep(0.6)
    assert scheduler.updates(since=mark) == []


# -- 9. Reconciliation (CONFORMANCE.md: Reconciliation) ----------------------------------------


def test_reconciliation_reports_the_latest_state_of_known_tasks(harness: Harness) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    agent_id = agent_of(offer)
    tasks = [
        command_task("one", offer, "sleep 100"),
        command_task("two", offer, "sleep 100"),
        command_task("done", offer, "true"),
    ]
    driver.launchTasks(offer["id"], tasks)
    scheduler.wait_update("one", "TASK_RUNNING")
    scheduler.wait_update("two", "TASK_RUNNING")
    scheduler.wait_update("done", "TASK_FINISHED")
    # "done" is forgotten once its terminal update is acknowledged.
    wait_state(cluster, lambda s: len(framework_state(s, framework_id)["completed_tasks"]) == 1)

    # Implicit: one update for each task the master knows.
    mark = scheduler.mark()
    driver.reconcileTasks([])
    scheduler.wait(lambda: len(scheduler.updates(since=mark)) >= 2, what="two answers")
    time.sleep(0.2)  # and no more
    answers = scheduler.updates(since=mark)
    assert sorted(s["task_id"]["value"] for s in answers) == ["one", "two"]
    for status in answers:
        assert_from_master(status)
        assert status["state"] == "TASK_RUNNING"
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["message"] == "Reconciliation: Latest task state"
        assert status["agent_id"] == {"value": agent_id}

    # Explicit: the latest state of a known task; a forgotten one is unknown.
    mark = scheduler.mark()
    driver.reconcileTasks([{"task_id": {"value": "two"}}, {"task_id": {"value": "done"}}])
    two = scheduler.wait_update("two", "TASK_RUNNING", since=mark)
    assert_from_master(two)
    assert two["reason"] == "REASON_RECONCILIATION"
    done = scheduler.wait_update("done", "TASK_LOST", since=mark)
    assert_from_master(done)
    assert done["reason"] == "REASON_RECONCILIATION"
    assert done["message"] == "Reconciliation: Task is unknown"
    time.sleep(0.2)
    assert len(scheduler.updates(since=mark)) == 2


# -- 12. Framework messages (CONFORMANCE.md: Scheduler calls and events) -----------------------


def test_framework_message_to_a_command_executor_is_accepted_and_dropped(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, _, agent_id, _ = running_task(harness)
    before = metrics(cluster).get("master/messages_framework_to_executor", 0)

    driver.sendFrameworkMessage({"value": "t"}, {"value": agent_id}, encode_data(b"hello"))
    # To an agent the master does not know: dropped by the master.
    driver.sendFrameworkMessage({"value": "t"}, {"value": "no-such-agent"}, encode_data(b"x"))
    assert metrics(cluster)["master/messages_framework_to_executor"] == before + 1

    # Nothing broke: the task runs on and the driver still works.
    assert scheduler.calls("frameworkMessage") == []
    assert task_state(cluster.state(), scheduler.framework_id() or "", "t")["state"] == (
        "TASK_RUNNING"
    )
    driver.killTask({"value": "t"})
    scheduler.wait_update("t", "TASK_KILLED")


# -- 14. Executor and task process deaths (CONFORMANCE.md: Command tasks) ----------------------


def test_killed_executor_fails_its_task_from_the_agent(harness: Harness) -> None:
    cluster, scheduler, _, framework_id, agent_id, running = running_task(harness)
    cluster.kill_executor(framework_id, "t")
    failed = scheduler.wait_update("t", "TASK_FAILED")
    assert_from_agent(failed, agent_id, "t", "SOURCE_AGENT")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["message"].startswith("Executor terminated")
    assert scheduler.states("t") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert not alive(running["container_status"]["executor_pid"])
    # Command executors end without a FAILURE event (`Master::exitedExecutor`).
    assert scheduler.calls("executorLost") == []


def test_killed_task_process_is_reported_by_its_executor(harness: Harness) -> None:
    cluster, scheduler, _, _, agent_id, _ = running_task(harness)
    cluster.kill_task_process("t")
    failed = scheduler.wait_update("t", "TASK_FAILED")
    assert_from_agent(failed, agent_id, "t", "SOURCE_EXECUTOR")
    assert failed["message"] == "Command terminated with signal Killed"
    assert "reason" not in failed
    state = wait_state(cluster, lambda s: only(s["slaves"])["used_resources"]["cpus"] == 0)
    assert only(state["slaves"])["used_resources"]["mem"] == 0
