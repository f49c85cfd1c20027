"""Unmodified pymesos against LocalCluster: a scheduler that disconnects, fails over, times out
or tears down, and an agent that dies. What Mesos does, with its sources, is in
localmesos/CONFORMANCE.md; the section headers below name its parts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymesos import MesosSchedulerDriver

from localmesos.cluster import LocalCluster
from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    alive,
    command_task,
    framework_info,
    harness_fixture,
    only,
    stop_driver,
    wait_state,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def agent_of(offer: dict) -> str:
    return offer["agent_id"]["value"]


def find(frameworks: list[dict], framework_id: str) -> dict | None:
    return next((f for f in frameworks if f["id"] == framework_id), None)


def launch_sleeper(
    harness: Harness, cluster: LocalCluster, framework: dict
) -> tuple[RecordingScheduler, MesosSchedulerDriver, str, int]:
    """Subscribe and run task "t" (`sleep 100`); returns the scheduler, driver, framework ID
    and the task's process ID."""
    scheduler, driver, framework_id = harness.subscribe(cluster, framework)
    offer = only(scheduler.wait_offers(1))
    driver.launchTasks(offer["id"], [command_task("t", offer, "sleep 100")])
    running = scheduler.wait_update("t", "TASK_RUNNING")
    pid = running["container_status"]["executor_pid"]
    assert alive(pid)
    return scheduler, driver, framework_id, pid


# -- 10. Disconnection, failover, failover timeout and TEARDOWN (CONFORMANCE.md: Frameworks) ----


def test_failed_over_scheduler_reregisters_and_finds_its_task_running(harness: Harness) -> None:
    cluster = harness.cluster(agents=1)
    _, old_driver, framework_id, pid = launch_sleeper(
        harness, cluster, framework_info(failover_timeout=30)
    )

    stop_driver(old_driver, failover=True)  # the stream closes; no TEARDOWN
    state = wait_state(cluster, lambda s: not find(s["frameworks"], framework_id)["connected"])
    framework = find(state["frameworks"], framework_id)
    assert framework is not None
    assert framework["active"] is False
    assert [(t["id"], t["state"]) for t in framework["tasks"]] == [("t", "TASK_RUNNING")]
    assert state["completed_frameworks"] == []
    assert alive(pid)

    new = RecordingScheduler()
    new_driver = harness.driver(
        new, cluster, framework=framework_info(id={"value": framework_id}, failover_timeout=30)
    )
    new.wait(lambda: new.calls("reregistered"), what="reregistered()")
    assert new.calls("registered") == []
    state = cluster.state()
    framework = find(state["frameworks"], framework_id)
    assert framework is not None
    assert framework["connected"] is True
    assert framework["active"] is True
    assert [(t["id"], t["state"]) for t in framework["tasks"]] == [("t", "TASK_RUNNING")]
    assert alive(pid)

    # The task is the new driver's to manage.
    new_driver.reconcileTasks([{"task_id": {"value": "t"}}])
    assert new.wait_update("t", "TASK_RUNNING")["reason"] == "REASON_RECONCILIATION"
    new_driver.killTask({"value": "t"})
    new.wait_update("t", "TASK_KILLED")
    wait_until(lambda: not alive(pid), what="the task's process to end")


def test_expired_failover_timeout_removes_the_framework_and_kills_its_tasks(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1)
    _, driver, framework_id, pid = launch_sleeper(
        harness, cluster, framework_info(failover_timeout=0.5)
    )
    stop_driver(driver, failover=True)

    state = wait_state(cluster, lambda s: find(s["completed_frameworks"], framework_id))
    assert find(state["frameworks"], framework_id) is None
    framework = find(state["completed_frameworks"], framework_id)
    assert framework is not None
    assert framework["active"] is False
    assert framework["connected"] is False
    assert framework["tasks"] == []
    assert [(t["id"], t["state"]) for t in framework["completed_tasks"]] == [("t", "TASK_KILLED")]
    wait_until(lambda: not alive(pid), what="the task's process to be killed")
    wait_state(cluster, lambda s: only(s["slaves"])["used_resources"]["cpus"] == 0)

    # The ID cannot come back: a refusal after parsing is one ERROR event.
    late = RecordingScheduler()
    harness.driver(
        late, cluster, framework=framework_info(id={"value": framework_id}, failover_timeout=30)
    )
    late.wait(late.errors, what="error()")
    assert late.errors() == ["Framework has been removed"]
    assert late.calls("registered") == []
    assert late.calls("reregistered") == []
    assert cluster.state()["frameworks"] == []


