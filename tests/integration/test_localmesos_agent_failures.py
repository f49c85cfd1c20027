"""Agents that fail as Mesos agents do, on LocalCluster, with the unmodified pymesos drivers
(scheduler, and `echo_executor.py` as executor) and, where pymesos cannot show a behaviour, the
APIs spoken by hand:

- `kill_agent`: the agent's process dies. The master hears of it at once (`Master::exited`):
  frameworks that do not checkpoint lose their tasks there (TASK_LOST,
  REASON_AGENT_DISCONNECTED) and their executors end; frameworks that checkpoint keep theirs
  until the agent comes back or the health checks give up on it.
- `restart_agent`: the process dies and starts again, recovering from its work directory
  (`Slave::recover`): executors of frameworks that checkpoint subscribe again and carry on,
  updates not acknowledged go out again, and the agent reregisters as the agent it was.
- `kill_host` and `partition_agent` (silence) are tested where they were before:
  test_localmesos_lifecycle.py and test_localmesos_ha.py.

What Mesos does, with its sources, is in localmesos/CONFORMANCE.md ("Agent failures and
recovery").
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver

from localmesos.agent.checkpoint import agent_dir, current_boot_id, executor_dir
from localmesos.cluster import LocalCluster
from localmesos.processes import start_time
from tests.integration import raw_http as rh
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
from tests.integration.test_localmesos_executor import (
    EXECUTOR_PATH,
    agent_address,
    agent_executor,
    container_of,
    echo_executor,
    encode,
    executor_task,
    launch,
    pid_of,
    quiet_executor,
    run_directory,
    subscribe_call,
    update_call,
    wait_gone,
    wait_logged,
)

pytestmark = pytest.mark.integration

PARTITION_AWARE = [{"type": "PARTITION_AWARE"}]
RECOVERY_WAIT = 20.0  # seconds: a restart waits executor_reregistration_timeout, then more


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def start(
    harness: Harness, framework: dict, **options: Any
) -> tuple[LocalCluster, RecordingScheduler, MesosSchedulerDriver, str, dict]:
    """A one-agent cluster and a registered pymesos framework, and its first offer."""
    cluster = harness.cluster(agents=1, allocation_interval=0.05, **options)
    scheduler, driver, framework_id = harness.subscribe(cluster, framework)
    return cluster, scheduler, driver, framework_id, only(scheduler.wait_offers(1))


def running(scheduler: RecordingScheduler, task_id: str) -> dict:
    return scheduler.wait_update(task_id, "TASK_RUNNING", timeout=10)


def agent_of(offer: dict) -> str:
    return offer["agent_id"]["value"]


def slave(state: dict, agent_id: str) -> dict | None:
    return next((s for s in state["slaves"] if s["id"] == agent_id), None)


def metrics(cluster: LocalCluster) -> dict:
    return rh.get(cluster.leader, "/metrics/snapshot").json()


def tasks_of(state: dict, framework_id: str, key: str = "tasks") -> list[tuple[str, str]]:
    framework = only([f for f in state["frameworks"] if f["id"] == framework_id])
    return sorted((t["id"], t["state"]) for t in framework[key])


def read_records(path: Path) -> list[dict]:
    """A task.updates file: one JSON record per line."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stream_of(records: list[dict]) -> list[tuple[str, str]]:
    """(state, uuid) of each UPDATE in order, checking that the ACKs acknowledge them in
    order, each after its UPDATE."""
    updates = [
        (r["update"]["state"], r["update"]["uuid"]) for r in records if r["type"] == "UPDATE"
    ]
    acks = [r["uuid"] for r in records if r["type"] == "ACK"]
    assert acks == [uuid for _, uuid in updates][: len(acks)], records
    for ack in acks:
        position = records.index({"type": "ACK", "uuid": ack})
        assert any(r.get("update", {}).get("uuid") == ack for r in records[:position]), records
    return updates


def get_or_none(address: str, path: str) -> rh.Reply | None:
    """GET, or None while nothing answers (an agent between its death and its restart)."""
    try:
        return rh.get(address, path)
    except (OSError, rh.ProtocolError):
        return None


