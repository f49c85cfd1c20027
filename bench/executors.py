"""Step 2's two figures: how long a custom executor takes to start, and how many chunks per
second the job runs as command tasks (step 1) and on reused executors (step 2).

Executor launch: an ACCEPT that launches a task on a new executor (step 2's own executor,
`python -m step2_executor.executor`), to the UPDATE with TASK_RUNNING on the stream. On the
way the agent starts the process, the executor imports pymesos and the job, subscribes, gets
the task and reports TASK_RUNNING. Each run uses a new executor ID, and the executor is shut
down after its task has finished, untimed. The floor is `python -c pass` with the same
interpreter, started and waited for in the same run.

Chunks per second: the same job (the `tiny` size: 52 chunks of a few milliseconds each) with
the same task resources on the same kind of cluster (2 agents, default resources), once with
each step's scheduler, through its `run()`. The clock runs from the first offer to the last
TASK_FINISHED, as each scheduler's timeline records them: registering and tearing down are
the same for both and are left out. Each step runs ROUNDS times, alternating; the medians are
compared. The goal is the issue's: at least 5 times as many chunks per second in step 2.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.client import Scheduler, scalar
from bench.common import Result, median_ms
from jobs import bikeshare
from localmesos.cluster import LocalCluster
from step1_scheduler.__main__ import REPOSITORY

LAUNCH_RUNS = 10
ROUNDS = 3
SIZE = "tiny"
TASK_CPUS = 0.05  # the same for both steps: what differs is how a task runs, not its size
TASK_MEM = 32.0
GOAL_RATIO = 5.0


@functools.cache
def code_uri() -> str:
    """Step 2's executor code, as the agents fetch it: a file:// archive, built once."""
    from step2_executor import archive

    directory = Path(tempfile.mkdtemp(prefix="bench-code-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return archive.build(directory).as_uri()


def executor_task(task_id: str, offer: dict, executor_id: str) -> dict:
    """A chunk task for step 2's executor, as its scheduler builds it."""
    from step2_executor import messages
    from step2_executor.scheduler import Settings, executor_info

    info = executor_info(Settings(executor_python=sys.executable, executor_uri=code_uri()))
    info["executor_id"] = {"value": executor_id}
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": TASK_CPUS}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": TASK_MEM}},
    ]
    return {
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "name": task_id,
        "resources": resources,
        "executor": info,
        "data": messages.encode({"week": 0, "size": SIZE, "progress": False}),
    }


def decline(scheduler: Scheduler, event: dict) -> None:
    """Give back the offers of an OFFERS event at once: an offer that is never answered keeps
    its resources from every later offer."""
    offer_ids = [o["id"] for o in event["offers"]["offers"]]
    scheduler.call("DECLINE", decline={"offer_ids": offer_ids, "filters": {"refuse_seconds": 0}})


def launch_once(scheduler: Scheduler, index: int) -> float:
    while True:
        # Leftovers of earlier launches come back as small offers: wait for the whole agent.
        event = scheduler.next("OFFERS")
        offer = event["offers"]["offers"][0]
        if scalar(offer, "cpus") >= 1:
            break
        decline(scheduler, event)
    task_id, executor_id = f"chunk-{index}", f"bench-executor-{index}"
    task = executor_task(task_id, offer, executor_id)
    accept = {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
        "filters": {"refuse_seconds": 0},
    }
    began = time.perf_counter()
    scheduler.call("ACCEPT", accept=accept)
    elapsed = None
    finished = False
    while True:
        event = scheduler.event()
        if event["type"] == "OFFERS":
            decline(scheduler, event)
        elif event["type"] == "UPDATE":
            status = event["update"]["status"]
            scheduler.acknowledge(status)
            if status["task_id"]["value"] != task_id:
                continue
            if status["state"] == "TASK_RUNNING" and elapsed is None:
                elapsed = (time.perf_counter() - began) * 1000
            elif status["state"] == "TASK_FINISHED" and elapsed is not None:
                # Untimed: shut the executor down, so its resources come back for the next.
                shutdown = {"executor_id": {"value": executor_id}, "agent_id": offer["agent_id"]}
                scheduler.call("SHUTDOWN", shutdown=shutdown)
                finished = True
            else:
                raise RuntimeError(f"{task_id}: {status['state']} {status.get('message', '')}")
        elif (
            event["type"] == "FAILURE"
            and finished
            and elapsed is not None
            and event["failure"].get("executor_id", {}).get("value") == executor_id
        ):
            return elapsed