def test_stop_tears_the_framework_down_with_its_tasks(harness: Harness) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, driver, framework_id, pid = launch_sleeper(harness, cluster, framework_info())

    stop_driver(driver)  # failover=False: pymesos sends TEARDOWN
    state = wait_state(cluster, lambda s: find(s["completed_frameworks"], framework_id))
    assert state["frameworks"] == []
    framework = find(state["completed_frameworks"], framework_id)
    assert framework is not None
    assert [(t["id"], t["state"]) for t in framework["completed_tasks"]] == [("t", "TASK_KILLED")]
    wait_until(lambda: not alive(pid), what="the task's process to be killed")
    wait_state(cluster, lambda s: only(s["slaves"])["used_resources"]["cpus"] == 0)
    # No update reaches a framework that is gone.
    assert scheduler.states("t") == ["TASK_STARTING", "TASK_RUNNING"]


# -- 11. Agent loss (CONFORMANCE.md: Agent loss and partitions) ---------------------------------


def test_lost_agent_rescinds_its_offers_loses_its_tasks_and_is_reported(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05, agent_timeout=0.5)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    agent_id = agent_of(offer)

    # A task on half the agent; the other half is offered again and left unanswered.
    mark = scheduler.mark()
    task = command_task("t", offer, "sleep 100", cpus=1, mem=1024)
    driver.launchTasks(offer["id"], [task], filters={"refuse_seconds": 0})
    pid = scheduler.wait_update("t", "TASK_RUNNING")["container_status"]["executor_pid"]
    outstanding = only(scheduler.wait_offers(1, since=mark))
    assert agent_of(outstanding) == agent_id

    mark = scheduler.mark()
    cluster.kill_host(agent_id)
    scheduler.wait(lambda: scheduler.calls("slaveLost", mark), what="slaveLost()")
    wait_until(lambda: not alive(pid), what="the task to die with its agent")

    (lost_agent,) = only(scheduler.calls("slaveLost", mark)).args
    assert lost_agent == {"value": agent_id}
    (rescinded,) = only(scheduler.calls("offerRescinded", mark)).args
    assert rescinded == outstanding["id"]
    lost = only(scheduler.updates("t", since=mark))
    assert lost["state"] == "TASK_LOST"
    assert lost["reason"] == "REASON_AGENT_REMOVED"
    assert lost["source"] == "SOURCE_MASTER"
    assert lost["agent_id"] == {"value": agent_id}
    assert "uuid" not in lost
    # In Mesos's order: the tasks' updates, RESCIND, then FAILURE (`Master::__removeSlave`).
    assert [c.name for c in scheduler.calls(since=mark) if c.name != "processHeartBeat"] == [
        "statusUpdate",
        "offerRescinded",
        "slaveLost",
    ]

    state = cluster.state()
    assert state["slaves"] == []
    framework = find(state["frameworks"], framework_id)
    assert framework is not None
    assert framework["tasks"] == []
    assert [(t["id"], t["state"]) for t in framework["unreachable_tasks"]] == [("t", "TASK_LOST")]

    # A new agent is offered straight away.
    mark = scheduler.mark()
    new_agent = cluster.add_agent()
    assert agent_of(only(scheduler.wait_offers(1, since=mark))) == new_agent
    assert [a["id"] for a in cluster.state()["slaves"]] == [new_agent]