# -- kill_agent: the process dies ---------------------------------------------------------------


def test_kill_agent_loses_the_tasks_of_a_framework_that_does_not_checkpoint_at_once(
    harness: Harness,
) -> None:
    # PARTITION_AWARE changes nothing here: it is TASK_LOST all the same (`Master::exited`).
    cluster, scheduler, driver, framework_id, offer = start(
        harness, framework_info(capabilities=PARTITION_AWARE), agent_timeout=3.0
    )
    agent_id = agent_of(offer)
    mark = scheduler.mark()
    launch(
        driver,
        offer,
        [
            command_task("c", offer, "sleep 100"),
            executor_task("e", offer, echo_executor(), "hold"),
        ],
    )
    command_pid = pid_of(running(scheduler, "c"))
    executor_pid = pid_of(running(scheduler, "e"))
    # What is left of the agent is offered again, and left unanswered.
    outstanding = only(scheduler.wait_offers(1, since=mark))

    mark = scheduler.mark()
    cluster.kill_agent(agent_id)
    lost = {task_id: scheduler.wait_update(task_id, "TASK_LOST", since=mark) for task_id in "ce"}
    for status in lost.values():
        assert status["source"] == "SOURCE_MASTER"
        assert status["reason"] == "REASON_AGENT_DISCONNECTED"
        assert status["message"] == "Agent localhost disconnected"
        assert status["agent_id"] == {"value": agent_id}
        assert "uuid" not in status
    assert "executor_id" not in lost["c"]  # the master knows no executor for a command task
    assert lost["e"]["executor_id"] == {"value": "echo"}
    # RESCIND first, from the agent's deactivation; then the updates (`Master::exited`).
    assert scheduler.calls("offerRescinded", mark)[0].args[0] == outstanding["id"]
    names = [c.name for c in scheduler.calls(since=mark) if c.name != "processHeartBeat"]
    assert names[:3] == ["offerRescinded", "statusUpdate", "statusUpdate"]
    assert "executorLost" not in names  # executors are forgotten without a FAILURE

    # The executor library of a framework that does not checkpoint ends its executor.
    wait_gone(executor_pid)
    wait_gone(command_pid)

    # The agent is still registered, disconnected and inactive, until its health checks fail.
    state = cluster.state()
    assert slave(state, agent_id)["active"] is False
    assert state["deactivated_slaves"] == 1.0
    assert tasks_of(state, framework_id) == []
    assert tasks_of(state, framework_id, "completed_tasks") == [
        ("c", "TASK_LOST"),
        ("e", "TASK_LOST"),
    ]
    snapshot = metrics(cluster)
    assert snapshot["master/tasks_lost"] == 2
    assert snapshot["master/slaves_disconnected"] == 1
    assert snapshot["master/slaves_inactive"] == 1
    assert snapshot["master/slaves_connected"] == 0

    # Then its health checks fail: FAILURE, and nothing more about its tasks.
    scheduler.wait(lambda: scheduler.calls("slaveLost", mark), timeout=10, what="slaveLost()")
    assert sorted(s["task_id"]["value"] for s in scheduler.updates(since=mark)) == ["c", "e"]
    assert metrics(cluster)["master/slaves_unreachable"] == 1


def test_kill_agent_leaves_a_checkpointing_framework_its_tasks_until_the_health_checks_fail(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, framework_id, offer = start(
        harness,
        framework_info(checkpoint=True, capabilities=PARTITION_AWARE),
        agent_timeout=1.0,
    )
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("e", offer, echo_executor(), "hold")])
    executor_pid = pid_of(running(scheduler, "e"))

    mark = scheduler.mark()
    cluster.kill_agent(agent_id)
    # At once: the agent is inactive, its task still TASK_RUNNING at the master.
    state = wait_state(cluster, lambda s: (slave(s, agent_id) or {}).get("active") is False)
    assert tasks_of(state, framework_id) == [("e", "TASK_RUNNING")]
    assert metrics(cluster)["master/slaves_disconnected"] == 1

    # Nothing is said until the health checks give up on the agent.
    scheduler.wait(lambda: scheduler.calls("slaveLost", mark), timeout=10, what="slaveLost()")
    unreachable = only(scheduler.updates("e", since=mark))
    assert unreachable["state"] == "TASK_UNREACHABLE"
    assert unreachable["reason"] == "REASON_AGENT_REMOVED"
    assert unreachable["message"] == "health check timed out"
    quiet = ("processHeartBeat", "offerRescinded", "resourceOffers")
    assert [c.name for c in scheduler.calls(since=mark) if c.name not in quiet] == [
        "statusUpdate",
        "slaveLost",
    ]
    # The executor waits for its agent all along (pymesos's does whatever happens): only
    # stopping the cluster ends it, and nothing is left then.
    assert alive(executor_pid)
    cluster.stop()
    wait_gone(executor_pid)


