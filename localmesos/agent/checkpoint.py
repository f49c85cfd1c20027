"""What an agent checkpoints so that it can recover after a restart, in the layout of Mesos's
meta directory (src/slave/paths.cpp, src/slave/state.cpp):

    <work_dir>/meta/boot_id
    <work_dir>/meta/slaves/<agent ID>/slave.info
        frameworks/<framework ID>/framework.info, framework.pid
            executors/<executor ID>/executor.info, executor_generated_for_command_task
                runs/latest -> <container ID>
                runs/<container ID>/pids/forked.pid, pids/forked.starttime
                runs/<container ID>/http.marker, executor.sentinel, command_executor.kill
                runs/<container ID>/tasks/<task ID>/task.info, task.updates

`slave.info` is written for every agent once it has registered; the rest only for frameworks
whose FrameworkInfo says `checkpoint: true`, as Mesos does (`Slave::run` checkpoints a
framework only then; `recoverFramework` CHECKs it). What Mesos writes as protobuf is JSON here
(the v1 JSON of the same message), and what it writes as text is the same text. Each file is
written whole to a temporary file in its directory and renamed over the old one
(`state::checkpoint`); `task.updates` is appended to, one JSON record per line, as Mesos
appends length-prefixed records (`TaskStatusUpdateStream::handle`).

Three differences: `pids/forked.starttime` is localmesos's own (when the process started, in
clock ticks since boot, so that a recovering agent never adopts a process that merely reuses
the pid); so is `command_executor.kill`, the kill under way of a command task (when it began,
its grace, when SIGKILL is due), since the agent plays the command executor and a kill must
outlive the agent as it outlives it in mesos-executor; and there is no `meta/slaves/latest`
link, since the agents of one LocalCluster share a work directory: a restarted agent is told
its ID instead of reading it there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localmesos.agent.containerizer import relink
from localmesos.processes import start_time

if TYPE_CHECKING:
    from localmesos.agent.command_tasks import Run
    from localmesos.agent.slave import Agent

log = logging.getLogger("localmesos.agent")

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def meta_dir(work_dir: Path) -> Path:
    return work_dir / "meta"


def agent_dir(work_dir: Path, agent_id: str) -> Path:
    return meta_dir(work_dir) / "slaves" / agent_id


def framework_dir(work_dir: Path, agent_id: str, framework_id: str) -> Path:
    return agent_dir(work_dir, agent_id) / "frameworks" / framework_id


def executor_dir(work_dir: Path, agent_id: str, framework_id: str, executor_id: str) -> Path:
    return framework_dir(work_dir, agent_id, framework_id) / "executors" / executor_id


def current_boot_id() -> str:
    with contextlib.suppress(OSError):
        return BOOT_ID.read_text().strip()
    return ""


# -- writing ------------------------------------------------------------------------------------


def write_text(path: Path, text: str) -> None:
    """The whole file at once: written beside it, then renamed over it (`state::checkpoint`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(text)
    temporary.replace(path)


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, separators=(",", ":")))


def append_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        file.write(json.dumps(record, separators=(",", ":")) + "\n")


