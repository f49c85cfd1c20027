"""Helpers for the step 1 tests: step 1's `run()` on a thread, a record of what the master
received and sent, and an interpreter that holds each chunk until the test lets it go.

`Runner` starts `run()` on threads (`Job`) and shows each job's `JobScheduler` while it runs.
Its clusters come from a pymesos `Harness`, which also catches a pymesos IO thread that dies
(pymesos interrupts the main thread) and fails the test with it at the end.

`Wiretap` records at the master, on the master's own thread: every call that reached
`/api/v1/scheduler` (as the master decoded it from the request), every event that it wrote to
a framework's stream, and every allocation pass. One list in the master's order is what lets a
test say "no OFFERS after this SUPPRESS, although the allocator ran with free resources": a
decline or a suppress is not a scheduler callback.

`Gates` replaces `--task-python` with a small shell script that waits for a file named after
the chunk (or `all`) before it runs the real interpreter. Tests use it to keep tasks running for
as long as they need, instead of guessing how long a task takes.
"""

from __future__ import annotations

import json
import shlex
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import step1_scheduler.__main__ as step1_main
from localmesos.cluster import LocalCluster
from localmesos.master import Framework
from step1_scheduler.__main__ import REPOSITORY
from step1_scheduler.scheduler import JobScheduler, Settings
from tests.integration.pymesos_harness import Harness, wait_until

JOB_TIMEOUT = 30.0  # seconds for a whole small job; only a broken test waits this long
CLOSE_TIMEOUT = 10.0  # seconds for a job to end once its gates are open, at the test's end


