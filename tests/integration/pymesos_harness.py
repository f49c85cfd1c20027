"""Drive the unmodified pymesos scheduler driver against `LocalCluster`.

`RecordingScheduler` stores every callback, in order and with a monotonic timestamp, and lets a
test wait for a condition on what it recorded. Its callbacks only append to a list: pymesos
calls them on its IO thread, and an exception there kills the driver and sends TEARDOWN. The
one exception is `error()`, which stops the driver (without TEARDOWN) by default: pymesos
resubscribes after an ERROR, so a refused SUBSCRIBE would otherwise repeat forever and two
drivers sharing a framework ID would keep taking it from each other.

`Harness` starts clusters and drivers for one test and stops them all at its end, drivers
first, so that no driver is left retrying against a master that is gone. It also catches the
way pymesos reports a dead IO thread: `_thread.interrupt_main()`, which raises the thread's
exception in the main thread wherever it happens to be. The harness records it instead; a test
that expects one takes it with `wait_abort()`, and any other fails the test at teardown.
"""

from __future__ import annotations

import getpass
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pymesos.process
from pymesos import MesosSchedulerDriver, Scheduler

from localmesos.cluster import LocalCluster
from tests.integration import raw_http

T = TypeVar("T")

DEFAULT_WAIT = 5.0


@dataclass(frozen=True)
class Callback:
    seq: int
    time: float  # time.monotonic() when pymesos made the call
    name: str  # the Scheduler method: "statusUpdate", "resourceOffers", ...
    args: tuple  # its arguments, without the driver


class RecordingScheduler(Scheduler):
    def __init__(self, *, stop_on_error: bool = True) -> None:
        self.stop_on_error = stop_on_error
        self._cond = threading.Condition(threading.RLock())
        self._calls: list[Callback] = []

    # -- the callbacks (pymesos's IO thread) ----------------------------------------------------

    def _record(self, name: str, *args: Any) -> None:
        with self._cond:
            self._calls.append(Callback(len(self._calls), time.monotonic(), name, args))
            self._cond.notify_all()

    def registered(self, driver: Any, framework_id: dict, master_info: dict) -> None:
        self._record("registered", framework_id, master_info)

    def reregistered(self, driver: Any, master_info: dict) -> None:
        self._record("reregistered", master_info)

    def disconnected(self, driver: Any) -> None:
        self._record("disconnected")

    def resourceOffers(self, driver: Any, offers: list[dict]) -> None:
        self._record("resourceOffers", offers)

    def inverseOffers(self, driver: Any, offers: list[dict]) -> None:
        self._record("inverseOffers", offers)

    def offerRescinded(self, driver: Any, offer_id: dict) -> None:
        self._record("offerRescinded", offer_id)

    def statusUpdate(self, driver: Any, status: dict) -> None:
        self._record("statusUpdate", status)

    def frameworkMessage(self, driver: Any, executor_id: dict, agent_id: dict, data: str) -> None:
        self._record("frameworkMessage", executor_id, agent_id, data)

    def slaveLost(self, driver: Any, agent_id: dict) -> None:
        self._record("slaveLost", agent_id)

    def executorLost(self, driver: Any, executor_id: dict, agent_id: dict, status: int) -> None:
        self._record("executorLost", executor_id, agent_id, status)

    def error(self, driver: Any, message: str) -> None:
        self._record("error", message)
        if self.stop_on_error:
            driver.stop(failover=True)  # only flags the IO thread to end; safe to call from it

    def processHeartBeat(self, driver: Any) -> None:
        self._record("processHeartBeat")

    # -- what was recorded (any thread) ---------------------------------------------------------

    def calls(self, name: str | None = None, since: int = 0) -> list[Callback]:
        with self._cond:
            return [c for c in self._calls[since:] if name is None or c.name == name]

    def mark(self) -> int:
        """A position in the record: pass it as ``since`` to look only at what came later."""
        with self._cond:
            return len(self._calls)

    def names(self) -> list[str]:
        return [c.name for c in self.calls() if c.name != "processHeartBeat"]

    def offers(self, since: int = 0, agent_id: str | None = None) -> list[dict]:
        """Every offer received, one event's offers after the other."""
        return [
            offer
            for call in self.calls("resourceOffers", since)
            for offer in call.args[0]
            if agent_id is None or offer["agent_id"]["value"] == agent_id
        ]

    def updates(self, task_id: str | None = None, since: int = 0) -> list[dict]:
        return [
            call.args[0]
            for call in self.calls("statusUpdate", since)
            if task_id is None or call.args[0]["task_id"]["value"] == task_id
        ]

    def states(self, task_id: str, since: int = 0) -> list[str]:
        return [status["state"] for status in self.updates(task_id, since)]

    def errors(self) -> list[str]:
        return [call.args[0] for call in self.calls("error")]

    def framework_id(self) -> str | None:
        registered = self.calls("registered")
        return registered[0].args[0]["value"] if registered else None

    # -- waiting (the test's thread) ------------------------------------------------------------

    def wait(self, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT, what: str = "") -> T:
        """Wait until ``predicate()`` returns something true and return it. The predicate is
        evaluated under the record's lock, each time a callback arrives."""
        with self._cond:
            result = self._cond.wait_for(predicate, timeout)
            if not result:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or predicate}; "
                    f"callbacks so far: {self.names()}"
                )
            return result

    def wait_registered(self, timeout: float = DEFAULT_WAIT) -> str:
        return self.wait(self.framework_id, timeout, "registered()")

    def wait_offers(
        self,
        count: int = 1,
        since: int = 0,
        agent_id: str | None = None,
        timeout: float = DEFAULT_WAIT,
    ) -> list[dict]:
        """The first ``count`` offers after ``since`` (on ``agent_id`` if given)."""

        def enough() -> list[dict] | None:
            offers = self.offers(since, agent_id)
            return offers[:count] if len(offers) >= count else None

        return self.wait(enough, timeout, f"{count} offer(s) on {agent_id or 'any agent'}")

    def wait_update(
        self, task_id: str, state: str, since: int = 0, timeout: float = DEFAULT_WAIT
    ) -> dict:
        """The first update of ``task_id`` to ``state`` after ``since``."""

        def found() -> dict | None:
            return next((u for u in self.updates(task_id, since) if u["state"] == state), None)

        return self.wait(found, timeout, f"{state} for task {task_id}")


