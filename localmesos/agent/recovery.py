"""An agent that starts again with its work directory recovers what it checkpointed, as
Mesos's agent does (src/slave/slave.cpp `Slave::recover`, `_recover`, `__recover`,
`reregisterExecutorTimeout`, and `Slave::subscribe` for a recovered executor):

1. It reads its meta directory (checkpoint.py): its ID, and the frameworks that checkpoint
   with their executors, latest runs and tasks. Each task's state is the last one its status
   update stream recorded; the updates not acknowledged wait in the status update manager.
2. It adopts the executors' processes from their checkpointed pids (`Launcher.adopt`, which
   checks that the process is the one that started then). An executor whose process is gone
   has terminated: its live tasks fail, as after any executor exit.
3. Executors may SUBSCRIBE again from now on (`recoveryInfo.reconnect`). Everything else the
   agent is asked meanwhile is 503 "Agent has not finished recovery": `/state`, the executor
   calls other than SUBSCRIBE. A launch from the master is ignored (the agent has no master
   yet). It answers the master's pings, as `Slave::ping` does in any state, so that the
   health checks do not give up on it while it recovers.
4. After `executor_reregistration_timeout` every executor that has not subscribed again is
   killed; its tasks become TASK_LOST (TASK_GONE if PARTITION_AWARE),
   REASON_EXECUTOR_REREGISTRATION_TIMEOUT. Only then is recovery over, even if every executor
   came back sooner (MESOS-7539); with no framework to recover it is over at once.
5. It writes `meta/boot_id` and reregisters with the master as the agent it was, reporting
   what it runs; its pending status updates go out again.

Command tasks recover too: here the command executor is the agent's own code
(command_executor.py), so the agent adopts the task's process itself and "reconnects" at once,
writing in the sandbox what mesos-executor logs when its agent asks it to reconnect, and
carrying on a kill that was under way. A command task whose process never started (the agent
died while its URIs were fetched) has an executor that never ran: TASK_FAILED,
REASON_EXECUTOR_TERMINATED, as Mesos reports an executor whose container is gone.

Frameworks that do not checkpoint left nothing on disk, and nothing of theirs runs any more:
their executors ended when the agent died (`Agent.exit`), as Mesos's executor libraries end
them, and the master reported their tasks lost when the agent disconnected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localmesos import protocol
from localmesos.agent import command_tasks, containerizer, executors
from localmesos.agent.checkpoint import ExecutorState, read_state
from localmesos.protocol import is_terminal
from localmesos.resources import Resources
from localmesos.web import EventStream

if TYPE_CHECKING:
    from localmesos.agent.command_tasks import Run
    from localmesos.agent.executors import Executor
    from localmesos.agent.slave import Agent

log = logging.getLogger("localmesos.agent")

# slave/constants.hpp EXECUTOR_REREGISTRATION_TIMEOUT is 2 s (at most 15 s,
# MAX_EXECUTOR_REREGISTRATION_TIMEOUT). pymesos's executor tries again 1.5 to 2.5 s after its
# agent goes away, then 3 to 5 s later: 5 s lets a pymesos executor come back after a
# restart, which is what Mesos's maximum of 15 s is there for.
EXECUTOR_REREGISTRATION_TIMEOUT = 5.0


def recover(agent: Agent) -> None:
    """`Slave::recover` and `_recover`, on the agent's thread, before anything else."""
    assert agent.id is not None
    state = read_state(agent.work_dir, agent.id)
    if state is None:
        log.warning("%s: nothing to recover for agent %s", agent.name, agent.id)
        finish(agent)
        return
    log.info(
        "%s: recovering agent %s from %s%s",
        agent.name,
        agent.id,
        agent.work_dir / "meta",
        " (the host rebooted)" if state.rebooted else "",
    )
    for framework in state.frameworks:
        if not any(e.run is not None for e in framework.executors):
            continue  # Mesos garbage-collects a framework without executors
        log.info("%s: recovering framework %s", agent.name, framework.id)
        agent.frameworks[framework.id] = framework.info
        for executor in framework.executors:
            if executor.run is None:
                continue
            if executor.generated:
                _recover_command(agent, framework.id, executor)
            else:
                _recover_executor(agent, framework.id, executor)
    # `recoveryInfo.reconnect`: HTTP executors may subscribe again.
    agent.reconnect = True
    if not agent.frameworks:
        finish(agent)
        return
    for executor in agent.executors.values():
        if executor.state == "REGISTERING":
            log.info("%s: waiting for executor %s to subscribe", agent.name, executor.id)
    agent.after(agent.executor_reregistration_timeout, reregister_executor_timeout, agent)


