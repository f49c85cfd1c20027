"""What the agent measures: `/monitor/statistics`, each executor's resource usage from its
process tree (src/slave/http.cpp `Http::statistics`, `Slave::usage`, src/usage/usage.cpp), and
`/metrics/snapshot`, the agent's gauges and counters under Mesos's `slave/*` names
(src/slave/metrics.cpp) with the machine's `system/*` ones (libprocess's system process).

Processes are read with psutil, which works the same on Linux and macOS (workshop laptops);
Mesos reads /proc on Linux. Only the agent's thread calls these.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from localmesos.agent.command_executor import EXECUTOR_OVERHEAD, executor_name
from localmesos.agent.operator import framework_ids
from localmesos.protocol import is_terminal
from localmesos.resources import Resources

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent

MB = 1024 * 1024
# The counters that src/slave/metrics.cpp keeps, each starting at 0.
COUNTERS = (
    "slave/tasks_finished",
    "slave/tasks_failed",
    "slave/tasks_killed",
    "slave/tasks_lost",
    "slave/tasks_gone",
    "slave/executors_terminated",
    "slave/executors_preempted",
    "slave/valid_status_updates",
    "slave/invalid_status_updates",
    "slave/valid_framework_messages",
    "slave/invalid_framework_messages",
    "slave/container_launch_errors",
    "slave/recovery_errors",
)


def count(agent: Agent, name: str) -> None:
    agent.counters[name] = agent.counters.get(name, 0) + 1


def count_update(agent: Agent, status: dict) -> None:
    """A status update the agent takes on (`Executor::updateTaskState`): terminal states are
    counted by name, TASK_DROPPED and the like not being among them."""
    count(agent, "slave/valid_status_updates")
    state = status["state"]
    if is_terminal(state):
        name = "slave/tasks_" + state.removeprefix("TASK_").lower()
        if name in COUNTERS:
            count(agent, name)


# -- /monitor/statistics ------------------------------------------------------------------------


def _tree_usage(pid: int) -> tuple[float, float, int] | None:
    """User and system CPU seconds and resident memory of a process and all its
    descendants (usage.cpp sums over `os::pstree`); None once the process is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    user = system = 0.0
    rss = 0
    for process in processes:
        # A child may end between the listing and the reading: it is left out, as Mesos's
        # reading of /proc leaves out a process that has gone.
        try:
            with process.oneshot():
                times, memory = process.cpu_times(), process.memory_info()
        except psutil.Error:
            continue
        user += times.user
        system += times.system
        rss += memory.rss
    return user, system, rss


def _disk_used(directory: Path) -> int:
    """The sandbox's size, as the disk/du isolator measures it."""
    total = 0
    for root, _dirs, names in os.walk(directory):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _statistics(pid: int, resources: Resources, directory: Path) -> dict | None:
    usage = _tree_usage(pid)
    if usage is None:
        return None
    user, system, rss = usage
    cpus = resources.scalar("cpus")
    mem = int(resources.scalar("mem") * MB)
    return {
        "timestamp": time.time(),
        "cpus_user_time_secs": round(user, 2),
        "cpus_system_time_secs": round(system, 2),
        "cpus_soft_limit": cpus,
        # Mesos reports a hard CPU limit only with --cgroups_enable_cfs, and the disk only
        # with the disk/du isolator; the web UI adds these numbers up, so they are always
        # here, as such an agent reports them (CONFORMANCE.md, differences).
        "cpus_limit": cpus,
        "mem_rss_bytes": rss,
        "mem_soft_limit_bytes": mem,
        "mem_limit_bytes": mem,
        "disk_limit_bytes": int(resources.scalar("disk") * MB),
        "disk_used_bytes": _disk_used(directory),
    }


def statistics(agent: Agent) -> list[dict]:
    """One entry per executor that runs (command executors too), with its usage; an
    executor whose processes have gone is left out, as `Slave::usage` leaves out one whose
    usage fails."""
    entries = []
    for run in agent.runs.values():
        if run.process is None:
            continue
        stats = _statistics(run.process.pid, run.resources, run.directory)
        if stats is not None:
            entries.append(
                {
                    "executor_id": run.task_id,
                    "executor_name": executor_name(run.task),
                    "framework_id": run.framework_id,
                    "source": run.task_id,
                    "statistics": stats,
                }
            )
    for executor in agent.executors.values():
        if executor.process is None or executor.state == "TERMINATED":
            continue
        stats = _statistics(executor.process.pid, executor.resources, executor.directory)
        if stats is not None:
            entries.append(
                {
                    "executor_id": executor.id,
                    "executor_name": executor.info.get("name", ""),
                    "framework_id": executor.framework_id,
                    "source": executor.info.get("source", ""),
                    "statistics": stats,
                }
            )
    return entries


# -- /metrics/snapshot --------------------------------------------------------------------------


def metrics_snapshot(agent: Agent) -> dict[str, float]:
    tasks: list[str] = [run.state for run in agent.runs.values()]
    executor_states: list[str] = ["RUNNING" for _ in agent.runs]
    used = Resources()
    for run in agent.runs.values():
        # The command executor's own allowance counts, as `Executor::allocatedResources` does.
        used = used + EXECUTOR_OVERHEAD + run.resources
    for executor in agent.executors.values():
        executor_states.append(executor.state)
        used = used + executor.resources
        for task_id, task in executor.tasks.items():
            tasks.append(executor.task_states.get(task_id, "TASK_STAGING"))
            used = used + Resources.from_json(task.get("resources", []))
    running, _completed = framework_ids(agent)
    snapshot: dict[str, float] = {
        "slave/uptime_secs": time.time() - agent.start_time,
        "slave/registered": float(agent.connected),
        "slave/frameworks_active": float(len(running)),
    }
    for state in ("staging", "starting", "running", "killing"):
        snapshot[f"slave/tasks_{state}"] = float(tasks.count(f"TASK_{state.upper()}"))
    for state in ("registering", "running", "terminating"):
        snapshot[f"slave/executors_{state}"] = float(executor_states.count(state.upper()))
    for name in COUNTERS:
        snapshot[name] = float(agent.counters.get(name, 0))
    # src/slave/gc.cpp's metrics, and the age the disk affords (`Slave::_checkDiskUsage`).
    for name in ("gc/path_removals_succeeded", "gc/path_removals_failed"):
        snapshot[name] = float(agent.counters.get(name, 0))
    snapshot["gc/path_removals_pending"] = float(len(agent.gc.paths))
    snapshot["slave/executor_directory_max_allowed_age_secs"] = agent.gc.max_allowed_age
    for name in ("cpus", "gpus", "mem", "disk"):
        total = agent.resources.scalar(name)
        snapshot[f"slave/{name}_total"] = total
        snapshot[f"slave/{name}_used"] = used.scalar(name)
        snapshot[f"slave/{name}_percent"] = used.scalar(name) / total if total else 0.0
        # No revocable resources here.
        for kind in ("total", "used", "percent"):
            snapshot[f"slave/{name}_revocable_{kind}"] = 0.0
    snapshot.update(system_metrics())
    return dict(sorted(snapshot.items()))


def system_metrics() -> dict[str, float]:
    """libprocess's `system` process (3rdparty/libprocess/include/process/system.hpp)."""
    memory = psutil.virtual_memory()
    load = os.getloadavg()
    return {
        "system/cpus_total": float(psutil.cpu_count() or 0),
        "system/load_1min": load[0],
        "system/load_5min": load[1],
        "system/load_15min": load[2],
        "system/mem_total_bytes": float(memory.total),
        "system/mem_free_bytes": float(memory.available),
    }
