"""UpdateFrameworkMessage in localmesos, driven by unmodified pymesos: when a framework fails
over (a new scheduler SUBSCRIBEs with its ID), or a framework a new leader recovered from its
agents subscribes, the master tells the agents (`Master::_subscribe`), and each agent resends
that framework's pending status updates at once (`Slave::updateFramework`, "immediately resend
any pending updates"), not when its retry timer next fires.

The retry timer is an hour here, so an update that waits on an agent can reach the new
scheduler only through that resend. The tests wait by polling, with timeouts; none asserts how
long anything took.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymesos import MesosSchedulerDriver

from localmesos.cluster import LocalCluster
from tests.integration.localmesos_procs import need_zookeeper
from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    command_task,
    framework_info,
    harness_fixture,
    only,
    stop_driver,
    wait_state,
)

pytestmark = pytest.mark.integration

RETRY = 3600.0  # the agents' status update retry: never fires within a test
WAIT = 30.0  # for what waits on a ZooKeeper session or an election
DELIVERY = 10.0  # the resent update, far below RETRY


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def find(frameworks: list[dict], framework_id: str) -> dict | None:
    return next((f for f in frameworks if f["id"] == framework_id), None)


def task_state(state: dict, framework_id: str, task_id: str) -> str | None:
    framework = find(state["frameworks"], framework_id) or {"tasks": []}
    return next((t["state"] for t in framework["tasks"] if t["id"] == task_id), None)


def launch_gated(
    harness: Harness, cluster: LocalCluster, gate: Path, timeout: float = 5.0
) -> tuple[RecordingScheduler, MesosSchedulerDriver, str]:
    """Subscribe without implicit acknowledgements and run task "t", which finishes once
    ``gate`` exists; TASK_STARTING and TASK_RUNNING are acknowledged, so that the agent's
    stream for "t" is empty until TASK_FINISHED."""
    scheduler = RecordingScheduler()
    driver = harness.driver(
        scheduler,
        cluster,
        framework=framework_info(failover_timeout=3600),
        implicit_acknowledgements=False,
    )
    framework_id = scheduler.wait_registered(timeout)
    offer = only(scheduler.wait_offers(1, timeout=timeout))
    command = f"while [ ! -e {gate} ]; do sleep 0.02; done"
    driver.launchTasks(offer["id"], [command_task("t", offer, command)])
    for state in ("TASK_STARTING", "TASK_RUNNING"):
        driver.acknowledgeStatusUpdate(scheduler.wait_update("t", state, timeout=timeout))
    return scheduler, driver, framework_id


def assert_resent_finished(scheduler: RecordingScheduler) -> None:
    """The new scheduler gets the agent's own TASK_FINISHED (with its uuid, not a master's
    reconciliation answer), once the resend is the only way it can come."""
    finished = scheduler.wait_update("t", "TASK_FINISHED", timeout=DELIVERY)
    assert finished["source"] == "SOURCE_EXECUTOR"
    assert "uuid" in finished
    assert "reason" not in finished or finished["reason"] != "REASON_RECONCILIATION"
    assert scheduler.states("t") == ["TASK_FINISHED"]


@pytest.mark.parametrize("links", ["local", "http"])
def test_a_failed_over_scheduler_gets_the_update_that_waited_at_once(
    harness: Harness, tmp_path: Path, links: str
) -> None:
    cluster = harness.cluster(
        agents=1, allocation_interval=0.1, status_update_retry=RETRY, links=links
    )
    gate = tmp_path / "finish"
    old, old_driver, framework_id = launch_gated(harness, cluster, gate)

    stop_driver(old_driver, failover=True)  # no TEARDOWN: the framework waits for a scheduler
    wait_state(cluster, lambda s: not find(s["frameworks"], framework_id)["connected"])
    # The task finishes while no scheduler is connected: the agent forwards TASK_FINISHED
    # once, the master records it and has nobody to give it to.
    gate.touch()
    wait_state(cluster, lambda s: task_state(s, framework_id, "t") == "TASK_FINISHED")
    assert "TASK_FINISHED" not in old.states("t")

    new = RecordingScheduler()
    harness.driver(
        new, cluster, framework=framework_info(id={"value": framework_id}, failover_timeout=3600)
    )
    new.wait(lambda: new.calls("reregistered"), what="reregistered()")
    assert_resent_finished(new)
    # Acknowledged (implicitly, by pymesos), the task is completed.
    wait_state(
        cluster,
        lambda s: (
            [t["id"] for t in find(s["frameworks"], framework_id)["completed_tasks"]] == ["t"]
        ),
    )


def test_a_recovered_framework_that_subscribes_gets_the_update_that_waited_at_once(
    harness: Harness, tmp_path: Path
) -> None:
    need_zookeeper()
    cluster = harness.cluster(agents=1, masters=2, status_update_retry=RETRY)
    gate = tmp_path / "finish"
    _, old_driver, framework_id = launch_gated(harness, cluster, gate, timeout=WAIT)
    stop_driver(old_driver, failover=True)

    # A new leader learns of the framework from the reregistering agent: RECOVERED.
    cluster.kill_master()
    cluster.wait_for_leader(WAIT)
    wait_state(
        cluster,
        lambda s: (
            (find(s["frameworks"], framework_id) or {}).get("recovered")
            and task_state(s, framework_id, "t") == "TASK_RUNNING"
        ),
        WAIT,
    )
    # The task finishes now: TASK_FINISHED goes once to the new leader, which records it.
    gate.touch()
    wait_state(cluster, lambda s: task_state(s, framework_id, "t") == "TASK_FINISHED", WAIT)

    new = RecordingScheduler()
    harness.driver(
        new, cluster, framework=framework_info(id={"value": framework_id}, failover_timeout=3600)
    )
    new.wait(lambda: new.calls("reregistered"), WAIT, "reregistered()")
    assert_resent_finished(new)