def _replay(agent: Agent, framework_id: str, task_id: str, records: list[dict]) -> str:
    """The task's stream back in the status update manager; returns its latest state."""
    updates = agent.status_updates.recover(framework_id, task_id, records)
    return updates[-1]["state"] if updates else "TASK_STAGING"


def _recover_executor(agent: Agent, framework_id: str, recovered: ExecutorState) -> None:
    run = recovered.run
    assert run is not None
    executor = executors.Executor(
        framework_id,
        recovered.info,
        run.container_id,
        _sandbox(agent, framework_id, recovered.id, run.container_id),
        Resources.from_json(recovered.info.get("resources", [])),
        recovered=True,
    )
    for task in run.tasks:
        agent.checkpointer.task_dirs[(framework_id, task.id)] = task.directory
        state = _replay(agent, framework_id, task.id, task.records)
        executor.task_states[task.id] = state
        if is_terminal(state):
            executor.completed_tasks.append({"task": task.info, "state": state})
        else:
            executor.tasks[task.id] = task.info
    if run.completed:
        executor.state = "TERMINATED"
        agent.complete(framework_id, executor)
        return
    agent.executors[(framework_id, executor.id)] = executor
    process = None
    if run.pid is not None:
        process = agent.launcher.adopt(run.pid, run.start)
    if process is None:
        # Gone while the agent was away: it terminated, with an unknown status.
        log.info("%s: executor %s of framework %s is gone", agent.name, executor.id, framework_id)
        agent.dispatch(executors.exited, agent, executor, -1)
        return
    executor.process = process
    log.info("%s: recovered executor %s (pid %d)", agent.name, executor.id, process.pid)
    _watch(agent, process, lambda status: executors.exited(agent, executor, _status(status)))


def _recover_command(agent: Agent, framework_id: str, recovered: ExecutorState) -> None:
    run_state = recovered.run
    assert run_state is not None
    if not run_state.tasks:
        return
    task = run_state.tasks[0]
    agent.checkpointer.task_dirs[(framework_id, task.id)] = task.directory
    directory = _sandbox(agent, framework_id, recovered.id, run_state.container_id)
    run = command_tasks.new_run(agent, framework_id, task.info, run_state.container_id, directory)
    run.state = _replay(agent, framework_id, task.id, task.records)
    if run_state.completed or is_terminal(run.state):
        agent.complete(framework_id, run)
        return
    agent.runs[(framework_id, run.task_id)] = run
    process = None
    if run_state.pid is not None:
        process = agent.launcher.adopt(run_state.pid, run_state.start)
    if process is None:
        _command_gone(agent, run, None)
        return
    run.process = process
    log.info("%s: recovered command task %s (pid %d)", agent.name, run.task_id, process.pid)
    ended = process.ended()
    if not ended:
        run.executor.reconnected()
    if run_state.kill is not None:
        run.executor.resume_kill(run_state.kill, escalate=not ended)
    _watch(agent, process, lambda status: _command_gone(agent, run, status))


def _command_gone(agent: Agent, run: Run, status: int | None) -> None:
    # Without a wait status (a process this cluster did not start), the command executor
    # cannot say how the command ended: the agent reports the executor's end instead.
    if status is None:
        run.executor_terminated = True
    agent.dispatch(command_tasks.exited, agent, run, -1 if status is None else status)


def _watch(agent: Agent, process: Any, on_exit: Callable[[int | None], None]) -> None:
    """Wait for an adopted process on a thread of its own; its end runs on the agent's."""

    def wait() -> None:
        status = process.wait()
        agent.dispatch(on_exit, status)

    threading.Thread(target=wait, daemon=True, name=f"wait-{process.pid}").start()


