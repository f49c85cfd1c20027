"""An agent's disk: a work directory that refuses a sandbox fails the task and wedges nothing,
and sandboxes are garbage-collected as Mesos's agent collects them (after --gc_delay, sooner
when the disk fills), then no longer served by /files. localmesos/CONFORMANCE.md cites the
Mesos sources ("Disk faults and sandbox GC")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from localmesos.cluster import LocalCluster
from tests.integration.localmesos_procs import Subscription
from tests.reliability.support import agent_state, browse, get, run_task, sandboxes

pytestmark = pytest.mark.integration

RESOURCES = "cpus:1;mem:512;disk:1024;ports:[31000-31099]"


def agent_metrics(cluster: LocalCluster, agent_id: str) -> dict:
    status, body = get(cluster.agent_url(agent_id) + "/metrics/snapshot")
    assert status == 200
    return json.loads(body)


@pytest.fixture
def subscription_factory() -> Iterator[list[Subscription]]:
    opened: list[Subscription] = []
    yield opened
    for subscription in opened:
        subscription.close()


def subscribe(cluster: LocalCluster, opened: list[Subscription], name: str) -> Subscription:
    subscription = Subscription(cluster.master, name=name, timeout=30)
    opened.append(subscription)
    return subscription


def run_executor_task(scheduler: Subscription, task_id: str, executor_id: str) -> dict:
    """One task for an executor of the framework's own (it would never start: `sleep`)."""
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
    ]
    while (event := scheduler.next_event())["type"] != "OFFERS":
        if event["type"] == "UPDATE":
            scheduler.acknowledge(event["update"]["status"])
    offer = event["offers"]["offers"][0]
    task = {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": resources,
        "executor": {
            "executor_id": {"value": executor_id},
            "command": {"value": "sleep 30"},
            "resources": resources,
        },
    }
    accept = {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
        "filters": {"refuse_seconds": 0},
    }
    assert scheduler.call("ACCEPT", accept=accept) == 202
    while True:
        event = scheduler.next_event()
        if event["type"] == "UPDATE":
            status = event["update"]["status"]
            scheduler.acknowledge(status)
            if status["task_id"]["value"] == task_id:
                return status


def test_an_unwritable_work_dir_fails_the_task_and_the_agent_recovers(
    tmp_path: Path, subscription_factory: list[Subscription]
) -> None:
    """The agent's frameworks directory becomes a file (which stops root too): the next task's
    sandbox cannot be made, and the task ends at once as `Slave::__run` ends it when
    `Framework::addExecutor` fails (TASK_LOST for a framework that is not PARTITION_AWARE,
    REASON_EXECUTOR_TERMINATED, the message of slave/paths.cpp), its resources come back, and
    once the directory is back the next task runs."""
    with LocalCluster(1, resources=RESOURCES, allocation_interval=0.05, work_dir=tmp_path) as c:
        (agent_id,) = c.agents
        scheduler = subscribe(c, subscription_factory, "disk")
        assert run_task(scheduler, "before", "true")["state"] == "TASK_FINISHED"

        frameworks = tmp_path / "slaves" / agent_id / "frameworks"
        frameworks.rename(tmp_path / "frameworks.saved")
        frameworks.write_text("not a directory\n")
        lost = run_task(scheduler, "broken", "true")
        assert lost["state"] == "TASK_LOST", lost
        assert lost["source"] == "SOURCE_AGENT"
        assert lost["reason"] == "REASON_EXECUTOR_TERMINATED"
        assert lost["message"].startswith("Failed to create executor directory '")
        assert lost["message"].endswith("': Failed to create directory: Not a directory")
        assert lost["executor_id"] == {"value": "broken"}
        # A task for a framework's own executor: the same, and its executor's end reported.
        lost = run_executor_task(scheduler, "custom", "its-executor")
        assert (lost["state"], lost["reason"]) == ("TASK_LOST", "REASON_EXECUTOR_TERMINATED")
        assert lost["executor_id"] == {"value": "its-executor"}
        assert lost["message"].endswith("': Failed to create directory: Not a directory")

        # Nothing stays in STAGING, and the master has the resources back.
        def settled(state: dict) -> bool:
            (agent,) = state["slaves"]
            return agent["used_resources"]["cpus"] == 0 and not any(
                t["state"] == "TASK_STAGING" for f in state["frameworks"] for t in f["tasks"]
            )

        c.wait_for(settled)
        assert agent_metrics(c, agent_id)["slave/tasks_staging"] == 0

        frameworks.unlink()
        (tmp_path / "frameworks.saved").rename(frameworks)
        assert run_task(scheduler, "after", "echo back")["state"] == "TASK_FINISHED"
        c.wait_for(settled)


