"""One DRF allocation pass over 1,000 agents and 20 frameworks, in-process.

Between timed passes every offer is given back (untimed), so each timed pass makes 1,000
coarse offers again. The floor is the least a pass has to do: visit 1,000 agents and sort
20 shares for each.
"""

from __future__ import annotations

import random
import statistics
import time

from bench.common import Result, median_ms
from localmesos.master.allocator import Allocator
from localmesos.resources import Resources

AGENTS = 1000
FRAMEWORKS = 20
AGENT_RESOURCES = "cpus:2;mem:2048;disk:4096;ports:[31000-31999]"
GOAL_MS = 50.0
RUNS = 30
WARMUP = 3


def _cluster() -> Allocator:
    allocator = Allocator(rng=random.Random(7), clock=lambda: 0.0)
    total = Resources.parse(AGENT_RESOURCES)
    for index in range(AGENTS):
        allocator.add_agent(f"agent-{index:04d}", total)
    for index in range(FRAMEWORKS):
        allocator.add_framework(f"framework-{index:02d}")
    return allocator


def measure_round() -> float:
    """Median ms of one allocation pass; giving the offers back is left out of the timing."""
    allocator = _cluster()
    times: list[float] = []
    for attempt in range(WARMUP + RUNS):
        began = time.perf_counter()
        offers = allocator.allocate()
        elapsed = (time.perf_counter() - began) * 1000
        made = sum(len(by_agent) for by_agent in offers.values())
        if made != AGENTS:
            raise AssertionError(f"a round made {made} offers, expected {AGENTS}")
        if attempt >= WARMUP:
            times.append(elapsed)
        for framework_id, by_agent in offers.items():
            for agent_id, resources in by_agent.items():
                allocator.recover(framework_id, agent_id, resources)
    return statistics.median(times)


def measure_floor() -> float:
    rng = random.Random(7)
    shares = [[rng.random() for _ in range(FRAMEWORKS)] for _ in range(AGENTS)]

    def bare_loop() -> None:
        for row in shares:
            sorted(row)

    return median_ms(bare_loop, runs=RUNS)


def run() -> list[Result]:
    floor = measure_floor()
    value = measure_round()
    return [
        Result(
            name=f"allocation round ({AGENTS} agents x {FRAMEWORKS} frameworks)",
            value=value,
            unit="ms",
            goal=f"< {GOAL_MS:g} ms",
            met=value < GOAL_MS,
            floor_name="bare sort loop",
            floor=floor,
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
