"""The Mesos command executor as its users see it (src/launcher/executor.cpp): what it writes in
the sandbox's `stderr`, how it kills its task's process tree, and how the agent names and
accounts for it (src/slave/slave.cpp `Slave::getExecutorInfo`).

In Mesos the command executor is a process of its own, `mesos-executor`, that forks the task's
command and reports on it. localmesos's agent plays that part itself, on its own thread: a
process per task would cost an interpreter start (about 30 ms here, where spawning `sh -c true`
costs 1 ms), and a task must start within ten times a bare spawn. The agent writes the lines that
mesos-executor writes, at the moments it writes them, so a sandbox reads the same; the
differences that remain are listed in localmesos/CONFORMANCE.md.

Everything mesos-executor logs goes to its stderr as glog lines (it logs to stderr because it
has no --log_dir: src/logging/logging.cpp), and its task inherits the same stdout and stderr
(`Subprocess::FD(STDOUT_FILENO)`), so the sandbox's `stdout` holds only the task's output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from localmesos.actors import Timer
from localmesos.agent.containerizer import command_argv, executor_environment, wait_status
from localmesos.protocol import MESOS_VERSION, format_duration
from localmesos.resources import Resources

if TYPE_CHECKING:
    from localmesos.agent.command_tasks import Run
    from localmesos.agent.slave import Agent

# slave/constants.hpp DEFAULT_EXECUTOR_CPUS and DEFAULT_EXECUTOR_MEM: the allowance the agent
# adds for every command executor (`Slave::getExecutorInfo`). The master never counts it.
EXECUTOR_OVERHEAD = Resources.parse("cpus:0.1;mem:32")
# launcher/executor.cpp `CommandExecutor::kill`: "Default grace period is set to 3s for
# backwards compatibility".
KILL_GRACE = 3.0
# libprocess's MAX_REAP_INTERVAL: the agent and the executor each leave this much (and one
# second more) of the shutdown grace period for the reaper.
MAX_REAP_INTERVAL = 1.0
# slave/constants.hpp RECOVERY_TIMEOUT (the agent's --recovery_timeout, MESOS_RECOVERY_TIMEOUT):
# how long an executor of a checkpointing framework waits for its agent to come back.
RECOVERY_TIMEOUT = 15 * 60.0


# -- the executor's name and grace periods (`Slave::getExecutorInfo`) --------------------------


def executor_name(task: dict) -> str:
    """ "Command Executor (Task: <id>) (Command: sh -c '<first 12 characters>...')"."""
    command = task.get("command", {})
    name = f"(Task: {task['task_id']['value']}) "
    value = command.get("value")
    if command.get("shell", True):
        if value is None:
            name += "(Command: NO COMMAND)"
        else:
            shown = value[:12] + "..." if len(value) > 15 else value
            name += f"(Command: sh -c '{shown}')"
    elif value is None:
        name += "(Command: NO EXECUTABLE)"
    else:
        # Mesos joins the value and the arguments, so "<value>, " even without arguments.
        args = value + ", " + ", ".join(command.get("arguments", []))
        name += f"(Command: [{args[:12]}...])" if len(args) > 15 else f"(Command: [{args}])"
    return "Command Executor " + name


def executor_info(run: Run) -> dict:
    """`Slave::getExecutorInfo` for a task without an executor: the ExecutorInfo of the command
    executor Mesos starts for it, with the executor's own 0.1 cpus and 32 MB, the task's URIs,
    environment, user, container, labels and discovery, and a shutdown grace period when the
    task has a kill policy. localmesos's agent runs the command itself; the ExecutorInfo names
    the program Mesos would start. It is what the agent checkpoints and what GET_EXECUTORS
    shows."""
    task = run.task
    command = task.get("command", {})
    executor_command: dict[str, Any] = {
        "shell": False,
        "value": "mesos-executor",
        "arguments": ["mesos-executor"],
    }
    for key in ("uris", "environment", "user"):
        if key in command:
            executor_command[key] = command[key]
    info: dict[str, Any] = {
        "executor_id": {"value": run.task_id},
        "framework_id": {"value": run.framework_id},
        "name": executor_name(task),
        "source": run.task_id,
        "command": executor_command,
        "resources": EXECUTOR_OVERHEAD.to_json(),
    }
    for key in ("labels", "discovery", "container"):
        if key in task:
            info[key] = task[key]
    if _grace(task.get("kill_policy")) is not None:
        info["shutdown_grace_period"] = {"nanoseconds": int(run.shutdown_grace * 1e9)}
    return info


def _grace(policy: dict | None) -> float | None:
    if policy and "grace_period" in policy:
        return policy["grace_period"].get("nanoseconds", 0) / 1e9
    return None


def shutdown_grace(task: dict, default: float) -> float:
    """The command executor's shutdown grace period: the task's kill grace plus a margin for
    the reaper when the task has a kill policy, else the agent's --executor_shutdown_grace_period
    (`Slave::getExecutorInfo`)."""
    grace = _grace(task.get("kill_policy"))
    return default if grace is None else grace + MAX_REAP_INTERVAL + 1.0


def kill_grace(kill_policy: dict | None, task: dict) -> float:
    """A KILL's grace period: the KILL's own policy, else the task's, else 3 s
    (`CommandExecutor::kill`)."""
    for policy in (kill_policy, task.get("kill_policy")):
        grace = _grace(policy)
        if grace is not None:
            return grace
    return KILL_GRACE


def shutdown_kill_grace(shutdown_grace_period: float) -> float:
    """SHUTDOWN kills the task with what is left of the shutdown grace period once the
    reaper's margin is taken off: 3 s of the default 5 s (`CommandExecutor::shutdown`)."""
    return max(shutdown_grace_period - MAX_REAP_INTERVAL - 1.0, 0.0)


