# Generated from step2_executor/scheduler.py by `python -m taller generate`: the workshop's
# skeleton of step 2. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=2`.
# fingerprint: 046413063f43291d
"""The step 2 framework: a scheduler whose tasks run on a custom executor of its own.

Mesos calls these methods from pymesos's single event thread, one event at a time: offers to
use, status updates to follow, messages from our executors, and news of lost agents and
executors. `run()` in `__main__.py` waits on `finished` from the main thread, and may call
`cancel()` from there; a notebook may call `cancel()` and `set_progress()` from its own.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException

from pymesos import Scheduler

from jobs import bikeshare
from step1_scheduler.sandbox import Credential
from taller.paso2 import messages

log = logging.getLogger("taller.paso2")

# A framework that declines an offer asks the master not to offer those resources back for a
# while. We have nothing to run with them, so the other frameworks may as well have them.
DECLINE_FILTER = {"refuse_seconds": 30.0}

# Terminal states that mean "this attempt did not produce a result; try the chunk again".
FAILED_STATES = {
    "TASK_FAILED",  # the chunk raised, or its executor died under it
    "TASK_KILLED",  # someone (an operator, the agent) killed it
    "TASK_LOST",  # the agent was lost; a framework that is not partition-aware sees this
    "TASK_ERROR",  # the master refused the task as invalid
    "TASK_DROPPED",  # the task never reached the agent
    "TASK_GONE",  # the agent was removed, and the task with it
    "TASK_GONE_BY_OPERATOR",
}

# Mesos knows an executor by framework, executor ID and agent. With the same ID on every agent,
# each agent runs at most one executor of ours, and every later task there goes to it.
EXECUTOR_ID = "bikeshare-executor"

# What pymesos raises when a call to the master fails (see executor.SEND_ERRORS).
SEND_ERRORS = (RuntimeError, OSError, HTTPException)


@dataclass
class Settings:
    """What the user chose on the command line."""

    size: str = "demo"  # a key of bikeshare.SIZES
    # A task is now a thread in the executor's process, not a process of its own: it needs a
    # small share of the agent and little memory beyond what the executor holds once.
    task_cpus: float = 0.1
    task_mem: float = 32.0  # MB
    executor_cpus: float = 0.1  # the executor itself: Python, pymesos and the job's code
    executor_mem: float = 64.0  # MB
    max_attempts: int = 3
    executor_python: str = "python3"  # the interpreter on the agents
    executor_uri: str = ""  # the archive of `taller.paso2` and `jobs` that the agents fetch
    fail_chunk: int | None = None  # make this chunk fail on purpose, to see retries
    progress: bool = True  # executors send a progress message after each day of a chunk
    credential: Credential | None = None  # who we are, if the cluster asks (a workshop room)


@dataclass
class Launch:
    """One attempt at one chunk: a task on an agent."""

    chunk: int
    attempt: int
    agent_id: str


@dataclass
class Timeline:
    """What happened, for the notebooks: the offers received, the status updates, the messages
    in both directions, and the executors that were lost."""

    start: float = field(default_factory=time.monotonic)
    offers: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    executors_lost: list[dict] = field(default_factory=list)

    def now(self) -> float:
        return round(time.monotonic() - self.start, 3)

    def offer(self, offer: dict, tasks: int, starts_executor: bool) -> None:
        agent, cpus, mem = offer["agent_id"]["value"], scalar(offer, "cpus"), scalar(offer, "mem")
        self.offers.append(
            {
                "time": self.now(),
                "agent": agent,
                "cpus": cpus,
                "mem": mem,
                "tasks": tasks,
                "starts_executor": starts_executor,
            }
        )

    def update(self, update: dict, chunk: int | None) -> None:
        self.updates.append(
            {
                "time": self.now(),
                "task": update["task_id"]["value"],
                "chunk": chunk,
                "agent": update.get("agent_id", {}).get("value"),
                "state": update["state"],
            }
        )

    def message(self, direction: str, agent: str, message: dict) -> None:
        """A framework message: "in" from an executor, "out" to one."""
        self.messages.append(
            {"time": self.now(), "direction": direction, "agent": agent, **message}
        )

    def executor_lost(self, executor: str, agent: str, status: object) -> None:
        self.executors_lost.append(
            {
                "time": self.now(),
                "executor": executor,
                "agent": agent,
                "status": status,
                "how": describe_exit(status),
            }
        )


def scalar(offer: dict, name: str) -> float:
    """The amount of one scalar resource (cpus, mem...) in an offer."""
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


def describe_exit(status: object) -> str:
    """How a process ended, from the raw wait status (waitpid(2)) that Mesos reports."""
    if not isinstance(status, int):
        return f"an unknown status ({status!r})"
    if os.WIFEXITED(status):
        return f"exit code {os.WEXITSTATUS(status)} (wait status {status})"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"signal {name} (wait status {status})"
    return f"wait status {status}"


def executor_info(settings: Settings) -> dict:
    """Our executor, as every task names it. The first such task on an agent starts it there;
    the later ones go to the running process. Mesos refuses a task whose ExecutorInfo differs
    from the one the running executor was started with, so the scheduler builds this once."""
    return {
        "executor_id": {"value": EXECUTOR_ID},
        "name": "step2: bike-share executor",
        "command": {
            "shell": False,  # run the program itself, with no `sh -c` in between
            "value": settings.executor_python,
            "arguments": [settings.executor_python, "-m", "taller.paso2.executor"],
            # The agent's fetcher downloads the archive into the executor's sandbox, which is
            # its working directory, and unpacks it there (see archive.py). `cache: False`: a
            # new run may ship new code under the same URI.
            "uris": [{"value": settings.executor_uri, "extract": True, "cache": False}],
        },
        # The executor's own share of the agent, held while it lives; each task adds its own.
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": settings.executor_cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": settings.executor_mem}},
        ],
    }


def locked(method: Callable) -> Callable:
    """Run a method of the scheduler while holding its lock (see JobScheduler.lock)."""

    @functools.wraps(method)
    def with_lock(self: JobScheduler, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return with_lock


class JobScheduler(Scheduler):
    def __init__(
        self, settings: Settings, on_progress: Callable[[int, int], None] | None = None
    ) -> None:
        self.settings = settings
        self.size = bikeshare.SIZES[settings.size]
        self.executor = executor_info(settings)  # built once: every task carries the same one
        self.pending: deque[int] = deque(bikeshare.chunks(self.size))
        self.running: dict[str, Launch] = {}  # by task ID
        self.attempts: dict[int, int] = {}  # by chunk
        self.results: dict[int, dict] = {}  # by chunk
        self.days: dict[int, int] = {}  # by chunk: how many of its days are done
        self.executors: dict[str, str] = {}  # executor ID by agent ID, of those known to run
        self.framework_id: str | None = None
        self.suppressed = False
        self.cancelled = False
        self.failure: str | None = None  # why the job failed, if it did ("cancelled" if so)
        self.registered_event = threading.Event()
        self.finished = threading.Event()
        self.timeline = Timeline()
        self.on_progress = on_progress or (lambda done, total: None)
        self._warned_small_offer = False
        # pymesos calls the callbacks on its thread; cancel() and set_progress() come from
        # another one. Every method that reads or changes the job's state holds this lock, so
        # they take turns. (The driver's calls are safe from any thread on their own.)
        self.lock = threading.RLock()

    @property
    def total(self) -> int:
        return self.size.weeks

    @property
    def total_days(self) -> int:
        return self.size.weeks * bikeshare.WEEKDAYS

    @property
    def days_done(self) -> int:
        return sum(self.days.values())

    def result(self) -> dict:
        """The job's result: every chunk's counts, merged in chunk order."""
        result = bikeshare.empty_result(self.size)
        for chunk in sorted(self.results):
            bikeshare.merge(result, self.results[chunk])
        return result

    # -- registration -------------------------------------------------------------------------

    def registered(self, driver, framework_id, master_info) -> None:
        self.framework_id = framework_id["value"]
        log.info("registered with framework ID %s", self.framework_id)
        self.registered_event.set()

    def reregistered(self, driver, master_info) -> None:
        log.info("re-registered with the master")

    def disconnected(self, driver) -> None:
        # pymesos reconnects on its own; this also happens when we stop at the end.
        log.info("disconnected from the master")

    def task(self, chunk: int, offer: dict) -> dict:
        """A task that counts one chunk on our executor: instead of a command, the task names
        the executor that runs it, and its `data` says which chunk to count."""
        self.attempts[chunk] = self.attempts.get(chunk, 0) + 1
        attempt = self.attempts[chunk]
        task_id = f"chunk-{chunk}-attempt-{attempt}"
        data = {
            "week": chunk,
            "size": self.settings.size,
            "fail": chunk == self.settings.fail_chunk,
            "progress": self.settings.progress,
        }
        self.running[task_id] = Launch(chunk, attempt, offer["agent_id"]["value"])
        return {
            "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "name": f"week {chunk + 1} (attempt {attempt})",
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.settings.task_cpus}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": self.settings.task_mem}},
            ],
            "executor": self.executor,
            "data": messages.encode(data),  # bytes to Mesos: base64 in its JSON API
        }

    @locked
    def resourceOffers(self, driver, offers) -> None:
        started: set[str] = set()  # agents where a task of this call starts our executor
        for offer in offers:
            agent = offer["agent_id"]["value"]
            cpus, mem = scalar(offer, "cpus"), scalar(offer, "mem")
            # An offer lists the executors of ours that already run on its agent. Without ours,
            # the first task there also starts it, and the executor's resources come out of
            # the same offer.
            ours = any(e["value"] == EXECUTOR_ID for e in offer.get("executor_ids", []))
            starts_executor = not ours and agent not in started
            if starts_executor:
                cpus = round(cpus - self.settings.executor_cpus, 3)
                mem = round(mem - self.settings.executor_mem, 3)
            tasks = []
            # Size the tasks from the offer: as many chunks as its cpus and mem can hold.
            while (
                self.pending and cpus >= self.settings.task_cpus and mem >= self.settings.task_mem
            ):
                tasks.append(self.task(self.pending.popleft(), offer))
                # Mesos keeps scalar resources to three decimals; so do we.
                cpus = round(cpus - self.settings.task_cpus, 3)
                mem = round(mem - self.settings.task_mem, 3)
            if tasks and starts_executor:
                started.add(agent)
            self.timeline.offer(offer, len(tasks), starts_executor=bool(tasks) and starts_executor)
            if tasks:
                # Whatever the tasks leave of the offer is declined, with the same filter.
                driver.launchTasks(offer["id"], tasks, filters=DECLINE_FILTER)
                log.info("offer %s: launched %d tasks", offer["id"]["value"], len(tasks))
            else:
                driver.declineOffer(offer["id"], filters=DECLINE_FILTER)
                self._explain_decline(offer)
        if not self.pending and not self.suppressed:
            # Every chunk is launched: stop the master from sending offers we would decline.
            driver.suppressOffers()
            self.suppressed = True
            log.info("every chunk is launched: offers suppressed")

    def _explain_decline(self, offer: dict) -> None:
        if not self.pending or self.running or self._warned_small_offer:
            return
        # Nothing of ours runs and this offer could not hold one task: say so once, since a
        # task larger than every agent would otherwise wait forever in silence.
        self._warned_small_offer = True
        log.warning(
            "declined an offer of cpus %g, mem %g from agent %s: one task needs cpus %g, "
            "mem %g, and the executor that it starts cpus %g, mem %g; waiting for a larger offer",
            scalar(offer, "cpus"),
            scalar(offer, "mem"),
            offer["agent_id"]["value"],
            self.settings.task_cpus,
            self.settings.task_mem,
            self.settings.executor_cpus,
            self.settings.executor_mem,
        )

    @locked
    def statusUpdate(self, driver, update) -> None:
        task_id, state = update["task_id"]["value"], update["state"]
        launch = self.running.get(task_id)
        self.timeline.update(update, launch.chunk if launch else None)
        if launch is None:
            # Status updates arrive at least once: a repeated update for a task that is
            # already done must change nothing.
            log.debug("ignoring %s for %s, which is no longer running", state, task_id)
            return
        if state == "TASK_RUNNING":
            # Only a running executor reports TASK_RUNNING: now we can send it messages.
            agent = update.get("agent_id", {}).get("value") or launch.agent_id
            self.executors[agent] = update.get("executor_id", {}).get("value") or EXECUTOR_ID
        elif state == "TASK_FINISHED":
            del self.running[task_id]
            self.collect(driver, task_id, launch, update)
        elif state in FAILED_STATES:
            del self.running[task_id]
            reason = update.get("message") or update.get("reason") or "no message"
            self.retry_or_fail(driver, task_id, launch, f"{state}: {reason}")
        # TASK_STAGING and TASK_STARTING need nothing from us.

    def collect(self, driver, task_id: str, launch: Launch, update: dict) -> None:
        """The result travels in the finished task's status update, as its `data`."""
        try:
            counts = messages.decode(update.get("data"))
            if counts.get("week") != launch.chunk:
                raise ValueError(f"it is for week {counts.get('week')!r}")
        except ValueError as error:
            self.retry_or_fail(driver, task_id, launch, f"could not read its result: {error}")
            return
        self.results[launch.chunk] = counts
        # Every day is done, whether or not its progress messages arrived: the progress shown
        # never depends on framework messages being delivered.
        self.advance(launch.chunk, bikeshare.WEEKDAYS)
        self.end_if_done()

    def advance(self, chunk: int, days: int) -> None:
        """Move a chunk's progress forward to `days`, and report it. Never backwards: a retry
        starts the chunk again from its first day, and a message may arrive late."""
        if days <= self.days.get(chunk, 0):
            return
        self.days[chunk] = days
        self.on_progress(self.days_done, self.total_days)

    def end_if_done(self) -> None:
        if len(self.results) == self.total:
            log.info("all %d chunks are done", self.total)
            self.finished.set()
        elif self.cancelled and not self.running:
            log.info("cancelled with %d of %d chunks done", len(self.results), self.total)
            self.finished.set()

    def retry_or_fail(self, driver, task_id: str, launch: Launch, why: str) -> None:
        if launch.chunk in self.results:
            return  # an earlier attempt already produced this chunk
        if self.cancelled:
            log.info("%s: %s; not retried, since the job is cancelled", task_id, why)
            self.end_if_done()
            return
        attempts = self.attempts[launch.chunk]
        if attempts >= self.settings.max_attempts:
            self.failure = (
                f"chunk {launch.chunk} failed {attempts} time{'s' if attempts > 1 else ''}; "
                f"the last attempt, {task_id} on agent {launch.agent_id}, ended with {why}"
            )
            self.finished.set()
            return
        log.warning("%s: %s; trying chunk %d again", task_id, why, launch.chunk)
        self.pending.append(launch.chunk)
        if self.suppressed:
            # We asked for no more offers; now we need one again. Reviving also clears the
            # filters that our declines set.
            driver.reviveOffers()
            self.suppressed = False

    @locked
    def frameworkMessage(self, driver, executor_id, agent_id, data) -> None:
        """EJERCICIO messages (paso 2).

        Atiende los mensajes que te envían los ejecutores.

        Un mensaje del framework son bytes que Mesos lleva sin mirarlos, y que puede perder sin
        avisar: nada de lo que dice puede ser imprescindible.

        - agent = agent_id["value"]; message = messages.decode(data). Si no se puede leer
          (ValueError), no es nuestro: avisa con log.warning y vuelve, sin lanzar nada.
        - Apúntalo en la línea de tiempo: self.timeline.message("in", agent, message).
        - Todo mensaje demuestra que nuestro ejecutor corre en ese agente:
          self.executors[agent] = executor_id["value"], para que cancel() y set_progress()
          sepan a quién escribir.
        - "hello" y "ack": basta con anotarlos en el registro (log.info).
        - "progress": si message["task_id"] es una tarea que sigue en self.running y
          message["days"] es un entero, mueve la barra:
          self.advance(launch.chunk, min(days, bikeshare.WEEKDAYS)).
          El progreso de una tarea que ya acabó llega tarde: no cambia nada.

        Lo explica el post del paso 2, en «El planificador escucha»:
        _posts/2026-11-24-paso-2-un-ejecutor-propio-y-mensajes.md
        Comprueba tu código con: make ejercicio PASO=2
        """
        raise NotImplementedError(
            "ejercicio messages: escribe frameworkMessage() (lee su docstring)"
        )

    @locked
    def cancel(self, driver) -> int:
        """Stop the job: no more launches, and every executor we know stops its chunks at
        their next day (TASK_KILLED). The job ends once no task of ours runs. Returns how many
        executors the message went to."""
        if self.cancelled or self.finished.is_set():
            return 0
        self.cancelled = True
        self.failure = "cancelled"
        self.pending.clear()
        sent = self.send_to_executors(driver, {"type": messages.CANCEL})
        # The message is best effort: a task that misses it runs to its end, which is slower
        # but still correct, since the job ends only once nothing runs.
        self.end_if_done()
        return sent

    @locked
    def set_progress(self, driver, on: bool) -> int:
        """Turn the executors' progress messages on or off, mid-run. Running executors hear it
        in a message; the tasks launched from now on carry it in their data too, so executors
        that start later, or that missed the message, follow it. Returns how many executors
        the message went to."""
        self.settings.progress = on
        return self.send_to_executors(driver, {"type": messages.SET, "progress": on})

    def send_to_executors(self, driver, message: dict) -> int:
        sent = 0
        for agent, executor in sorted(self.executors.items()):
            try:
                driver.sendFrameworkMessage(
                    {"value": executor}, {"value": agent}, messages.encode(message)
                )
            except SEND_ERRORS as error:
                log.warning("could not send %s to agent %s: %r", message["type"], agent, error)
                continue
            self.timeline.message("out", agent, message)
            sent += 1
        return sent

    # -- the cases that real clusters produce ------------------------------------------------

    def offerRescinded(self, driver, offer_id) -> None:
        # We never hold offers, so a rescinded one is already launched on or declined.
        log.info("offer %s was rescinded", offer_id["value"])

    @locked
    def slaveLost(self, driver, agent_id) -> None:
        # The master sends a TASK_LOST update for each of our tasks on the agent first; the
        # retries happen there.
        log.warning("agent %s was lost", agent_id["value"])
        self.executors.pop(agent_id["value"], None)

    @locked
    def executorLost(self, driver, executor_id, agent_id, status) -> None:
        agent = agent_id["value"]
        log.warning(
            "executor %s on agent %s exited with %s",
            executor_id["value"],
            agent,
            describe_exit(status),
        )
        self.timeline.executor_lost(executor_id["value"], agent, status)
        # The tasks it had come as TASK_FAILED updates of their own, and are retried there. The
        # next task for that agent starts a new executor: its offers no longer list this one.
        self.executors.pop(agent, None)

    @locked
    def error(self, driver, message) -> None:
        # The master removed the framework (for example, after a TEARDOWN by an operator).
        self.failure = f"the master reported an error: {message}"
        self.finished.set()