def test_kill_agent_over_http_links_is_heard_at_once_and_the_agent_restarts(
    harness: Harness,
) -> None:
    """Between processes the master watches each agent with a GET on its /link, which ends
    when the agent's process does: libprocess's socket closing."""
    cluster, scheduler, driver, _, offer = start(
        harness, framework_info(), links="http", agent_timeout=30.0
    )
    agent_id = agent_of(offer)
    launch(driver, offer, [command_task("c", offer, "sleep 100")])
    running(scheduler, "c")
    mark = scheduler.mark()
    cluster.kill_agent(agent_id)
    lost = scheduler.wait_update("c", "TASK_LOST", since=mark)
    assert lost["reason"] == "REASON_AGENT_DISCONNECTED"
    assert not scheduler.calls("slaveLost", mark)  # 30 s of health checks are far off

    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    state = wait_state(cluster, lambda s: slave(s, agent_id)["active"] is True)
    assert state["deactivated_slaves"] == 0.0
    assert scheduler.wait_offers(1, since=mark, agent_id=agent_id)


# -- restart_agent: the process dies and comes back ----------------------------------------------


def test_restart_agent_keeps_a_checkpointing_framework_executor_and_its_task(
    harness: Harness,
) -> None:
    # agent_timeout shorter than the restart: only pongs during recovery keep the agent.
    cluster, scheduler, driver, framework_id, offer = start(
        harness,
        framework_info(checkpoint=True, capabilities=PARTITION_AWARE),
        agent_timeout=1.0,
    )
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("e", offer, echo_executor(), "hold")])
    first = running(scheduler, "e")
    executor_pid = pid_of(first)
    started = start_time(executor_pid)
    sandbox = run_directory(cluster, framework_id, agent_id, "echo", container_of(first))
    # pymesos acknowledges after the callback: wait until the agent has the acknowledgement,
    # or it would (rightly) send TASK_RUNNING again after the restart.
    updates = executor_dir(cluster.work_dir, agent_id, framework_id, "echo") / (
        f"runs/{container_of(first)}/tasks/e/task.updates"
    )
    wait_until(lambda: [r["type"] for r in read_records(updates)] == ["UPDATE", "ACK"])

    mark = scheduler.mark()
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id

    # The same process, which subscribed again, and the same agent, known and active.
    assert alive(executor_pid) and start_time(executor_pid) == started
    wait_logged(sandbox, f"reregistered on agent {agent_id}")
    state = wait_state(cluster, lambda s: slave(s, agent_id)["active"] is True)
    assert cluster.agents == [agent_id]
    assert tasks_of(state, framework_id) == [("e", "TASK_RUNNING")]
    assert state["unreachable_slaves"] == 0.0
    executor = agent_executor(cluster, agent_id, framework_id, "echo")
    assert [(t["id"], t["state"]) for t in executor["tasks"]] == [("e", "TASK_RUNNING")]
    # Frameworks hear nothing of a restart: their tasks never changed state.
    assert not scheduler.calls("slaveLost", mark)
    assert scheduler.updates("e", since=mark) == []

    # The task carries on, and its end reaches the scheduler.
    driver.sendFrameworkMessage({"value": "echo"}, {"value": agent_id}, encode({"finish": "e"}))
    finished = scheduler.wait_update("e", "TASK_FINISHED", since=mark, timeout=10)
    assert finished["container_status"]["executor_pid"] == executor_pid

    # No process outlives the cluster, adopted ones included.
    cluster.stop()
    wait_gone(executor_pid)


