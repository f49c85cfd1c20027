"""Starting task and executor processes, and making sure none of them outlives the cluster.

Each process starts in a new session, as Mesos's posix launcher does: a pymesos executor ends
with ``killpg(0, SIGKILL)``, which must hit its own group and not the cluster's. A separate
watchdog process learns each group as it starts; if the Python process that owns the cluster
dies without cleaning up (SIGKILL, a crashed notebook kernel), the watchdog sees its pipe close
and kills every group that is still registered.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
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


class Launcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
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
            self._tell(f"+{process.pid}")
        return process

    def kill_group(self, pid: int, sig: int = signal.SIGKILL) -> None:
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
        with self._lock:
            self._groups.discard(process.pid)
            self._tell(f"-{process.pid}")
        return (returncode & 0xFF) << 8 if returncode >= 0 else -returncode

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