def test_a_sandbox_goes_after_the_gc_delay_and_leaves_files(
    tmp_path: Path, subscription_factory: list[Subscription]
) -> None:
    """`Slave::removeExecutor` schedules the run's directory (and the executor's) for removal
    --gc_delay after it ended; once removed, /files no longer serves its real or virtual
    path (`detachFile`), while /state keeps the completed executor, as Mesos's does."""
    with LocalCluster(
        1, resources=RESOURCES, allocation_interval=0.05, work_dir=tmp_path, gc_delay=0.5
    ) as c:
        (agent_id,) = c.agents
        scheduler = subscribe(c, subscription_factory, "gc")
        finished = run_task(scheduler, "short", "echo hello")
        assert finished["state"] == "TASK_FINISHED"
        framework_id = scheduler.framework_id
        (directory,) = sandboxes(agent_state(c, agent_id))
        virtual = f"/frameworks/{framework_id}/executors/short/runs/latest"
        # The run's directory goes, then the executor's (each has its own removal time).
        c.wait_for(lambda _: not directory.parent.parent.exists(), timeout=30)
        assert browse(c, agent_id, str(directory)) == 404
        assert browse(c, agent_id, virtual) == 404
        assert sandboxes(agent_state(c, agent_id)) == [directory]
        assert agent_metrics(c, agent_id)["gc/path_removals_succeeded"] >= 2


def test_sandboxes_go_sooner_when_the_disk_fills(
    tmp_path: Path, subscription_factory: list[Subscription]
) -> None:
    """Every --disk_watch_interval the agent allows sandboxes an age of
    gc_delay * max(0, 1 - gc_disk_headroom - usage) and prunes older ones at once
    (`Slave::_checkDiskUsage`). The disk usage is faked: 50% keeps an hour-long delay's
    sandboxes; 95% (over 1 - headroom) removes them."""
    usage = {"value": 0.5}
    with LocalCluster(
        1,
        resources=RESOURCES,
        allocation_interval=0.05,
        work_dir=tmp_path,
        gc_delay=3600,
        gc_disk_headroom=0.1,
        disk_watch_interval=0.05,
        disk_usage=lambda path: usage["value"],
    ) as c:
        (agent_id,) = c.agents
        scheduler = subscribe(c, subscription_factory, "headroom")
        assert run_task(scheduler, "kept", "true")["state"] == "TASK_FINISHED"
        (directory,) = sandboxes(agent_state(c, agent_id))
        age = "slave/executor_directory_max_allowed_age_secs"
        c.wait_for(lambda _: agent_metrics(c, agent_id)[age] == pytest.approx(1440))
        # The agent has pruned with that age at least once since: a younger sandbox stays.
        c.wait_for(lambda _: agent_metrics(c, agent_id)["gc/path_removals_pending"] >= 2)
        assert directory.is_dir()
        assert browse(c, agent_id, str(directory)) == 200

        usage["value"] = 0.95
        c.wait_for(lambda _: not directory.exists(), timeout=30)
        assert agent_metrics(c, agent_id)[age] == 0
        assert browse(c, agent_id, str(directory)) == 404
