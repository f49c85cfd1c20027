"""ACCEPT -> TASK_RUNNING for a command task (`true`), over raw HTTP.

The clock starts just before the ACCEPT call goes out and stops when the UPDATE with
TASK_RUNNING has been read off the event stream. On the way the agent reports TASK_STARTING,
and, as in Mesos, sends TASK_RUNNING only once the framework has acknowledged TASK_STARTING:
that acknowledgement is part of the measured path. Waiting for the next offer is not timed;
the cluster runs with allocation_interval=0.1 s only so that the 30 launches do not wait a
whole second each for the task's resources to come back.

The floor is a bare `subprocess.Popen(["sh", "-c", "true"]).wait()` in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from bench.client import Scheduler, command_task
from bench.common import Result, median_ms
from localmesos.cluster import LocalCluster

RUNS = 30
WARMUP = 3
GOAL_FACTOR = 10.0
ALLOCATION_INTERVAL = 0.1


def launch_once(scheduler: Scheduler, index: int) -> float:
    offer = scheduler.next("OFFERS")["offers"]["offers"][0]
    task_id = f"true-{index}"
    accept = {
        "offer_ids": [offer["id"]],
        "operations": [
            {
                "type": "LAUNCH",
                "launch": {
                    "task_infos": [command_task(task_id, offer["agent_id"], "true", 0.01, 32)]
                },
            }
        ],
        "filters": {"refuse_seconds": 0},
    }
    began = time.perf_counter()
    scheduler.call("ACCEPT", accept=accept)
    while True:
        event = scheduler.event()
        if event["type"] != "UPDATE":
            continue
        status = event["update"]["status"]
        scheduler.acknowledge(status)
        if status["task_id"]["value"] != task_id:
            continue
        if status["state"] == "TASK_RUNNING":
            elapsed = (time.perf_counter() - began) * 1000
            break
        if status["state"] != "TASK_STARTING":
            raise RuntimeError(f"task {task_id}: {status['state']} {status.get('message', '')}")
    # Let it finish (untimed) so that its resources come back for the next launch.
    while True:
        event = scheduler.next("UPDATE")
        status = event["update"]["status"]
        if status["task_id"]["value"] == task_id and status["state"] == "TASK_FINISHED":
            return elapsed


def bare_spawn() -> None:
    subprocess.Popen(["sh", "-c", "true"]).wait()


def run() -> list[Result]:
    floor = median_ms(bare_spawn, runs=200, warmup=20)
    with LocalCluster(agents=2, allocation_interval=ALLOCATION_INTERVAL) as cluster:
        scheduler = Scheduler(cluster.master, name="bench-launch")
        try:
            for index in range(WARMUP):
                launch_once(scheduler, -1 - index)
            value = statistics.median(launch_once(scheduler, i) for i in range(RUNS))
            scheduler.teardown()
        finally:
            scheduler.close()
    return [
        Result(
            name=f"launch: ACCEPT -> TASK_RUNNING, command task `true` (median of {RUNS})",
            value=value,
            unit="ms",
            goal=f"< {GOAL_FACTOR:g}x floor",
            met=value < GOAL_FACTOR * floor,
            floor_name="Popen(sh -c true).wait()",
            floor=floor,
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
