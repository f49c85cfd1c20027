"""A workshop room on one cluster: 30 frameworks subscribe at once to a master with 3 agents.
How long until every framework has had its first offer?

The allocator's design sets the bound. Each allocation round offers each agent's free resources
to one framework, the one with the lowest dominant share (hierarchical.cpp `__allocate`, one
offer per agent per round), so 3 agents serve 3 frameworks a round and 30 frameworks need
ceil(30 / 3) = 10 rounds. The first round runs as soon as the subscriptions arrive (Mesos
coalesces the allocations that new frameworks trigger); the others run every
`allocation_interval`, because a declined offer's resources wait for the next round (Mesos's
`recoverResources` does not allocate at once). Each framework declines its first offer for an
hour, as step 1 declines what it does not use, so that the agent goes to another framework
next round. Bound: (rounds - 1) intervals, plus the first round's latency.

The figure is printed against that bound; the bound's first-round latency is one framework
alone, SUBSCRIBE to its first OFFERS (`bench/offers.py`'s measure), measured in the same run on
the same cluster.
"""

from __future__ import annotations

import math
import statistics
import threading
import time

from bench.client import Scheduler
from bench.common import Result
from bench.offers import subscribe_to_offers_ms
from localmesos.cluster import LocalCluster

FRAMEWORKS = 30
AGENTS = 3
INTERVAL = 0.5  # s; Mesos's default is 1 s, halved to keep the run short
RUNS = 3
HOUR = 3600.0


def first_offers(master: str) -> list[float]:
    """Seconds from the moment all the subscriptions start to each framework's first OFFERS,
    in order."""
    start = threading.Barrier(FRAMEWORKS + 1)
    began = 0.0
    firsts: list[float] = []
    errors: list[BaseException] = []
    done = threading.Event()
    schedulers: list[Scheduler] = []
    lock = threading.Lock()

    def framework(index: int) -> None:
        start.wait()
        try:
            scheduler = Scheduler(master, name=f"room-{index:02d}")
            with lock:
                schedulers.append(scheduler)
            event = scheduler.next("OFFERS")
            arrived = time.perf_counter()
            offers = event["offers"]["offers"]
            scheduler.call(
                "DECLINE",
                decline={
                    "offer_ids": [offer["id"] for offer in offers],
                    "filters": {"refuse_seconds": HOUR},
                },
            )
            with lock:
                firsts.append(arrived - began)
                if len(firsts) == FRAMEWORKS:
                    done.set()
        except BaseException as error:  # reported by the caller
            with lock:
                errors.append(error)
            done.set()

    threads = [
        threading.Thread(target=framework, args=(i,), daemon=True) for i in range(FRAMEWORKS)
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.wait()
    finished = done.wait(timeout=60)
    for scheduler in schedulers:
        try:
            scheduler.teardown()
        finally:
            scheduler.close()
    if errors:
        raise RuntimeError(f"a framework failed: {errors[0]!r}") from errors[0]
    if not finished:
        raise RuntimeError(f"only {len(firsts)} of {FRAMEWORKS} frameworks had an offer in 60 s")
    return sorted(firsts)


def run() -> list[Result]:
    rounds = math.ceil(FRAMEWORKS / AGENTS)
    lasts: list[float] = []
    medians: list[float] = []
    baselines: list[float] = []
    for _ in range(RUNS):
        with LocalCluster(agents=AGENTS, allocation_interval=INTERVAL) as cluster:
            alone = [subscribe_to_offers_ms(cluster.master) for _ in range(5)]
            baselines.append(statistics.median(alone))
            firsts = first_offers(cluster.master)
        lasts.append(firsts[-1])
        medians.append(statistics.median(firsts))
    last = statistics.median(lasts)
    baseline = statistics.median(baselines) / 1000
    bound = (rounds - 1) * INTERVAL + baseline
    # What the allocation interval alone allows: the rounds the measured time spans.
    spanned = last / INTERVAL + 1
    return [
        Result(
            name=(
                f"room: {FRAMEWORKS} frameworks subscribing at once, {AGENTS} agents, "
                f"allocation interval {INTERVAL:g} s: the last first offer (median of {RUNS})"
            ),
            value=last,
            unit="s",
            goal=f"within the bound, plus one interval of slack ({bound + INTERVAL:.2f} s)",
            met=last <= bound + INTERVAL,
            floor_name=f"the allocator's bound, ceil({FRAMEWORKS}/{AGENTS}) = {rounds} rounds",
            floor=bound,
            details=[
                f"last first offer in each run: {', '.join(f'{v:.2f} s' for v in lasts)}; "
                f"about {spanned:.1f} rounds of {INTERVAL:g} s; median first offer "
                f"{statistics.median(medians):.2f} s; one framework alone: "
                f"{baseline * 1000:.1f} ms to its first offer"
            ],
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
