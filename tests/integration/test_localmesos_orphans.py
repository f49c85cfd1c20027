"""No process that the cluster started outlives it: not when `LocalCluster` stops normally, not
when the `localmesos` command gets SIGTERM, and not when the Python process that owns a
LocalCluster is SIGKILLed (then only the watchdog is left to clean up).

Each task writes its pid into its sandbox, and two of them leave processes that are not their
direct child: a background `sleep` (a grandchild), and a `sleep` whose parent subshell has
already exited (re-parented to init, but still in the task's session and process group). So
the checks look at sessions, not just at the pids the agent knows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localmesos.cluster import LocalCluster
from tests.integration.localmesos_procs import (
    Cli,
    Proc,
    Subscription,
    descendants,
    describe,
    in_sessions,
    kill_all,
    proc,
    stat,
    survivors,
    wait_for_file,
    watchdogs,
)

pytestmark = pytest.mark.integration

# Task ID -> shell command. Every command writes `pid` ($$, the task's session leader); the
# files named in FILES hold the other pids each one leaves.
TASKS = {
    "plain": "echo $$ > pid; exec sleep 300",
    "grandchild": "echo $$ > pid; sleep 300 & echo $! > grandchild; wait",
    "reparented": "echo $$ > pid; (sleep 300 & echo $! > reparented); sleep 300",
}
FILES = {"plain": ["pid"], "grandchild": ["pid", "grandchild"], "reparented": ["pid", "reparented"]}
GONE_WITHIN = 5.0


def sandbox(work_dir: Path, task_id: str) -> Path:
    pattern = f"slaves/*/frameworks/*/executors/{task_id}/runs/latest"
    found = {path.resolve() for path in work_dir.glob(pattern)}  # slaves/latest is a link
    assert len(found) == 1, found
    return found.pop()


def task_pids(work_dir: Path) -> dict[str, int]:
    """The pids that the tasks wrote into their sandboxes, by "task ID/file name"."""
    return {
        f"{task_id}/{name}": int(wait_for_file(sandbox(work_dir, task_id) / name))
        for task_id, names in FILES.items()
        for name in names
    }


def everything(
    pids: dict[str, int], owner: int, before: frozenset[Proc] = frozenset()
) -> set[Proc]:
    """What the cluster started, seen from outside: the tasks' pids, all the members of their
    sessions, the owner's descendants (the watchdog among them) other than those in
    ``before``. Each pid is checked to be alive and in its task's session, and exactly one
    watchdog must be found, so that a test cannot pass by looking at nothing."""
    named = {proc(pid) for pid in pids.values()}
    sessions = {pids[f"{task_id}/pid"] for task_id in TASKS}
    for key, pid in pids.items():
        info = stat(pid)
        assert info is not None and info.sid == pids[key.split("/")[0] + "/pid"], key
    reparented = stat(pids["reparented/reparented"])
    assert reparented is not None and reparented.ppid != pids["reparented/pid"], "not a child"
    watchdog = watchdogs(owner) - before
    assert len(watchdog) == 1, f"expected one watchdog below {owner}: {describe(watchdog)}"
    return named | in_sessions(sessions) | (descendants(owner) - before) | watchdog


def assert_all_gone(procs: set[Proc], how: str) -> None:
    left = survivors(procs, GONE_WITHIN)
    assert not left, f"still running {GONE_WITHIN} s after {how}: {describe(left)}"


@pytest.fixture
def leftovers() -> Iterator[set[Proc]]:
    """Processes to SIGKILL after the test if it failed and left them running."""
    procs: set[Proc] = set()
    yield procs
    kill_all(procs)


# -- (a) LocalCluster stops normally --------------------------------------------------------------


def test_leaving_the_with_block_kills_everything(tmp_path: Path, leftovers: set[Proc]) -> None:
    work_dir = tmp_path / "work"
    before = frozenset(descendants(os.getpid()))  # this pytest's own, older children
    with LocalCluster(agents=2, work_dir=work_dir) as cluster:
        # The framework stays subscribed until the cluster has stopped: if it left first, the
        # master would kill its tasks, and the cluster's stop would have nothing left to do.
        subscription = Subscription(cluster.master)
        try:
            subscription.run_tasks(TASKS)
            procs = everything(task_pids(work_dir), os.getpid(), before)
            leftovers |= procs
        except BaseException:
            subscription.close()
            raise
    subscription.close()
    assert_all_gone(procs, "the with block")


# -- (b) the localmesos command gets SIGTERM ------------------------------------------------------


def test_sigterm_to_the_command_kills_everything(tmp_path: Path, leftovers: set[Proc]) -> None:
    work_dir = tmp_path / "work"
    cli = Cli("--port", "0", "--agents", "2", "--work-dir", str(work_dir))
    try:
        subscription = Subscription(cli.master)
        try:
            subscription.run_tasks(TASKS)
            procs = everything(task_pids(work_dir), cli.process.pid)
            leftovers |= procs
            assert cli.signal(signal.SIGTERM) == 0
        finally:
            subscription.close()
    finally:
        cli.stop()
    assert_all_gone(procs, "SIGTERM")


# -- (c) the process that owns a LocalCluster is SIGKILLed ----------------------------------------

# A notebook kernel, say: a LocalCluster and a pymesos scheduler that launches TASKS. It prints
# the pids from the sandboxes as one JSON line, then waits to be killed.
OWNER = r"""
import getpass, json, sys, threading, time
from pathlib import Path

