"""SUBSCRIBE -> first OFFERS: how soon a new framework hears of the cluster's resources.

Mesos allocates at once (coalesced) when a framework subscribes, not at the next 1 s batch, and
so does localmesos. Each of the 20 subscriptions opens its own connection, like pymesos; the
clock starts before connect() and stops when the OFFERS event has been read off the RecordIO
stream. Each framework then tears down, which gives its offers back at once. The floor is one
keep-alive HTTP round trip to /health on the same master.
"""

from __future__ import annotations

import http.client
import statistics
import time

from bench.client import Scheduler
from bench.common import Result, median_ms
from localmesos.cluster import LocalCluster

RUNS = 20
WARMUP = 3
GOAL_MS = 50.0


def subscribe_to_offers_ms(master: str) -> float:
    began = time.perf_counter()
    scheduler = Scheduler(master, name="bench-offers")
    try:
        scheduler.next("OFFERS")
        elapsed = (time.perf_counter() - began) * 1000
        scheduler.teardown()
    finally:
        scheduler.close()
    return elapsed


def health_round_trip_ms(master: str) -> float:
    host, port = master.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def get_health() -> None:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/health answered {response.status}")

    try:
        return median_ms(get_health, runs=200, warmup=20)
    finally:
        connection.close()


def run() -> list[Result]:
    with LocalCluster(agents=2) as cluster:
        floor = health_round_trip_ms(cluster.master)
        for _ in range(WARMUP):
            subscribe_to_offers_ms(cluster.master)
        value = statistics.median(subscribe_to_offers_ms(cluster.master) for _ in range(RUNS))
    return [
        Result(
            name=f"offers: SUBSCRIBE -> first OFFERS (median of {RUNS}, raw HTTP)",
            value=value,
            unit="ms",
            goal=f"< {GOAL_MS:g} ms",
            met=value < GOAL_MS,
            floor_name="keep-alive /health round trip",
            floor=floor,
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
