"""Step 3 (`step3_failover`) without a cluster.

The checkpoint's contract is one set of tests (`StoreContract`) that every backend must pass:
the directory here, ZooKeeper in tests/integration/test_step3_failover.py. The scheduler's
callbacks are called directly with hand-made offers and status updates, on a real directory
checkpoint, and a fake driver records what they ask of Mesos. `run()` is driven end to end by a
fake driver that stands for a whole cluster.

What the workshop asks attendees to write (recording a result before anything else, so that a
duplicate is harmless; acknowledging afterwards; reconciling after subscribing) is defined once,
as the checks of taller/checks3.py; tests/integration/test_taller.py runs them against this
package.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import step3_failover.__main__ as step3_main
import step3_failover.scheduler as step3_scheduler
from jobs import bikeshare
from step1_scheduler.sandbox import Credential
from step3_failover import archive, messages
from step3_failover.checkpoint import (
    Checkpoint,
    DirectoryStore,
    Leadership,
    StoreError,
    ZooKeeperStore,
    open_store,
)
from step3_failover.scheduler import (
    ACTIVE_STATES,
    DECLINE_FILTER,
    EXECUTOR_ID,
    LAUNCH_TIMEOUT,
    RECONCILE_FIRST_RETRY,
    RECONCILE_MAX_RETRY,
    RECONCILE_PERIOD,
    RELAUNCH_MAX_DELAY,
    JobScheduler,
    Settings,
    executor_info,
    parse_task_id,
)

SMALL = bikeshare.SIZES["small"]
CHUNKS = bikeshare.chunks(SMALL)
REFERENCE = bikeshare.run_sequential(SMALL)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)
    return result


def counts(chunk: int) -> dict:
    return bikeshare.count_chunk(chunk, SMALL)


# == the checkpoint ===============================================================================


class StoreContract:
    """What every backend of the checkpoint must do. A subclass provides `store`, and
    `another`: a second, independent client of the same state, as a second scheduler has."""

    @pytest.fixture
    def store(self) -> Checkpoint:
        raise NotImplementedError

    @pytest.fixture
    def another(self) -> Callable[[], Checkpoint]:
        raise NotImplementedError

    def test_create_if_absent_keeps_the_first_value(self, store: Checkpoint) -> None:
        assert store.read("results/chunk-7") is None
        assert store.create("results/chunk-7", b"first") is True
        assert store.create("results/chunk-7", b"second") is False
        assert store.read("results/chunk-7") == b"first"

    def test_of_many_concurrent_creates_exactly_one_wins(
        self, store: Checkpoint, another: Callable[[], Checkpoint]
    ) -> None:
        clients = [another() for _ in range(6)]
        start = threading.Barrier(len(clients))
        won: list[int] = []

        def create(index: int, client: Checkpoint) -> None:
            start.wait()
            if client.create("results/chunk-3", f"from {index}".encode()):
                won.append(index)

        threads = [threading.Thread(target=create, args=pair) for pair in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(won) == 1
        assert store.read("results/chunk-3") == f"from {won[0]}".encode()

    def test_a_result_is_recorded_once_and_the_first_one_counts(self, store: Checkpoint) -> None:
        assert store.results() == {}
        assert store.save_result(2, counts(2)) is True
        assert store.save_result(2, {**counts(2), "trips": -1}) is False
        assert store.save_result(0, counts(0)) is True
        assert store.results() == {0: counts(0), 2: counts(2)}
        assert store.result(2) == counts(2)
        assert store.result(1) is None

    def test_tasks_are_written_once_each(self, store: Checkpoint) -> None:
        assert store.tasks() == {}
        assert store.save_task("chunk-1-attempt-1", "S0") is True
        assert store.save_task("chunk-1-attempt-1", "S1") is False
        assert store.save_task("chunk-0-attempt-2", "S1") is True
        assert store.tasks() == {"chunk-0-attempt-2": "S1", "chunk-1-attempt-1": "S0"}

    def test_the_framework_id_is_saved_once_and_forgotten_only_if_it_is_ours(
        self, store: Checkpoint
    ) -> None:
        assert store.framework_id() is None
        assert store.save_framework_id("F1") is True
        assert store.save_framework_id("F1") is True  # the same one: fine
        assert store.save_framework_id("F2") is False
        assert store.framework_id() == "F1"
        store.forget_framework_id("F2")
        assert store.framework_id() == "F1"
        store.forget_framework_id("F1")
        assert store.framework_id() is None
        store.forget_framework_id("F1")  # twice is harmless
        assert store.save_framework_id("F2") is True

    def test_every_scheduler_must_run_the_same_job(
        self, store: Checkpoint, another: Callable[[], Checkpoint]
    ) -> None:
        job = {"size": "small", "executor": {"executor_id": {"value": "x"}}}
        store.check_job(job)
        another().check_job(dict(reversed(job.items())))  # the same job, keys in another order
        with pytest.raises(StoreError, match="holds another job"):
            another().check_job({**job, "size": "demo"})

    def test_one_instance_leads_and_the_next_takes_over_when_it_lets_go(
        self, store: Checkpoint, another: Callable[[], Checkpoint]
    ) -> None:
        second = another()
        waited: list[str] = []
        leading = threading.Event()

        def contend() -> None:
            with second.leadership("two", on_wait=waited.append) as leadership:
                assert not leadership.lost.is_set()
                leading.set()

        with store.leadership("one", on_wait=waited.append) as leadership:
            assert not leadership.lost.is_set()
            thread = threading.Thread(target=contend)
            thread.start()
            wait_for(lambda: waited)
            assert waited == ["one"]  # the standby is told who leads
            assert not leading.wait(0.3)
        assert leading.wait(30)
        thread.join(30)
        assert waited == ["one"]


class TestDirectoryStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Checkpoint:
        return DirectoryStore(tmp_path / "state")

    @pytest.fixture
    def another(self, tmp_path: Path) -> Callable[[], Checkpoint]:
        return lambda: DirectoryStore(tmp_path / "state")

    def test_a_write_cut_short_is_never_seen(self, store: DirectoryStore) -> None:
        # What a scheduler killed in the middle of a write leaves: a temporary file.
        (store.directory / "results" / ".chunk-1.0123abcd").write_text('{"trips": ')
        assert store.results() == {}
        assert store.save_result(1, counts(1)) is True
        assert store.results() == {1: counts(1)}
        assert sorted(p.name for p in (store.directory / "results").iterdir()) == [
            ".chunk-1.0123abcd",
            "chunk-1",
        ]

    def test_a_directory_that_cannot_be_used_is_a_store_error(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("")
        with pytest.raises(StoreError, match="cannot use --state"):
            DirectoryStore(tmp_path / "file" / "state")


def test_open_store_chooses_the_backend_from_the_spec(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "state")), DirectoryStore)
    with pytest.raises(StoreError, match="expected zk://HOST:PORT"):
        ZooKeeperStore("zk://127.0.0.1:1")  # no path


# == the scheduler ================================================================================


class FakeDriver:
    """Records the driver calls that the scheduler makes, in order. When it launches tasks,
    it notes whether each one was already in the checkpoint; when it acknowledges an update,
    whether the update's result was."""

    def __init__(self, store: Checkpoint, framework_id: str = "F0") -> None:
        self.store = store
        self.framework_id = framework_id
        self.calls: list[tuple[str, Any]] = []

    def launchTasks(self, offer_ids: Any, tasks: list[dict], filters: Any = None) -> None:
        written = [self.store.read(f"tasks/{t['task_id']['value']}") is not None for t in tasks]
        self.calls.append(("launchTasks", {"tasks": tasks, "written": written}))

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("declineOffer", filters))

    def suppressOffers(self) -> None:
        self.calls.append(("suppressOffers", None))

    def reviveOffers(self) -> None:
        self.calls.append(("reviveOffers", None))

    def reconcileTasks(self, tasks: list[dict]) -> None:
        self.calls.append(("reconcileTasks", sorted(t["task_id"]["value"] for t in tasks)))

    def killTask(self, task_id: dict) -> None:
        self.calls.append(("killTask", task_id["value"]))

    def acknowledgeStatusUpdate(self, status: dict) -> None:
        task = parse_task_id(status["task_id"]["value"])
        recorded = task is not None and self.store.result(task[0]) is not None
        self.calls.append(("acknowledge", (status["task_id"]["value"], recorded)))

    def stop(self, failover: bool = False) -> None:
        self.calls.append(("stop", {"failover": failover}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]

    def launched(self) -> list[str]:
        return [t["task_id"]["value"] for call in self.of("launchTasks") for t in call["tasks"]]

    def clear(self) -> None:
        self.calls.clear()


_offers = iter(range(1, 1_000_000))


def offer(cpus: float = 8.0, mem: float = 8192.0, agent: str = "S0") -> dict:
    return {
        "id": {"value": f"O{next(_offers)}"},
        "agent_id": {"value": agent},
        "hostname": "agent.example",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
        ],
        "executor_ids": [{"value": EXECUTOR_ID}],
    }


