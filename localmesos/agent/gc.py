"""The agent's garbage collector of sandboxes (src/slave/gc.cpp `GarbageCollectorProcess`,
slave.cpp `Slave::garbageCollect`, `checkDiskUsage`, `_checkDiskUsage`).

What the agent no longer needs is scheduled for removal `--gc_delay` after it was last
modified: an executor's run directory and its executor directory once the executor is gone
(`Slave::removeExecutor`), a framework's directory once nothing of it is left
(`Slave::removeFramework`), each in the work directory and, for frameworks that checkpoint,
in the meta directory too. Every `--disk_watch_interval` the agent measures the disk its
work directory is on, and removes at once whatever is older than the age the disk can afford:
`gc_delay * max(0, 1 - gc_disk_headroom - usage)`. A removed sandbox is detached from /files
(`garbageCollect(path).onAny(detachFile(path))`); /state keeps showing its executor, as Mesos
does, until the completed-executor caps drop it.

Mesos removes on a thread of its own; here the agent's thread does it, so that /files never
serves a directory half removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from localmesos import protocol
from localmesos.actors import Timer
from localmesos.agent import monitor

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent

log = logging.getLogger("localmesos.agent")

# slave/constants.hpp GC_DELAY, GC_DISK_HEADROOM, DISK_WATCH_INTERVAL; slave/flags.cpp.
GC_DELAY = 7 * 24 * 3600.0
GC_DISK_HEADROOM = 0.1
DISK_WATCH_INTERVAL = 60.0

# How full the disk of a path is, in [0, 1]; tests give a fake one.
DiskUsage = Callable[[Path], float]


def disk_usage(path: Path) -> float:
    """stout's `fs::usage`: the share of the file system's blocks in use, root's reserve
    counted as free (`(f_blocks - f_bfree) / f_blocks`)."""
    usage = shutil.disk_usage(path)
    return usage.used / usage.total if usage.total else 0.0


def validate(gc_delay: float, gc_disk_headroom: float, disk_watch_interval: float) -> None:
    """The agent's flag checks; ValueError in Mesos's words (slave.cpp `Slave::initialize`)."""
    if not 0.0 <= gc_disk_headroom <= 1.0:
        raise ValueError(
            f"Invalid value '{gc_disk_headroom}' for --gc_disk_headroom. "
            "Must be between 0.0 and 1.0"
        )
    # Mesos takes any duration here; a negative one only makes sense by accident.
    if gc_delay < 0:
        raise ValueError(f"Invalid value '{gc_delay}' for --gc_delay: must not be negative")
    if not disk_watch_interval > 0:
        raise ValueError(
            f"Invalid value '{disk_watch_interval}' for --disk_watch_interval: "
            "must be greater than zero"
        )


@dataclass
class _Scheduled:
    removal: float  # time.monotonic() when it is due
    timer: Timer
    then: list[Callable[[], None]] = field(default_factory=list)


class GarbageCollector:
    """Runs on the agent's thread: its timers are the agent's."""

    def __init__(
        self,
        agent: Agent,
        *,
        delay: float = GC_DELAY,
        disk_headroom: float = GC_DISK_HEADROOM,
        disk_watch_interval: float = DISK_WATCH_INTERVAL,
        usage: DiskUsage = disk_usage,
    ) -> None:
        validate(delay, disk_headroom, disk_watch_interval)
        self.agent = agent
        self.delay = delay
        self.disk_headroom = disk_headroom
        self.disk_watch_interval = disk_watch_interval
        self.usage = usage
        self.paths: dict[Path, _Scheduled] = {}
        # `slave/executor_directory_max_allowed_age_secs`.
        self.max_allowed_age = delay

    def start(self) -> None:
        self.agent.after(self.disk_watch_interval, self.check_disk_usage)

    def schedule(self, path: Path, then: Callable[[], None] | None = None) -> None:
        """`Slave::garbageCollect`: remove ``path`` `gc_delay` after its last modification,
        then call ``then`` (removed or not, as `.onAny`). The callers touch it first, as Mesos
        calls `os::utime`, so the delay runs from now."""
        try:
            os.utime(path, follow_symlinks=False)
            mtime = path.lstat().st_mtime
        except OSError as error:
            log.error("Failed to find the mtime of '%s': %s", path, error)
            if then is not None:
                then()
            return
        delay = max(0.0, self.delay - (time.time() - mtime))
        log.info("Scheduling '%s' for gc %s in the future", path, protocol.format_duration(delay))
        scheduled = self.paths.get(path)
        if scheduled is not None:  # `GarbageCollectorProcess::schedule`: rescheduled
            scheduled.timer.cancel()
        callbacks = scheduled.then if scheduled is not None else []
        if then is not None:
            callbacks.append(then)
        self.paths[path] = _Scheduled(
            time.monotonic() + delay, self.agent.after(delay, self._remove, path), callbacks
        )

    def unschedule(self, path: Path) -> None:
        """A framework that is back on the agent keeps its directory (`Slave::run`)."""
        scheduled = self.paths.pop(path, None)
        if scheduled is not None:
            scheduled.timer.cancel()
            log.info("Unscheduling '%s' from gc", path)

    def check_disk_usage(self) -> None:
        try:
            usage = self.usage(self.agent.work_dir)
        except OSError as error:
            log.error("Failed to get disk usage: %s", error)
        else:
            self.max_allowed_age = self.delay * max(0.0, 1.0 - self.disk_headroom - usage)
            log.info(
                "Current disk usage %.2f%%. Max allowed age: %s",
                100 * usage,
                protocol.format_duration(self.max_allowed_age),
            )
            self.prune(self.delay - self.max_allowed_age)
        self.agent.after(self.disk_watch_interval, self.check_disk_usage)

    def prune(self, within: float) -> None:
        """Remove now every path due within ``within`` seconds (`GarbageCollectorProcess::
        prune`): those at least `age` old."""
        now = time.monotonic()
        for path, scheduled in list(self.paths.items()):
            if scheduled.removal - now <= within:
                log.info(
                    "Pruning directories with remaining removal time %s",
                    protocol.format_duration(max(0.0, scheduled.removal - now)),
                )
                self._remove(path)

    def _remove(self, path: Path) -> None:
        scheduled = self.paths.pop(path, None)
        if scheduled is None:
            return  # pruned already, or unscheduled
        scheduled.timer.cancel()
        log.info("Deleting %s", path)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as error:
            monitor.count(self.agent, "gc/path_removals_failed")
            log.warning("Failed to delete '%s': %s", path, error)
        else:
            monitor.count(self.agent, "gc/path_removals_succeeded")
            log.info("Deleted '%s'", path)
        for then in scheduled.then:
            then()
