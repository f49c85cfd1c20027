"""`make demo`: start the embedded cluster, run the most complete step on it, stop the cluster.

The step runs as its own process, exactly as a reader would run it by hand against any master.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time

from localmesos.cluster import LocalCluster

STEP = "step1_scheduler"  # later steps replace this with their own package
AGENTS = 2


def main() -> int:
    started = time.monotonic()
    with LocalCluster(agents=AGENTS) as cluster:
        print(
            f"localmesos: a master at {cluster.url} and {AGENTS} agents "
            f"(started in {time.monotonic() - started:.1f} s)"
        )
        command = [sys.executable, "-m", STEP, "--master", cluster.master, "--size", "demo"]
        print(f"$ python -m {STEP} --master {cluster.master} --size demo", flush=True)
        try:
            code = subprocess.call(command)
        except KeyboardInterrupt:
            code = 130
    print(f"localmesos: stopped; the demo took {time.monotonic() - started:.1f} s in all")
    if code:
        print(f"demo: {shlex.join([STEP])} exited with status {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
