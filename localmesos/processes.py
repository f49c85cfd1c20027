"""Starting task and executor processes, and making sure none of them outlives the cluster.

Each process starts in a new session, as Mesos's posix launcher does: a pymesos executor ends
with ``killpg(0, SIGKILL)``, which must hit its own group and not the cluster's. A separate
watchdog process learns each group as it starts; if the Python process that owns the cluster
dies without cleaning up (SIGKILL, a crashed notebook kernel), the watchdog sees its pipe close
and kills every group that is still registered.

An agent that dies and comes back (`LocalCluster.restart_agent`) finds the executors that its
earlier life started and that outlived it (`Launcher.adopt`), as Mesos's posix launcher
recovers them from their checkpointed pids: the launcher belongs to the cluster, not to an
agent, so it still reaps them and keeps their wait status for whoever adopts them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

# Runs with -I -S: no site-packages to import, so it is up in ~10 ms.
WATCHDOG = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    sign, pid = line[0], int(line[1:])
    if sign == "+":
        groups.add(pid)
    else:
        groups.discard(pid)
for pid in groups:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
"""


def start_watchdog() -> subprocess.Popen:
    """A watchdog process (WATCHDOG above): write "+PGID" lines to its stdin to hand it process
    groups; it kills them when its stdin closes, which happens when this process dies."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", WATCHDOG],
        stdin=subprocess.PIPE,
        start_new_session=True,
        text=True,
        bufsize=1,
    )


# How many ended processes the launcher remembers the wait status of, for adoption.
REMEMBERED_EXITS = 4096
# How often an adopted process that is not a child of this process is looked at.
ADOPTED_POLL = 0.1


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat): with the
    pid, what tells a process from a later one that got the same number. None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19])


class _Exit:
    """What the launcher knows of one process it started: when it started, and its end."""

    __slots__ = ("done", "start", "status")

    def __init__(self, start: int | None) -> None:
        self.start = start
        self.status: int | None = None
        self.done = threading.Event()


class Adopted:
    """A process that an earlier life of an agent started, adopted by the agent that
    recovers (Mesos's launcher `recover`, then the reaper on the checkpointed pid). It stands
    where the agent keeps a `subprocess.Popen`: it has the `pid`, and `wait()`."""

    def __init__(self, launcher: Launcher, pid: int, start: int | None, ended: _Exit | None):
        self.pid = pid
        self._launcher = launcher
        self._start = start
        self._exit = ended

    def ended(self) -> bool:
        """Whether it has ended already (it may have while no agent watched it)."""
        if self._exit is not None:
            return self._exit.done.is_set()
        return start_time(self.pid) != self._start

    def wait(self) -> int | None:
        """Its wait status once it has ended; None if nobody could know it (a process that
        this launcher did not start: Mesos's "terminated with unknown status")."""
        if self._exit is not None:
            self._exit.done.wait()
            return self._exit.status
        while start_time(self.pid) == self._start:
            time.sleep(ADOPTED_POLL)
        self._launcher.forget(self.pid)
        return None


class Launcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._running: dict[int, _Exit] = {}
        self._ended: OrderedDict[int, _Exit] = OrderedDict()
        self._watchdog = start_watchdog()

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        executable: str | None = None,
    ) -> subprocess.Popen:
        """Start ``argv`` in its own session, writing to ``stdout`` and ``stderr`` in ``cwd``."""
        with open(cwd / "stdout", "ab") as stdout, open(cwd / "stderr", "ab") as stderr:
            process = subprocess.Popen(
                list(argv),
                executable=executable,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        with self._lock:
            self._groups.add(process.pid)
            self._running[process.pid] = _Exit(start_time(process.pid))
            self._tell(f"+{process.pid}")
        return process

    def adopt(self, pid: int, start: int | None) -> Adopted | None:
        """The process ``pid`` that started at ``start`` (clock ticks since boot), to be waited
        for again; None if it is gone and its end unknown. A process that this launcher
        started is known even after it ended (its wait status is kept); any other live one is
        watched through /proc, and its group is the launcher's to kill from now on."""
        with self._lock:
            for known in (self._running.get(pid), self._ended.get(pid)):
                if known is not None and known.start == start:
                    return Adopted(self, pid, start, known)
            if start is None or start_time(pid) != start:
                return None
            self._groups.add(pid)
            self._tell(f"+{pid}")
            return Adopted(self, pid, start, None)

    def forget(self, pid: int) -> None:
        with self._lock:
            self._groups.discard(pid)
            self._tell(f"-{pid}")

    def kill_group(self, pid: int, sig: int = signal.SIGKILL) -> None:
        """Signal the group of a process this launcher runs. Only those: once a group's leader
        has been reaped its number may belong to someone else."""
        with self._lock:
            if pid not in self._groups:
                return
        with contextlib.suppress(OSError):
            os.killpg(pid, sig)

    def reap(self, process: subprocess.Popen) -> int:
        """Wait for ``process``; then kill what it left behind in its group. Returns the wait
        status in the raw wait(2) form that Mesos reports (exit 1 is 256, SIGKILL is 9)."""
        waitid = getattr(os, "waitid", None)
        if waitid is not None:
            # Wait without reaping: while the leader is a zombie its group id cannot be reused,
            # so killing the group cannot hit an unrelated process.
            with contextlib.suppress(ChildProcessError, OSError):
                waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            self.kill_group(process.pid)
        returncode = process.wait()
        if waitid is None:
            self.kill_group(process.pid)
        status = (returncode & 0xFF) << 8 if returncode >= 0 else -returncode
        with self._lock:
            self._groups.discard(process.pid)
            self._tell(f"-{process.pid}")
            ended = self._running.pop(process.pid, None)
            if ended is not None:
                ended.status = status
                ended.done.set()
                self._ended[process.pid] = ended
                self._ended.move_to_end(process.pid)
                if len(self._ended) > REMEMBERED_EXITS:
                    self._ended.popitem(last=False)
        return status

    def _tell(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._watchdog.stdin.write(line + "\n")

    def kill_all(self) -> None:
        with self._lock:
            groups = list(self._groups)
        for pid in groups:
            self.kill_group(pid)

    def close(self) -> None:
        """Kill every group still running and stop the watchdog."""
        self.kill_all()
        with contextlib.suppress(OSError, ValueError):
            self._watchdog.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._watchdog.wait(5)