def _status(status: int | None) -> int:
    return -1 if status is None else status


def _sandbox(agent: Agent, framework_id: str, executor_id: str, container_id: str) -> Path:
    return containerizer.runs_dir(agent, framework_id, executor_id) / container_id


def reregister_executor_timeout(agent: Agent) -> None:
    """`Slave::reregisterExecutorTimeout`: the executors that have not subscribed again are
    killed, and their tasks will be TASK_LOST (TASK_GONE if PARTITION_AWARE)."""
    log.info("%s: cleaning up un-reregistered executors", agent.name)
    waited = protocol.format_duration(agent.executor_reregistration_timeout)
    for executor in list(agent.executors.values()):
        if executor.state != "REGISTERING":
            continue
        log.info("%s: killing un-reregistered executor %s", agent.name, executor.id)
        executors.destroy(agent, executor)
        executor.state = "TERMINATING"
        framework = agent.frameworks.get(executor.framework_id, {})
        partition_aware = any(
            c.get("type") == "PARTITION_AWARE" for c in framework.get("capabilities", [])
        )
        executor.termination_state = "TASK_GONE" if partition_aware else "TASK_LOST"
        executor.termination = (
            "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
            f"Executor did not reregister within {waited}",
        )
    finish(agent)


def finish(agent: Agent) -> None:
    """`Slave::__recover`: recovery is over; the agent now registers with its master."""
    agent.recovering = False
    agent.reconnect = True
    agent.checkpointer.boot_id()
    log.info("%s: finished recovery", agent.name)
    agent.settle_frameworks()
    agent.start_registration()


def resubscribe(agent: Agent, executor: Executor, stream: EventStream, subscribe: dict) -> None:
    """`Slave::subscribe` for an executor recovered from the checkpoint: it comes back with
    the updates it is not sure the agent got, and the tasks it was never acknowledged for.
    A task the agent still has in TASK_STAGING that the executor does not name never reached
    it: TASK_LOST (TASK_DROPPED if PARTITION_AWARE), REASON_AGENT_RESTARTED, "Task launched
    during agent restart"."""
    executor.state = "RUNNING"
    executor.recovered = False
    agent.checkpointer.http_marker(executor.framework_id, executor.id, executor.container_id)
    # The updates go through as new ones (duplicates are dropped by their streams); their
    # ACKNOWLEDGED follow the SUBSCRIBED, as in Mesos, where they wait for the checkpoint.
    executor.stream = None
    acknowledged = []
    for update in subscribe.get("unacknowledged_updates", []):
        status = update.get("status", {})
        if "uuid" in status and "task_id" in status:
            executors.status_update(agent, executor, dict(status))
            acknowledged.append(status)
    executor.stream = stream
    named = {t["task_id"]["value"] for t in subscribe.get("unacknowledged_tasks", [])}
    framework = agent.frameworks.get(executor.framework_id, {})
    partition_aware = any(
        c.get("type") == "PARTITION_AWARE" for c in framework.get("capabilities", [])
    )
    for task_id in list(executor.tasks):
        if executor.task_states.get(task_id) == "TASK_STAGING" and task_id not in named:
            state = "TASK_DROPPED" if partition_aware else "TASK_LOST"
            log.info(
                "%s: transitioning STAGED task %s to %s because it is unknown to the executor %s",
                agent.name,
                task_id,
                state,
                executor.id,
            )
            executors.agent_update(
                agent,
                executor,
                task_id,
                state,
                reason="REASON_AGENT_RESTARTED",
                message="Task launched during agent restart",
            )
    if not executor.tasks and not executor.completed_tasks:
        # MESOS-8411: never sent a task, nothing queued: SHUTDOWN instead of SUBSCRIBED.
        executors.shutdown(agent, executor)
        return
    stream.send(executors.subscribed(agent, executor))
    for status in acknowledged:
        stream.send(
            {
                "type": "ACKNOWLEDGED",
                "acknowledged": {"task_id": status["task_id"], "uuid": status["uuid"]},
            }
        )