class Checkpointer:
    """An agent's writes to its meta directory; each knows whether its framework checkpoints.
    The agent calls these where Mesos checkpoints: `Slave::registered` (slave.info),
    `Framework::checkpointFramework`, `Executor::checkpointExecutor` and `checkpointTask`, the
    containerizer's launch (forked.pid), `Slave::subscribe` (http.marker),
    `Framework::removeExecutor` (executor.sentinel), and the status update manager."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # Where the updates of each checkpointed task go: (framework ID, task ID) -> its dir.
        self.task_dirs: dict[tuple[str, str], Path] = {}

    def checkpoints(self, framework_id: str) -> bool:
        return bool(self.agent.frameworks.get(framework_id, {}).get("checkpoint", False))

    def executor_meta_dir(self, framework_id: str, executor_id: str) -> Path:
        return executor_dir(self.agent.work_dir, str(self.agent.id), framework_id, executor_id)

    def _run_dir(self, framework_id: str, executor_id: str, container_id: str) -> Path:
        return self.executor_meta_dir(framework_id, executor_id) / "runs" / container_id

    def agent_info(self, info: dict) -> None:
        write_json(agent_dir(self.agent.work_dir, str(self.agent.id)) / "slave.info", info)

    def boot_id(self) -> None:
        write_text(meta_dir(self.agent.work_dir) / "boot_id", current_boot_id())

    def framework(self, framework_id: str) -> None:
        if not self.checkpoints(framework_id):
            return
        directory = framework_dir(self.agent.work_dir, str(self.agent.id), framework_id)
        write_json(directory / "framework.info", self.agent.frameworks[framework_id])
        # The scheduler's libprocess pid; an HTTP scheduler has none (`UPID()`).
        write_text(directory / "framework.pid", "")

    def executor(
        self, framework_id: str, info: dict, container_id: str, generated: bool = False
    ) -> None:
        """executor.info, whether the agent made it for a command task, and runs/latest."""
        if not self.checkpoints(framework_id):
            return
        directory = self.executor_meta_dir(framework_id, info["executor_id"]["value"])
        write_json(directory / "executor.info", info)
        write_text(directory / "executor_generated_for_command_task", str(int(generated)))
        (directory / "runs" / container_id).mkdir(parents=True, exist_ok=True)
        relink(directory / "runs" / "latest", container_id)

    def forked(self, framework_id: str, executor_id: str, container_id: str, pid: int) -> None:
        """The pid that the containerizer forked, and when that process started. The process
        runs by now: a disk that refuses the pid is logged (Mesos aborts the agent), and the
        process goes on, supervised, as an update record that cannot be written is logged; an
        agent restarted later would not adopt it."""
        if not self.checkpoints(framework_id):
            return
        start = start_time(pid)
        pids = self._run_dir(framework_id, executor_id, container_id) / "pids"
        try:
            write_text(pids / "forked.pid", str(pid))
            write_text(pids / "forked.starttime", "" if start is None else str(start))
        except OSError as error:
            log.error(
                "%s: failed to checkpoint the pid of executor %s: %s",
                self.agent.name,
                executor_id,
                error,
            )

    def task(self, framework_id: str, executor_id: str, container_id: str, task: dict) -> None:
        """task.info: the task as Mesos checkpoints it (`protobuf::createTask`), in
        TASK_STAGING; like Mesos's `Task`, without the TaskInfo's `data`."""
        if not self.checkpoints(framework_id):
            return
        task_id = task["task_id"]["value"]
        directory = self._run_dir(framework_id, executor_id, container_id) / "tasks" / task_id
        saved = {k: v for k, v in task.items() if k != "data"}
        write_json(
            directory / "task.info",
            {**saved, "framework_id": {"value": framework_id}, "state": "TASK_STAGING"},
        )
        self.task_dirs[(framework_id, task_id)] = directory

    def update_record(self, framework_id: str, task_id: str, record: dict) -> None:
        """A record of the task's status update stream: {"type": "UPDATE", "update": ...} as
        the update enters the stream, {"type": "ACK", "uuid": ...} as it is acknowledged."""
        directory = self.task_dirs.get((framework_id, task_id))
        if directory is None:
            return
        try:
            append_record(directory / "task.updates", record)
        except OSError as error:
            # Mesos aborts the agent here; the update still goes on (only a restart of the
            # agent would miss it), so a full disk does not stop the task's updates.
            log.error(
                "%s: failed to checkpoint an update of task %s: %s", self.agent.name, task_id, error
            )

    def forget(self, framework_id: str) -> None:
        """The framework is no longer kept (evicted from the completed frameworks)."""
        for key in [k for k in self.task_dirs if k[0] == framework_id]:
            del self.task_dirs[key]

    def http_marker(self, framework_id: str, executor_id: str, container_id: str) -> None:
        if self.checkpoints(framework_id):
            path = self._run_dir(framework_id, executor_id, container_id) / "http.marker"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def command_kill(self, run: Run, kill: dict) -> None:
        """The command executor's kill under way: {"grace", "started", "escalation_at"}, the
        times in seconds since the epoch."""
        if self.checkpoints(run.framework_id):
            run_dir = self._run_dir(run.framework_id, run.task_id, run.container_id)
            write_json(run_dir / "command_executor.kill", kill)

    def sentinel(self, framework_id: str, executor_id: str, container_id: str) -> None:
        """The run is over: a recovering agent restores it as completed."""
        if self.checkpoints(framework_id):
            path = self._run_dir(framework_id, executor_id, container_id) / "executor.sentinel"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            except OSError as error:
                # Mesos CHECKs it; here the executor's end is still reported to the master.
                log.error("%s: failed to write '%s': %s", self.agent.name, path, error)


# -- reading (state::recover) -------------------------------------------------------------------


@dataclass
class TaskState:
    id: str
    info: dict  # the TaskInfo as checkpointed (framework_id and state removed)
    records: list[dict]
    directory: Path


@dataclass
class RunState:
    container_id: str
    directory: Path
    pid: int | None
    start: int | None
    http: bool  # http.marker: it had subscribed over HTTP
    completed: bool  # executor.sentinel
    tasks: list[TaskState] = field(default_factory=list)
    kill: dict | None = None  # command_executor.kill


@dataclass
class ExecutorState:
    id: str
    info: dict
    generated: bool  # the agent's command executor of a command task
    run: RunState | None  # the latest run; Mesos garbage-collects the older ones


@dataclass
class FrameworkState:
    id: str
    info: dict
    executors: list[ExecutorState] = field(default_factory=list)


@dataclass
class AgentState:
    info: dict
    rebooted: bool
    frameworks: list[FrameworkState] = field(default_factory=list)
    errors: int = 0


def read_state(work_dir: Path, agent_id: str) -> AgentState | None:
    """What the agent checkpointed, or None if it never registered (nothing to recover, as
    Mesos's "Failed to find the latest agent"). Like Mesos with `--strict=false`, a file that
    cannot be read is skipped and counted, not fatal: a framework without its info, an
    executor without its info, a task without its info."""
    directory = agent_dir(work_dir, agent_id)
    try:
        info = json.loads((directory / "slave.info").read_text())
    except (OSError, ValueError):
        return None
    boot = meta_dir(work_dir) / "boot_id"
    # `state::recover`: after a reboot the forked pids mean nothing (every executor is dead).
    rebooted = boot.exists() and boot.read_text().strip() != current_boot_id()
    state = AgentState(info, rebooted)
    for framework in _children(directory / "frameworks"):
        framework_info = _json(framework / "framework.info", state)
        if framework_info is None:
            continue
        recovered = FrameworkState(framework.name, framework_info)
        for executor in _children(framework / "executors"):
            executor_info = _json(executor / "executor.info", state)
            if executor_info is None:
                continue
            generated = _text(executor / "executor_generated_for_command_task") == "1"
            recovered.executors.append(
                ExecutorState(
                    executor.name,
                    executor_info,
                    generated,
                    _read_run(executor / "runs", rebooted, state),
                )
            )
        state.frameworks.append(recovered)
    return state


def _read_run(runs: Path, rebooted: bool, state: AgentState) -> RunState | None:
    try:
        container_id = os.readlink(runs / "latest")
    except OSError:
        return None
    directory = runs / Path(container_id).name
    pid_text = None if rebooted else _text(directory / "pids" / "forked.pid")
    start_text = _text(directory / "pids" / "forked.starttime")
    run = RunState(
        directory.name,
        directory,
        int(pid_text) if pid_text else None,
        int(start_text) if start_text else None,
        (directory / "http.marker").exists(),
        (directory / "executor.sentinel").exists(),
    )
    if (directory / "command_executor.kill").exists():
        run.kill = _json(directory / "command_executor.kill", state)
    for task in _children(directory / "tasks"):
        info = _json(task / "task.info", state)
        if info is None:
            continue
        info = {k: v for k, v in info.items() if k not in ("framework_id", "state")}
        run.tasks.append(TaskState(task.name, info, _records(task / "task.updates"), task))
    return run


def _children(directory: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    return []


def _text(path: Path) -> str | None:
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    return None


def _json(path: Path, state: AgentState) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("failed to recover %s: %s", path, error)
        state.errors += 1
        return None


def _records(path: Path) -> list[dict]:
    """The stream's records; a last line cut short by a crash is dropped, as Mesos truncates
    a partial record."""
    records = []
    with contextlib.suppress(OSError), open(path) as file:
        for line in file:
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records