def python_pass() -> None:
    subprocess.Popen([sys.executable, "-c", "pass"]).wait()


def executor_launch() -> Result:
    floor = median_ms(python_pass, runs=20, warmup=3)
    with LocalCluster(agents=1, allocation_interval=0.1) as cluster:
        scheduler = Scheduler(cluster.master, name="bench-executor-launch")
        try:
            launch_once(scheduler, -1)  # warm-up: the first import of everything from disk
            value = statistics.median(launch_once(scheduler, i) for i in range(LAUNCH_RUNS))
            scheduler.teardown()
        finally:
            scheduler.close()
    return Result(
        name=f"executor launch: ACCEPT -> TASK_RUNNING on a new step 2 executor (median of "
        f"{LAUNCH_RUNS})",
        value=value,
        unit="ms",
        goal="reported, no goal",
        met=True,
        floor_name="python -c pass",
        floor=floor,
    )


def run_step(step: int, size: str = SIZE, task_cpus: float | None = TASK_CPUS) -> Any:
    """One run of a job with step 1's or step 2's scheduler, through its `run()`, on a new
    cluster of 2 agents; the scheduler is returned for its timeline and result. With
    `task_cpus=None`, each step asks for its own default task resources."""
    resources = {} if task_cpus is None else {"task_cpus": task_cpus, "task_mem": TASK_MEM}
    if step == 1:
        from step1_scheduler.__main__ import run
        from step1_scheduler.scheduler import Settings

        settings = Settings(
            size=size, task_python=sys.executable, task_pythonpath=REPOSITORY, **resources
        )
    else:
        from step2_executor.__main__ import run  # type: ignore[no-redef]
        from step2_executor.scheduler import Settings  # type: ignore[no-redef]

        settings = Settings(
            size=size, executor_python=sys.executable, executor_uri=code_uri(), **resources
        )
    with LocalCluster(agents=2) as cluster:
        scheduler = run(cluster.master, settings, progress=False)
    if scheduler.result() != bikeshare.run_sequential(bikeshare.SIZES[size]):
        raise RuntimeError(f"step {step} gave a result different from the sequential one")
    return scheduler


def finish_times(scheduler: Any) -> list[float]:
    """Seconds from the first offer to each TASK_FINISHED, in order."""
    timeline = scheduler.timeline
    first_offer = timeline.offers[0]["time"]
    return sorted(
        u["time"] - first_offer for u in timeline.updates if u["state"] == "TASK_FINISHED"
    )


def chunks_per_second(step: int) -> float:
    """One run of the `tiny` job with step 1's or step 2's scheduler, on a new cluster."""
    scheduler = run_step(step)
    return scheduler.total / finish_times(scheduler)[-1]


def throughput() -> Result:
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(ROUNDS):
        for step in (1, 2):
            rates[step].append(chunks_per_second(step))
    step1, step2 = statistics.median(rates[1]), statistics.median(rates[2])
    return Result(
        name=f"chunks/s, {SIZE} job ({bikeshare.SIZES[SIZE].weeks} chunks), step 2 executors "
        f"(median of {ROUNDS}; step 1 runs: {', '.join(f'{r:.1f}' for r in rates[1])}; "
        f"step 2 runs: {', '.join(f'{r:.1f}' for r in rates[2])})",
        value=step2,
        unit="chunks/s",
        goal=f">= {GOAL_RATIO:g}x step 1",
        met=step2 >= GOAL_RATIO * step1,
        floor_name="step 1 command tasks",
        floor=step1,
    )


def run() -> list[Result]:
    return [executor_launch(), throughput()]


if __name__ == "__main__":
    for result in run():
        print(result.line())
