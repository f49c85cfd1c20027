"""Frameworks' own executors on the agent, from launch to exit, as slave.cpp handles an
`Executor` that is not the command executor: `Slave::run` queues a task on its executor and
`Slave::launchExecutor` starts it (its container refused, or its URIs fetched, then its
process); the executor SUBSCRIBEs over the v1 executor API (`Slave::subscribe`) and gets its
queued tasks, sends UPDATEs (`Slave::statusUpdate`), and is shut down (`shutdownExecutor`),
killed when it does not subscribe in time (`registerExecutorTimeout`), and reported when its
process ends (`executorTerminated`).

Each function runs on the agent's thread (`Agent.dispatch` or `Agent.call`), and takes the
agent first; the agent's handlers in slave.py and the executor endpoint in http.py call them.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localmesos import protocol
from localmesos.actors import Timer
from localmesos.agent import monitor, recovery
from localmesos.agent.containerizer import (
    SHUTDOWN_GRACE,
    command_argv,
    create_sandbox,
    executor_environment,
    fetch,
    refuse_container,
    wait_status,
)
from localmesos.processes import Adopted
from localmesos.protocol import is_terminal, task_status
from localmesos.resources import Resources
from localmesos.web import EventStream

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent

log = logging.getLogger("localmesos.agent")

# slave/constants.hpp EXECUTOR_REGISTRATION_TIMEOUT (flag --executor_registration_timeout).
EXECUTOR_REGISTRATION_TIMEOUT = 60.0


@dataclass
class Executor:
    """A framework's own executor: one process, any number of tasks, and the event stream it
    opened with SUBSCRIBE (`Slave::subscribe`). The states are those of Mesos's
    `Executor::State`."""

    framework_id: str
    info: dict  # the ExecutorInfo, framework_id filled in by the master
    container_id: str
    directory: Path
    resources: Resources
    process: subprocess.Popen | Adopted | None = None
    state: str = "REGISTERING"  # then RUNNING, TERMINATING, TERMINATED
    stream: EventStream | None = None
    tasks: dict[str, dict] = field(default_factory=dict)  # live tasks, by task ID
    task_states: dict[str, str] = field(default_factory=dict)
    queued: list[str] = field(default_factory=list)  # not yet handed to the executor
    completed_tasks: deque[dict] = field(default_factory=lambda: deque(maxlen=200))
    registration_timer: Timer | None = None
    shutdown_timer: Timer | None = None
    # Why the agent ended the executor, when it did: the reason its tasks are reported with.
    termination: tuple[str, str] | None = None
    # ... and the state (`ContainerTermination.state`; TASK_FAILED when it has none).
    termination_state: str = "TASK_FAILED"
    # Recovered from the checkpoint after an agent restart, and not subscribed again yet.
    recovered: bool = False
    detached: bool = False  # its sandbox garbage-collected, and gone from /files

    @property
    def id(self) -> str:
        return self.info["executor_id"]["value"]

    @property
    def command(self) -> dict:
        return self.info.get("command", {})

    @property
    def grace(self) -> float:
        period = self.info.get("shutdown_grace_period")
        return period.get("nanoseconds", 0) / 1e9 if period else SHUTDOWN_GRACE


def of_task(agent: Agent, framework_id: str, task_id: str) -> Executor | None:
    for (owner, _), executor in agent.executors.items():
        if owner == framework_id and task_id in executor.tasks:
            return executor
    return None


# -- a task for an executor, and the executor's launch ------------------------------------------


def run_task(agent: Agent, framework_id: str, task: dict) -> None:
    """Hand the task to its executor: start the executor if it is not running here yet,
    queue the task until the executor subscribes, or send it at once (`Slave::run`,
    `Slave::subscribe`)."""
    info = task["executor"]
    task_id = task["task_id"]["value"]
    executor = agent.executors.get((framework_id, info["executor_id"]["value"]))
    if executor is None:
        executor = launch(agent, framework_id, info)
    if executor.state in ("TERMINATING", "TERMINATED"):
        # slave.cpp `run`: a task for an executor on its way out never reaches it.
        agent_update(
            agent,
            executor,
            task_id,
            "TASK_DROPPED",
            reason="REASON_EXECUTOR_TERMINATED",
            message="Executor terminating",
        )
        return
    # Checkpointed first: a disk that refuses it leaves nothing half-registered behind.
    agent.checkpointer.task(framework_id, executor.id, executor.container_id, task)
    executor.tasks[task_id] = task
    executor.task_states[task_id] = "TASK_STAGING"
    if executor.state == "RUNNING" and executor.stream is not None:
        executor.stream.send({"type": "LAUNCH", "launch": {"task": task}})
    else:
        executor.queued.append(task_id)


def launch(agent: Agent, framework_id: str, info: dict) -> Executor:
    """`Slave::launchExecutor`: a sandbox, then the container: refused if it asks for an
    image, else the URIs fetched, else the executor's process. The registration timer runs
    from the launch request on, fetch included."""
    container_id, directory = create_sandbox(agent, framework_id, info["executor_id"]["value"])
    executor = Executor(
        framework_id,
        info,
        container_id,
        directory,
        Resources.from_json(info.get("resources", [])),
    )
    agent.checkpointer.executor(framework_id, info, container_id)
    agent.executors[(framework_id, executor.id)] = executor
    refused = refuse_container(info.get("container"))
    if refused is not None:
        # Its tasks fail once they are queued on it (the caller queues them next).
        executor.termination = refused
        agent.dispatch(exited, agent, executor, -1)
        return executor
    executor.registration_timer = agent.after(
        agent.executor_registration_timeout, _registration_timeout, agent, executor
    )
    if executor.command.get("uris"):
        fetch(
            agent,
            container_id,
            executor.command,
            directory,
            agent.frameworks.get(framework_id, {}).get("user"),
            functools.partial(_fetched, agent, executor),
        )
    else:
        _spawn(agent, executor)
    return executor


def _fetched(agent: Agent, executor: Executor, error: str | None) -> None:
    if executor.state == "TERMINATED":
        return  # destroyed during the fetch (registration timeout)
    if error is not None:
        executor.termination = (
            "REASON_CONTAINER_LAUNCH_FAILED",
            f"Failed to launch container: {error}",
        )
        exited(agent, executor, -1)
    elif executor.state == "TERMINATING":
        # Shut down during the fetch: `Slave::executorLaunched` destroys the container.
        exited(agent, executor, -1)
    else:
        _spawn(agent, executor)


def _spawn(agent: Agent, executor: Executor) -> None:
    directory = executor.directory
    try:
        argv, executable = command_argv(executor.command, directory)
        env = executor_environment(
            agent,
            executor.framework_id,
            executor.id,
            directory,
            executor.command,
            executor.grace,
        )
        executor.process = agent.launcher.spawn(argv, executable=executable, cwd=directory, env=env)
    except OSError as error:
        # The container never started: its tasks fail once they are queued on it.
        executor.termination = (
            "REASON_CONTAINER_LAUNCH_FAILED",
            f"Failed to launch container: {error}",
        )
        agent.dispatch(exited, agent, executor, -1)
        return
    # The containerizer checkpoints the pid it forked (`MesosContainerizerProcess::_launch`).
    agent.checkpointer.forked(
        executor.framework_id, executor.id, executor.container_id, executor.process.pid
    )
    threading.Thread(
        target=_wait,
        args=(agent, executor, executor.process),
        daemon=True,
        name=f"wait-{executor.id}",
    ).start()
    log.info("launched executor %s of framework %s", executor.id, executor.framework_id)


def _wait(agent: Agent, executor: Executor, process: subprocess.Popen) -> None:
    status = agent.launcher.reap(process)
    agent.dispatch(exited, agent, executor, status)


# -- its end ---------------------------------------------------------------------------------------


def _registration_timeout(agent: Agent, executor: Executor) -> None:
    if executor.state != "REGISTERING":
        return
    waited = protocol.format_duration(agent.executor_registration_timeout)
    log.info("executor %s did not subscribe within %s", executor.id, waited)
    executor.termination = (
        "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        f"Executor did not register within {waited}",
    )
    destroy(agent, executor)


def destroy(agent: Agent, executor: Executor) -> None:
    """Kill the executor's whole process group; its waiter reports the exit. An executor
    whose URIs are still being fetched has no process yet: it ends now."""
    if executor.state == "TERMINATED":
        return
    if executor.process is not None:
        agent.launcher.kill_group(executor.process.pid)
    else:
        exited(agent, executor, -1)


def shutdown(agent: Agent, executor: Executor) -> None:
    """SHUTDOWN, then the kill once the grace period is over (slave.cpp `_shutdownExecutor`
    and `shutdownExecutorTimeout`)."""
    if executor.state in ("TERMINATING", "TERMINATED"):
        return
    executor.state = "TERMINATING"
    if executor.stream is not None:
        executor.stream.send({"type": "SHUTDOWN"})
    executor.shutdown_timer = agent.after(executor.grace, destroy, agent, executor)


def exited(agent: Agent, executor: Executor, status: int) -> None:
    """slave.cpp `executorTerminated`: the tasks it still had fail, and the master hears of
    the exit with the raw wait status (the scheduler gets FAILURE, `Master::exitedExecutor`)."""
    if executor.state == "TERMINATED":
        return
    monitor.count(agent, "slave/executors_terminated")
    executor.state = "TERMINATED"
    for timer in (executor.registration_timer, executor.shutdown_timer):
        if timer is not None:
            timer.cancel()
    if executor.stream is not None:
        executor.stream.close()
        executor.stream = None
    reason, message = executor.termination or (
        "REASON_EXECUTOR_TERMINATED",
        "Executor terminated",
    )
    # Mesos sends ExitedExecutorMessage in the same actor turn, while the tasks' updates still
    # wait on the containerizer and the status update manager: the master frees the executor's
    # resources before any of its tasks' and never offers them with the dead executor listed.
    if not agent.recovering:  # a recovering agent has no master to tell yet
        agent.master.send("executor_exited", agent.id, executor.framework_id, executor.id, status)
    for task_id in list(executor.tasks):
        agent_update(
            agent, executor, task_id, executor.termination_state, reason=reason, message=message
        )
    agent.executors.pop((executor.framework_id, executor.id), None)
    agent.complete(executor.framework_id, executor)
    agent.checkpointer.sentinel(executor.framework_id, executor.id, executor.container_id)
    log.info(
        "executor %s of framework %s exited: %s",
        executor.id,
        executor.framework_id,
        wait_status(status) if status >= 0 else "never started",
    )


def kill_task(agent: Agent, executor: Executor, task_id: str, policy: dict | None) -> None:
    """`Slave::killTask` for a task of this executor."""
    if task_id in executor.queued:
        # The executor never saw it, so the agent answers.
        agent_update(
            agent,
            executor,
            task_id,
            "TASK_KILLED",
            reason="REASON_TASK_KILLED_DURING_LAUNCH",
            message="Killed before delivery to the executor",
        )
        # An executor left with nothing to run is told to shut down when it subscribes (or
        # it meets its registration timeout).
    elif executor.state == "RUNNING" and executor.stream is not None:
        kill: dict[str, Any] = {"task_id": {"value": task_id}}
        if policy:
            kill["kill_policy"] = policy
        executor.stream.send({"type": "KILL", "kill": kill})


# -- calls from executors (their endpoint is in http.py) ------------------------------------------


def subscribed(agent: Agent, executor: Executor) -> dict:
    """The executor API's SUBSCRIBED event, for a first subscription or one after recovery."""
    return {
        "type": "SUBSCRIBED",
        "subscribed": {
            # pymesos compares both IDs with its environment, key for key
            # (pymesos executor.py `on_subscribed`).
            "executor_info": executor.info,
            "framework_info": agent.frameworks[executor.framework_id],
            "agent_info": {**agent.info(), "id": {"value": agent.id}},
            "container_id": {"value": executor.container_id},
        },
    }


