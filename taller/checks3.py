"""Step 3's behaviours, as checks: a result goes to the checkpoint before anything else, so a
duplicate is harmless; an update is acknowledged only once it has taken effect; a scheduler
reconciles after it (re)subscribes; and the whole job runs. See taller/checker.py.

Each check builds a scheduler of the package on a checkpoint in a temporary directory, with a
fake driver and fake timers, and calls its methods as pymesos would."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobs import bikeshare
from taller import fakes, whole
from taller.checker import Package, check, expect

SMALL = bikeshare.SIZES["small"]
CHUNKS = bikeshare.chunks(SMALL)


def counts(chunk: int) -> dict:
    return bikeshare.count_chunk(chunk, SMALL)


class Job:
    """A scheduler of the package on a directory checkpoint, with its fake driver and timers;
    `acks` lists each acknowledged update as (task ID, was its result in the checkpoint?)."""

    def __init__(self, package: Package, directory: Path, **settings: Any) -> None:
        self.package = package
        self.store = package.checkpoint.DirectoryStore(directory)
        self.progress: list[int] = []
        self.acks: list[tuple[str, bool]] = []
        self.crashes: list[str] = []
        module = package.scheduler
        self.scheduler = module.JobScheduler(
            module.Settings(size="small", **settings),
            self.store,
            on_progress=lambda done, total: self.progress.append(done),
        )
        self.timers = fakes.Timers()
        self.scheduler.later = self.timers
        self.scheduler.crash = self.crashes.append
        self.driver = fakes.Driver()
        self.driver.on_acknowledge = self.acknowledged

    def acknowledged(self, update: dict) -> None:
        task_id = update["task_id"]["value"]
        task = self.package.scheduler.parse_task_id(task_id)
        self.acks.append((task_id, task is not None and self.store.result(task[0]) is not None))

    def launch_everything(self) -> None:
        """Recover (an empty checkpoint) and launch every chunk on one offer."""
        self.scheduler.recover()
        self.scheduler.framework_id = "F0"
        executors = (self.package.scheduler.EXECUTOR_ID,)
        self.scheduler.resourceOffers(self.driver, [fakes.offer(8.0, 8192.0, executors=executors)])
        self.driver.clear()

    def finished(self, task_id: str, **fields: Any) -> dict:
        chunk = int(task_id.split("-")[1])
        data = self.package.messages.encode(counts(chunk))
        return fakes.update(task_id, "TASK_FINISHED", data=data, **fields)

    def statuses(self, *updates: dict) -> None:
        for update in updates:
            self.scheduler.statusUpdate(self.driver, update)

    def calls(self) -> list[str]:
        """The driver calls, acknowledgements aside."""
        return [name for name in self.driver.names() if name != "acknowledgeStatusUpdate"]


@contextmanager
def job(package: Package, **settings: Any) -> Iterator[Job]:
    with tempfile.TemporaryDirectory(prefix="taller-") as directory:
        yield Job(package, Path(directory) / "state", **settings)


# -- record(): the checkpoint first -------------------------------------------------------------


@check(3, "record-checkpoint", "record")
def record_checkpoint(package: Package) -> None:
    with job(package) as j:
        j.launch_everything()
        s = j.scheduler
        s.record(j.driver, "chunk-0-attempt-1", 0, counts(0))
        expect(j.store.result(0) == counts(0), "not-stored", chunk=0)
        for field, got, expected in [
            ("0 in self.results", s.results.get(0) == counts(0), True),
            ("self.recorded", list(s.recorded), [0]),
            ("the bar (days done)", list(j.progress), [7]),
            ("chunk-0-attempt-1 in self.running", "chunk-0-attempt-1" in s.running, False),
        ]:
            expect(got == expected, "state", chunk=0, field=field, got=got, expected=expected)
        for chunk in CHUNKS[1:]:
            s.record(j.driver, f"chunk-{chunk}-attempt-1", chunk, counts(chunk))
        expect(s.finished.is_set(), "not-finished", total=len(CHUNKS))


@check(3, "record-once", "record")
def record_once(package: Package) -> None:
    with job(package) as j:
        j.launch_everything()
        s = j.scheduler
        # Another scheduler (the one before us, alive for a moment longer) stored week 1 first.
        other = {**counts(1), "trips": counts(1)["trips"] + 1}
        j.store.save_result(1, other)
        s.record(j.driver, "chunk-1-attempt-1", 1, counts(1))
        expect(s.results.get(1) == other, "overwrote", chunk=1)
        expect(j.store.result(1) == other, "store-changed", chunk=1)
        expect(s.recorded == [], "recorded", got=list(s.recorded), expected=[])
        for _ in range(2):
            s.record(j.driver, "chunk-0-attempt-1", 0, counts(0))
        expect(s.recorded == [0], "recorded", got=list(s.recorded), expected=[0])
        expect(j.progress == [7, 14], "progress", got=list(j.progress), expected=[7, 14])


@check(3, "record-redundant", "record")
def record_redundant(package: Package) -> None:
    with job(package) as j:
        # Week 3 was launched twice: its first agent was unreachable for a while, then came back.
        j.store.save_task("chunk-3-attempt-1", "S0")
        j.store.save_task("chunk-3-attempt-2", "S1")
        s = j.scheduler
        s.recover()
        s.record(j.driver, "chunk-3-attempt-2", 3, counts(3))
        killed = [call["task"] for call in j.driver.of("killTask")]
        expected = ["chunk-3-attempt-1"]
        expect(killed == expected, "killed", got=killed, expected=expected)
        running = sorted(s.running)
        expect(
            not any(launch.chunk == 3 for launch in s.running.values()),
            "state",
            field="self.running",
            got=running,
        )
        expect(3 not in s.pending, "state", field="self.pending", got=list(s.pending))


# -- statusUpdate(): acknowledged once it has taken effect --------------------------------------


@check(3, "updates-ack-after", "updates")
def updates_ack_after(package: Package) -> None:
    with job(package) as j:
        j.launch_everything()
        j.statuses(j.finished("chunk-1-attempt-1"))
        expected = [("chunk-1-attempt-1", True)]
        expect(j.acks == expected, "acks", got=j.acks, expected=expected)


@check(3, "updates-ack-all", "updates")
def updates_ack_all(package: Package) -> None:
    with job(package) as j:
        j.launch_everything()
        j.statuses(fakes.update("someone-else", "TASK_RUNNING"))
        expected = [("someone-else", False)]
        what = "the update of a task not ours"
        expect(j.acks == expected, "acks", what=what, got=j.acks, expected=expected)
        expect("someone-else" not in j.scheduler.running, "adopted", running=j.scheduler.running)

        j.acks.clear()
        same = j.finished("chunk-0-attempt-1")
        j.statuses(same, same, dict(same))
        expected = [("chunk-0-attempt-1", True)] * 3
        what = "three copies of a TASK_FINISHED"
        expect(j.acks == expected, "acks", what=what, got=j.acks, expected=expected)
        expect(j.scheduler.recorded == [0], "recorded", got=list(j.scheduler.recorded))

        j.acks.clear()
        answer = fakes.from_master("chunk-1-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION")
        j.statuses(answer)
        what = "an answer of the master (no uuid)"
        expect(j.acks == [], "acks", what=what, got=j.acks, expected=[])


@check(3, "updates-done", "updates")
def updates_done(package: Package) -> None:
    with job(package) as j:
        j.launch_everything()
        s = j.scheduler
        j.statuses(j.finished("chunk-3-attempt-1"))
        j.driver.clear()
        # Another attempt at week 3 shows up: launched by a scheduler before us, say.
        steps = [
            ("a TASK_RUNNING of chunk-3-attempt-2", fakes.update("chunk-3-attempt-2",
             "TASK_RUNNING", agent="S1"), ["killTask"]),
            ("its TASK_FINISHED", j.finished("chunk-3-attempt-2", agent="S1"), ["killTask"]),
            ("its TASK_KILLED", fakes.update("chunk-3-attempt-2", "TASK_KILLED", agent="S1"),
             ["killTask"]),
        ]  # fmt: skip
        for what, update, expected in steps:
            j.statuses(update)
            expect(j.calls() == expected, "calls", what=what, got=j.calls(), expected=expected)
            state = {
                "self.running": sorted(s.running),
                "self.pending": list(s.pending),
                "self.recorded": list(s.recorded),
            }
            for field, good in [
                ("self.running", "chunk-3-attempt-2" not in s.running),
                ("self.pending", 3 not in s.pending),
                ("self.recorded", s.recorded == [3]),
            ]:
                expect(good, "state", what=what, field=field, got=state[field])


# -- reconcile(): after every (re)subscription --------------------------------------------------


def recovered(j: Job) -> None:
    """A checkpoint left by a scheduler that died: weeks 0 and 1 launched, week 2 done, and the
    framework ID; then this scheduler subscribes again with it."""
    for task in ("chunk-0-attempt-1", "chunk-1-attempt-1", "chunk-2-attempt-1"):
        j.store.save_task(task, "S0")
    j.store.save_result(2, counts(2))
    j.store.save_framework_id("F0")
    j.scheduler.recover()
    j.scheduler.reregistered(j.driver, {"hostname": "master"})


def asked(j: Job) -> list[list[str]]:
    return [call["tasks"] for call in j.driver.of("reconcileTasks")]


@check(3, "reconcile-ask", "reconcile")
def reconcile_ask(package: Package) -> None:
    with job(package) as j:
        recovered(j)
        expected = [["chunk-0-attempt-1", "chunk-1-attempt-1"], []]
        got = asked(j)
        expect(sorted(got) == sorted(expected), "asked", got=got, expected=expected)


@check(3, "reconcile-retry", "reconcile")
def reconcile_retry(package: Package) -> None:
    first_retry = package.scheduler.RECONCILE_FIRST_RETRY
    with job(package) as j:
        recovered(j)
        expect(j.timers.scheduled, "no-retry")
        delays = []
        for when, answered, expected in [
            ("with no answer yet", None, [["chunk-0-attempt-1", "chunk-1-attempt-1"]]),
            ("after the answer about chunk-0-attempt-1", "chunk-0-attempt-1",
             [["chunk-1-attempt-1"]]),
            ("once every task has answered", "chunk-1-attempt-1", []),
        ]:  # fmt: skip
            if answered:
                answer = fakes.from_master(answered, "TASK_RUNNING", "REASON_RECONCILIATION")
                j.statuses(answer)
            j.driver.clear()
            if j.timers.scheduled:
                delays.append(j.timers.fire())
            expect(asked(j) == expected, "asked", when=when, got=asked(j), expected=expected)
        expect(not j.timers.scheduled, "asked", when="at the end", got="...", expected=[])
        expect(
            delays[0] == first_retry and delays[1] > delays[0],
            "delays",
            got=delays,
            first=first_retry,
        )


# -- the whole job ------------------------------------------------------------------------------


@check(3, "job", None)
def job_check(package: Package) -> str:
    with tempfile.TemporaryDirectory(prefix="taller-") as directory:
        # One scheduler: the code it serves may take any free port (5070 may be in use).
        state = str(Path(directory) / "state")
        return whole.run_main(package, "--state", state, "--code-port", "0")
