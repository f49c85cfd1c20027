"""Helpers for the step 2 tests: step 2's `run()` on a thread, an executor whose chunks wait at
gates that the test opens, and a master that drops acknowledgements.

`Runner` starts `run()` on threads (`Job`) and shows each job's scheduler and pymesos driver
while it runs, so a test can call `cancel(driver)` and `set_progress(driver, on)` from its own
thread, as a notebook does. Its schedulers also keep every status update as it arrived (the
timeline keeps only the state) and every value the progress bar was given.

`Gates` replaces `--executor-python` with a small shell script that runs this module instead
of `step2_executor.executor`. In the executor process, `GatedExecutor` is step 2's own
executor, but each chunk waits at each day boundary until the test opens its gate. A day
opened with `open_days` also takes at least `PROGRESS_EVERY` since the chunk's previous day,
so each of them sends a progress message while progress is on, and none when it is off: the
executor's throttle is the one that decides, with no guessing of how long a chunk takes. A
chunk that is cancelled or killed while it is held stops once its gate opens, at that day
boundary, so the test also decides when its TASK_KILLED comes. A shutdown, though, opens
every gate of its executor: its chunks stop at their next day, as they would unheld, whether or
not the process waits for their threads when it exits.

`ExecutorExits` records, at the agents, how each executor process ended (the raw wait status),
which tells an executor that exited by itself from one the agent had to kill.

`AckDropper` drops the first acknowledgement of each TASK_FINISHED at the master, so the agent
sends that update again (after the cluster's `status_update_retry`): real duplicates.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver

import step2_executor.__main__ as step2_main
import step2_executor.archive
from localmesos.agent import Agent, executors
from localmesos.cluster import LocalCluster
from localmesos.master import Framework
from step2_executor import executor, messages
from step2_executor.scheduler import JobScheduler, Settings
from tests.integration.pymesos_harness import Harness, alive, wait_until
from tests.integration.step1_support import Wiretap

JOB_TIMEOUT = 30.0  # seconds for a whole small job; only a broken test waits this long
CLOSE_TIMEOUT = 10.0  # seconds for a job to end once its gates are open, at the test's end
GATES_VARIABLE = "STEP2_TEST_GATES"  # where the gated executor finds its gate files
GATE_POLL = 0.01  # how often a held chunk looks at its gate


REPOSITORY = str(step2_executor.archive.ROOT)


@functools.cache
def archive_uri(build: Callable[[Path], Path]) -> str:
    """A file:// URI of the archive that `build` (a step's `archive.build`) makes, built once
    per test process: the code that the agents fetch, as with `--executor-uri`."""
    directory = Path(tempfile.mkdtemp(prefix="code-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return build(directory).as_uri()


def settings(**overrides: Any) -> Settings:
    """Step 2's settings for tests: the small job, its executor run by this interpreter from
    the archive that the agents fetch."""
    values: dict[str, Any] = {
        "size": "small",
        "executor_python": sys.executable,
        "executor_uri": archive_uri(step2_executor.archive.build),
    }
    values.update(overrides)
    return Settings(**values)


# -- in the executor's process ------------------------------------------------------------------


class GatedExecutor(executor.JobExecutor):
    """Step 2's executor, with each day boundary of a chunk held at a gate (see the module's
    docstring). Gate files: `all`, `WEEK` (every day of that chunk at once) and `WEEK-DAY`
    (that day, paced)."""

    def __init__(self, gates: Path) -> None:
        super().__init__()
        self.gates = gates
        self.passed: dict[str, float] = {}  # by task ID: when its last day boundary passed
        self.shutting_down = False

    def day_done(self, driver, task_id: str, running: executor.Running, days: int) -> None:
        self.hold(task_id, running, days)
        super().day_done(driver, task_id, running, days)
        self.passed[task_id] = time.monotonic()  # after any progress message it sent

    def hold(self, task_id: str, running: executor.Running, days: int) -> None:
        week = running.week
        since = self.passed.get(task_id, running.last_report)  # the task's start
        # A cancel or a kill stops a chunk at its next day boundary: the one held here, once
        # the test opens it.
        while True:
            if self.shutting_down or self.is_open("all") or self.is_open(str(week)):
                return
            paced = time.monotonic() - since >= executor.PROGRESS_EVERY
            if paced and self.is_open(f"{week}-{days}"):
                return
            time.sleep(GATE_POLL)

    def shutdown(self, driver) -> None:
        super().shutdown(driver)
        # After super(): the chunks it stopped leave at this boundary, with TASK_KILLED.
        self.shutting_down = True

    def is_open(self, name: str) -> bool:
        return (self.gates / name).exists()


def main(argv: list[str]) -> int:
    """`python -m tests.integration.step2_support -m step2_executor.executor`: what the
    ExecutorInfo asked for, with GatedExecutor in place of JobExecutor."""
    if argv != ["-m", "step2_executor.executor"]:
        print(f"step2_support: unexpected executor arguments {argv!r}", file=sys.stderr)
        return 2
    gates = Path(os.environ[GATES_VARIABLE])
    executor.JobExecutor = lambda: GatedExecutor(gates)  # what executor.main() builds
    return executor.main()


# -- in the test's process ----------------------------------------------------------------------


class Gates:
    """An interpreter for `--executor-python` that runs the gated executor (see the module's
    docstring); chunks pass a day boundary only once the test has opened it."""

    def __init__(self, directory: Path, name: str = "gated") -> None:
        self.directory = directory / f"{name}-gates"
        self.directory.mkdir(parents=True)
        self.python = str(directory / f"{name}-python")
        script = (
            "#!/bin/sh\n"
            f"{GATES_VARIABLE}={shlex.quote(str(self.directory))}\n"
            f"export {GATES_VARIABLE}\n"
            # For `tests`: the executor's own packages come first, from its sandbox (the
            # working directory, where `-m` looks first).
            f"PYTHONPATH={shlex.quote(REPOSITORY)}\n"
            "export PYTHONPATH\n"
            f'exec {shlex.quote(sys.executable)} -m tests.integration.step2_support "$@"\n'
        )
        Path(self.python).write_text(script)
        Path(self.python).chmod(0o755)

    def open(self, chunk: int) -> None:
        """Every day of ``chunk`` passes, at once."""
        (self.directory / str(chunk)).touch()

    def open_days(self, chunk: int, *days: int) -> None:
        """Those days of ``chunk`` pass, each at least PROGRESS_EVERY after the one before."""
        for day in days:
            (self.directory / f"{chunk}-{day}").touch()

    def open_all(self) -> None:
        (self.directory / "all").touch()


class AckDropper:
    """Drops, at the master, the first ACKNOWLEDGE of each task's TASK_FINISHED update."""

    def __init__(self, cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self._dropped: list[str] = []
        master = cluster._running_master()
        acknowledge = master.acknowledge

        def dropping_acknowledge(framework: Framework, ack: dict) -> None:
            task_id = ack["task_id"]["value"]
            task = framework.tasks.get(task_id)
            if (
                task is not None
                and task.status_update_state == "TASK_FINISHED"
                and task.status_update_uuid == ack["uuid"]
                and task_id not in self._dropped
            ):
                with self._lock:
                    self._dropped.append(task_id)
                return  # the agent never hears of it, and sends the update again
            acknowledge(framework, ack)

        monkeypatch.setattr(master, "acknowledge", dropping_acknowledge)

    @property
    def dropped(self) -> list[str]:
        """The task IDs whose TASK_FINISHED acknowledgement was dropped, in order."""
        with self._lock:
            return list(self._dropped)


class ExecutorExits:
    """The raw wait status of every custom executor process that ended, by PID."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[int, int] = {}
        executor_exited = executors.exited

        def recording_executor_exited(agent: Agent, executor: Any, status: int) -> None:
            if executor.process is not None and executor.state != "TERMINATED":
                with self._lock:
                    self._statuses[executor.process.pid] = status
            executor_exited(agent, executor, status)

        monkeypatch.setattr(executors, "exited", recording_executor_exited)

    def wait(self, pids: list[int], timeout: float) -> dict[int, int]:
        """The wait status of each of ``pids``, once they have all ended."""

        def ended() -> dict[int, int] | None:
            with self._lock:
                if all(pid in self._statuses for pid in pids):
                    return {pid: self._statuses[pid] for pid in pids}
            return None

        return wait_until(ended, timeout, f"executors {pids} to end")


class RecordedScheduler(JobScheduler):
    """Step 2's scheduler, keeping its driver, every status update and every value given to
    the bar."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.driver: MesosSchedulerDriver | None = None  # pymesos's, once registered
        self.statuses: list[dict] = []  # each status update, as pymesos delivered it
        self.progress: list[tuple[int, int]] = []  # (done, total), each time the bar moved
        on_progress = self.on_progress

        def recording_on_progress(done: int, total: int) -> None:
            self.progress.append((done, total))
            on_progress(done, total)

        self.on_progress = recording_on_progress

    def registered(self, driver, framework_id, master_info) -> None:
        self.driver = driver
        super().registered(driver, framework_id, master_info)

    def statusUpdate(self, driver, update) -> None:
        self.statuses.append(json.loads(json.dumps(update)))
        super().statusUpdate(driver, update)


class Job:
    """`run()` on a thread; its scheduler and driver are available while it runs."""

    def __init__(
        self,
        master: str,
        settings: Settings,
        created: list[RecordedScheduler],
        run_options: dict[str, Any],
    ) -> None:
        self.master = master
        self.settings = settings
        self.run_options = run_options
        self.error: BaseException | None = None
        self._created = created
        self._returned: RecordedScheduler | None = None
        self._thread = threading.Thread(target=self._run, name="step2-run", daemon=True)

    def _run(self) -> None:
        try:
            returned = step2_main.run(
                self.master, self.settings, progress=False, **self.run_options
            )
            assert isinstance(returned, RecordedScheduler)
            self._returned = returned
        except BaseException as error:
            self.error = error

    def start(self) -> Job:
        self._thread.start()
        return self

    @property
    def scheduler(self) -> RecordedScheduler:
        """This job's scheduler (each job has its own Settings object)."""
        return wait_until(
            lambda: next((s for s in self._created if s.settings is self.settings), None),
            what="run() to create its scheduler",
        )

    @property
    def driver(self) -> MesosSchedulerDriver:
        scheduler = self.scheduler
        return wait_until(lambda: scheduler.driver, what="run()'s driver to register")

    def wait(self, predicate: Callable[[RecordedScheduler], Any], what: str) -> Any:
        """Wait until ``predicate(scheduler)`` is true, while the job runs."""
        scheduler = self.scheduler

        def check() -> Any:
            if not self._thread.is_alive():
                raise AssertionError(f"run() ended while waiting for {what}: {self.error!r}")
            with scheduler.lock:  # the callbacks' state, never half-changed
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

    def result(self, timeout: float = JOB_TIMEOUT) -> RecordedScheduler:
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
        self._created: list[RecordedScheduler] = []

        def recorded(*args: Any, **kwargs: Any) -> RecordedScheduler:
            scheduler = RecordedScheduler(*args, **kwargs)
            self._created.append(scheduler)
            return scheduler

        monkeypatch.setattr(step2_main, "JobScheduler", recorded)

    def cluster(self, agents: int = 2, **options: Any) -> LocalCluster:
        options.setdefault("allocation_interval", 0.1)
        return self.harness.cluster(agents, **options)

    def wiretap(self, cluster: LocalCluster) -> Wiretap:
        return Wiretap(cluster, self.monkeypatch)

    def executor_exits(self) -> ExecutorExits:
        return ExecutorExits(self.monkeypatch)

    def ack_dropper(self, cluster: LocalCluster) -> AckDropper:
        return AckDropper(cluster, self.monkeypatch)

    def gates(self, name: str = "gated") -> Gates:
        gates = Gates(self.directory, name)
        self._gates.append(gates)
        return gates

    def start(self, master: str, settings: Settings, **run_options: Any) -> Job:
        job = Job(master, settings, self._created, run_options)
        self._jobs.append(job)
        return job.start()

    def run(self, master: str, settings: Settings, **run_options: Any) -> RecordedScheduler:
        return self.start(master, settings, **run_options).result()

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


# -- reading a scheduler's timeline -------------------------------------------------------------


def messages_in(scheduler: JobScheduler, kind: str) -> list[dict]:
    """The framework messages of type ``kind`` from the executors, in order."""
    return [m for m in scheduler.timeline.messages if m["direction"] == "in" and m["type"] == kind]


def messages_out(scheduler: JobScheduler, kind: str) -> list[dict]:
    return [m for m in scheduler.timeline.messages if m["direction"] == "out" and m["type"] == kind]


def hellos(scheduler: JobScheduler) -> list[tuple[str, int]]:
    """(agent, pid) of each executor process that said hello, in order."""
    return [(m["agent"], m["pid"]) for m in messages_in(scheduler, messages.HELLO)]


def executor_pid(status: dict) -> int:
    """The PID of the executor that a status update is about, as its agent wrote it."""
    return status["container_status"]["executor_pid"]


def wait_gone(pids: list[int], timeout: float) -> None:
    """Wait until none of ``pids`` exists (the agent reaps its executors)."""
    wait_until(lambda: not [pid for pid in pids if alive(pid)], timeout, f"processes {pids} to end")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