def subscribe(agent: Agent, executor: Executor, subscribe: dict | None = None) -> EventStream:
    """An executor's SUBSCRIBE (slave.cpp `Slave::subscribe`); ``subscribe`` is its body
    (`unacknowledged_tasks`, `unacknowledged_updates`)."""
    stream = EventStream()
    if executor.stream is not None:
        executor.stream.close()  # a second SUBSCRIBE replaces the first (`Slave::subscribe`)
    executor.stream = stream
    stream.on_close = lambda closed: agent.dispatch(_disconnected, executor, closed)
    if executor.registration_timer is not None:
        executor.registration_timer.cancel()
    if executor.recovered and executor.state == "REGISTERING":
        recovery.resubscribe(agent, executor, stream, subscribe or {})
        return stream
    if executor.state == "REGISTERING" and not executor.tasks:
        # Every task it was started for was killed before delivery (slave.cpp `subscribe`):
        # it gets SHUTDOWN instead of SUBSCRIBED.
        executor.state = "TERMINATING"
        executor.shutdown_timer = agent.after(executor.grace, destroy, agent, executor)
    if executor.state == "TERMINATING" or executor.framework_id in agent.removed_frameworks:
        stream.send({"type": "SHUTDOWN"})
        stream.close()
        return stream
    executor.state = "RUNNING"
    agent.checkpointer.http_marker(executor.framework_id, executor.id, executor.container_id)
    stream.send(subscribed(agent, executor))
    # Only tasks that the executor has never seen: pymesos refuses a task ID twice.
    for task_id in executor.queued:
        if task_id in executor.tasks:
            stream.send({"type": "LAUNCH", "launch": {"task": executor.tasks[task_id]}})
    executor.queued.clear()
    return stream