def settings(**overrides: Any) -> Settings:
    """Step 1's settings for tests: the small job, run by this interpreter and this checkout."""
    values: dict[str, Any] = {
        "size": "small",
        "task_python": sys.executable,
        "task_pythonpath": REPOSITORY,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str  # "call" (scheduler -> master), "event" (master -> scheduler) or "pass"
    type: str  # "DECLINE", "SUPPRESS", "OFFERS", "UPDATE"...
    framework_id: str
    body: dict


class Wiretap:
    """What the master received and sent, in its order; see the module's docstring."""

    def __init__(self, cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        master = cluster._running_master()
        handle_call = master.handle_call
        send = Framework.send

        def recording_handle_call(call: dict, *args: Any) -> Any:
            self._add("call", call["type"], call["framework_id"]["value"], call)
            return handle_call(call, *args)

        def recording_send(framework: Framework, event: dict) -> None:
            if framework.stream is not None:  # what Framework.send writes, it records
                self._add("event", event["type"], framework.id, event)
            send(framework, event)

        allocate = master._allocate

        def recording_allocate() -> None:
            self._add("pass", "ALLOCATE", "", {})
            allocate()

        monkeypatch.setattr(master, "handle_call", recording_handle_call)
        monkeypatch.setattr(Framework, "send", recording_send)
        monkeypatch.setattr(master, "_allocate", recording_allocate)

    def _add(self, kind: str, type_: str, framework_id: str, body: dict) -> None:
        copy = json.loads(json.dumps(body, default=str))  # what goes over the wire, frozen
        with self._lock:
            self._entries.append(Entry(len(self._entries), kind, type_, framework_id, copy))

    def mark(self) -> int:
        """A position in the record: entries after it have a larger `seq`."""
        with self._lock:
            return len(self._entries)

    def passes(self, since: int = 0) -> int:
        """How many allocation passes the master started after ``since``."""
        with self._lock:
            return sum(e.kind == "pass" for e in self._entries[since:])

    def entries(self, framework_id: str, *types: str) -> list[Entry]:
        with self._lock:
            return [
                e
                for e in self._entries
                if e.framework_id == framework_id and (not types or e.type in types)
            ]

    def calls(self, framework_id: str, *types: str) -> list[Entry]:
        return [e for e in self.entries(framework_id, *types) if e.kind == "call"]

    def events(self, framework_id: str, *types: str) -> list[Entry]:
        return [e for e in self.entries(framework_id, *types) if e.kind == "event"]

    def launched(self, framework_id: str) -> list[str]:
        """The task IDs of every ACCEPT call, in order."""
        return [
            task["task_id"]["value"]
            for call in self.calls(framework_id, "ACCEPT")
            for operation in call.body["accept"]["operations"]
            for task in operation.get("launch", {}).get("task_infos", [])
        ]

    def offers_while_suppressed(self, framework_id: str) -> list[Entry]:
        """OFFERS events sent after a SUPPRESS call and before the REVIVE that follows it."""
        suppressed, wrong = False, []
        for entry in self.entries(framework_id, "SUPPRESS", "REVIVE", "OFFERS"):
            if entry.type == "OFFERS" and suppressed:
                wrong.append(entry)
            elif entry.kind == "call":
                suppressed = entry.type == "SUPPRESS"
        return wrong


class Gates:
    """An interpreter for `--task-python` that runs a chunk once `open(chunk)` or `open_all()`
    was called. Killing a held task kills the script (the agent kills the process group)."""

    def __init__(self, directory: Path, name: str = "gated") -> None:
        self.directory = directory / f"{name}-gates"
        self.directory.mkdir(parents=True)
        self.python = str(directory / f"{name}-python")
        gates = shlex.quote(str(self.directory))
        # Its arguments are step 1's: -m jobs.bikeshare chunk WEEK --size SIZE [--fail].
        script = (
            "#!/bin/sh\n"
            f'while [ ! -e {gates}/all ] && [ ! -e {gates}/"$4" ]; do sleep 0.02; done\n'
            f'exec {shlex.quote(sys.executable)} "$@"\n'
        )
        Path(self.python).write_text(script)
        Path(self.python).chmod(0o755)

    def open(self, chunk: int) -> None:
        (self.directory / str(chunk)).touch()

    def open_all(self) -> None:
        (self.directory / "all").touch()


def agent_state(cluster: LocalCluster, agent_id: str) -> dict:
    with urllib.request.urlopen(f"{cluster.agent_url(agent_id)}/state", timeout=10) as response:
        return json.load(response)


def running_executors(cluster: LocalCluster) -> list[str]:
    """The executors (for command tasks: the task IDs) still running on the live agents."""
    return [
        executor["id"]
        for agent_id in cluster.agents
        for framework in agent_state(cluster, agent_id)["frameworks"]
        for executor in framework["executors"]
    ]


def task_ids(updates: list[dict], state: str) -> list[str]:
    """The task IDs of a scheduler's timeline updates in ``state``, in order."""
    return [u["task"] for u in updates if u["state"] == state]


def absolute(scheduler: Any, entries: list[dict]) -> Iterator[float]:
    """Timeline times (seconds since that scheduler started) as time.monotonic() values."""
    return (scheduler.timeline.start + entry["time"] for entry in entries)


class Job:
    """`run()` on a thread. `scheduler` is its JobScheduler, available while it runs."""

    def __init__(
        self, master: str, settings: Settings, created: list[JobScheduler], connect_timeout: float
    ) -> None:
        self.master = master
        self.settings = settings
        self.connect_timeout = connect_timeout
        self.error: BaseException | None = None
        self._created = created
        self._returned: JobScheduler | None = None
        self._thread = threading.Thread(target=self._run, name="step1-run", daemon=True)

    def _run(self) -> None:
        try:
            self._returned = step1_main.run(
                self.master, self.settings, progress=False, connect_timeout=self.connect_timeout
            )
        except BaseException as error:
            self.error = error

    def start(self) -> Job:
        self._thread.start()
        return self

    @property
    def scheduler(self) -> JobScheduler:
        """This job's scheduler (each job has its own Settings object)."""
        return wait_until(
            lambda: next((s for s in self._created if s.settings is self.settings), None),
            what="run() to create its scheduler",
        )

    def wait(self, predicate: Callable[[JobScheduler], Any], what: str) -> Any:
        """Wait until ``predicate(scheduler)`` is true, while the job runs."""
        scheduler = self.scheduler

        def check() -> Any:
            if not self._thread.is_alive():
                raise AssertionError(f"run() ended while waiting for {what}: {self.error!r}")
            return predicate(scheduler)

        return wait_until(check, JOB_TIMEOUT, what)

    def join(self, timeout: float = JOB_TIMEOUT) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"run() did not return within {timeout} s")

    def abandon(self) -> None:
        """End a job that will not end by itself: run() returns as if the job had failed, and
        tears its framework down."""
        scheduler = next((s for s in self._created if s.settings is self.settings), None)
        if scheduler is not None:
            scheduler.failure = scheduler.failure or "abandoned by the test"
            scheduler.finished.set()
        self._thread.join(CLOSE_TIMEOUT)

    def result(self, timeout: float = JOB_TIMEOUT) -> JobScheduler:
        """What run() returned; what it raised is raised here."""
        self.join(timeout)
        if self.error is not None:
            raise self.error
        assert self._returned is not None
        return self._returned


class Runner:
    """Clusters, jobs and gates for one test; `close()` opens every gate, waits for the jobs
    (ending the ones that hang), then stops the clusters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
        self.monkeypatch = monkeypatch
        self.directory = directory
        self.harness = Harness()
        self._jobs: list[Job] = []
        self._gates: list[Gates] = []
        self._created: list[JobScheduler] = []
        created = self._created

        class RecordedScheduler(JobScheduler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                created.append(self)

        monkeypatch.setattr(step1_main, "JobScheduler", RecordedScheduler)

    def cluster(self, agents: int = 2, **options: Any) -> LocalCluster:
        options.setdefault("allocation_interval", 0.1)
        return self.harness.cluster(agents, **options)

    def wiretap(self, cluster: LocalCluster) -> Wiretap:
        return Wiretap(cluster, self.monkeypatch)

    def gates(self, name: str = "gated") -> Gates:
        gates = Gates(self.directory, name)
        self._gates.append(gates)
        return gates

    def start(self, master: str, settings: Settings, connect_timeout: float = 10.0) -> Job:
        job = Job(master, settings, self._created, connect_timeout)
        self._jobs.append(job)
        return job.start()

    def run(self, master: str, settings: Settings, connect_timeout: float = 10.0) -> JobScheduler:
        return self.start(master, settings, connect_timeout).result()

    def close(self) -> None:
        problems = []
        try:
            for gates in self._gates:
                gates.open_all()
            for job in self._jobs:
                try:
                    job.join(CLOSE_TIMEOUT)
                except AssertionError as error:
                    problems.append(str(error))
                    job.abandon()
        finally:
            try:
                self.harness.close()
            except AssertionError as error:
                problems.append(str(error))
        if problems:
            raise AssertionError("; ".join(problems))


def runner_fixture(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Iterator[Runner]:
    runner = Runner(monkeypatch, directory)
    try:
        yield runner
    finally:
        runner.close()
