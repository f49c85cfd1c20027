"""Command tasks on the agent: a task with a `command` and no `executor` runs under a command
executor that the agent makes for it (`Slave::getExecutorInfo`, executor ID = task ID) and
plays itself (command_executor.py). Its container may be refused, then its URIs are fetched
(`MesosContainerizer`'s launch), then the command executor forks the command; the agent reaps
it and reports the executor's end (`Slave::executorTerminated`), and kills and shutdowns go to
the command executor, or are answered by the agent while the URIs are still being fetched.

Each function runs on the agent's thread and takes the agent first; the agent's handlers in
slave.py call them, recovery.py rebuilds runs after a restart.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from localmesos.agent import command_executor as cmd
from localmesos.agent import monitor
from localmesos.agent.containerizer import SHUTDOWN_GRACE, create_sandbox, fetch, refuse_container
from localmesos.processes import Adopted
from localmesos.resources import Resources

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent

log = logging.getLogger("localmesos.agent")


@dataclass
class Run:
    """One command executor and its single task (executor ID = task ID, slave.cpp
    `Slave::getExecutorInfo`)."""

    framework_id: str
    task: dict
    container_id: str
    directory: Path
    resources: Resources
    shutdown_grace: float = SHUTDOWN_GRACE  # its ExecutorInfo's (`Slave::getExecutorInfo`)
    process: subprocess.Popen | Adopted | None = None
    state: str = "TASK_STAGING"
    # Killed ("killed") or shut down ("shutdown") while its URIs were being fetched: the
    # fetch's outcome is then ignored.
    abandoned: str | None = None
    executor_terminated: bool = False
    detached: bool = False  # its sandbox garbage-collected, and gone from /files
    executor: cmd.CommandExecutor = field(init=False, repr=False)

    @property
    def task_id(self) -> str:
        return self.task["task_id"]["value"]

    @property
    def command(self) -> dict:
        return self.task.get("command", {})


def new_run(agent: Agent, framework_id: str, task: dict, container_id: str, directory: Path) -> Run:
    """A run and its command executor, as a launch or a recovery makes them."""
    run = Run(
        framework_id,
        task,
        container_id,
        directory,
        Resources.from_json(task.get("resources", [])),
        shutdown_grace=cmd.shutdown_grace(task, SHUTDOWN_GRACE),
    )
    run.executor = cmd.CommandExecutor(agent, run)
    return run


# -- the launch ------------------------------------------------------------------------------------


def launch(agent: Agent, framework_info: dict, task: dict) -> None:
    framework_id = framework_info["id"]["value"]
    task_id = task["task_id"]["value"]
    container_id, directory = create_sandbox(agent, framework_id, task_id)
    run = new_run(agent, framework_id, task, container_id, directory)
    agent.runs[(framework_id, task_id)] = run
    # Mesos checkpoints the executor it generated and the task as it queues the task on that
    # executor (`Slave::_run`), before the container's fetch.
    info = cmd.executor_info(run)
    agent.checkpointer.executor(framework_id, info, container_id, generated=True)
    agent.checkpointer.task(framework_id, task_id, container_id, task)
    # The command executor's ExecutorInfo carries the task's ContainerInfo and URIs
    # (`Slave::getExecutorInfo`): its container may be refused, then its URIs fetched,
    # before the executor starts.
    refused = refuse_container(task.get("container"))
    if refused is not None:
        _launch_failed(agent, run, *refused)
    elif run.command.get("uris"):
        fetch(
            agent,
            container_id,
            run.command,
            directory,
            framework_info.get("user"),
            functools.partial(_fetched, agent, run),
        )
    else:
        _launch_command(agent, run)


def _fetched(agent: Agent, run: Run, error: str | None) -> None:
    if run.abandoned == "killed":
        # Killed during the fetch, and answered for by the agent: the executor starts all the
        # same, and is told to shut down at once (`Slave::registerExecutor`).
        if error is None:
            run.executor.shutdown_before_launch()
        _done(agent, run)
    elif run.abandoned == "shutdown":
        # `Slave::executorLaunched` destroys the container of an executor shut down meanwhile.
        agent.agent_update(
            run, "TASK_FAILED", reason="REASON_EXECUTOR_TERMINATED", message="Executor terminated"
        )
        _done(agent, run)
    elif error is not None:
        _launch_failed(
            agent, run, "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch container: {error}"
        )
    else:
        _launch_command(agent, run)


def _launch_failed(agent: Agent, run: Run, reason: str, message: str) -> None:
    """The container did not start: the agent reports the task (`Slave::executorLaunched`,
    `Slave::sendExecutorTerminatedStatusUpdate`); the command executor never ran, so there is
    no TASK_STARTING."""
    log.info("%s: container %s of task %s: %s", agent.name, run.container_id, run.task_id, message)
    agent.agent_update(run, "TASK_FAILED", reason=reason, message=message)
    _done(agent, run)


def _launch_command(agent: Agent, run: Run) -> None:
    if not run.executor.launch():
        _done(agent, run)
        return
    assert run.process is not None
    agent.checkpointer.forked(run.framework_id, run.task_id, run.container_id, run.process.pid)
    threading.Thread(
        target=_wait, args=(agent, run), daemon=True, name=f"wait-{run.task_id}"
    ).start()


def _wait(agent: Agent, run: Run) -> None:
    assert isinstance(run.process, subprocess.Popen)
    status = agent.launcher.reap(run.process)
    agent.dispatch(exited, agent, run, status)


# -- its end ---------------------------------------------------------------------------------------


def exited(agent: Agent, run: Run, status: int) -> None:
    """The command's process is gone (``status``, its raw wait status)."""
    if run.executor_terminated:
        # The executor itself died: the agent reports what it still had
        # (`Slave::sendExecutorTerminatedStatusUpdate`).
        run.executor.stop_escalation()
        agent.agent_update(
            run, "TASK_FAILED", reason="REASON_EXECUTOR_TERMINATED", message="Executor terminated"
        )
    else:
        run.executor.reaped(status)
    _done(agent, run)


def _done(agent: Agent, run: Run) -> None:
    monitor.count(agent, "slave/executors_terminated")
    agent.runs.pop((run.framework_id, run.task_id), None)
    agent.complete(run.framework_id, run)
    agent.checkpointer.sentinel(run.framework_id, run.task_id, run.container_id)
    agent.master.send("executor_exited", agent.id, run.framework_id, run.task_id, 0)


def kill(agent: Agent, run: Run, kill_policy: dict | None) -> None:
    """A KILL of the task: the command executor's (`CommandExecutor::kill`), or, before it has
    started, the agent's own answer."""
    if run.abandoned is not None:
        return
    if run.process is not None:
        run.executor.kill(kill_policy)
    elif run.state == "TASK_STAGING":
        # Its executor has not registered yet (the URIs are being fetched): the agent answers
        # (`Slave::kill`, REGISTERING).
        run.abandoned = "killed"
        agent.agent_update(
            run,
            "TASK_KILLED",
            reason="REASON_TASK_KILLED_DURING_LAUNCH",
            message="Killed before delivery to the executor",
        )


def shutdown(agent: Agent, run: Run) -> None:
    """The executor's shutdown (the scheduler's SHUTDOWN, or the framework's removal)."""
    if run.abandoned is not None:
        return
    if run.process is not None:
        run.executor.shutdown()
    elif run.state == "TASK_STAGING":
        run.abandoned = "shutdown"  # still fetching