def test_an_executor_of_a_framework_removed_while_its_agent_was_down_is_shut_down(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, _, offer = start(
        harness, framework_info(checkpoint=True), agent_timeout=30.0
    )
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("e", offer, echo_executor(), "hold")])
    pid = pid_of(running(scheduler, "e"))
    cluster.kill_agent(agent_id)
    stop_driver(driver)  # TEARDOWN, which the dead agent cannot hear
    wait_state(cluster, lambda s: not s["frameworks"])
    assert alive(pid)
    # Back, the agent reports the framework's task; the master has it as completed and has
    # the agent shut the framework down (`Master::reconcileKnownSlave`).
    cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT)
    wait_gone(pid, timeout=10)


def test_restart_agent_sends_again_an_update_the_scheduler_did_not_acknowledge(
    harness: Harness,
) -> None:
    cluster = harness.cluster(
        agents=1, allocation_interval=0.05, executor_reregistration_timeout=1.0
    )
    with rh.subscribe(cluster.master, rh.framework_info(checkpoint=True)) as sub:
        offer = sub.stream.wait_for(lambda e: e["type"] == "OFFERS")["offers"]["offers"][0]
        agent_id = agent_of(offer)
        task = rh.command_task("c", agent_id, "sleep 100")
        accept = {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
            },
        }
        assert sub.call(accept).status == 202

        def update(state: str) -> dict:
            return sub.stream.wait_for(
                lambda e: e["type"] == "UPDATE" and e["update"]["status"]["state"] == state
            )["update"]["status"]

        starting = update("TASK_STARTING")
        assert sub.acknowledge(starting).status == 202
        first = update("TASK_RUNNING")  # and never acknowledged
        pid = first["container_status"]["executor_pid"]

        assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
        again = update("TASK_RUNNING")
        assert again["uuid"] == first["uuid"]
        assert again["container_status"]["executor_pid"] == pid and alive(pid)
        assert sub.acknowledge(again).status == 202

        # The stream as checkpointed: both updates, then the one acknowledgement of each.
        container = first["container_status"]["container_id"]["value"]
        updates = (
            executor_dir(cluster.work_dir, agent_id, sub.framework_id, "c")
            / f"runs/{container}/tasks/c/task.updates"
        )
        records = wait_until(lambda: (r := read_records(updates)) and len(r) == 4 and r)
        assert stream_of(records) == [
            ("TASK_STARTING", starting["uuid"]),
            ("TASK_RUNNING", first["uuid"]),
        ]


def test_restart_agent_ends_the_executors_of_a_framework_that_does_not_checkpoint(
    harness: Harness,
) -> None:
    cluster, scheduler, driver, framework_id, offer = start(
        harness, framework_info(), executor_reregistration_timeout=1.0
    )
    agent_id = agent_of(offer)
    launch(
        driver,
        offer,
        [
            command_task("c", offer, "sleep 100"),
            executor_task("e", offer, echo_executor(), "hold"),
        ],
    )
    pids = [pid_of(running(scheduler, task_id)) for task_id in "ce"]
    mark = scheduler.mark()
    assert cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT) == agent_id
    for pid in pids:
        wait_gone(pid)
    # The master reported them when the agent disconnected, and that is all: nothing of this
    # framework was checkpointed, so the agent that comes back knows nothing of them.
    for task_id in "ce":
        status = only(scheduler.updates(task_id, since=mark))
        assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_AGENT_DISCONNECTED")
    assert not (agent_dir(cluster.work_dir, agent_id) / "frameworks").exists()
    # The same agent again, active, and offered.
    state = wait_state(cluster, lambda s: slave(s, agent_id)["active"] is True)
    assert tasks_of(state, framework_id) == []
    assert scheduler.wait_offers(1, since=mark, agent_id=agent_id, timeout=10)
    assert not scheduler.calls("slaveLost", mark)


