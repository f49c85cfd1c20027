"""Helpers for the step 3 tests: schedulers as separate processes (they must be able to die),
an executor whose chunks wait at gates that the test opens, and a private ZooKeeper.

`Schedulers` starts `python -m step3_failover ...` as a process of its own, the way a reader
runs it, with its stdout and stderr in files; a test reads its log while it runs, kills it
with SIGKILL as a crash would, and gets its exit status. Every process it started is killed
(by its PID) at the end of the test.

`Gates` replaces `--executor-python` with a small shell script that runs this module instead of
`step3_failover.executor`. In the executor process, `GatedExecutor` is step 3's executor, but
each chunk waits at its first day boundary until the test opens its gate (a file named after
the chunk, or `all`); a shutdown opens every gate of its executor.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import step3_failover.archive
from localmesos.zookeeper import ZooKeeper
from step3_failover import executor
from tests.integration.localmesos_procs import need_zookeeper
from tests.integration.raw_http import wait_until
from tests.integration.step2_support import archive_uri
from tools import ROOT

REPOSITORY = str(ROOT)

JOB_TIMEOUT = 60.0  # seconds for a small job; only a broken test waits this long
GATES_VARIABLE = "STEP3_TEST_GATES"
CRASH_VARIABLE = "STEP3_TEST_CRASH_WEEK"
GATE_POLL = 0.01


# -- in the executor's process ------------------------------------------------------------------


class GatedExecutor(executor.JobExecutor):
    """Step 3's executor; each chunk waits at its first day boundary for its gate."""

    def __init__(self, gates: Path) -> None:
        super().__init__()
        self.gates = gates
        self.shutting_down = False

    def day_done(self, driver, task_id: str, running: executor.Running, days: int) -> None:
        while not (
            self.shutting_down
            or running.stop.is_set()
            or (self.gates / "all").exists()
            or (self.gates / str(running.week)).exists()
        ):
            time.sleep(GATE_POLL)
        super().day_done(driver, task_id, running, days)

    def shutdown(self, driver) -> None:
        super().shutdown(driver)
        self.shutting_down = True


class CrashingExecutor(executor.JobExecutor):
    """Step 3's executor, whose process dies (exit status 1) when it counts one given week."""

    def __init__(self, week: int) -> None:
        super().__init__()
        self.week = week

    def day_done(self, driver, task_id: str, running: executor.Running, days: int) -> None:
        if running.week == self.week:
            print(f"crashing on week {self.week}, on purpose", file=sys.stderr, flush=True)
            os._exit(1)
        super().day_done(driver, task_id, running, days)


def main(argv: list[str]) -> int:
    """`python -m tests.integration.step3_support -m step3_failover.executor`."""
    if argv != ["-m", "step3_failover.executor"]:
        print(f"step3_support: unexpected executor arguments {argv!r}", file=sys.stderr)
        return 2
    if CRASH_VARIABLE in os.environ:
        week = int(os.environ[CRASH_VARIABLE])
        executor.JobExecutor = lambda: CrashingExecutor(week)  # what executor.main() builds
    else:
        gates = Path(os.environ[GATES_VARIABLE])
        executor.JobExecutor = lambda: GatedExecutor(gates)
    return executor.main()


def interpreter(path: Path, variables: dict[str, str], command: str) -> str:
    """A shell script to pass as `--executor-python`: sets ``variables``, then runs
    ``command`` with the executor's arguments."""
    lines = ["#!/bin/sh"]
    # For `tests`: the executor's own packages come first, from its sandbox (see step2_support).
    for name, value in {**variables, "PYTHONPATH": REPOSITORY}.items():
        lines += [f"{name}={shlex.quote(value)}", f"export {name}"]
    path.write_text("\n".join([*lines, f'exec {command} "$@"', ""]))
    path.chmod(0o755)
    return str(path)


def crashing_python(directory: Path, week: int) -> str:
    """An interpreter whose executors die when they count ``week``."""
    command = f"{shlex.quote(sys.executable)} -m tests.integration.step3_support"
    return interpreter(directory / "crashing-python", {CRASH_VARIABLE: str(week)}, command)


