"""1,000 `true` command tasks through an unmodified pymesos MesosSchedulerDriver (implicit
acknowledgements) on a LocalCluster of 4 agents with the default resources
(cpus:2;mem:2048 each). Tasks take cpus 0.01 and mem 32, so memory limits an agent to 64 at a
time: 256 tasks per allocation round across the cluster.

The clock runs from the first resourceOffers() callback to the 1,000th TASK_FINISHED
statusUpdate(). The scheduler launches as many tasks as each offer holds, in one ACCEPT per
offer, and keeps pymesos's default filters (the unused rest of an accepted offer is refused
for 5 s, which does not block the agent once tasks give resources back).

As in Mesos, resources of finished tasks come back at the next allocation round, not at once,
so the allocation interval can bound the rate: at 1 s, 1,000 tasks need 4 rounds of 256, which
caps the rate near 330 tasks/s. The run is made with the default 1 s interval and again with
0.1 s, three times each (the median is reported). The floor is 1,000 sequential
bare `Popen(["sh", "-c", "true"]).wait()`.
"""

from __future__ import annotations

import getpass
import logging
import statistics
import subprocess
import threading
import time

from pymesos import MesosSchedulerDriver, Scheduler

from bench.client import command_task, scalar
from bench.common import Result
from localmesos.cluster import LocalCluster

TASKS = 1000
AGENTS = 4
CPUS = 0.01
MEM = 32.0
GOAL = 200.0  # tasks/s
INTERVALS = (1.0, 0.1)
RUNS = 3  # per interval; the median is reported
TIMEOUT = 300.0


class Flood(Scheduler):
    def __init__(self, total: int) -> None:
        self.total = total
        self.launched = 0
        self.finished = 0
        self.first_offer: float | None = None
        self.last_finished: float | None = None
        self.problem: str | None = None
        self.done = threading.Event()

    def resourceOffers(self, driver: MesosSchedulerDriver, offers: list[dict]) -> None:
        if self.first_offer is None:
            self.first_offer = time.perf_counter()
        for offer in offers:
            fits = min(
                int(scalar(offer, "cpus") / CPUS + 1e-6),
                int(scalar(offer, "mem") / MEM + 1e-6),
                self.total - self.launched,
            )
            if fits <= 0:
                driver.declineOffer(offer["id"])
                continue
            tasks = [
                command_task(f"t{self.launched + i}", offer["agent_id"], "true", CPUS, MEM)
                for i in range(fits)
            ]
            self.launched += fits
            driver.launchTasks(offer["id"], tasks)

    def statusUpdate(self, driver: MesosSchedulerDriver, update: dict) -> None:
        state = update["state"]
        if state == "TASK_FINISHED":
            self.finished += 1
            if self.finished == self.total:
                self.last_finished = time.perf_counter()
                self.done.set()
        elif state not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
            self.problem = f"task {update['task_id']['value']}: {state} {update.get('message')}"
            self.done.set()


def tasks_per_second(allocation_interval: float) -> float:
    with LocalCluster(agents=AGENTS, allocation_interval=allocation_interval) as cluster:
        scheduler = Flood(TASKS)
        framework = {"user": getpass.getuser(), "name": "bench-throughput"}
        driver = MesosSchedulerDriver(scheduler, framework, cluster.master)
        driver.start()
        try:
            if not scheduler.done.wait(TIMEOUT):
                raise RuntimeError(f"{scheduler.finished} of {TASKS} tasks in {TIMEOUT} s")
        finally:
            driver.stop()
            driver.join()
    if scheduler.problem:
        raise RuntimeError(scheduler.problem)
    assert scheduler.first_offer is not None and scheduler.last_finished is not None
    return TASKS / (scheduler.last_finished - scheduler.first_offer)


def bare_spawns_per_second() -> float:
    began = time.perf_counter()
    for _ in range(TASKS):
        subprocess.Popen(["sh", "-c", "true"]).wait()
    return TASKS / (time.perf_counter() - began)


def run() -> list[Result]:
    logging.getLogger("pymesos").setLevel(logging.WARNING)  # pymesos logs every call at INFO
    floor = bare_spawns_per_second()
    results = []
    for interval in INTERVALS:
        value = statistics.median(tasks_per_second(interval) for _ in range(RUNS))
        label = "default 1 s" if interval == 1.0 else f"{interval:g} s"
        results.append(
            Result(
                name=(
                    f"throughput: {TASKS} `true` tasks via pymesos, {AGENTS} agents, "
                    f"cpus {CPUS:g}/mem {MEM:g} each, allocation interval {label} "
                    f"(median of {RUNS})"
                ),
                value=value,
                unit="tasks/s",
                goal=f">= {GOAL:g} tasks/s",
                met=value >= GOAL,
                floor_name="sequential Popen(sh -c true).wait()",
                floor=floor,
            )
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(result.line())
