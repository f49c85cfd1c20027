"""`make demo`: start the embedded cluster, run the most complete step on it, stop the cluster.

The step runs as its own process, exactly as a reader would run it by hand against any master.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from localmesos.cluster import LocalCluster

STEP = "step2_executor"  # later steps replace this with their own package
AGENTS = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__)
    parser.add_argument("--size", default="demo", help="the dataset (default: %(default)s)")
    size = parser.parse_args(argv).size
    started = time.monotonic()
    with LocalCluster(agents=AGENTS) as cluster:
        print(
            f"localmesos: a master at {cluster.url} and {AGENTS} agents "
            f"(started in {time.monotonic() - started:.1f} s)"
        )
        command = [sys.executable, "-m", STEP, "--master", cluster.master, "--size", size]
        print(f"$ python -m {STEP} --master {cluster.master} --size {size}", flush=True)
        try:
            code = subprocess.call(command)
        except KeyboardInterrupt:
            code = 130
    print(f"localmesos: stopped; the demo took {time.monotonic() - started:.1f} s in all")
    if code:
        print(f"demo: {STEP} exited with status {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
