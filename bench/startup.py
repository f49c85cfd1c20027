"""How long `localmesos --agents 2` takes from process start to a first `GET /health` 200.

The port is picked free beforehand and passed with --port, so that the benchmark can poll
connect() every millisecond without reading the ready line first. The ready line is timed too:
it comes once both agents have registered. The floor is `python -c pass` with the same
interpreter, started and waited for with the same clock in the same run.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Result

RUNS = 10
WARMUP = 1
GOAL_MS = 1000.0
POLL = 0.001
LOCALMESOS = Path(sys.executable).parent / "localmesos"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(port: int) -> int | None:
    """The status of GET /health, or None while nothing listens on ``port``."""
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return None
    with connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status_line = connection.makefile("rb").readline()
    return int(status_line.split()[1]) if status_line else None


def start_once() -> tuple[float, float]:
    """Milliseconds from Popen to /health 200, and to the ready line."""
    port = free_port()
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(LOCALMESOS), "--port", str(port), "--agents", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        while health(port) != 200:
            if process.poll() is not None:
                raise RuntimeError(f"localmesos exited with {process.returncode}")
            time.sleep(POLL)
        healthy = time.perf_counter()
        assert process.stdout is not None
        if "http://127.0.0.1:" not in process.stdout.readline():
            raise RuntimeError("localmesos printed no ready line")
        ready = time.perf_counter()
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
    return (healthy - began) * 1000, (ready - began) * 1000


def python_pass_ms() -> float:
    began = time.perf_counter()
    subprocess.Popen([sys.executable, "-c", "pass"]).wait()
    return (time.perf_counter() - began) * 1000


def run() -> list[Result]:
    for _ in range(WARMUP):
        start_once()
        python_pass_ms()
    to_health, to_ready, floors = [], [], []
    for _ in range(RUNS):  # interleaved, so that both see the same machine load
        healthy, ready = start_once()
        to_health.append(healthy)
        to_ready.append(ready)
        floors.append(python_pass_ms())
    floor = statistics.median(floors)
    results = []
    for name, times in (
        ("startup: localmesos --agents 2 -> first /health 200", to_health),
        ("startup: localmesos --agents 2 -> ready line (agents registered)", to_ready),
    ):
        value = statistics.median(times)
        results.append(
            Result(
                name=name,
                value=value,
                unit="ms",
                goal="under 1 s",
                met=value < GOAL_MS,
                floor_name="python -c pass",
                floor=floor,
            )
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(result.line())