def failing_python(directory: Path) -> str:
    """An interpreter that cannot start the executor: it says why on stderr and exits 1."""
    script = directory / "failing-python"
    script.write_text(
        '#!/bin/sh\necho "failing-python: cannot run $*: no such module, on purpose" >&2\nexit 1\n'
    )
    script.chmod(0o755)
    return str(script)


# -- in the test's process ----------------------------------------------------------------------


class Gates:
    """An interpreter for `--executor-python` whose chunks wait until the test opens them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "gates"
        self.directory.mkdir(parents=True)
        self.python = str(directory / "gated-python")
        script = (
            "#!/bin/sh\n"
            f"{GATES_VARIABLE}={shlex.quote(str(self.directory))}\n"
            f"export {GATES_VARIABLE}\n"
            f"PYTHONPATH={shlex.quote(REPOSITORY)}\n"
            "export PYTHONPATH\n"
            f'exec {shlex.quote(sys.executable)} -m tests.integration.step3_support "$@"\n'
        )
        Path(self.python).write_text(script)
        Path(self.python).chmod(0o755)

    def open(self, chunk: int) -> None:
        (self.directory / str(chunk)).touch()

    def open_all(self) -> None:
        (self.directory / "all").touch()


class Scheduler:
    """One `python -m step3_failover` process."""

    def __init__(self, name: str, argv: list[str], directory: Path) -> None:
        self.name = name
        self.out = directory / f"{name}.out"
        self.err = directory / f"{name}.err"
        if not {"--executor-uri", "--code-host", "--code-port"} & set(argv):
            # Every scheduler of the test process names one archive, which they all agree on;
            # a test that gives --code-host or --code-port watches a scheduler serve its own.
            argv = [*argv, "--executor-uri", archive_uri(step3_failover.archive.build)]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                # The chart goes to the test's directory, not to the checkout's build/.
                [
                    sys.executable,
                    "-m",
                    "step3_failover",
                    *argv,
                    "--chart",
                    str(directory / f"{name}.png"),
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.err.read_text()

    def stdout(self) -> str:
        return self.out.read_text()

    def wait_log(self, pattern: str, timeout: float = JOB_TIMEOUT) -> re.Match[str]:
        """The first match of ``pattern`` in the scheduler's stderr, once it appears."""

        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.log(), re.MULTILINE)
            if match is None and self.process.poll() is not None:
                raise AssertionError(
                    f"scheduler {self.name} exited with {self.process.returncode} before "
                    f"logging {pattern!r}:\n{self.log()[-3000:]}"
                )
            return match

        return wait_until(found, timeout, f"{self.name} to log {pattern!r}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup, no TEARDOWN, no closed ZooKeeper session."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def wait(self, timeout: float = JOB_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"scheduler {self.name} did not exit within {timeout} s:\n{self.log()[-3000:]}"
            ) from None

    def recorded(self) -> list[int]:
        """The chunks whose result this scheduler recorded first (its --verbose log)."""
        found = re.findall(
            r"^INFO step3_failover: chunk (\d+): result .* recorded$", self.log(), re.M
        )
        return [int(chunk) for chunk in found]

    def executor_pids(self) -> list[int]:
        """The PIDs of the executors that said hello to this scheduler."""
        return [int(p) for p in re.findall(r"says hello \(pid (\d+)\)", self.log())]


class Schedulers:
    """Starts scheduler processes for one test; `close()` kills whichever still run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Scheduler] = []

    def start(self, name: str, *argv: str) -> Scheduler:
        scheduler = Scheduler(name, list(argv), self.directory)
        self.started.append(scheduler)
        return scheduler

    def close(self) -> None:
        for scheduler in self.started:
            if scheduler.process.poll() is None:
                scheduler.process.send_signal(signal.SIGKILL)
                scheduler.process.wait(10)


def schedulers_fixture(directory: Path) -> Iterator[Schedulers]:
    schedulers = Schedulers(directory)
    try:
        yield schedulers
    finally:
        schedulers.close()


def zookeeper_fixture(directory: Path) -> Iterator[ZooKeeper]:
    need_zookeeper()
    zk = ZooKeeper(directory).start()
    try:
        yield zk
    finally:
        zk.stop()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = JOB_TIMEOUT) -> Any:
    return wait_until(predicate, timeout, what)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
