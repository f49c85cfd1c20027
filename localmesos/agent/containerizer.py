"""Where and how an executor runs: its sandbox in the Mesos layout (src/slave/paths.cpp
`createExecutorDirectory`), its environment (src/slave/slave.cpp `executorEnvironment`), its
command as an argv (the Mesos containerizer's launch, src/slave/containerizer/mesos/), and how
its end is worded (stout's WSTRINGIFY). Processes themselves are started, watched and killed
by `localmesos.processes.Launcher`, in sessions of their own as Mesos's posix launcher does.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from localmesos import protocol

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent


def create_sandbox(agent: Agent, framework_id: str, executor_id: str) -> tuple[str, Path]:
    """A new container ID and its sandbox, in the Mesos layout (slave/paths.cpp
    `createExecutorDirectory`)."""
    container_id = str(uuid.uuid4())
    runs = (
        agent.work_dir
        / "slaves"
        / str(agent.id)
        / "frameworks"
        / framework_id
        / "executors"
        / executor_id
        / "runs"
    )
    directory = runs / container_id
    directory.mkdir(parents=True)
    relink(runs / "latest", container_id)
    return container_id, directory


def executor_environment(
    agent: Agent,
    framework_id: str,
    executor_id: str,
    directory: Path,
    command: dict,
    grace: float,
) -> dict[str, str]:
    """slave.cpp `executorEnvironment`: what an executor needs to find its agent."""
    env = dict(os.environ)
    checkpoint = bool(agent.frameworks.get(framework_id, {}).get("checkpoint"))
    env.update(
        {
            "MESOS_FRAMEWORK_ID": framework_id,
            "MESOS_EXECUTOR_ID": executor_id,
            "MESOS_DIRECTORY": str(directory),
            "MESOS_SANDBOX": str(directory),
            "MESOS_AGENT_ENDPOINT": f"{agent.ip}:{agent.port}",
            "MESOS_SLAVE_ID": str(agent.id),
            "MESOS_SLAVE_PID": agent.pid,
            "MESOS_CHECKPOINT": "1" if checkpoint else "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            # pymesos refuses "5s" and "5": Mesos writes durations as "5secs"
            # (pymesos utils.py `parse_duration`).
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": protocol.format_duration(grace),
            "LIBPROCESS_PORT": "0",
        }
    )
    if checkpoint:
        env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
        # slave.cpp: the agent's --executor_reregistration_timeout.
        env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = protocol.format_duration(
            agent.executor_reregistration_timeout
        )
    for variable in command.get("environment", {}).get("variables", []):
        env[variable["name"]] = variable.get("value", "")
    return env


def command_argv(command: dict) -> tuple[list[str], str | None]:
    """A CommandInfo as an argv and the program to run (None: the argv's first word)."""
    value = command.get("value", "")
    if command.get("shell", True):
        return ["/bin/sh", "-c", value], None
    # Without a shell, `arguments` is the whole argv, argv[0] included (mesos.proto `CommandInfo`).
    return list(command.get("arguments") or [value]), value


def relink(link: Path, target: str) -> None:
    """Point the `latest` symlink at ``target`` (a sibling), replacing the old one atomically."""
    temporary = link.with_name(f".{link.name}.{uuid.uuid4().hex}")
    temporary.symlink_to(target)
    temporary.replace(link)


def wait_status(status: int) -> str:
    """WSTRINGIFY from stout: how Mesos words a wait status."""
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"terminated with signal {signal.strsignal(os.WTERMSIG(status))}"
    return f"wait status {status}"
