"""The agent's long runs (issue 16): what 1,000 tasks leave behind with sandbox GC on, what a
framework that stops reading its stream costs another one under --offer_timeout, and what an
agent keeps after 300 frameworks have come and gone. The quick versions are
tests/reliability/test_agent_disk.py and test_frameworks.py.

Everything runs in this process (LocalCluster): the memory figure is this process's RSS,
agents and masters included, measured after a warm-up past the caps that fill with the first
tasks and a `gc.collect()`; RSS also holds what the allocator keeps of freed memory, so the
figure is an upper bound of what the cluster keeps.
"""

from __future__ import annotations

import gc
import json
import os
import time
import urllib.request
from pathlib import Path

import psutil

from bench.client import Scheduler, accept_with_true_tasks
from bench.soak import Figure
from localmesos.cluster import LocalCluster

TASKS = 2000
# Past every bound that fills with the first tasks, as Mesos's do: the master's 1,000 completed
# tasks per framework, the agent's 150 completed executors per framework, the 4,096 exits the
# launcher remembers for adoption. What grows after that grows for ever.
WARMUP = 4500
CPUS = 0.01
MEM = 8.0
GC_DELAY = 1.0
OFFER_TIMEOUT = 1.0
STALLED_TASKS = 40
CHURN = 300
TIMEOUT = 600.0


def flood(scheduler: Scheduler, total: int, prefix: str) -> float:
    """Run ``total`` `true` tasks to TASK_FINISHED, as many per offer as fit, every update
    acknowledged (a task lost, say launched on an offer rescinded meanwhile, is launched
    again); the seconds from the first offer to the last TASK_FINISHED."""
    serial = active = finished = 0
    ended: set[str] = set()
    started: float | None = None
    deadline = time.monotonic() + TIMEOUT
    while finished < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{finished} of {total} tasks finished within {TIMEOUT} s")
        event = scheduler.event()
        if event["type"] == "OFFERS":
            started = started or time.perf_counter()
            for offer in event["offers"]["offers"]:
                fits = accept_with_true_tasks(
                    scheduler, offer, prefix, serial, total - finished - active, CPUS, MEM
                )
                serial += fits
                active += fits
        elif event["type"] == "UPDATE":
            status = event["update"]["status"]
            scheduler.acknowledge(status)
            task_id, state = status["task_id"]["value"], status["state"]
            # A terminal update may come twice (the agent retries one not acknowledged in time).
            if (
                state not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")
                and task_id not in ended
            ):
                ended.add(task_id)
                active -= 1
                finished += state == "TASK_FINISHED"
    assert started is not None
    return time.perf_counter() - started


def inodes(root: Path) -> int:
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(root))


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def agent_get(cluster: LocalCluster, agent_id: str, path: str) -> dict:
    with urllib.request.urlopen(cluster.agent_url(agent_id) + path, timeout=30) as response:
        return json.loads(response.read())


def sandboxes_and_memory() -> list[Figure]:
    with LocalCluster(
        1,
        resources="cpus:4;mem:4096;disk:4096;ports:[31000-31099]",
        allocation_interval=0.05,
        gc_delay=GC_DELAY,
        disk_watch_interval=GC_DELAY,
    ) as cluster:
        (agent_id,) = cluster.agents
        scheduler = Scheduler(cluster.master, name="soak-agent")
        try:
            flood(scheduler, WARMUP, "warmup")
            time.sleep(3 * GC_DELAY)  # the warm-up's sandboxes go
            memory, files = rss_mb(), inodes(cluster.work_dir)
            seconds = flood(scheduler, TASKS, "soak")

            def pending() -> float:
                return agent_get(cluster, agent_id, "/metrics/snapshot")["gc/path_removals_pending"]

            deadline = time.monotonic() + 60
            while pending() and time.monotonic() < deadline:
                time.sleep(0.2)
            memory_after, files_after = rss_mb(), inodes(cluster.work_dir)
            left = pending()
        finally:
            scheduler.close()
    per_thousand = 1000 / TASKS
    details = (
        f"{TASKS} tasks in {seconds:.1f} s, --gc_delay {GC_DELAY:g}s; "
        f"RSS {memory:.1f} -> {memory_after:.1f} MB, inodes {files} -> {files_after}, "
        f"{left:g} paths still scheduled",
    )
    return [
        Figure(
            "memory per 1,000 tasks with GC",
            (memory_after - memory) * per_thousand,
            "MB",
            "+12 MB per 1,000 tasks",
            bound=4.0,
            details=details,
        ),
        Figure(
            "inodes per 1,000 tasks with GC",
            (files_after - files) * per_thousand,
            "inodes",
            "+6,000 inodes per 1,000 tasks",
            bound=50.0,
        ),
    ]