def _disconnected(executor: Executor, stream: EventStream) -> None:
    if executor.stream is stream:
        # The process lives on; pymesos subscribes again (it acts as if it checkpoints).
        executor.stream = None
        log.info("executor %s disconnected", executor.id)


def status_update(agent: Agent, executor: Executor, status: dict) -> None:
    """An UPDATE: queued toward the scheduler (retried until acknowledged), then ACKNOWLEDGED
    to the executor at once, by the agent itself (`Slave::___statusUpdate`)."""
    task_id = status["task_id"]["value"]
    state = status["state"]
    if executor.framework_id in agent.removed_frameworks:
        return  # the framework is being removed: dropped, and never acknowledged
    previous = executor.task_states.get(task_id)
    if previous is not None and is_terminal(previous):
        # The status update manager drops an update after a terminal one, but the executor
        # still gets its acknowledgement.
        log.info("ignoring %s for task %s, which is already %s", state, task_id, previous)
    else:
        if task_id in executor.tasks:
            executor.task_states[task_id] = state
            if is_terminal(state):
                task = executor.tasks.pop(task_id)
                executor.completed_tasks.append({"task": task, "state": state})
        # The agent adds its own ID, but leaves executor_id as the executor wrote it.
        agent.enqueue(
            executor.framework_id,
            status.get("executor_id", {}).get("value"),
            executor.container_id,
            executor.process,
            dict(status),
        )
        if previous is None and task_id not in executor.tasks:
            # slave.cpp forwards an update about a task it does not know, but never
            # acknowledges it to the executor.
            return
    if executor.stream is None:
        return  # disconnected: the executor will resend it after it subscribes again
    executor.stream.send(
        {
            "type": "ACKNOWLEDGED",
            "acknowledged": {"task_id": {"value": task_id}, "uuid": status["uuid"]},
        }
    )


def agent_update(
    agent: Agent, executor: Executor, task_id: str, state: str, *, reason: str, message: str
) -> None:
    """An update the agent writes itself about a task of this executor
    (`Slave::sendExecutorTerminatedStatusUpdate`, `Slave::killTask`)."""
    executor.task_states[task_id] = state
    task = executor.tasks.pop(task_id, None)
    if task is not None:
        executor.completed_tasks.append({"task": task, "state": state})
    if task_id in executor.queued:
        executor.queued.remove(task_id)
    status = task_status(
        task_id, state, "SOURCE_AGENT", reason=reason, message=message, with_uuid=True
    )
    agent.enqueue(
        executor.framework_id, executor.id, executor.container_id, executor.process, status
    )
