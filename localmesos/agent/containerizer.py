"""Where and how an executor runs: its sandbox in the Mesos layout (src/slave/paths.cpp
`createExecutorDirectory`), what the Mesos containerizer refuses to run, the fetch of its URIs
off the agent's thread (`MesosContainerizerProcess::fetch`), its environment
(src/slave/slave.cpp `executorEnvironment`), its command as an argv (the Mesos containerizer's
launch, src/slave/containerizer/mesos/launch.cpp), and how its end is worded (stout's
WSTRINGIFY). Processes themselves are started, watched and killed by
`localmesos.processes.Launcher`, in sessions of their own as Mesos's posix launcher does.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from localmesos import protocol
from localmesos.fetcher import FetchError

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent

log = logging.getLogger("localmesos.agent")

# slave/constants.hpp DEFAULT_EXECUTOR_SHUTDOWN_GRACE_PERIOD (--executor_shutdown_grace_period).
SHUTDOWN_GRACE = 5.0


class SandboxError(Exception):
    """The sandbox could not be made; the message is Mesos's (slave/paths.cpp
    `createExecutorDirectory`, `createSandboxDirectory`, stout's `os::mkdir`)."""


def runs_dir(agent: Agent, framework_id: str, executor_id: str) -> Path:
    """Where an executor's runs (one sandbox per container) live: slave/paths.cpp
    `getExecutorPath` + `runs`."""
    return (
        agent.work_dir
        / "slaves"
        / str(agent.id)
        / "frameworks"
        / framework_id
        / "executors"
        / executor_id
        / "runs"
    )


def create_sandbox(agent: Agent, framework_id: str, executor_id: str) -> tuple[str, Path]:
    """A new container ID and its sandbox, in the Mesos layout (slave/paths.cpp
    `createExecutorDirectory`); SandboxError when the disk refuses it (full, read-only, a
    file in the way)."""
    container_id = str(uuid.uuid4())
    runs = runs_dir(agent, framework_id, executor_id)
    directory = runs / container_id
    # An executor ID used again keeps its directory (`Slave::_run` unschedules it).
    agent.gc.unschedule(runs.parent)
    if agent.checkpointer.checkpoints(framework_id):
        agent.gc.unschedule(agent.checkpointer.executor_meta_dir(framework_id, executor_id))
    log.info("Creating sandbox '%s'", directory)
    try:
        directory.mkdir(parents=True)
    except OSError as error:
        raise SandboxError(
            f"Failed to create executor directory '{directory}': "
            f"Failed to create directory: {error.strerror}"
        ) from error
    try:
        relink(runs / "latest", container_id)
    except OSError as error:
        raise SandboxError(
            f"Failed to symlink '{directory}' to '{runs / 'latest'}': {error.strerror}"
        ) from error
    return container_id, directory


def fetch(
    agent: Agent,
    container_id: str,
    command: dict,
    directory: Path,
    user: str | None,
    then: Callable[[str | None], None],
) -> None:
    """Fetch ``command``'s URIs into ``directory`` on a thread of its own (a download may take
    minutes), then call ``then`` with the error, or None, on the agent's thread, as
    MesosContainerizer goes on with `defer(self(), ...)` once mesos-fetcher is done. An agent
    that has died runs nothing of it (its actor is stopped)."""

    def run() -> None:
        try:
            agent.fetcher.fetch(container_id, command, directory, user)
        except FetchError as error:
            agent.dispatch(then, str(error))
        except Exception as error:  # a bug in the fetcher must fail the launch, not hang it
            log.exception("%s: fetching for container %s failed", agent.name, container_id)
            agent.dispatch(
                then, f"Failed to fetch all URIs for container '{container_id}': {error!r}"
            )
        else:
            agent.dispatch(then, None)

    threading.Thread(target=run, daemon=True, name=f"fetch-{container_id[:8]}").start()


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


def refuse_container(container: dict | None) -> tuple[str, str] | None:
    """The reason and message with which a task or an executor fails when its ContainerInfo
    asks for what an agent with only the Mesos containerizer and no image provider cannot
    give; None when it can run on the host (no ContainerInfo, or one with no image).

    - An image (type MESOS, `mesos.image`): with no --image_providers the provisioner has no
      store, and `ProvisionerProcess::provision` fails with "Unsupported container image type:
      DOCKER" (src/slave/containerizer/mesos/provisioner/provisioner.cpp); the agent reports
      the launch failure (`Slave::executorLaunched`).
    - Type DOCKER: `MesosContainerizerProcess::launch` answers NOT_SUPPORTED, so no container
      exists, and waiting for it gives none: "Abnormal executor termination: unknown container"
      (`Slave::executorTerminated`, `Slave::sendExecutorTerminatedStatusUpdate`).
    """
    if not container:
        return None
    if container.get("type") == "DOCKER":
        return "REASON_EXECUTOR_TERMINATED", "Abnormal executor termination: unknown container"
    image = (container.get("mesos") or {}).get("image")
    if image is not None:
        kind = image.get("type", "UNKNOWN")
        return (
            "REASON_CONTAINER_LAUNCH_FAILED",
            f"Failed to launch container: Unsupported container image type: {kind}",
        )
    return None


def command_argv(command: dict, directory: Path | None = None) -> tuple[list[str], str]:
    """A CommandInfo as an argv and the program to run, as mesos-containerizer's `launch`
    execs it: `sh -c <value>` with the shell, else `arguments` as the whole argv (argv[0]
    included) and `value` as the program. Given the working ``directory`` (an executor's
    sandbox), a relative program found there is run from there (`os::which(executable,
    working_directory)` in launch.cpp), so an executor fetched into its sandbox can be named
    by its bare name."""
    value = command.get("value", "")
    if command.get("shell", True):
        return ["sh", "-c", value], "/bin/sh"
    executable = value
    if directory is not None and not os.path.isabs(value):
        candidate = directory / value
        if candidate.is_file() and os.access(candidate, os.X_OK):
            executable = str(candidate)
    return list(command.get("arguments") or [value]), executable


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
        core = " (core dumped)" if os.WCOREDUMP(status) else ""
        return f"terminated with signal {signal.strsignal(os.WTERMSIG(status))}{core}"
    return f"wait status {status}"
