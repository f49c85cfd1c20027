"""The operator SUBSCRIBE stream under a burst of task updates, read directly and through
`localmesos ui`'s proxy, against the scheduler stream of the framework that makes the burst.

One run: a LocalCluster of 2 agents; two operator subscribers connect (one to the master, one
to a `Proxy` in front of it), then a framework (bench/client.py, raw HTTP) launches TASKS `true`
tasks as fast as offers come and acknowledges every update. Each stream's reader stamps the
arrival of each task update (the framework's UPDATE, the operators' TASK_UPDATED) by its task
and state. A stream's rate is the updates it received over the time from the first launch to
its last update; the floor is the scheduler stream's rate in the same run, since the cluster
makes updates no faster than it sends them to the framework. A ratio near 1 says the operator
stream, and the proxy, keep pace with the cluster. The lag of each update behind the scheduler
stream (its reader also acknowledges, so it may come later than the operators') and the
proxy's lag behind the direct operator stream are printed below (median and 95th percentile;
negative: earlier). All in one process, as the page and the proxy would share a laptop with the
cluster.
"""

from __future__ import annotations

import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

from bench.client import Scheduler, command_task, scalar
from bench.common import Result
from localmesos.cluster import LocalCluster
from localmesos.ui.proxy import Proxy

TASKS = 600
CPUS = 0.01
MEM = 32.0
GOAL_RATIO = 0.9
TIMEOUT = 120.0


class OperatorReader(threading.Thread):
    """An operator subscriber on its own socket that stamps every TASK_UPDATED it reads with
    ``clock`` (bench/page.py compares the stamps with the browser's `Date.now()`)."""

    def __init__(
        self, address: str, expected: int, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__(name=f"bench-operator-{address}", daemon=True)
        self.address = address
        self.expected = expected
        self.clock = clock
        self.arrivals: dict[tuple[str, str], float] = {}
        self.in_order: list[tuple[str, str, float]] = []  # every TASK_UPDATED, as it came
        self.error: BaseException | None = None
        self.subscribed = threading.Event()
        self.done = threading.Event()
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), TIMEOUT)
        body = json.dumps({"type": "SUBSCRIBE"})
        head = [
            "POST /api/v1 HTTP/1.1",
            f"Host: {address}",
            "Content-Type: application/json",
            "Accept: application/json",
            f"Content-Length: {len(body)}",
        ]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n" + body).encode())
        self.stream = self.sock.makefile("rb")

    def run(self) -> None:
        try:
            status = self.stream.readline().split()
            if len(status) < 2 or status[1] != b"200":
                raise ConnectionError(f"{self.address}: SUBSCRIBE answered {status!r}")
            while self.stream.readline().strip():
                pass
            buffer = b""
            while len(self.arrivals) < self.expected:
                size = int(self.stream.readline().split(b";")[0], 16)
                if size == 0:
                    raise EOFError(f"{self.address} ended the operator stream")
                buffer += self.stream.read(size)
                self.stream.readline()
                now = self.clock()
                while True:
                    length, newline, rest = buffer.partition(b"\n")
                    if not newline or len(rest) < int(length):
                        break
                    event = json.loads(rest[: int(length)])
                    buffer = rest[int(length) :]
                    if event["type"] == "SUBSCRIBED":
                        self.subscribed.set()
                    elif event["type"] == "TASK_UPDATED":
                        update = event["task_updated"]
                        status = update["status"]
                        key = (status["task_id"]["value"], status["state"])
                        self.arrivals.setdefault(key, now)
                        self.in_order.append((*key, now))
        except BaseException as error:  # reported by the main thread
            self.error = error
        finally:
            self.subscribed.set()
            self.done.set()

    def close(self) -> None:
        self.sock.close()