from pymesos import MesosSchedulerDriver, Scheduler

from localmesos.cluster import LocalCluster

work_dir = Path(sys.argv[1])
tasks = json.loads(sys.argv[2])
files = json.loads(sys.argv[3])


class Launch(Scheduler):
    def __init__(self):
        self.pending = dict(tasks)
        self.running = set()
        self.ready = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            infos = []
            while self.pending and len(infos) < 2:
                task_id, command = self.pending.popitem()
                infos.append({
                    "name": task_id,
                    "task_id": {"value": task_id},
                    "agent_id": offer["agent_id"],
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                    ],
                    "command": {"value": command},
                })
            driver.launchTasks(offer["id"], infos, filters={"refuse_seconds": 0})

    def statusUpdate(self, driver, update):
        if update["state"] == "TASK_RUNNING":
            self.running.add(update["task_id"]["value"])
            if self.running == set(tasks):
                self.ready.set()
        elif update["state"] not in ("TASK_STAGING", "TASK_STARTING"):
            print("task failed:", json.dumps(update), file=sys.stderr, flush=True)


def wait_for(path):
    for _ in range(1000):
        if path.is_file() and path.read_text().endswith("\n"):
            return int(path.read_text())
        time.sleep(0.01)
    raise SystemExit(f"{path} was never written")


with LocalCluster(agents=2, work_dir=work_dir) as cluster:
    scheduler = Launch()
    framework = {"user": getpass.getuser(), "name": "orphans"}
    driver = MesosSchedulerDriver(scheduler, framework, cluster.master)
    driver.start()
    if not scheduler.ready.wait(30):
        raise SystemExit("the tasks did not all start")
    pids = {}
    for task_id, names in files.items():
        pattern = f"slaves/*/frameworks/*/executors/{task_id}/runs/latest"
        [directory] = {path.resolve() for path in work_dir.glob(pattern)}
        for name in names:
            pids[f"{task_id}/{name}"] = wait_for(directory / name)
    print(json.dumps(pids), flush=True)
    time.sleep(600)
"""


def test_sigkill_of_the_owner_leaves_the_watchdog_to_kill_everything(
    tmp_path: Path, leftovers: set[Proc]
) -> None:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    log = tmp_path / "owner.log"  # pymesos logs to stderr; a file never fills up and blocks
    with open(log, "w") as stderr:
        owner = subprocess.Popen(
            [sys.executable, script, tmp_path / "work", json.dumps(TASKS), json.dumps(FILES)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()  # the owner exits within 30 s if the tasks fail
        if not line:
            owner.kill()
            owner.wait(10)
            pytest.fail(f"the owner exited ({owner.returncode}) early: {log.read_text()}")
        pids = json.loads(line)
        procs = everything(pids, owner.pid)
        leftovers |= procs
        watchdog = watchdogs(owner.pid)
        owner.send_signal(signal.SIGKILL)
        assert owner.wait(10) == -signal.SIGKILL  # reaped: the owner is our child
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        owner.stdout.close()  # type: ignore[union-attr]
    assert_all_gone(procs, "SIGKILL of the owner")
    assert not survivors(watchdog, 0), "the watchdog has done its work and exited"
