"""`make demo`: start the embedded cluster, run one step on it, stop the cluster.

`make demo STEP=1` (or 2, or 3) chooses the step; without STEP it is the most complete one.
The step runs as its own process, exactly as a reader would run it by hand against any master.
With --failures (`make demo FAILURES=1`, step 3 only), the demo breaks things while the job
runs: the scheduler crashes and is started again, then an executor dies, an agent's process
dies, an agent's whole machine dies, and the leading master dies, one after the other; the job
must still end with the exact result. The embedded cluster's own log is in
build/demo-localmesos.log.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from jobs import bikeshare
from localmesos import zookeeper
from localmesos.cluster import LocalCluster
from step3_failover.checkpoint import DirectoryStore
from step3_failover.scheduler import EXECUTOR_ID
from tools import ROOT

# What the embedded masters and agents log, as a Mesos master and agent log to their own files:
# the terminal shows the step's output only, and a line such as the master's "unknown to agent
# during re-registration" warning, which depends on timing, does not land between the step's.
CLUSTER_LOG = ROOT / "build" / "demo-localmesos.log"

# Each step's package, and what it must be told besides --master and --size.
STEPS = {1: "step1_scheduler", 2: "step2_executor", 3: "step3_failover"}
LATEST = max(STEPS)  # later steps add themselves to STEPS
FAILOVER_STEP = 3  # the first step that survives its own crash; --failures needs it or a later one
AGENTS = 2
CRASH_AFTER = 0.15  # the first scheduler kills itself after this share of the chunks
POLL = 0.05
EXECUTOR_WAIT = 10.0  # s: how long the executor's fault waits for an executor to kill


def log_cluster_to(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    cluster_log = logging.getLogger("localmesos")
    cluster_log.addHandler(handler)
    cluster_log.setLevel(logging.INFO)
    cluster_log.propagate = False


def say(text: str) -> None:
    # The step's progress bar may be half drawn on this terminal line: on a terminal, clear the
    # line first, and the bar redraws itself below on its next update.
    clear = "\r\x1b[2K" if sys.stderr.isatty() else ""
    print(f"{clear}demo: {text}", file=sys.stderr, flush=True)


class Faults:
    """Kills one part of the cluster each time the job passes a milestone (a number of chunk
    results in the checkpoint), from a thread of its own, while the scheduler runs."""

    def __init__(self, cluster: LocalCluster, state: Path, chunks: int, master_too: bool):
        self.cluster = cluster
        self.store = DirectoryStore(state)  # the step's checkpoint, read as it is written
        # The master's fault comes last: the job waits while the masters elect a new leader,
        # and an agent lost during the election would hold it up for agent_reregister_timeout.
        # (No agent restart here: its recovery lasts executor_reregistration_timeout and more,
        # long enough for a loaded machine to finish the job before the faults after it;
        # notebook 03 and the chaos test show it.)
        faults: list[tuple[float, Callable[[], str]]] = [
            (0.3, self.kill_executor),
            (0.45, self.kill_agent),
            (0.6, self.kill_host),
        ]
        if master_too:
            faults.append((0.75, self.kill_master))
        self.plan = [(max(1, round(share * chunks)), fault) for share, fault in faults]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="demo-faults", daemon=True)

    def done(self) -> int:
        return len(self.store.list("results"))

    def run(self) -> None:
        for milestone, fault in self.plan:
            while self.done() < milestone:
                if self.stop.wait(POLL):
                    return
            try:
                say(f"{self.done()} chunks done: {fault()}")
            except Exception as error:  # the job may have just moved on; the demo goes on
                say(f"{fault.__name__.replace('_', ' ')} did not happen: {error}")

    def kill_executor(self) -> str:
        # Right after the scheduler's restart, the executors may not have started yet: wait
        # for one, while the job runs.
        deadline = time.monotonic() + EXECUTOR_WAIT
        while True:
            try:
                self.cluster.kill_executor(self.store.framework_id() or "", EXECUTOR_ID)
                return "killed an executor (SIGKILL); its running chunks will be launched again"
            except KeyError:
                if time.monotonic() > deadline or self.stop.wait(POLL):
                    raise

    # Two of the three ways an agent fails, as a real cluster shows them: its process dies (step
    # 3 checkpoints, so the master waits for the agent until its health checks give it up), or
    # its whole machine does. The third, a restart, is in notebook 03 and the chaos test.
    def kill_agent(self) -> str:
        agent_id = self.cluster.agents[0]
        self.cluster.kill_agent(agent_id)
        self.cluster.add_agent()
        return (
            f"killed agent {agent_id}'s process (not its machine) and started a new agent; its "
            "chunks wait for it until the master's health checks give it up"
        )

    def kill_host(self) -> str:
        agent_id = self.cluster.agents[0]
        self.cluster.kill_host(agent_id)
        self.cluster.add_agent()
        return f"killed agent {agent_id} with its machine and started a new one in its place"

    def kill_master(self) -> str:
        address = self.cluster.kill_master()
        self.cluster.add_master()  # a new standby, so that the cluster can lose one more
        return (
            f"killed the leading master {address}; ZooKeeper elects another one once the "
            "dead one's session expires"
        )


def run_step(package: str, argv: list[str]) -> int:
    print(f"$ python -m {package} {shlex.join(argv)}", flush=True)
    return subprocess.call([sys.executable, "-m", package, *argv])


def run_with_failures(
    cluster: LocalCluster, command: list[str], state: Path, chunks: int, master_too: bool
) -> int:
    package = STEPS[FAILOVER_STEP]
    crash_after = max(1, round(CRASH_AFTER * chunks))
    code = run_step(package, [*command, "--crash-after", str(crash_after)])
    if code != -signal.SIGKILL:
        return code  # it did not crash as asked: its own message says why
    say(
        f"the scheduler died (SIGKILL) after {crash_after} results; its framework and tasks "
        "live on. Running the same command again:"
    )
    faults = Faults(cluster, state, chunks, master_too)
    faults.thread.start()
    try:
        return run_step(package, command)
    finally:
        faults.stop.set()
        faults.thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__)
    parser.add_argument(
        "--step",
        type=int,
        choices=sorted(STEPS),
        default=LATEST,
        help="which step to run (default: %(default)s, the most complete)",
    )
    parser.add_argument("--size", default="demo", help="the dataset (default: %(default)s)")
    parser.add_argument(
        "--failures",
        action="store_true",
        help="crash the scheduler, an executor, an agent's process, another agent's machine "
        f"and the leading master as the job runs (step {FAILOVER_STEP} or later)",
    )
    args = parser.parse_args(argv)
    if args.failures and args.step < FAILOVER_STEP:
        parser.error(
            f"--failures (FAILURES=1) needs step {FAILOVER_STEP} or later: step {args.step} does "
            "not survive its own crash; run 'make demo FAILURES=1' without STEP"
        )
    package = STEPS[args.step]
    chunks = bikeshare.SIZES[args.size].weeks if args.size in bikeshare.SIZES else 0
    missing = zookeeper.unavailable() if args.failures else None
    if missing:
        say(f"the leading master will not be killed: {missing}")
    masters = 2 if args.failures and not missing else 1
    log_cluster_to(CLUSTER_LOG)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="demo-state-") as directory,
        LocalCluster(agents=AGENTS, masters=masters) as cluster,
    ):
        state = Path(directory)
        masters_are = (
            f"{masters} masters under ZooKeeper ({cluster.master})"
            if masters > 1
            else f"a master at {cluster.url}"
        )
        print(
            f"localmesos: {masters_are} and {AGENTS} agents "
            f"(started in {time.monotonic() - started:.1f} s)"
        )
        command = ["--master", cluster.master, "--size", args.size]
        if args.step >= FAILOVER_STEP:
            command[2:2] = ["--state", str(state)]
        try:
            if args.failures and chunks > 1:
                code = run_with_failures(cluster, command, state, chunks, masters > 1)
            else:
                code = run_step(package, command)
        except KeyboardInterrupt:
            code = 130
    print(f"localmesos: stopped; the demo took {time.monotonic() - started:.1f} s in all")
    if code:
        print(f"demo: {package} exited with status {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
