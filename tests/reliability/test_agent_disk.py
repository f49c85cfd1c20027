"""An agent's disk: a work directory that refuses a sandbox fails the task and wedges nothing,
and sandboxes are garbage-collected as Mesos's agent collects them (after --gc_delay, sooner
when the disk fills), then no longer served by /files. localmesos/CONFORMANCE.md cites the
Mesos sources ("Disk faults and sandbox GC")."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localmesos.agent import checkpoint
from localmesos.cluster import LocalCluster
from tests.integration import raw_http as rh
from tests.integration.localmesos_procs import Subscription
from tests.integration.test_localmesos_executor import echo_executor, executor_task
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


def test_a_checkpoint_the_disk_refuses_costs_its_task_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A framework that checkpoints, on a disk that refuses some of its checkpoints (the
    writes fail as a full disk fails them). A task whose own checkpoint fails is lost, and
    nothing else: the executor it was for keeps running, and the master keeps counting it
    (told that it exited, the master would offer its resources again and tell the scheduler
    of a FAILURE); an executor launched for that task alone is shut down rather than left
    running with no task. A forked pid that cannot be written is logged and the task runs,
    as an update record that cannot be written (CONFORMANCE.md, "A disk that refuses a
    checkpoint does not abort the agent")."""
    refused_tasks: set[str] = set()  # whose task.info the disk refuses
    refused_pids: set[str] = set()  # executors whose forked.pid the disk refuses
    real_write_text = checkpoint.write_text

    def write_text(path: Path, text: str) -> None:
        if (path.name == "task.info" and path.parent.name in refused_tasks) or (
            path.name == "forked.pid" and refused_pids & set(path.parts)
        ):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write_text(path, text)

    monkeypatch.setattr(checkpoint, "write_text", write_text)
    caplog.set_level(logging.ERROR, "localmesos")
    terminal = {"TASK_FINISHED", "TASK_FAILED", "TASK_LOST", "TASK_KILLED", "TASK_ERROR"}
    with (
        LocalCluster(1, resources=RESOURCES, allocation_interval=0.05, work_dir=tmp_path) as c,
        rh.subscribe(c.master, rh.framework_info(name="checkpoints", checkpoint=True)) as sub,
    ):
        (agent_id,) = c.agents

        offers: list[dict] = []
        failures: list[dict] = []  # FAILURE events: an executor said to have exited

        def launch(make: Callable[[dict], dict], until: set[str]) -> dict:
            """Launch a task on the next offer that holds it and a new executor; its first
            update in ``until``. Offers that come meanwhile are kept for the next launch, and
            a smaller one (what an ending executor left, on a loaded machine) is declined, so
            that the allocator offers it again with what is freed next; every update is
            acknowledged."""
            task_id = None
            while True:
                if task_id is None and offers:
                    offer = offers.pop(0)
                    if rh.offered(offer, "cpus") < 0.2 - 1e-9 or rh.offered(offer, "mem") < 64:
                        rh.decline(sub, offer)
                        continue
                    task = make(offer)
                    task_id = task["task_id"]["value"]
                    rh.accept_launch(sub, offer, task)
                event = sub.stream.next_event()
                assert event is not None, "the stream ended"
                if event["type"] == "OFFERS":
                    offers.extend(event["offers"]["offers"])
                elif event["type"] == "FAILURE":
                    failures.append(event["failure"])
                elif event["type"] == "UPDATE":
                    status = event["update"]["status"]
                    if "uuid" in status:
                        assert sub.acknowledge(status).status == 202
                    if status["task_id"]["value"] == task_id and status["state"] in until:
                        return status

        kept = echo_executor("kept")
        held = launch(lambda o: executor_task("held", o, kept, "hold"), {"TASK_RUNNING"})
        assert held["state"] == "TASK_RUNNING", held
        refused_tasks.update({"refused-on-kept", "refused-on-new"})
        lost = launch(lambda o: executor_task("refused-on-kept", o, kept), terminal)
        assert (lost["state"], lost["reason"]) == ("TASK_LOST", "REASON_EXECUTOR_TERMINATED")
        assert lost["message"] == f"Failed to checkpoint: [Errno 28] {os.strerror(errno.ENOSPC)}"
        new = echo_executor("new", grace=0.2)
        lost = launch(lambda o: executor_task("refused-on-new", o, new), terminal)
        assert (lost["state"], lost["reason"]) == ("TASK_LOST", "REASON_EXECUTOR_TERMINATED")

        refused_pids.update({"unrecorded", "unrecorded-executor"})
        finished = launch(
            lambda o: rh.command_task("unrecorded", o["agent_id"]["value"], "true"), terminal
        )
        assert finished["state"] == "TASK_FINISHED", finished
        unrecorded = echo_executor("unrecorded-executor")
        finished = launch(lambda o: executor_task("by-unrecorded", o, unrecorded), terminal)
        assert finished["state"] == "TASK_FINISHED", finished

        # Every message of the agent's about the tasks above has reached the master by now.
        # (the one launched for the refused task alone may have ended already: see below)
        assert {f["executor_id"]["value"] for f in failures} <= {"new"}, failures
        (framework,) = c.state()["frameworks"]
        assert {"kept", "unrecorded-executor"} <= {e["executor_id"] for e in framework["executors"]}
        assert {t["id"]: t["state"] for t in framework["tasks"]}["held"] == "TASK_RUNNING"
        unlogged = [
            e for e in refused_pids if f"pid of executor {e}: [Errno 28]" not in caplog.text
        ]
        assert not unlogged, unlogged

        # The executor launched for the refused task alone goes; the others stay.
        def executors(state: dict, key: str) -> set[str]:
            (f,) = state["frameworks"]
            return {e[key] for e in f["executors"]}

        c.wait_for(
            lambda _: executors(agent_state(c, agent_id), "id") == {"kept", "unrecorded-executor"}
        )
        c.wait_for(lambda s: executors(s, "executor_id") == {"kept", "unrecorded-executor"})