class Harness:
    """Clusters and drivers for one test; `close()` stops the drivers, then the clusters."""

    def __init__(self) -> None:
        self._clusters: list[LocalCluster] = []
        self._drivers: list[MesosSchedulerDriver] = []
        # Only the main thread touches this list (the handler runs there too), and without a
        # lock: a handler that interrupted its holder would deadlock.
        self._aborts: list[BaseException] = []
        self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        exc_info = pymesos.process._exc_info
        if exc_info is None:
            raise KeyboardInterrupt  # a real Ctrl-C
        pymesos.process._exc_info = None
        self._aborts.append(exc_info[1])

    def take_aborts(self) -> list[BaseException]:
        """The exceptions that killed a driver's IO thread so far; they are then forgotten."""
        aborts, self._aborts = self._aborts, []
        return aborts

    def wait_abort(self, timeout: float = DEFAULT_WAIT) -> BaseException:
        """Wait until some driver's IO thread dies; returns (and forgets) its exception."""
        deadline = time.monotonic() + timeout
        while True:
            # The exception reaches us through a signal handler, which runs between bytecodes
            # of this thread: keep executing some.
            aborts = self.take_aborts()
            if aborts:
                return aborts[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no driver aborted within {timeout} s")
            time.sleep(0.02)

    def cluster(self, agents: int = 2, **options: Any) -> LocalCluster:
        cluster = LocalCluster(agents, **options)
        self._clusters.append(cluster)
        return cluster.start()

    def driver(
        self,
        scheduler: Scheduler,
        cluster: LocalCluster,
        *,
        framework: dict | None = None,
        **options: Any,
    ) -> MesosSchedulerDriver:
        """A started pymesos driver; ``options`` go to MesosSchedulerDriver (principal, ...)."""
        driver = MesosSchedulerDriver(
            scheduler, framework or framework_info(), cluster.master, **options
        )
        self._drivers.append(driver)
        driver.start()
        return driver

    def subscribe(
        self,
        cluster: LocalCluster,
        framework: dict | None = None,
        **options: Any,
    ) -> tuple[RecordingScheduler, MesosSchedulerDriver, str]:
        """A recording scheduler and its driver, registered; returns them and the ID."""
        scheduler = RecordingScheduler()
        driver = self.driver(scheduler, cluster, framework=framework, **options)
        return scheduler, driver, scheduler.wait_registered()

    def close(self) -> None:
        problems: list[str] = []
        try:
            for driver in reversed(self._drivers):
                try:
                    stop_driver(driver)
                except AssertionError as error:
                    problems.append(str(error))
        finally:
            for cluster in reversed(self._clusters):
                cluster.stop()
            signal.signal(signal.SIGINT, self._previous_sigint)
        aborts = self.take_aborts()
        if aborts:
            problems.append(f"a pymesos driver aborted unexpectedly: {aborts!r}")
        if problems:
            raise AssertionError("; ".join(problems))


def stop_driver(
    driver: MesosSchedulerDriver, *, failover: bool = False, timeout: float = 10.0
) -> None:
    """Stop (TEARDOWN unless ``failover``) and wait for the IO thread to end. A driver that is
    already stopped, or that aborted, is only waited for."""
    if not driver.aborted:
        driver.stop(failover=failover)
    joiner = threading.Thread(target=driver.join, daemon=True)
    joiner.start()
    joiner.join(timeout)
    if joiner.is_alive():
        raise AssertionError(f"the pymesos IO thread did not end within {timeout} s")


def framework_info(name: str = "pymesos-test", **fields: Any) -> dict:
    """A FrameworkInfo as pymesos takes it: `user` and `name` are required."""
    return {"user": getpass.getuser(), "name": name, **fields}


def scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def command_task(
    task_id: str,
    offer: dict,
    command: str | dict | None,
    *,
    cpus: float = 0.1,
    mem: float = 32,
    **fields: Any,
) -> dict:
    """A TaskInfo for a command task on ``offer``'s agent. ``command`` is a shell command or
    a whole CommandInfo; None leaves it out."""
    task: dict[str, Any] = {
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "name": task_id,
        "resources": [scalar("cpus", cpus), scalar("mem", mem)],
    }
    if isinstance(command, str):
        task["command"] = {"value": command}
    elif command is not None:
        task["command"] = command
    task.update(fields)
    return task


def resources_by_name(resources: list[dict]) -> dict[str, Any]:
    """v1 Resource JSON as {name: value}: a float for scalars, [(begin, end), ...] for ranges."""
    result: dict[str, Any] = {}
    for resource in resources:
        if resource["type"] == "SCALAR":
            result[resource["name"]] = resource["scalar"]["value"]
        elif resource["type"] == "RANGES":
            result[resource["name"]] = [(r["begin"], r["end"]) for r in resource["ranges"]["range"]]
    return result


def sandbox(cluster: LocalCluster, framework_id: str, agent_id: str, task_id: str) -> Path:
    """The latest run of a command task's executor, in the Mesos layout (slave/paths.cpp)."""
    executor = Path(cluster.work_dir, "slaves", agent_id, "frameworks", framework_id)
    return executor / "executors" / task_id / "runs" / "latest"


def alive(pid: int) -> bool:
    """Whether ``pid`` still exists (the agent reaps its tasks, so a dead one is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(predicate: Callable[[], T], timeout: float = DEFAULT_WAIT, what: str = "") -> T:
    return raw_http.wait_until(predicate, timeout, what)


def wait_state(
    cluster: LocalCluster, predicate: Callable[[dict], Any], timeout: float = DEFAULT_WAIT
) -> dict:
    """Poll /master/state until ``predicate(state)`` is true; returns that state."""
    return cluster.wait_for(lambda state: state if predicate(state) else None, timeout)


def only(items: list[T]) -> T:
    assert len(items) == 1, f"expected exactly one item, got {items!r}"
    return items[0]


def harness_fixture() -> Iterator[Harness]:
    harness = Harness()
    try:
        yield harness
    finally:
        harness.close()