# -- its log -----------------------------------------------------------------------------------


def glog_lines(severity: str, *lines: tuple[str, str]) -> str:
    """Lines as glog writes them: `I0823 14:59:00.100000  4242 executor.cpp:722] message`,
    each ``(file:line, message)``. The thread ID is the writing thread's (mesos-executor's own
    threads have none here)."""
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now))
    prefix = f"{severity}{stamp}.{int(now % 1 * 1e6):06d} {threading.get_native_id():>5} "
    return "".join(f"{prefix}{where}] {message}\n" for where, message in lines)


class SandboxLog:
    """mesos-executor's glog output: appended to the sandbox's `stderr`, as the task's own
    stderr is (both open it with O_APPEND)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "stderr"
        self._file: BinaryIO | None = None

    def info(self, *lines: tuple[str, str]) -> None:
        self.append(glog_lines("I", *lines))

    def write(self, severity: str, *lines: tuple[str, str]) -> None:
        self.append(glog_lines(severity, *lines))

    def append(self, text: str) -> None:
        # A log that cannot be written (the sandbox removed under the agent) must not stop
        # the task's life cycle; mesos-executor's glog drops it too.
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.write(text.encode())
                return
            with open(self.path, "ab", buffering=0) as file:
                file.write(text.encode())

    @contextlib.contextmanager
    def kept_open(self) -> Iterator[None]:
        """Write through one open file meanwhile: a task's start writes three times, and
        every open costs on the path to TASK_RUNNING."""
        try:
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        except OSError:
            yield
            return
        try:
            yield
        finally:
            self._file.close()
            self._file = None


# The v0 executor driver's first line (src/exec/exec.cpp `ExecutorProcess`): the command
# executor uses that driver by default (`--http_command_executor=false`).
VERSION_LINE = ("exec.cpp:164", f"Version: {MESOS_VERSION}")


def registered_lines(agent_id: str, hostname: str) -> list[tuple[str, str]]:
    """What mesos-executor logs from its start to its SUBSCRIBED event."""
    return [
        VERSION_LINE,
        ("exec.cpp:237", f"Executor registered on agent {agent_id}"),
        ("executor.cpp:190", "Received SUBSCRIBED event"),
        ("executor.cpp:194", f"Subscribed executor on {hostname}"),
    ]


def reconnected_lines(agent_id: str, hostname: str) -> list[tuple[str, str]]:
    """What mesos-executor logs when its agent, back after a restart, asks it to reconnect
    (`ExecutorProcess::reconnect`, `reregistered`; the V0ToV1Adapter's SUBSCRIBED event)."""
    return [
        ("exec.cpp:283", f"Received reconnect request from agent {agent_id}"),
        ("exec.cpp:260", f"Executor reregistered on agent {agent_id}"),
        ("executor.cpp:190", "Received SUBSCRIBED event"),
        ("executor.cpp:194", f"Subscribed executor on {hostname}"),
    ]


def shutdown_lines() -> list[tuple[str, str]]:
    """The agent's ShutdownExecutorMessage through the v0 driver (`ExecutorProcess::shutdown`)
    to `CommandExecutor::shutdown`."""
    return [
        ("exec.cpp:478", "Executor asked to shutdown"),
        ("executor.cpp:190", "Received SHUTDOWN event"),
        ("executor.cpp:843", "Shutting down"),
    ]


# -- the executor --------------------------------------------------------------------------------


class CommandExecutor:
    """mesos-executor for one command task (launcher/executor.cpp `CommandExecutor`), played
    by ``agent`` on its own thread: it writes mesos-executor's lines, forks the command, sends
    the executor's status updates, and kills the command's process tree. The agent calls it
    as the v0 driver would call the real one: `launch`, `kill`, `shutdown`, and `reaped` once
    the command's process is gone."""

    def __init__(self, agent: Agent, run: Run) -> None:
        self.agent = agent
        self.run = run
        self.log = SandboxLog(run.directory)
        self.killed = False  # SIGTERM sent; SIGKILL is due at `escalation_at`
        self.kill_started = 0.0
        self.escalation_at = 0.0
        self.escalation: Timer | None = None

    def launch(self) -> bool:
        """Register, get the task, fork the command (`CommandExecutor::launch`); False if the
        command could not be started."""
        agent, run = self.agent, self.run
        # The lines up to the fork are stamped when they happen but written at once, after
        # TASK_STARTING has gone out: its acknowledgement is on the way to TASK_RUNNING.
        started = glog_lines(
            "I",
            *registered_lines(str(agent.id), agent.hostname),
            ("executor.cpp:190", "Received LAUNCH event"),
        )
        agent.executor_update(run, "TASK_STARTING")  # before the fork (MESOS-7941)
        argv, executable = command_argv(run.command)
        env = executor_environment(
            agent, run.framework_id, run.task_id, run.directory, run.command, run.shutdown_grace
        )
        with self.log.kept_open():
            self.log.append(
                started + glog_lines("I", ("executor.cpp:722", f"Starting task {run.task_id}"))
            )
            try:
                run.process = agent.launcher.spawn(
                    argv,
                    executable=executable,
                    cwd=run.directory,
                    env=env | {"MESOS_TASK_ID": run.task_id},
                )
            except OSError as error:
                # In Mesos the fork succeeds and mesos-containerizer's exec fails, which it
                # says on the task's stderr before exiting with status 1
                # (src/slave/containerizer/mesos/launch.cpp).
                self.log.append(f"Failed to execute '{executable}': {error.strerror}\n")
            else:
                self.log.info(("executor.cpp:740", f"Forked command at {run.process.pid}"))
        if run.process is None:
            agent.executor_update(run, "TASK_FAILED", "Command exited with status 1")
            return False
        agent.executor_update(run, "TASK_RUNNING")
        return True

    def reaped(self, status: int) -> None:
        """The command ended (`CommandExecutor::reaped`): TASK_KILLED if it was killed or
        shut down, whatever it then did; else TASK_FINISHED for status 0, else TASK_FAILED."""
        assert self.run.process is not None
        self.stop_escalation()
        message = f"Command {wait_status(status)}"
        self.log.info(("executor.cpp:1041", f"{message} (pid: {self.run.process.pid})"))
        if self.killed:
            self.agent.executor_update(self.run, "TASK_KILLED", message)
        elif status == 0:
            self.agent.executor_update(self.run, "TASK_FINISHED", message)
        else:
            self.agent.executor_update(self.run, "TASK_FAILED", message)

    def stop_escalation(self) -> None:
        if self.escalation is not None:
            self.escalation.cancel()

    def kill(self, kill_policy: dict | None) -> None:
        """A KILL (`CommandExecutor::kill`, public)."""
        grace = kill_grace(kill_policy, self.run.task)
        self.log.info(
            ("executor.cpp:190", "Received KILL event"),
            (
                "executor.cpp:835",
                f"Received kill for task {self.run.task_id} with grace period of "
                f"{format_duration(grace)}",
            ),
        )
        self._kill(grace)

    def shutdown(self) -> None:
        """The agent's ShutdownExecutorMessage: the task is killed with the shutdown grace
        period less the reaper's margin (`CommandExecutor::shutdown`)."""
        self.log.info(*shutdown_lines())
        self._kill(shutdown_kill_grace(self.run.shutdown_grace))

    def agent_exited(self, checkpoint: bool) -> None:
        """Its agent's process died (`ExecutorProcess::exited`): with checkpointing it waits
        for the agent to come back; without, it shuts down (the agent then kills the task at
        once, see `Agent.exit`)."""
        if checkpoint:
            waited = format_duration(RECOVERY_TIMEOUT)
            self.log.info(
                (
                    "exec.cpp:551",
                    "Agent exited, but framework has checkpointing enabled. Waiting "
                    f"{waited} to reconnect with agent {self.agent.id}",
                )
            )
        else:
            self.log.info(("exec.cpp:560", "Agent exited ... shutting down"))

    def reconnected(self) -> None:
        """The restarted agent found the command still running and reconnected to this
        executor (`Slave::_recover` sends ReconnectExecutorMessage)."""
        self.log.info(*reconnected_lines(str(self.agent.id), self.agent.hostname))

    def resume_kill(self, kill: dict, escalate: bool) -> None:
        """The kill that was under way when the agent died, as checkpointed: the task is
        reported killed, and the escalation to SIGKILL goes on from where it was (at once if
        it was due meanwhile), as mesos-executor's own timer would have gone on."""
        now, wall = time.monotonic(), time.time()
        grace = float(kill["grace"])
        remaining = max(float(kill["escalation_at"]) - wall, 0.0)
        self.killed = True
        self.kill_started = now - max(wall - float(kill["started"]), 0.0)
        self.escalation_at = now + remaining
        if escalate:
            self.escalation = self.agent.after(remaining, self._escalated, grace)

    def shutdown_before_launch(self) -> None:
        """Told to shut down as soon as it starts, its task killed while the URIs were fetched
        (`Slave::registerExecutor`): with no task launched, it just ends."""
        self.log.info(VERSION_LINE, *shutdown_lines())

    def _kill(self, grace: float) -> None:
        """SIGTERM to the command's process tree, SIGKILL after ``grace`` (the private
        `CommandExecutor::kill`)."""
        run = self.run
        assert run.process is not None
        now = time.monotonic()
        if self.killed:
            # A second kill can only bring the escalation closer, never put it off.
            if self.kill_started + grace > self.escalation_at:
                return
            remaining = max(grace - (now - self.kill_started), 0.0)
            self.log.info(
                (
                    "executor.cpp:917",
                    f"Rescheduling escalation to SIGKILL in {format_duration(remaining)} from now",
                )
            )
            self.stop_escalation()
            self.escalation_at = now + remaining
            self.escalation = self.agent.after(remaining, self._escalated, grace)
            self._checkpoint_kill(grace)
            return
        capabilities = self.agent.frameworks.get(run.framework_id, {}).get("capabilities", [])
        if any(c.get("type") == "TASK_KILLING_STATE" for c in capabilities):
            self.agent.executor_update(run, "TASK_KILLING")
        pid = run.process.pid
        self.log.info(("executor.cpp:956", f"Sending SIGTERM to process tree at pid {pid}"))
        trees = self._signal_tree(signal.SIGTERM, "executor.cpp:962")
        if trees is not None:
            self.log.info(
                ("executor.cpp:969", f"Sent SIGTERM to the following process trees:\n{trees}")
            )
        self.log.info(
            (
                "executor.cpp:973",
                f"Scheduling escalation to SIGKILL in {format_duration(grace)} from now",
            )
        )
        self.killed = True
        self.kill_started = now
        self.escalation_at = now + grace
        self.escalation = self.agent.after(grace, self._escalated, grace)
        self._checkpoint_kill(grace)

    def _checkpoint_kill(self, grace: float) -> None:
        """In Mesos the kill goes on in mesos-executor whatever becomes of the agent; here the
        agent is that executor, so it checkpoints the kill to carry it on after a restart."""
        now, wall = time.monotonic(), time.time()
        self.agent.checkpointer.command_kill(
            self.run,
            {
                "grace": grace,
                "started": wall - (now - self.kill_started),
                "escalation_at": wall + (self.escalation_at - now),
            },
        )

    def _escalated(self, grace: float) -> None:
        """`CommandExecutor::escalated`."""
        assert self.run.process is not None
        pid = self.run.process.pid
        self.log.info(
            (
                "executor.cpp:1082",
                f"Process {pid} did not terminate after {format_duration(grace)}, "
                f"sending SIGKILL to process tree at {pid}",
            )
        )
        trees = self._signal_tree(signal.SIGKILL, "executor.cpp:1094")
        if trees is not None:
            self.log.info(("executor.cpp:1102", f"Killed the following process trees:\n{trees}"))

    def _signal_tree(self, sig: int, where: str) -> str | None:
        """Signal the command's process tree; the trees signalled, as stout prints them, or
        None if /proc could not be read, in which case only the command's own process is
        signalled, as mesos-executor does when os::killtree fails."""
        assert self.run.process is not None
        pid = self.run.process.pid
        try:
            return format_trees(killtree(pid, sig))
        except OSError as error:
            self.log.write(
                "E", (where, f"Failed to kill the process tree rooted at pid {pid}: {error}")
            )
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
            return None


# -- process trees (stout's os::killtree, os::pstrees and their printing) ----------------------


@dataclass
class Process:
    pid: int
    parent: int
    group: int
    session: int
    command: str
    zombie: bool


@dataclass
class ProcessTree:
    process: Process
    children: list[ProcessTree] = field(default_factory=list)

    def contains(self, pid: int) -> bool:
        return self.process.pid == pid or any(child.contains(pid) for child in self.children)

    def __str__(self) -> str:
        """stout's `operator<<(std::ostream&, const ProcessTree&)`."""
        process = self.process
        command = f"({process.command})" if process.zombie else process.command
        text = f"{'-+-' if self.children else '---'} {process.pid} {command}"
        for i, child in enumerate(self.children):
            inner = str(child)
            if i < len(self.children) - 1:
                text += "\n |" + inner.replace("\n", "\n |")
            else:
                text += "\n \\" + inner.replace("\n", "\n  ")
        return text


def format_trees(trees: list[ProcessTree]) -> str:
    """stout's `stringify(const std::list<os::ProcessTree>&)`."""
    return "[ \n" + "\n\n".join(str(tree) for tree in trees) + "\n]"


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """State, parent, process group and session of ``pid`` from /proc/<pid>/stat."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name is in parentheses and may itself hold spaces and parentheses.
    fields = data[data.rindex(b")") + 2 :].split(None, 4)
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])


def _all_stats() -> dict[int, tuple[str, int, int, int]]:
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                stats[int(name)] = stat
    return stats


def _process(pid: int) -> Process | None:
    """stout's os::process: the command line is /proc/<pid>/cmdline with a space after each
    argument (proc::cmdline), which is empty for a zombie."""
    stat = _stat(pid)
    if stat is None:
        return None
    state, parent, group, session = stat
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return Process(pid, parent, group, session, command, state == "Z")


def killtree(pid: int, sig: int) -> list[ProcessTree]:
    """stout's os::killtree(pid, sig, groups=true, sessions=true), as the command executor
    calls it: stop every process of the tree rooted at ``pid``, of each process group and
    session met on the way (not those of ``pid``'s parent), signal them all, continue them,
    and return the trees signalled. Each process is stopped before its children are looked
    for, so none can fork a child that escapes."""
    stats = _all_stats()
    queue: deque[int] = deque()
    visited_groups: set[int] = set()
    visited_sessions: set[int] = set()
    if pid in stats:
        queue.append(pid)
        parent = stats.get(stats[pid][1])
        if parent is not None:
            visited_groups.add(parent[2])
            visited_sessions.add(parent[3])
    else:
        # The root is gone: what is left of the group or session that it led.
        queue.extend(p for p, s in stats.items() if pid in (s[2], s[3]))
        if not queue:
            return []
    visited: dict[int, Process] = {}
    while queue:
        current = queue.popleft()
        if current in visited:
            continue
        process = _process(current)
        if process is None:
            continue
        with contextlib.suppress(OSError):
            os.kill(current, signal.SIGSTOP)
        visited[current] = process
        stats = _all_stats()
        queue.extend(p for p, s in stats.items() if s[1] == current)
        if process.group not in visited_groups:
            queue.extend(p for p, s in stats.items() if s[2] == process.group)
            visited_groups.add(process.group)
        if process.session not in visited_sessions:
            queue.extend(p for p, s in stats.items() if s[3] == process.session)
            visited_sessions.add(process.session)
    for each in (sig, signal.SIGCONT):
        for current in sorted(visited):
            with contextlib.suppress(OSError):
                os.kill(current, each)
    return _pstrees(sorted(visited), list(visited.values()))


def _pstree(pid: int, processes: list[Process]) -> ProcessTree:
    children = [_pstree(p.pid, processes) for p in processes if p.parent == pid]
    return ProcessTree(next(p for p in processes if p.pid == pid), children)


def _pstrees(pids: list[int], processes: list[Process]) -> list[ProcessTree]:
    """stout's os::pstrees: the fewest trees that hold every one of ``pids``."""
    trees: list[ProcessTree] = []
    for pid in pids:
        if any(tree.contains(pid) for tree in trees):
            continue
        tree = _pstree(pid, processes)
        trees = [t for t in trees if not tree.contains(t.process.pid)] + [tree]
    return trees