# An offer's `url`: where the agent serves its HTTP endpoints.
AGENT_URL = {
    "scheme": "http",
    "address": {"hostname": "agent.example", "ip": "10.0.0.1", "port": 5051},
}

_uuids = iter(range(1, 1_000_000))


def update(task_id: str, state: str, agent: str = "S0", **fields: Any) -> dict:
    """A status update as an agent sends it: with a uuid, to be acknowledged."""
    return {
        "task_id": {"value": task_id},
        "state": state,
        "agent_id": {"value": agent},
        "source": "SOURCE_EXECUTOR",
        "uuid": f"u{next(_uuids)}",
        **fields,
    }


def from_master(task_id: str, state: str, reason: str, **fields: Any) -> dict:
    """An update that the master makes (reconciliation, a lost agent): no uuid."""
    return {
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_MASTER",
        "reason": reason,
        **fields,
    }


def finished(task_id: str, agent: str = "S0", data: dict | None = None) -> dict:
    """A TASK_FINISHED as our executor sends it: the chunk's counts in `data`."""
    chunk = parse_task_id(task_id)
    assert chunk is not None
    result = counts(chunk[0]) if data is None else data
    return update(task_id, "TASK_FINISHED", agent, data=messages.encode(result))


class Timers:
    """Stands for the scheduler's `later`: records what it schedules, and runs it on demand."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, seconds: float, function: Callable[[], None]) -> None:
        self.scheduled.append((seconds, function))

    def fire_last(self) -> float:
        """Run the newest scheduled call; returns its delay."""
        seconds, function = self.scheduled.pop()
        function()
        return seconds

    def fire(self) -> float:
        """Run the oldest scheduled call; returns its delay."""
        seconds, function = self.scheduled.pop(0)
        function()
        return seconds


class Job:
    """A scheduler on a directory checkpoint, its fake driver, timers and crash record."""

    def __init__(self, directory: Path, **settings: Any) -> None:
        self.store = DirectoryStore(directory)
        self.settings = Settings(size="small", **settings)
        self.driver = FakeDriver(self.store)
        self.timers = Timers()
        self.watchdog = Timers()  # periodic reconciliation and launch timeouts
        self.crashes: list[str] = []
        self.progress: list[int] = []
        self.scheduler = self.new_scheduler()

    def new_scheduler(self) -> JobScheduler:
        scheduler = JobScheduler(
            self.settings, self.store, on_progress=lambda done, total: self.progress.append(done)
        )
        scheduler.later = self.timers
        scheduler.watchdog = self.watchdog
        scheduler.crash = self.crash
        return scheduler

    def crash(self, why: str) -> None:
        self.crashes.append(why)
        self.driver.calls.append(("crash", why))

    def register(self) -> JobScheduler:
        self.scheduler.recover()
        self.scheduler.registered(self.driver, {"value": "F0"}, {"hostname": "master"})
        return self.scheduler

    def reregister(self) -> JobScheduler:
        self.scheduler.recover()
        self.scheduler.reregistered(self.driver, {"hostname": "master"})
        return self.scheduler

    def launch_everything(self) -> None:
        self.scheduler.resourceOffers(self.driver, [offer()])
        assert sorted(self.driver.launched()) == [f"chunk-{c}-attempt-1" for c in CHUNKS]

    def statuses(self, *updates: dict) -> None:
        for status in updates:
            self.scheduler.statusUpdate(self.driver, status)


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return Job(tmp_path / "state")


def finish_all(job: Job, attempt: int = 1) -> None:
    for chunk in CHUNKS:
        if chunk not in job.scheduler.results:
            job.statuses(finished(f"chunk-{chunk}-attempt-{attempt}"))


# -- registration and the checkpoint -----------------------------------------------------------


def test_a_new_framework_writes_its_id_down_and_reconciles(job: Job) -> None:
    scheduler = job.register()
    assert job.store.framework_id() == "F0"
    assert scheduler.framework_id == "F0"
    assert scheduler.registered_event.is_set()
    # Nothing may run yet: only the implicit reconciliation (an empty list).
    assert job.driver.calls == [("reconcileTasks", [])]
    assert job.timers.scheduled == []
    assert list(scheduler.pending) == CHUNKS


def test_a_checkpoint_that_names_another_framework_stops_us_without_teardown(job: Job) -> None:
    job.store.save_framework_id("F-other")
    scheduler = job.register()
    assert job.driver.calls == [("stop", {"failover": True})]
    assert scheduler.finished.is_set()
    assert "the checkpoint names framework F-other" in (scheduler.failure or "")
    assert job.store.framework_id() == "F-other"


def test_every_task_is_in_the_checkpoint_before_it_is_launched(job: Job) -> None:
    job.register()
    job.driver.clear()
    job.scheduler.resourceOffers(job.driver, [offer(cpus=0.2), offer(cpus=0.2, agent="S1")])
    launches = job.driver.of("launchTasks")
    assert [call["written"] for call in launches] == [[True, True], [True, True]]
    assert job.store.tasks() == {
        "chunk-0-attempt-1": "S0",
        "chunk-1-attempt-1": "S0",
        "chunk-2-attempt-1": "S1",
        "chunk-3-attempt-1": "S1",
    }
    assert job.driver.names()[-1] == "suppressOffers"


def test_recover_rebuilds_what_may_run_and_what_to_launch(job: Job) -> None:
    # What a scheduler left behind: chunks 0 and 1 done, chunk 2 launched twice, chunk 3 never.
    job.store.save_result(0, counts(0))
    job.store.save_result(1, counts(1))
    for task in ("chunk-0-attempt-1", "chunk-1-attempt-2", "chunk-2-attempt-1"):
        job.store.save_task(task, "S0")
    job.store.save_task("chunk-2-attempt-2", "S1")
    job.store.save_framework_id("F0")

    scheduler = job.reregister()
    assert scheduler.recovered == 2
    assert sorted(scheduler.results) == [0, 1]
    assert sorted(scheduler.running) == ["chunk-2-attempt-1", "chunk-2-attempt-2"]
    assert list(scheduler.pending) == [3]
    assert scheduler.attempts == {0: 1, 1: 2, 2: 2}
    assert job.progress == [14]  # the bar starts with the recovered chunks' days
    # Explicitly, the tasks that may run; implicitly, anything else the master knows of ours.
    assert job.driver.calls == [
        ("reconcileTasks", ["chunk-2-attempt-1", "chunk-2-attempt-2"]),
        ("reconcileTasks", []),
    ]

    # Chunk 2 is not launched again while its tasks may run; chunk 3 is.
    job.scheduler.resourceOffers(job.driver, [offer()])
    assert job.driver.launched() == ["chunk-3-attempt-1"]


def test_attempt_numbers_go_on_after_a_recovery_and_never_repeat(job: Job) -> None:
    job.store.save_task("chunk-1-attempt-2", "S0")
    job.store.save_task("chunk-1-attempt-4", "S0")  # launched by a scheduler we never knew
    job.store.save_framework_id("F0")
    scheduler = job.reregister()
    job.statuses(from_master("chunk-1-attempt-2", "TASK_UNKNOWN", "REASON_RECONCILIATION"))
    job.statuses(from_master("chunk-1-attempt-4", "TASK_GONE", "REASON_RECONCILIATION"))
    job.timers.fire_last()  # the pause before chunk 1 is launched again
    assert 1 in scheduler.pending
    # Another scheduler (still alive for a moment) took attempt 5 after we recovered.
    job.store.save_task("chunk-1-attempt-5", "S1")
    scheduler.resourceOffers(job.driver, [offer()])
    assert "chunk-1-attempt-6" in job.driver.launched()
    assert scheduler.attempts[1] == 6


# -- reconciliation -----------------------------------------------------------------------------


def recovered_with_running_tasks(job: Job) -> JobScheduler:
    for task in ("chunk-0-attempt-1", "chunk-1-attempt-1", "chunk-2-attempt-1"):
        job.store.save_task(task, "S0")
    job.store.save_framework_id("F0")
    return job.reregister()


def test_reconciliation_is_asked_again_with_backoff_until_every_task_answers(job: Job) -> None:
    scheduler = recovered_with_running_tasks(job)
    assert job.driver.of("reconcileTasks") == [
        ["chunk-0-attempt-1", "chunk-1-attempt-1", "chunk-2-attempt-1"],
        [],
    ]
    job.driver.clear()
    job.statuses(from_master("chunk-1-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"))

    # No answer about the others (a master that lost its agents for a while): ask again,
    # waiting twice as long each time, up to a limit.
    delays = [job.timers.fire() for _ in range(8)]
    first = RECONCILE_FIRST_RETRY
    assert delays[:3] == [first, 2 * first, 4 * first]
    assert delays[-1] == RECONCILE_MAX_RETRY
    assert job.driver.of("reconcileTasks") == [["chunk-0-attempt-1", "chunk-2-attempt-1"]] * 8

    job.statuses(from_master("chunk-0-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"))
    job.statuses(from_master("chunk-2-attempt-1", "TASK_STAGING", "REASON_RECONCILIATION"))
    job.driver.clear()
    job.timers.fire()  # every task has answered: the retries stop
    assert job.driver.calls == []
    assert job.timers.scheduled == []
    assert sorted(scheduler.running) == [f"chunk-{c}-attempt-1" for c in (0, 1, 2)]
    assert list(scheduler.pending) == [3]


def test_a_new_registration_starts_a_new_reconciliation(job: Job) -> None:
    scheduler = recovered_with_running_tasks(job)
    job.statuses(from_master("chunk-0-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"))
    old_retry = job.timers.scheduled.pop(0)
    job.driver.clear()
    # pymesos reconnects (a master failover, a broken connection): every task that may run is
    # asked about again, the answered ones included.
    scheduler.reregistered(job.driver, {"hostname": "master"})
    assert job.driver.of("reconcileTasks") == [
        ["chunk-0-attempt-1", "chunk-1-attempt-1", "chunk-2-attempt-1"],
        [],
    ]
    job.driver.clear()
    old_retry[1]()  # the retry of the earlier reconciliation does nothing
    assert job.driver.calls == []


def test_a_task_that_still_runs_is_not_launched_again(job: Job) -> None:
    scheduler = recovered_with_running_tasks(job)
    job.statuses(
        from_master("chunk-0-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"),
        from_master("chunk-1-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"),
        from_master("chunk-2-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"),
    )
    scheduler.resourceOffers(job.driver, [offer()])
    assert job.driver.launched() == ["chunk-3-attempt-1"]
    # They finish under the new scheduler, with the results they carry.
    finish_all(job)
    assert scheduler.done
    assert scheduler.result() == REFERENCE
    assert scheduler.attempts == dict.fromkeys(CHUNKS, 1)


def test_a_chunk_back_from_an_unreachable_agent_is_not_launched_again(job: Job) -> None:
    scheduler = job.register()
    scheduler.resourceOffers(job.driver, [offer()])
    assert list(scheduler.pending) == []
    # Its agent stops answering: the chunk goes back to the queue...
    job.statuses(from_master("chunk-3-attempt-1", "TASK_UNREACHABLE", "REASON_AGENT_REMOVED"))
    job.timers.fire_last()
    assert list(scheduler.pending) == [3]
    # ...and the agent comes back before any offer, with the task finished.
    job.statuses(finished("chunk-3-attempt-1"))
    assert 3 in scheduler.results
    assert list(scheduler.pending) == []
    job.driver.clear()
    scheduler.resourceOffers(job.driver, [offer()])
    assert job.driver.launched() == []


def test_a_running_task_that_we_did_not_know_of_is_adopted(job: Job) -> None:
    scheduler = job.register()
    assert 2 in scheduler.pending
    # The implicit reconciliation tells of a task that a scheduler before us launched after
    # we read the checkpoint (or one back from an unreachable agent).
    job.statuses(from_master("chunk-2-attempt-7", "TASK_RUNNING", "REASON_RECONCILIATION"))
    assert 2 not in scheduler.pending
    assert scheduler.running["chunk-2-attempt-7"].chunk == 2
    scheduler.resourceOffers(job.driver, [offer()])
    assert sorted(job.driver.launched()) == [f"chunk-{c}-attempt-1" for c in (0, 1, 3)]


# -- losses and failures ------------------------------------------------------------------------

LOSSES = [
    from_master("chunk-1-attempt-1", "TASK_LOST", "REASON_AGENT_DISCONNECTED"),
    from_master("chunk-1-attempt-1", "TASK_UNREACHABLE", "REASON_AGENT_REMOVED"),
    from_master("chunk-1-attempt-1", "TASK_GONE", "REASON_RECONCILIATION"),
    from_master("chunk-1-attempt-1", "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"),
    from_master("chunk-1-attempt-1", "TASK_DROPPED", "REASON_INVALID_OFFERS"),
    from_master("chunk-1-attempt-1", "TASK_UNKNOWN", "REASON_RECONCILIATION"),
    update("chunk-1-attempt-1", "TASK_KILLED", message="killed on request"),
]  # fmt: skip


@pytest.mark.parametrize("loss", LOSSES, ids=lambda u: f"{u['state']}-{u.get('reason', '')}")
def test_a_lost_task_is_launched_again_with_backoff_up_to_max_losses(
    tmp_path: Path, loss: dict
) -> None:
    job = Job(tmp_path / "state", max_attempts=1, max_losses=5)
    scheduler = job.register()
    job.launch_everything()
    job.driver.clear()
    job.timers.scheduled.clear()  # the reconciliation's retry
    delays = []
    for attempt in range(1, 5):
        lost = {**loss, "task_id": {"value": f"chunk-1-attempt-{attempt}"}}
        job.statuses(lost)
        assert scheduler.failure is None  # a loss is not a failure: --max-attempts 1 holds
        assert list(scheduler.pending) == []  # not at once: after a pause
        delays.append(job.timers.fire_last())
        assert list(scheduler.pending) == [1]
        scheduler.resourceOffers(job.driver, [offer()])
        assert job.driver.launched()[-1] == f"chunk-1-attempt-{attempt + 1}"
    assert delays == [0.5, 1.0, 2.0, 4.0]  # each pause twice the one before
    names = [name for name in job.driver.names() if name != "acknowledge"]
    assert names[:3] == ["reviveOffers", "launchTasks", "suppressOffers"]
    assert "reconcileTasks" not in names
    # The fifth loss is one too many: the job gives up rather than launch it again.
    job.statuses({**loss, "task_id": {"value": "chunk-1-attempt-5"}})
    assert scheduler.finished.is_set()
    assert (scheduler.failure or "").startswith(
        f"chunk 1 was lost 5 times; the last attempt, chunk-1-attempt-5 on agent S0, ended "
        f"with {loss['state']}: "
    )
    assert job.timers.scheduled == []
    assert scheduler.failures == {}


def test_the_pause_between_attempts_stops_growing_at_its_maximum(tmp_path: Path) -> None:
    job = Job(tmp_path / "state", max_losses=100)
    scheduler = job.register()
    job.launch_everything()
    job.timers.scheduled.clear()
    delays = []
    for attempt in range(1, 10):
        job.statuses(
            from_master(f"chunk-0-attempt-{attempt}", "TASK_LOST", "REASON_AGENT_DISCONNECTED")
        )
        delays.append(job.timers.fire())
        scheduler.resourceOffers(job.driver, [offer()])
    assert delays[-3:] == [RELAUNCH_MAX_DELAY] * 3


def test_a_chunk_done_during_its_pause_is_not_launched_again(job: Job) -> None:
    scheduler = job.register()
    job.launch_everything()
    job.timers.scheduled.clear()
    job.statuses(from_master("chunk-1-attempt-1", "TASK_UNREACHABLE", "REASON_AGENT_REMOVED"))
    # The agent comes back, and with it the task, which finishes.
    job.statuses(finished("chunk-1-attempt-1"))
    job.timers.fire_last()
    assert list(scheduler.pending) == []
    assert scheduler.results[1] == counts(1)


EXECUTOR_ENDED = {
    **update("chunk-2-attempt-1", "TASK_FAILED"),
    "source": "SOURCE_AGENT",
    "reason": "REASON_EXECUTOR_TERMINATED",
    "message": "Executor terminated",
}


@pytest.mark.parametrize(
    "failure",
    [
        update("chunk-2-attempt-1", "TASK_FAILED", message="RuntimeError: chunk 2: failing"),
        from_master("chunk-2-attempt-1", "TASK_ERROR", "REASON_TASK_INVALID", message="bad"),
        finished("chunk-2-attempt-1", data={"week": 3}),  # the result of the wrong week
        # The executor ended (it could not start, or it crashed on the chunk): the agent says so.
        EXECUTOR_ENDED,
    ],
    ids=["failed", "error", "unreadable", "executor-ended"],
)
def test_a_chunk_that_fails_is_tried_max_attempts_times(tmp_path: Path, failure: dict) -> None:
    job = Job(tmp_path / "state", max_attempts=2)
    scheduler = job.register()
    job.launch_everything()
    job.timers.scheduled.clear()
    job.statuses(failure)
    assert job.timers.fire_last() == 0.5
    assert list(scheduler.pending) == [2]
    scheduler.resourceOffers(job.driver, [offer()])
    job.statuses({**failure, "task_id": {"value": "chunk-2-attempt-2"}})
    assert scheduler.finished.is_set()
    assert (scheduler.failure or "").startswith(
        "chunk 2 failed 2 times; the last attempt, chunk-2-attempt-2 on agent S0, ended with "
    )
    assert list(scheduler.pending) == []
    assert scheduler.gave_up is not None
    assert scheduler.gave_up.task_id == "chunk-2-attempt-2"
    assert scheduler.gave_up.reason == failure.get("reason")


def test_the_job_remembers_whether_the_task_that_made_it_give_up_ever_ran(tmp_path: Path) -> None:
    job = Job(tmp_path / "state", max_attempts=1)
    scheduler = job.register()
    job.scheduler.resourceOffers(job.driver, [{**offer(), "url": AGENT_URL}])
    job.statuses(update("chunk-2-attempt-1", "TASK_RUNNING"))
    job.statuses(EXECUTOR_ENDED)
    assert scheduler.gave_up is not None
    assert scheduler.gave_up.started
    assert scheduler.gave_up.agent_url == "http://agent.example:5051"


AGENT = "http://agent.example:5051"


@pytest.mark.parametrize(
    ("reason", "started", "cause"),
    [
        ("REASON_EXECUTOR_TERMINATED", False, "the executor ended before it ran the chunk"),
        ("REASON_EXECUTOR_TERMINATED", True, "the executor died while it ran the chunk"),
        # A scheduler that took over learnt of the failure from the master's reconciliation
        # answer, which has no message: the executor's stderr is all there is to go on.
        ("REASON_RECONCILIATION", False, "the master's reconciliation answer does not say why"),
    ],
)
def test_giving_up_on_an_executor_quotes_its_stderr(
    monkeypatch: pytest.MonkeyPatch, reason: str, started: bool, cause: str
) -> None:
    read: list[tuple[str, str, Credential | None]] = []

    def stderr(agent: str, framework_id: str, credential: Credential | None) -> str:
        read.append((agent, framework_id, credential))
        return "fetched\nfailing-python: cannot run -m step3_failover.executor\n"

    monkeypatch.setattr(step3_main, "executor_stderr", stderr)
    gave_up = step3_scheduler.GaveUp("chunk-2-attempt-3", "S0", AGENT, reason, started)
    settings = small(credential=Credential("ana", "s3cret"))
    scheduler = SimpleNamespace(gave_up=gave_up, framework_id="F0", settings=settings)
    text = step3_main.likely_cause(scheduler)  # type: ignore[arg-type]
    assert text.startswith("\n" + cause)
    assert text.endswith(
        "the end of its stderr on agent S0:\n"
        "fetched\nfailing-python: cannot run -m step3_failover.executor"
    )
    assert read == [(AGENT, "F0", Credential("ana", "s3cret"))]  # a room's agents ask


def test_giving_up_on_the_chunks_own_error_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step3_main, "executor_stderr", pytest.fail)
    gave_up = step3_scheduler.GaveUp("chunk-2-attempt-3", "S0", AGENT, None, True)
    scheduler = SimpleNamespace(gave_up=gave_up, framework_id="F0", settings=small())
    assert step3_main.likely_cause(scheduler) == ""  # type: ignore[arg-type]


def test_a_reconciled_finished_waits_for_its_result_from_the_agent(job: Job) -> None:
    scheduler = recovered_with_running_tasks(job)
    job.driver.clear()
    # The master says chunk 0 finished, but its answer carries no data: the real update is
    # still at the agent, unacknowledged, and comes again now that we have subscribed.
    job.statuses(from_master("chunk-0-attempt-1", "TASK_FINISHED", "REASON_RECONCILIATION"))
    job.statuses(from_master("chunk-0-attempt-1", "TASK_FINISHED", "REASON_RECONCILIATION"))
    assert list(scheduler.pending) == [3]  # not launched again
    assert scheduler.awaiting == {"chunk-0-attempt-1"}
    assert job.driver.calls == []  # master updates have no uuid: nothing to acknowledge
    # Until it comes, the master is asked about it with the tasks that have not answered.
    job.timers.fire()
    assert job.driver.of("reconcileTasks") == [
        ["chunk-0-attempt-1", "chunk-1-attempt-1", "chunk-2-attempt-1"]
    ]
    job.statuses(finished("chunk-0-attempt-1"))
    assert scheduler.recorded == [0]
    assert scheduler.awaiting == set()
    assert scheduler.attempts[0] == 1
    job.statuses(from_master("chunk-1-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"))
    job.statuses(from_master("chunk-2-attempt-1", "TASK_RUNNING", "REASON_RECONCILIATION"))
    job.driver.clear()
    job.timers.fire()  # nothing is in doubt any more: no question, no retry
    assert job.driver.calls == []
    assert job.timers.scheduled == []


def test_a_finished_task_whose_agent_dies_before_resending_runs_again(job: Job) -> None:
    scheduler = recovered_with_running_tasks(job)
    job.statuses(from_master("chunk-0-attempt-1", "TASK_FINISHED", "REASON_RECONCILIATION"))
    job.timers.fire()
    # The agent died with the update: the master no longer knows the task.
    job.statuses(from_master("chunk-0-attempt-1", "TASK_UNKNOWN", "REASON_RECONCILIATION"))
    job.timers.fire_last()
    assert list(scheduler.pending) == [3, 0]
    assert scheduler.awaiting == set()
    assert scheduler.failures == {}
    scheduler.resourceOffers(job.driver, [offer()])
    assert sorted(job.driver.launched()) == ["chunk-0-attempt-2", "chunk-3-attempt-1"]


# -- duplicates: each chunk counted once --------------------------------------------------------


def test_the_first_result_of_a_chunk_counts_even_with_two_schedulers_at_once(
    tmp_path: Path,
) -> None:
    # A leader that has lost its ZooKeeper session but not yet heard "Framework failed over",
    # and the standby that took over: for a moment, both handle updates on one checkpoint.
    old, new = Job(tmp_path / "state"), Job(tmp_path / "state")
    old.register()
    old.launch_everything()
    new.scheduler.recover()
    new.scheduler.reregistered(new.driver, {})
    # The old one records chunk 0; the new one gets another attempt's result for it, which
    # (in a job whose chunks are not deterministic) might even differ.
    old.statuses(finished("chunk-0-attempt-1"))
    other = {**counts(0), "trips": counts(0)["trips"] + 1}
    new.statuses(finished("chunk-0-attempt-1", data=other))
    assert old.scheduler.recorded == [0]
    assert new.scheduler.recorded == []
    assert new.scheduler.results[0] == old.scheduler.results[0] == counts(0)
    assert new.store.results() == {0: counts(0)}


# -- acknowledgements, the checkpoint's failure, the master's errors ----------------------------


def test_when_the_checkpoint_fails_the_scheduler_stops_without_acknowledging(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = job.register()
    job.launch_everything()
    job.driver.clear()

    def broken(chunk: int, result: dict) -> bool:
        raise StoreError("cannot write results/chunk-1: no space left")

    monkeypatch.setattr(job.store, "save_result", broken)
    job.statuses(finished("chunk-1-attempt-1"))
    assert job.driver.calls == [("stop", {"failover": True})]
    assert scheduler.finished.is_set()
    assert scheduler.failure == "the checkpoint failed: cannot write results/chunk-1: no space left"


@pytest.mark.parametrize(
    ("message", "removed"),
    [("Framework failed over", False), ("Framework has been removed", True)],
)
def test_an_error_from_the_master_stops_the_driver_without_teardown(
    job: Job, message: str, removed: bool
) -> None:
    scheduler = job.register()
    job.driver.clear()
    scheduler.error(job.driver, message)
    assert job.driver.calls == [("stop", {"failover": True})]
    assert scheduler.finished.is_set()
    assert scheduler.failure == f"the master reported an error: {message}"
    assert scheduler.removed is removed
    assert job.store.framework_id() == "F0"  # forgetting it is run()'s decision


def test_crash_after_dies_once_the_result_is_recorded_and_before_acknowledging(
    tmp_path: Path,
) -> None:
    job = Job(tmp_path / "state", crash_after=2)
    job.register()
    job.launch_everything()
    job.driver.clear()
    job.statuses(finished("chunk-0-attempt-1"), finished("chunk-1-attempt-1"))
    assert job.driver.names() == ["acknowledge", "crash", "acknowledge"]
    assert job.crashes == ["--crash-after 2: chunk-1-attempt-1 is recorded"]
    assert job.store.results() == {0: counts(0), 1: counts(1)}


def test_lost_agents_and_executors_are_only_logged(
    job: Job, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = job.register()
    job.launch_everything()
    job.driver.clear()
    scheduler.slaveLost(job.driver, {"value": "S0"})
    scheduler.executorLost(job.driver, {"value": EXECUTOR_ID}, {"value": "S0"}, 9)
    assert job.driver.calls == []
    assert sorted(scheduler.running) == [f"chunk-{c}-attempt-1" for c in CHUNKS]
    assert [(lost["agent"], lost["executor"]) for lost in scheduler.timeline.lost] == [
        ("S0", None),
        ("S0", EXECUTOR_ID),
    ]
    assert "agent S0 was lost" in caplog.text


def test_a_new_subscription_unsuppresses_offers(job: Job) -> None:
    scheduler = job.register()
    job.launch_everything()
    assert scheduler.suppressed
    scheduler.reregistered(job.driver, {})
    assert not scheduler.suppressed  # pymesos subscribes with no suppressed roles
    job.driver.clear()
    scheduler.resourceOffers(job.driver, [offer()])
    assert job.driver.calls == [("declineOffer", DECLINE_FILTER), ("suppressOffers", None)]


def test_progress_messages_move_the_bar_of_running_tasks_only(job: Job) -> None:
    scheduler = job.register()
    job.launch_everything()

    def progress(task_id: str, days: int) -> None:
        data = messages.encode({"type": "progress", "task_id": task_id, "days": days})
        scheduler.frameworkMessage(job.driver, {"value": EXECUTOR_ID}, {"value": "S0"}, data)

    progress("chunk-0-attempt-1", 3)
    progress("chunk-9-attempt-1", 3)  # no such task
    job.statuses(finished("chunk-0-attempt-1"))
    progress("chunk-0-attempt-1", 5)  # late
    assert job.progress == [3, 7]


def test_the_executor_info_starts_step_3s_executor() -> None:
    info = executor_info(Settings(executor_python="/opt/py", executor_uri="http://s:5070/c.tgz"))
    assert info["command"]["arguments"] == ["/opt/py", "-m", "step3_failover.executor"]
    assert info["command"]["uris"] == [
        {"value": "http://s:5070/c.tgz", "extract": True, "cache": False}
    ]
    assert info["executor_id"] == {"value": EXECUTOR_ID}


def test_active_states_are_the_ones_mesos_calls_non_terminal_and_reachable() -> None:
    assert {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"} == ACTIVE_STATES


# == run(), with a fake cluster ===================================================================


class FakeCluster:
    """A scheduler driver that stands for a whole cluster: it subscribes at once, offers one
    large offer (again after each REVIVE), answers reconciliation with TASK_LOST, and runs each
    task to TASK_FINISHED with the chunk's real counts. `errors` are sent instead of a
    subscription, one per driver, in order. A TEARDOWN (stop() without failover) is accepted,
    and the driver forgets the framework ID as pymesos does, unless `lost_teardowns` says
    that this one, in order, never reaches a master."""

    made: list[FakeCluster]
    errors: list[str]
    lost_teardowns: list[bool]

    def __init__(self, scheduler: JobScheduler, framework: dict, master: str, **options: Any):
        self.scheduler = scheduler
        self.framework = framework
        self.built_with = (framework.get("id") or {}).get("value")  # the ID it subscribes with
        self.options = options
        self.stopped: list[bool] = []
        self.acknowledged: list[str] = []
        self.reconciled: list[list[str]] = []
        self.master = master
        self.connected = True
        self.heartbeat_interval = 15.0
        self.last_heard = time.monotonic()
        self.made.append(self)

    @property
    def framework_id(self) -> str | None:
        return self.framework.get("id", {}).get("value")

    def start(self) -> None:
        def subscribe() -> None:
            if self.errors:
                self.scheduler.error(self, self.errors.pop(0))
                return
            if self.framework_id:
                self.scheduler.reregistered(self, {"hostname": "master"})
            else:
                self.framework["id"] = {"value": f"F{len(self.made)}"}
                self.scheduler.registered(self, dict(self.framework["id"]), {})
            self.scheduler.resourceOffers(self, [offer()])

        threading.Thread(target=subscribe).start()

    def stop(self, failover: bool = False) -> None:
        self.stopped.append(failover)
        lost = self.lost_teardowns.pop(0) if not failover and self.lost_teardowns else False
        if not failover and not lost:
            self.framework.pop("id", None)

    def join(self) -> None:
        pass

    def deliver(self, *statuses: dict) -> None:
        def run() -> None:
            for status in statuses:
                self.scheduler.statusUpdate(self, status)

        threading.Thread(target=run).start()

    def launchTasks(self, offer_id: dict, tasks: list[dict], filters: Any = None) -> None:
        for task in tasks:
            task_id = task["task_id"]["value"]
            self.deliver(update(task_id, "TASK_RUNNING"), finished(task_id))

    def reconcileTasks(self, tasks: list[dict]) -> None:
        self.reconciled.append([t["task_id"]["value"] for t in tasks])
        self.deliver(
            *(
                from_master(t["task_id"]["value"], "TASK_LOST", "REASON_RECONCILIATION")
                for t in tasks
            )
        )

    def acknowledgeStatusUpdate(self, status: dict) -> None:
        self.acknowledged.append(status["task_id"]["value"])

    def declineOffer(self, *args: Any, **kwargs: Any) -> None:
        pass

    def suppressOffers(self) -> None:
        pass

    def reviveOffers(self) -> None:
        threading.Thread(target=self.scheduler.resourceOffers, args=(self, [offer()])).start()

    def killTask(self, task_id: dict) -> None:
        pass


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> type[FakeCluster]:
    FakeCluster.made = []
    FakeCluster.errors = []
    FakeCluster.lost_teardowns = []
    monkeypatch.setattr(step3_main, "Driver", FakeCluster)
    return FakeCluster


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DirectoryStore]:
    with DirectoryStore(tmp_path / "state") as store:
        yield store


def small(**overrides: Any) -> Settings:
    return Settings(size="small", **overrides)


def test_run_builds_a_driver_that_fails_over_and_tears_down_only_at_the_end(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    scheduler = step3_main.run("m:5050", small(failover_timeout=90.0), store, progress=False)
    assert scheduler.result() == REFERENCE
    (driver,) = cluster.made
    assert driver.options == {
        "use_addict": True,
        "failover": True,  # an exception in pymesos's thread must not TEARDOWN
        "implicit_acknowledgements": False,
        "principal": None,  # no credential: a cluster that does not ask
        "secret": None,
    }
    assert driver.framework["failover_timeout"] == 90.0
    assert driver.framework["capabilities"] == [{"type": "PARTITION_AWARE"}]
    assert driver.stopped == [False]  # stop() without failover: TEARDOWN
    assert sorted(driver.acknowledged) == sorted(
        f"chunk-{c}-attempt-1" for c in CHUNKS for _ in range(2)
    )
    assert store.framework_id() is None  # forgotten after the TEARDOWN
    assert store.results() == {chunk: counts(chunk) for chunk in CHUNKS}
    assert scheduler.recorded and sorted(scheduler.recorded) == CHUNKS


def test_run_resumes_the_framework_in_the_checkpoint(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    store.save_framework_id("F-before")
    store.save_result(0, counts(0))
    store.save_result(2, counts(2))
    store.save_task("chunk-1-attempt-1", "S0")
    said: list[str] = []
    scheduler = step3_main.run("m:5050", small(), store, progress=False, say=said.append)
    assert scheduler.result() == REFERENCE
    (driver,) = cluster.made
    assert driver.built_with == "F-before"
    assert driver.reconciled[0] == ["chunk-1-attempt-1"]
    assert sorted(scheduler.recorded) == [1, 3]
    assert scheduler.attempts[1] == 2  # the recovered task was lost; its chunk ran again
    assert said == ["taking over framework F-before: 2 of 4 chunks are done"]
    assert driver.stopped == [False]
    assert store.framework_id() is None


def test_run_tears_down_a_framework_left_behind_by_a_finished_job(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    # The scheduler before us recorded the last result and died before its TEARDOWN.
    store.save_framework_id("F-before")
    for chunk in CHUNKS:
        store.save_result(chunk, counts(chunk))
    scheduler = step3_main.run("m:5050", small(), store, progress=False)
    assert scheduler.result() == REFERENCE
    (driver,) = cluster.made
    assert driver.stopped == [False]
    assert scheduler.recorded == []
    assert store.framework_id() is None


def test_run_sends_a_lost_teardown_again_from_a_new_subscription(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    # The leading master dies under the TEARDOWN (or pymesos is between two masters): the
    # driver still has the framework ID, and the framework would live on.
    cluster.lost_teardowns = [True]
    scheduler = step3_main.run("m:5050", small(), store, progress=False)
    assert scheduler.result() == REFERENCE
    assert sorted(scheduler.recorded) == CHUNKS
    first, again = cluster.made
    assert first.stopped == [False]
    assert again.built_with == "F1"
    assert again.stopped == [False]
    assert again.framework_id is None  # accepted this time
    assert store.framework_id() is None


def test_run_keeps_the_framework_id_when_no_teardown_reaches_a_master(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    cluster.lost_teardowns = [True] * (1 + step3_main.TEARDOWN_ATTEMPTS)
    scheduler = step3_main.run("m:5050", small(), store, progress=False)
    assert scheduler.result() == REFERENCE
    assert len(cluster.made) == 1 + step3_main.TEARDOWN_ATTEMPTS
    assert [driver.built_with for driver in cluster.made] == [None] + ["F1"] * (
        step3_main.TEARDOWN_ATTEMPTS
    )
    # The next scheduler with this --state takes the finished framework over, and ends it.
    assert store.framework_id() == "F1"
    again = step3_main.run("m:5050", small(), store, progress=False)
    assert cluster.made[-1].stopped == [False]
    assert again.recorded == []
    assert store.framework_id() is None


def test_a_driver_left_without_a_master_is_told_the_leader_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    class Detector:
        def __init__(self, hosts: str, driver: Any) -> None:
            self.hosts, self.driver, self.stopped = hosts, driver, False
            made.append(self)

        def start(self) -> None:
            pass

        def stop(self) -> None:
            self.stopped = True

    monkeypatch.setattr(step3_main, "MasterDetector", Detector)
    monkeypatch.setattr(step3_main, "REDETECT_AFTER", 0.0)
    driver = SimpleNamespace(connected=True)
    watch = step3_main.LeaderWatch("zk://zk1:2181,zk2:2181/mesos")
    watch.check(driver)
    driver.connected = False
    watch.check(driver)  # the first check without a master only notes the time
    assert made == []
    watch.check(driver)
    assert [(d.hosts, d.driver) for d in made] == [("zk1:2181,zk2:2181/mesos", driver)]
    watch.check(driver)  # still no master: a new detector, the old one stopped
    assert len(made) == 2 and made[0].stopped and not made[1].stopped
    driver.connected = True
    watch.check(driver)
    watch.stop()
    assert len(made) == 2 and made[1].stopped
    fixed = step3_main.LeaderWatch("m:5050")  # one master, no ZooKeeper: nothing to ask
    driver.connected = False
    for _ in range(3):
        fixed.check(driver)
    assert len(made) == 2


def test_run_needs_no_master_for_a_job_that_is_done(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    for chunk in CHUNKS:
        store.save_result(chunk, counts(chunk))
    scheduler = step3_main.run("m:5050", small(), store, progress=False)
    assert scheduler.result() == REFERENCE
    assert cluster.made == []


def test_run_replaces_a_framework_that_the_master_removed(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    store.save_framework_id("F-expired")
    store.save_result(1, counts(1))
    cluster.errors = ["Framework has been removed"]
    said: list[str] = []
    scheduler = step3_main.run("m:5050", small(), store, progress=False, say=said.append)
    assert scheduler.result() == REFERENCE
    first, second = cluster.made
    assert set(first.stopped) == {True}  # no TEARDOWN of a framework that is gone anyway
    assert "id" not in second.framework or second.framework["id"] == {"value": "F2"}
    assert second.stopped == [False]
    assert said[1] == "framework F-expired was removed; registering a new one"
    assert scheduler.recovered == 1
    assert store.framework_id() is None


def test_run_leaves_the_framework_running_when_the_job_fails(
    cluster: type[FakeCluster], store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = FakeCluster.launchTasks

    def failing(self: FakeCluster, offer_id: dict, tasks: list[dict], filters: Any = None) -> None:
        for task in [t for t in tasks if t["task_id"]["value"].startswith("chunk-2-")]:
            message = "RuntimeError: chunk 2: failing on purpose"
            self.deliver(update(task["task_id"]["value"], "TASK_FAILED", message=message))
        real(self, offer_id, [t for t in tasks if not t["task_id"]["value"].startswith("chunk-2-")])

    monkeypatch.setattr(FakeCluster, "launchTasks", failing)
    monkeypatch.setattr(step3_scheduler, "RELAUNCH_FIRST_DELAY", 0.001)
    with pytest.raises(step3_main.JobError, match=r"^chunk 2 failed 3 times;"):
        step3_main.run("m:5050", small(), store, progress=False)
    (driver,) = cluster.made
    assert driver.stopped == [True]
    assert store.framework_id() == "F1"  # the next run takes the framework over


def test_run_stops_without_teardown_when_it_loses_the_leadership(
    cluster: type[FakeCluster],
    store: DirectoryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The tasks never finish; meanwhile ZooKeeper expires this instance's session.
    monkeypatch.setattr(FakeCluster, "launchTasks", lambda self, *args, **kwargs: None)
    leadership = Leadership()

    @contextlib.contextmanager
    def lead(me: str, on_wait: Callable[[str], None]) -> Iterator[Leadership]:
        yield leadership

    monkeypatch.setattr(store, "leadership", lead)
    threading.Timer(0.3, leadership.lost.set).start()
    with pytest.raises(step3_main.JobError, match="lost its ZooKeeper session"):
        step3_main.run("m:5050", small(), store, progress=False)
    (driver,) = cluster.made
    assert driver.stopped == [True]
    assert store.framework_id() == "F1"


def test_run_waits_as_a_standby_while_another_instance_leads(
    cluster: type[FakeCluster], store: DirectoryStore, tmp_path: Path
) -> None:
    said: list[str] = []
    done: list[JobScheduler] = []
    with store.leadership("leader-host pid 1", on_wait=said.append):
        thread = threading.Thread(
            target=lambda: done.append(
                step3_main.run(
                    "m:5050", small(), DirectoryStore(tmp_path / "state"), progress=False,
                    say=said.append,
                )
            )
        )  # fmt: skip
        thread.start()
        wait_for(lambda: said)
        assert said == [
            f"standby: leader-host pid 1 leads the job in --state {tmp_path / 'state'}; "
            "waiting to take over"
        ]
        assert cluster.made == []
    thread.join(30)
    assert done[0].result() == REFERENCE


def test_run_refuses_a_checkpoint_of_another_job(
    cluster: type[FakeCluster], store: DirectoryStore
) -> None:
    step3_main.run("m:5050", small(), store, progress=False)
    with pytest.raises(StoreError, match="holds another job"):
        step3_main.run("m:5050", small(executor_python="/elsewhere/python"), store)


# -- the command line -----------------------------------------------------------------------------


def test_framework_info_asks_for_failover_and_partition_awareness() -> None:
    info = step3_main.framework_info(600.0, None)
    assert info["failover_timeout"] == 600.0
    assert info["capabilities"] == [{"type": "PARTITION_AWARE"}]
    assert "id" not in info
    assert step3_main.framework_info(5.0, "F7")["id"] == {"value": "F7"}


def test_the_command_line_builds_the_settings() -> None:
    args, settings = step3_main.parse_args(
        ["--master", "zk://127.0.0.1:2181/mesos", "--state", "zk://127.0.0.1:2181/bikeshare",
         "--size", "tiny", "--failover-timeout", "60", "--session-timeout", "2",
         "--crash-after", "10", "--max-attempts", "1", "--max-losses", "4", "--fail-chunk", "3",
         "--no-progress-messages", "--executor-python", "python3",
         "--executor-uri", "http://code:8000/step3-executor.tar.gz"]
    )  # fmt: skip
    assert (args.state, args.session_timeout) == ("zk://127.0.0.1:2181/bikeshare", 2.0)
    assert settings == Settings(
        size="tiny",
        max_attempts=1,
        max_losses=4,
        executor_python="python3",
        executor_uri="http://code:8000/step3-executor.tar.gz",
        fail_chunk=3,
        progress=False,
        failover_timeout=60.0,
        crash_after=10,
    )


def test_the_command_line_defaults() -> None:
    args, settings = step3_main.parse_args(["--master", "127.0.0.1:5050", "--state", "st"])
    assert settings.failover_timeout == 600.0
    assert settings.crash_after is None
    assert args.session_timeout == 5.0
    assert settings.executor_uri == ""  # main() serves the code, and fills it in
    assert (args.code_host, args.code_port) == (None, step3_main.CODE_PORT)


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["--master", "localhost"], "--master"),
        (["--state", "zk://127.0.0.1:2181"], "--state"),
        (["--failover-timeout", "0"], "--failover-timeout"),
        (["--session-timeout", "nan"], "--session-timeout"),
        (["--crash-after", "0"], "--crash-after"),
        (["--crash-after", "5", "--size", "small"], "--crash-after"),
        (["--max-attempts", "0"], "--max-attempts"),
        (["--max-losses", "0"], "--max-losses"),
        (["--fail-chunk", "4", "--size", "small"], "--fail-chunk"),
        (["--task-cpus", "0"], "--task-cpus"),
        (["--executor-uri", "code.tar.gz"], "--executor-uri"),
        (["--executor-uri", "file:///c.tgz", "--code-host", "h"], "--code-host"),
        (["--code-port", "70000"], "--code-port"),
        (["--code-port", "-1"], "--code-port"),
    ],
)
def test_a_bad_option_exits_2_naming_it(
    arguments: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--master": "127.0.0.1:5050", "--state": "st"}
    for name, value in base.items():
        if name not in arguments:
            arguments = [name, value, *arguments]
    with pytest.raises(SystemExit) as exited:
        step3_main.main(arguments)
    assert exited.value.code == 2
    last = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert last.startswith("python -m step3_failover: error: ")
    assert option in last


def test_the_state_option_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        step3_main.parse_args(["--master", "127.0.0.1:5050"])
    assert "--state" in capsys.readouterr().err


def test_main_prints_the_summary_and_draws_the_chart(
    cluster: type[FakeCluster], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    chart = tmp_path / "step3.png"
    argv = ["--master", "m:5050", "--state", str(tmp_path / "state"), "--size", "small"]
    argv += ["--executor-uri", "file:///code.tar.gz"]  # m:5050 has no address to serve it on
    assert step3_main.main([*argv, "--quiet", "--chart", str(chart), "--chart-lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("4 chunks in ")
    assert lines[0].endswith(" s: 0 from the checkpoint, 4 recorded by this scheduler")
    assert lines[1:] == [bikeshare.summary(REFERENCE), f"chart: {chart}"]
    # Again with the same --state: the results are in the checkpoint; nothing runs.
    assert step3_main.main([*argv, "--quiet", "--chart", str(chart)]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0].endswith(" s: 4 from the checkpoint, 0 recorded by this scheduler")
    assert len(cluster.made) == 1


def test_main_says_how_to_resume_after_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def failing_run(*args: Any, **kwargs: Any) -> JobScheduler:
        raise step3_main.JobError("chunk 1 failed 3 times; ...")

    monkeypatch.setattr(step3_main, "run", failing_run)
    argv = ["--master", "m:5050", "--state", str(tmp_path / "s"), "--failover-timeout", "90"]
    argv += ["--executor-uri", "file:///code.tar.gz"]
    assert step3_main.main(argv) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: chunk 1 failed 3 times; ...",
        "note: the framework keeps running for up to 90 s: run the same command to resume the job",
    ]


# -- the HA framework guide's other points --------------------------------------------------------


def test_a_task_with_no_update_after_its_launch_is_asked_about_then_launched_again(
    job: Job,
) -> None:
    scheduler = job.register()
    job.launch_everything()
    job.driver.clear()
    job.statuses(update("chunk-1-attempt-1", "TASK_RUNNING"))
    assert job.watchdog.scheduled[-1][0] == LAUNCH_TIMEOUT
    job.watchdog.fire_last()
    # Only the tasks that nobody has heard of since the launch.
    assert job.driver.of("reconcileTasks") == [
        ["chunk-0-attempt-1", "chunk-2-attempt-1", "chunk-3-attempt-1"]
    ]
    # The master never got chunk 0's task; the others are on their way.
    job.statuses(from_master("chunk-0-attempt-1", "TASK_UNKNOWN", "REASON_RECONCILIATION"))
    job.statuses(from_master("chunk-2-attempt-1", "TASK_STAGING", "REASON_RECONCILIATION"))
    job.statuses(from_master("chunk-3-attempt-1", "TASK_STAGING", "REASON_RECONCILIATION"))
    job.timers.fire_last()  # the pause before the relaunch
    assert list(scheduler.pending) == [0]
    assert sorted(scheduler.unanswered) == []


def test_tasks_are_reconciled_periodically_less_often_each_time(job: Job) -> None:
    scheduler = job.register()
    job.launch_everything()
    assert job.watchdog.scheduled[0][0] == RECONCILE_PERIOD
    job.driver.clear()
    assert job.watchdog.fire() == RECONCILE_PERIOD
    assert job.driver.of("reconcileTasks")[0] == sorted(scheduler.running)
    assert [delay for delay, _ in job.watchdog.scheduled][-1] == 2 * RECONCILE_PERIOD
    # A new subscription starts its own round: the old one stops.
    scheduler.reregistered(job.driver, {})
    job.driver.clear()
    old = [entry for entry in job.watchdog.scheduled if entry[0] == 2 * RECONCILE_PERIOD]
    old[-1][1]()  # the launch timeout is also 60 s: the periodic one came last
    assert job.driver.of("reconcileTasks") == []
    assert [delay for delay, _ in job.watchdog.scheduled][-1] == RECONCILE_PERIOD


def test_the_driver_drops_pymesoss_gpu_capability_and_checkpoints() -> None:
    driver = step3_main.Driver(
        JobScheduler(Settings(size="small"), None),  # type: ignore[arg-type]
        step3_main.framework_info(600.0, None),
        "127.0.0.1:5050",
        use_addict=True,
    )
    driver.version = "1.11.0"  # what pymesos reads from the master's /version
    assert driver.framework["capabilities"] == [{"type": "PARTITION_AWARE"}]
    assert driver.framework["checkpoint"] is True


class SilentMaster:
    """What HeartbeatWatch reads of a driver, and the masters it is pointed at."""

    def __init__(self) -> None:
        self.master: str | None = "m:5050"
        self.connected = True
        self.heartbeat_interval = 1.0
        self.last_heard = time.monotonic()
        self.pointed_at: list[str | None] = []

    def change_master(self, master: str | None) -> None:
        self.pointed_at.append(master)


def test_missed_heartbeats_drop_the_connection_and_subscribe_again() -> None:
    driver, watch = SilentMaster(), step3_main.HeartbeatWatch()
    driver.last_heard -= step3_main.MISSED_HEARTBEATS * 1.0 - 0.5
    watch.check(driver)  # type: ignore[arg-type]
    assert driver.pointed_at == []  # four and a half missed: not yet
    driver.last_heard -= 1.0
    watch.check(driver)  # type: ignore[arg-type]
    assert driver.pointed_at == [None]  # away from the master: pymesos closes the connection
    watch.check(driver)  # type: ignore[arg-type]
    assert driver.pointed_at == [None]  # not closed yet
    driver.master = None
    watch.check(driver)  # type: ignore[arg-type]
    assert driver.pointed_at == [None, "m:5050"]  # and back: pymesos subscribes again


# -- the code that the agents fetch --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_settings(port: int) -> tuple[argparse.Namespace, Settings]:
    return step3_main.parse_args(
        ["--master", "127.0.0.1:5050", "--state", "st", "--code-port", str(port)]
    )


def test_every_scheduler_of_the_job_names_the_same_url_and_one_serves_it(tmp_path: Path) -> None:
    port = free_port()
    said: list[str] = []
    args, first = served_settings(port)
    with step3_main.served(args, first, said.append):
        url = f"http://127.0.0.1:{port}/step3-executor.tar.gz"
        assert first.executor_uri == url
        # A second scheduler on this machine finds the port taken, by the same archive.
        args, second = served_settings(port)
        with step3_main.served(args, second, said.append):
            assert second.executor_uri == url
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert answer.read() == archive.build(tmp_path).read_bytes()
    assert said == [f"another scheduler on this machine serves the code at {url}"]


def test_a_scheduler_that_found_the_code_served_serves_it_once_the_other_one_ends(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/step3-executor.tar.gz"
    args, first = served_settings(port)
    leader = step3_main.served(args, first, lambda text: None)
    leader.__enter__()
    args, second = served_settings(port)
    with step3_main.served(args, second, lambda text: None):
        leader.__exit__(None, None, None)  # the leader ends; its port is free again

        def fetched() -> bytes | None:
            return step3_main.served_elsewhere(url)

        deadline = time.monotonic() + 30
        while fetched() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fetched() == archive.build(tmp_path).read_bytes()
    assert step3_main.served_elsewhere(url) is None  # and it stops serving when it ends


def test_a_port_taken_by_something_else_is_an_error_naming_the_code_port() -> None:
    with socket.socket() as other:
        other.bind(("", 0))
        args, settings = served_settings(other.getsockname()[1])
        with (
            pytest.raises(step3_main.JobError, match="--code-port"),
            step3_main.served(args, settings, print),
        ):
            pass


def test_a_port_that_a_closing_scheduler_frees_is_taken_again() -> None:
    """The port is bound, nothing answers on it, and it is freed a moment later (a scheduler
    of another job on this machine, ending): this one binds it on a later attempt."""
    other = socket.socket()
    other.bind(("", 0))
    port = other.getsockname()[1]
    threading.Timer(0.2, other.close).start()
    args, settings = served_settings(port)
    with step3_main.served(args, settings, print):
        assert settings.executor_uri is not None
        assert step3_main.served_elsewhere(settings.executor_uri) is not None


def test_the_archive_is_all_that_the_executor_needs_of_the_project(tmp_path: Path) -> None:
    """The executor, imported in a sandbox from the unpacked archive alone: the project's
    editable install is taken away, so a module that the archive lacks fails to import."""
    sandbox = tmp_path / "sandbox"
    with tarfile.open(archive.build(tmp_path)) as tar:
        tar.extractall(sandbox, filter="data")
    script = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "import step3_failover.executor\n"
        "ours = ('jobs', 'step1_scheduler', 'step2_executor', 'step3_failover', 'taller')\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] in ours:\n"
        "        print(module.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=sandbox, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded = [Path(line) for line in done.stdout.splitlines()]
    assert Path(sandbox, "step3_failover", "executor.py") in loaded
    assert Path(sandbox, "jobs", "bikeshare.py") in loaded
    assert [path for path in loaded if not path.is_relative_to(sandbox)] == []
