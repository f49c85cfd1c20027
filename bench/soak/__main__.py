"""Runs every soak module in turn and prints its figures; exit 1 if a bound broke or one raised."""

from __future__ import annotations

import importlib
import sys
import traceback

from bench.__main__ import machine

# One module per area of the reliability suite; each has `run() -> list[Figure]`.
MODULES: list[str] = ["http", "input", "agent"]


def main() -> int:
    print(machine(), flush=True)
    failed = []
    for name in MODULES:
        try:
            figures = importlib.import_module(f"bench.soak.{name}").run()
        except Exception:
            print(f"{name}: ERROR\n{traceback.format_exc()}", flush=True)
            failed.append(name)
            continue
        for figure in figures:
            print(figure.line(), flush=True)
            if not figure.held:
                failed.append(f"{name}: {figure.name}")
    if failed:
        print(f"soak: not held: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