def burst(master: str, tasks: int) -> tuple[float, dict[tuple[str, str], float]]:
    """Launch ``tasks`` `true` tasks; the start and the arrival of each UPDATE, by task and
    state, on the framework's stream."""
    scheduler = Scheduler(master, name="bench-operator-stream")
    arrivals: dict[tuple[str, str], float] = {}
    launched = finished = 0
    began = time.perf_counter()
    deadline = began + TIMEOUT
    try:
        while finished < tasks:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{finished} of {tasks} tasks finished in {TIMEOUT:g} s")
            event = scheduler.event()
            if event["type"] == "UPDATE":
                status = event["update"]["status"]
                arrivals.setdefault(
                    (status["task_id"]["value"], status["state"]), time.perf_counter()
                )
                scheduler.acknowledge(status)
                if status["state"] == "TASK_FINISHED":
                    finished += 1
                elif status["state"] in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR"):
                    raise RuntimeError(f"a task ended {status['state']}: {status}")
            elif event["type"] == "OFFERS":
                for offer in event["offers"]["offers"]:
                    fit = int(min(scalar(offer, "cpus") / CPUS, scalar(offer, "mem") / MEM))
                    count = max(0, min(fit, tasks - launched))
                    infos = [
                        command_task(f"t{launched + i}", offer["agent_id"], "true", CPUS, MEM)
                        for i in range(count)
                    ]
                    launched += count
                    operations = [{"type": "LAUNCH", "launch": {"task_infos": infos}}]
                    scheduler.call(
                        "ACCEPT",
                        accept={
                            "offer_ids": [offer["id"]],
                            "operations": operations if infos else [],
                            "filters": {"refuse_seconds": 0},
                        },
                    )
        scheduler.teardown()
    finally:
        scheduler.close()
    return began, arrivals


def rate(began: float, arrivals: dict[tuple[str, str], float]) -> float:
    return len(arrivals) / (max(arrivals.values()) - began)


def lags_ms(reference: dict[tuple[str, str], float], arrivals: dict[tuple[str, str], float]) -> str:
    lags = sorted((arrivals[k] - reference[k]) * 1000 for k in reference if k in arrivals)
    p95 = lags[min(len(lags) - 1, int(len(lags) * 0.95))]
    return f"median {statistics.median(lags):.2f} ms, 95th percentile {p95:.2f} ms"


def run() -> list[Result]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-ui-") as static_dir,
        LocalCluster(agents=2, allocation_interval=0.1) as cluster,
        Proxy(cluster.master, port=0, static_dir=static_dir) as proxy,
    ):
        # STARTING, RUNNING and FINISHED for each task, on every stream.
        expected = 3 * TASKS
        readers = [
            OperatorReader(cluster.master, expected),
            OperatorReader(proxy.address, expected),
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            if not reader.subscribed.wait(TIMEOUT) or reader.error:
                raise RuntimeError(f"{reader.address}: no subscription ({reader.error})")
        began, scheduler_arrivals = burst(cluster.master, TASKS)
        for reader in readers:
            reader.done.wait(TIMEOUT)
            reader.close()
            if reader.error is not None or len(reader.arrivals) < expected:
                raise RuntimeError(
                    f"{reader.address}: {len(reader.arrivals)} of {expected} task updates "
                    f"({reader.error!r})"
                )
    floor = rate(began, scheduler_arrivals)
    results = []
    direct, proxied = readers
    compared = {
        direct: ("directly", "after the scheduler stream", scheduler_arrivals),
        proxied: ("through localmesos ui", "after the direct operator stream", direct.arrivals),
    }
    for reader, (how, than, reference) in compared.items():
        value = rate(began, reader.arrivals)
        lag = f"{than}: {lags_ms(reference, reader.arrivals)}"
        results.append(
            Result(
                name=f"operator stream: task updates/s {how} ({TASKS} tasks, "
                f"{len(reader.arrivals)} updates)",
                value=value,
                unit="updates/s",
                goal=f">= {GOAL_RATIO:g}x the scheduler stream",
                met=value >= GOAL_RATIO * floor,
                floor_name="scheduler stream",
                floor=floor,
                details=[lag],
            )
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(result.line())
