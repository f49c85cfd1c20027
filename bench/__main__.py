"""`make bench`: every benchmark, one line per figure, and what machine produced them.

Goals that are missed are reported, not failed: the exit status is 0 either way. Only a
benchmark that breaks (raises) makes it 1, after the others have run.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import traceback
from pathlib import Path

MODULES = [
    "startup",
    "offers",
    "launch",
    "throughput",
    "allocation",
    "executors",
    "recovery",
    "operator_stream",
    "room",
    "page",
]


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line
    except OSError:
        pass
    return ""


def machine() -> str:
    cpu = _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    kib = _first("/proc/meminfo", "MemTotal").split()
    ram = f"{int(kib[0]) / 1024**2:.1f} GiB RAM" if kib else "RAM unknown"
    pretty = _first("/etc/os-release", "PRETTY_NAME=").removeprefix("PRETTY_NAME=").strip('"')
    system = f"{pretty}, " if pretty else ""
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {ram}, "
        f"{system}{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )


def main() -> int:
    print(machine(), flush=True)
    broken = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"bench.{name}":
                raise
            print(f"{name}: skipped (bench/{name}.py is missing)", flush=True)
            continue
        try:
            results = module.run()
        except Exception:
            print(f"{name}: ERROR\n{traceback.format_exc()}", flush=True)
            broken.append(name)
            continue
        for result in results:
            print(result.line(), flush=True)
    if broken:
        print(f"broken benchmarks: {', '.join(broken)}", flush=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