def test_the_meta_directory_holds_what_mesos_checkpoints(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(
        harness, framework_info(checkpoint=True)
    )
    agent_id = agent_of(offer)
    launch(
        driver,
        offer,
        [
            executor_task("e", offer, echo_executor(), "finish"),
            command_task("c", offer, "sleep 100"),
        ],
    )
    finished = scheduler.wait_update("e", "TASK_FINISHED", timeout=10)
    command = running(scheduler, "c")
    # What "e" freed may be on offer to us already: give it back and ask for no more, so that
    # the other framework gets it.
    driver.suppressOffers()
    for held in scheduler.offers()[1:]:
        driver.declineOffer([held["id"]], {"refuse_seconds": 3600})
    # A framework that does not checkpoint leaves nothing there.
    other, other_driver, other_id = harness.subscribe(cluster, framework_info(name="other"))
    other_offer = only(other.wait_offers(1, timeout=10))
    launch(other_driver, other_offer, [command_task("o", other_offer, "sleep 100")])
    running(other, "o")

    meta = agent_dir(cluster.work_dir, agent_id)
    assert (cluster.work_dir / "meta" / "boot_id").read_text() == current_boot_id()
    slave_info = json.loads((meta / "slave.info").read_text())
    assert slave_info["id"] == {"value": agent_id}
    assert slave_info["hostname"] == "localhost"
    framework = meta / "frameworks" / framework_id
    assert json.loads((framework / "framework.info").read_text())["checkpoint"] is True
    assert (framework / "framework.pid").read_text() == ""  # an HTTP scheduler has no pid
    assert not (meta / "frameworks" / other_id).exists()

    # The custom executor: its info, its latest run, its pid, its tasks and their updates.
    executor = executor_dir(cluster.work_dir, agent_id, framework_id, "echo")
    info = json.loads((executor / "executor.info").read_text())
    assert info["executor_id"] == {"value": "echo"}
    assert info["framework_id"] == {"value": framework_id}
    assert (executor / "executor_generated_for_command_task").read_text() == "0"
    assert os.readlink(executor / "runs" / "latest") == container_of(finished)
    run = executor / "runs" / container_of(finished)
    pid = pid_of(finished)
    assert (run / "pids" / "forked.pid").read_text() == str(pid)
    assert (run / "pids" / "forked.starttime").read_text() == str(start_time(pid))
    assert (run / "http.marker").exists()  # it subscribed over HTTP
    task = json.loads((run / "tasks" / "e" / "task.info").read_text())
    assert task["task_id"] == {"value": "e"}
    assert task["framework_id"] == {"value": framework_id}
    assert task["state"] == "TASK_STAGING"
    assert "data" not in task  # Mesos's Task has no data either
    updates = run / "tasks" / "e" / "task.updates"
    records = wait_until(lambda: (r := read_records(updates)) and len(r) == 4 and r)
    assert [state for state, _ in stream_of(records)] == ["TASK_RUNNING", "TASK_FINISHED"]
    assert stream_of(records)[1][1] == finished["uuid"]

    # The command task's executor, which the agent made for it.
    generated = executor_dir(cluster.work_dir, agent_id, framework_id, "c")
    assert (generated / "executor_generated_for_command_task").read_text() == "1"
    command_run = generated / "runs" / container_of(command)
    assert (command_run / "pids" / "forked.pid").read_text() == str(pid_of(command))
    assert (command_run / "tasks" / "c" / "task.info").exists()

    # An executor that is gone leaves its sentinel.
    assert not (run / "executor.sentinel").exists()
    driver.sendFrameworkMessage({"value": "echo"}, {"value": agent_id}, encode({"exit": 0}))
    wait_until(lambda: (run / "executor.sentinel").exists(), what="executor.sentinel")


def test_a_recovering_agent_answers_503_and_a_task_unknown_to_its_executor_is_lost(
    harness: Harness,
) -> None:
    """The executor is the test itself here (a quiet executor never subscribes on its own),
    since pymesos never sends unacknowledged updates."""
    cluster, scheduler, driver, framework_id, offer = start(
        harness, framework_info(checkpoint=True), executor_reregistration_timeout=3.0
    )
    agent_id = agent_of(offer)
    executor = quiet_executor("q")
    launch(
        driver,
        offer,
        [executor_task("known", offer, executor), executor_task("unknown", offer, executor)],
    )
    address = agent_address(cluster, agent_id)
    agent_executor(cluster, agent_id, framework_id, "q")  # both tasks queued on it

    mark = scheduler.mark()
    restarted = threading.Thread(
        target=cluster.restart_agent, args=(agent_id, RECOVERY_WAIT), daemon=True
    )
    restarted.start()
    # Recovering: /state and the executor's calls other than SUBSCRIBE get 503.
    busy = wait_until(lambda: (r := get_or_none(address, "/state")) and r.status == 503 and r)
    assert busy.text == "Agent has not finished recovery"
    reply = rh.post_json(address, EXECUTOR_PATH, update_call(framework_id, "q", "known"))
    assert (reply.status, reply.text) == (503, "Agent has not finished recovery")

    # The executor comes back with one task it knows and an update the agent never got.
    call = subscribe_call(framework_id, "q")
    update = update_call(framework_id, "q", "known")["update"]
    call["subscribe"] = {
        "unacknowledged_tasks": [executor_task("known", offer, executor)],
        "unacknowledged_updates": [update],
    }
    stream = rh.open_stream(address, call, EXECUTOR_PATH)
    assert isinstance(stream, rh.EventStream), stream
    try:
        subscribed = stream.next_event()
        assert subscribed["type"] == "SUBSCRIBED"
        assert stream.next_event() == {
            "type": "ACKNOWLEDGED",
            "acknowledged": {"task_id": {"value": "known"}, "uuid": update["status"]["uuid"]},
        }
        restarted.join(RECOVERY_WAIT)
        assert not restarted.is_alive()
        assert rh.get(address, "/state").status == 200

        # Once the agent has reregistered: the task the executor never had is lost, the
        # update it sent again goes through.
        lost = scheduler.wait_update("unknown", "TASK_LOST", since=mark, timeout=10)
        assert lost["source"] == "SOURCE_AGENT"
        assert lost["reason"] == "REASON_AGENT_RESTARTED"
        assert lost["message"] == "Task launched during agent restart"
        assert lost["executor_id"] == {"value": "q"}
        known = scheduler.wait_update("known", "TASK_RUNNING", since=mark, timeout=10)
        assert known["uuid"] == update["status"]["uuid"]
    finally:
        stream.close()


def test_executors_that_do_not_come_back_are_killed_and_a_slow_agent_is_unreachable(
    harness: Harness,
) -> None:
    """A recovery longer than `agent_reregister_timeout`: the agent answers pings but does
    not reregister in time (MESOS-6286), so the master marks it unreachable; the executor
    that never subscribed again is killed when `executor_reregistration_timeout` ends."""
    cluster, scheduler, driver, framework_id, offer = start(
        harness,
        framework_info(checkpoint=True, capabilities=PARTITION_AWARE),
        agent_timeout=2.0,
        agent_reregister_timeout=1.0,
        executor_reregistration_timeout=3.0,
    )
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("q", offer, quiet_executor())])
    directory = Path(agent_executor(cluster, agent_id, framework_id, "quiet")["directory"])
    pid = int(wait_until(lambda: (directory / "pid").exists() and (directory / "pid").read_text()))

    mark = scheduler.mark()
    cluster.restart_agent(agent_id, timeout=RECOVERY_WAIT)
    unreachable = scheduler.wait_update("q", "TASK_UNREACHABLE", since=mark, timeout=10)
    assert unreachable["reason"] == "REASON_AGENT_REMOVED"
    assert unreachable["message"] == "agent did not reregister within 1secs after disconnecting"
    gone = scheduler.wait_update("q", "TASK_GONE", since=mark, timeout=10)
    assert gone["source"] == "SOURCE_AGENT"
    assert gone["reason"] == "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
    assert gone["message"] == "Executor did not reregister within 3secs"
    wait_gone(pid)