def offered_without_timeout(seconds: float = 5.0) -> float:
    """The same stalled framework without --offer_timeout (Mesos's default): the most cpus
    a second framework is offered in ``seconds``, read from the master's state."""
    with LocalCluster(
        1, resources="cpus:2;mem:2048;disk:1024;ports:[31000-31099]", allocation_interval=0.1
    ) as cluster:
        stalled = Scheduler(cluster.master, name="stalled")  # never reads
        try:
            while not any(f["offered_resources"]["cpus"] for f in cluster.state()["frameworks"]):
                time.sleep(0.05)
            working = Scheduler(cluster.master, name="working")
            try:
                most = 0.0
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    for framework in cluster.state()["frameworks"]:
                        if framework["name"] == "working":
                            most = max(most, framework["offered_resources"]["cpus"])
                    time.sleep(0.1)
            finally:
                working.close()
        finally:
            stalled.close()
    return most


def stalled_framework() -> list[Figure]:
    """A working framework's tasks/s alone, then with a framework that took every cpu in one
    offer and stopped reading, under --offer_timeout."""
    with LocalCluster(
        1,
        resources="cpus:2;mem:2048;disk:1024;ports:[31000-31099]",
        allocation_interval=0.1,
        offer_timeout=OFFER_TIMEOUT,
    ) as cluster:
        working = Scheduler(cluster.master, name="working")
        try:
            alone = STALLED_TASKS / flood(working, STALLED_TASKS, "alone")
            working.call("SUPPRESS")
            stalled = Scheduler(cluster.master, name="stalled")  # never reads again
            try:
                deadline = time.monotonic() + 30
                while not any(
                    f["name"] == "stalled" and f["offered_resources"]["cpus"] == 2
                    for f in cluster.state()["frameworks"]
                ):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the stalled framework got no offer")
                    time.sleep(0.05)
                working.call("REVIVE")
                shared = STALLED_TASKS / flood(working, STALLED_TASKS, "shared")
            finally:
                stalled.close()
        finally:
            working.close()
    without = offered_without_timeout()
    return [
        Figure(
            f"working framework tasks/s beside a stalled one (--offer_timeout {OFFER_TIMEOUT:g}s)",
            shared,
            "tasks/s",
            "5 -> 0 tasks/s (offers never expired)",
            details=(
                f"alone: {alone:.1f} tasks/s; beside the stalled one: {shared:.1f} tasks/s",
                f"without --offer_timeout (Mesos's default) the working framework was offered "
                f"{without:g} cpus in 5 s",
            ),
        ),
        Figure(
            "slowdown beside a stalled framework (alone / beside)",
            alone / shared,
            "x",
            "infinite (0 tasks/s)",
            bound=50.0,
        ),
    ]


def churn() -> list[Figure]:
    with LocalCluster(
        1, resources="cpus:2;mem:2048;disk:1024;ports:[31000-31099]", allocation_interval=0.02
    ) as cluster:
        (agent_id,) = cluster.agents
        for n in range(CHURN):
            framework = Scheduler(cluster.master, name=f"churn-{n}")
            try:
                flood(framework, 1, f"churn-{n}")
                framework.teardown()
            finally:
                framework.close()
        deadline = time.monotonic() + 30
        while (state := agent_get(cluster, agent_id, "/state"))["frameworks"]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        agent = cluster._agent(agent_id)
        kept = agent.call(lambda: len(agent.frameworks))
    return [
        Figure(
            f"agent /state frameworks after {CHURN} frameworks came and went",
            len(state["frameworks"]),
            "frameworks",
            "300",
            bound=0,
            details=(
                f"completed_frameworks: {len(state['completed_frameworks'])} (Mesos keeps 50); "
                f"frameworks the agent keeps in memory: {kept}",
            ),
        ),
        Figure(
            f"frameworks an agent keeps after {CHURN} came and went",
            kept,
            "frameworks",
            "300",
            bound=50,
        ),
    ]


def run() -> list[Figure]:
    return [*sandboxes_and_memory(), *stalled_framework(), *churn()]
