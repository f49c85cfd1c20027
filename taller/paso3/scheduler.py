# Generated from step3_failover/scheduler.py by `python -m taller generate`: the workshop's
# skeleton of step 3. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=3`.
# fingerprint: d64210727f1d24f1
"""The step 3 framework: step 2's scheduler, now able to die and be replaced mid-job.

Whatever a scheduler must not lose lives in the checkpoint (`checkpoint.py`), not in memory:
the framework ID, every task it launches (written down before the launch) and every chunk's
result (written once). A new scheduler, the same one restarted or a standby, `recover()`s
from it, subscribes with the same framework ID, and asks the master about every task that may
still exist (reconciliation) before it decides what to launch again.

Mesos calls these methods from pymesos's single event thread, one at a time. `run()` in
`__main__.py` waits on `finished` from the main thread; the reconciliation retries come from a
timer thread. Every method that touches the job's state holds `lock`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException

from pymesos import Scheduler

from jobs import bikeshare
from step1_scheduler import sandbox
from taller.paso3 import messages
from taller.paso3.checkpoint import Checkpoint, StoreError

log = logging.getLogger("taller.paso3")

# A framework that declines an offer asks the master not to offer those resources back for a
# while. We have nothing to run with them, so the other frameworks may as well have them.
DECLINE_FILTER = {"refuse_seconds": 30.0}

# Mesos knows an executor by framework, executor ID and agent. With the same ID on every agent,
# each agent runs at most one executor of ours, and every later task there goes to it.
EXECUTOR_ID = "bikeshare-executor"

# Our task IDs say which chunk and which attempt they are: a scheduler that learns of a task
# it did not launch itself (from reconciliation) knows at once what it is for.
TASK_ID = re.compile(r"^chunk-(?P<chunk>\d+)-attempt-(?P<attempt>\d+)$")

# The task is, or is about to be, on an agent: its chunk is being counted.
ACTIVE_STATES = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}
# Every attempt that ends without a result counts against its chunk, whoever reports the end.
# A *failure* is TASK_FAILED, whoever sends it, or TASK_ERROR (the master refused the task):
# the chunk's code raised (the executor says so), or the executor died under the task or could
# not even start (the agent says so, with REASON_EXECUTOR_TERMINATED, and cannot tell a crash
# from a kill). Trying again will often fail again: the job gives up after --max-attempts of
# them. Every other end without a result is a *loss*: TASK_LOST, TASK_UNREACHABLE, TASK_GONE,
# TASK_GONE_BY_OPERATOR, TASK_DROPPED, TASK_UNKNOWN, TASK_KILLED. A loss says nothing about
# the chunk, so it has a bound of its own, --max-losses, larger: a cluster that keeps losing a
# chunk's tasks ends the job too, instead of launching them for ever.
FAILED_STATES = {"TASK_FAILED", "TASK_ERROR"}

# Explicit reconciliation is asked again until every task has an answer, waiting twice as
# long each time (reconciliation.md: "truncated exponential backoff"). The master may not
# answer for a while: during a master failover, about tasks on agents that have not yet come
# back.
RECONCILE_FIRST_RETRY = 1.0  # seconds
RECONCILE_MAX_RETRY = 30.0

# A chunk whose attempt ended without a result is launched again after a pause that doubles
# with each attempt that ended so: an executor that cannot start, or an agent that loses every
# task, would otherwise be handed the next attempt at once, over and over.
RELAUNCH_FIRST_DELAY = 0.5  # seconds
RELAUNCH_MAX_DELAY = 30.0

# A launched task that has had no status update this long may never have reached its agent
# (the launch can be lost on the way, with the master or the agent failing over): the master
# is asked about it, and if it does not know it, its answer ends the task as a loss.
LAUNCH_TIMEOUT = 60.0  # seconds
# While tasks run, the scheduler also asks about them now and then, in case an update was lost
# for good (high-availability-framework-guide.md: reconcile periodically); less often as the
# job goes on without surprises.
RECONCILE_PERIOD = 30.0  # seconds, the first time
RECONCILE_MAX_PERIOD = 600.0

# What pymesos raises when a call to the master fails: RuntimeError when it is not connected or
# the master answers with an error, OSError or HTTPException when the connection breaks.
SEND_ERRORS = (RuntimeError, OSError, HTTPException)


@dataclass
class Settings:
    """What the user chose on the command line."""

    size: str = "demo"  # a key of bikeshare.SIZES
    task_cpus: float = 0.1
    task_mem: float = 32.0  # MB
    executor_cpus: float = 0.1  # the executor itself: Python, pymesos and the job's code
    executor_mem: float = 64.0  # MB
    max_attempts: int = 3  # failed attempts per chunk
    max_losses: int = 10  # lost attempts per chunk
    executor_python: str = "python3"  # the interpreter on the agents
    executor_uri: str = ""  # the archive of `taller.paso3` and `jobs` that the agents fetch
    fail_chunk: int | None = None  # make this chunk fail on purpose, to see bounded retries
    progress: bool = True  # executors send a progress message after each day of a chunk
    # Seconds that the master keeps our tasks and executors running after we disconnect.
    failover_timeout: float = 600.0
    # Fault injection: kill this process (SIGKILL) once it has recorded this many results.
    crash_after: int | None = None
    credential: sandbox.Credential | None = None  # who we are, if the cluster asks (a room)


@dataclass
class Launch:
    """One attempt at one chunk: a task on an agent."""

    chunk: int
    attempt: int
    agent_id: str
    started: bool = False  # the executor said TASK_RUNNING: it did start
    heard: bool = False  # some status update about it has arrived


@dataclass
class GaveUp:
    """The attempt after which the job gave up, for the error message: where to look."""

    task_id: str
    agent_id: str
    agent_url: str | None  # the agent's HTTP address, if one of its offers told us
    reason: str | None  # the update's reason, REASON_EXECUTOR_TERMINATED for instance
    started: bool  # whether the task ever ran


def parse_task_id(task_id: str) -> tuple[int, int] | None:
    """(chunk, attempt) of one of our task IDs, or None for any other ID."""
    match = TASK_ID.match(task_id)
    return (int(match["chunk"]), int(match["attempt"])) if match else None


@dataclass
class Timeline:
    """What happened, for the notebooks: the offers received, the status updates, the messages
    from the executors, and the agents and executors that were lost."""

    start: float = field(default_factory=time.monotonic)
    offers: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    lost: list[dict] = field(default_factory=list)

    def now(self) -> float:
        return round(time.monotonic() - self.start, 3)

    def offer(self, offer: dict, tasks: int, starts_executor: bool) -> None:
        self.offers.append(
            {
                "time": self.now(),
                "agent": offer["agent_id"]["value"],
                "cpus": scalar(offer, "cpus"),
                "mem": scalar(offer, "mem"),
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
                "source": update.get("source"),
                "reason": update.get("reason"),
            }
        )

    def message(self, agent: str, message: dict) -> None:
        self.messages.append({"time": self.now(), "agent": agent, **message})

    def lost_one(self, agent: str, executor: str | None = None, status: object = None) -> None:
        self.lost.append(
            {"time": self.now(), "agent": agent, "executor": executor, "status": status}
        )


def scalar(offer: dict, name: str) -> float:
    """The amount of one scalar resource (cpus, mem...) in an offer."""
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


def executor_info(settings: Settings) -> dict:
    """Our executor, as every task names it: step 2's, started from this package. Mesos refuses
    a task whose ExecutorInfo differs from the one its running executor was started with, and
    executors outlive a scheduler's failover: every scheduler of the job must build the very
    same one (the checkpoint's `job` holds it)."""
    return {
        "executor_id": {"value": EXECUTOR_ID},
        "name": "step3: bike-share executor",
        "command": {
            "shell": False,
            "value": settings.executor_python,
            "arguments": [settings.executor_python, "-m", "taller.paso3.executor"],
            # The agent's fetcher downloads the archive into the executor's sandbox, which is
            # its working directory, and unpacks it there (see archive.py). `cache: False`: a
            # new run may ship new code under the same URI.
            "uris": [{"value": settings.executor_uri, "extract": True, "cache": False}],
        },
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": settings.executor_cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": settings.executor_mem}},
        ],
    }


def crash_now(why: str) -> None:
    """--crash-after: die as a crash would, with no chance to clean anything up."""
    log.warning("%s: SIGKILL to this scheduler (pid %d)", why, os.getpid())
    logging.shutdown()  # the line above reaches the terminal before we die
    os.kill(os.getpid(), signal.SIGKILL)


def after(seconds: float, function: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, function)
    timer.daemon = True
    timer.start()
    return timer


def locked(method: Callable) -> Callable:
    """Run a method of the scheduler while holding its lock. If the checkpoint cannot be
    written, the scheduler stops: it must not act on what it cannot remember."""

    @functools.wraps(method)
    def with_lock(self: JobScheduler, driver, *args, **kwargs):
        with self.lock:
            try:
                return method(self, driver, *args, **kwargs)
            except StoreError as error:
                self.lost_the_checkpoint(driver, error)

    return with_lock


class JobScheduler(Scheduler):
    def __init__(
        self,
        settings: Settings,
        store: Checkpoint,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.size = bikeshare.SIZES[settings.size]
        self.executor = executor_info(settings)
        self.framework_id: str | None = None
        self.results: dict[int, dict] = {}  # by chunk: from the checkpoint, or recorded now
        self.recovered = 0  # how many results the checkpoint had when we started
        self.recorded: list[int] = []  # the chunks whose result this scheduler recorded first
        # Tasks that are, or may be, running: launched by us, or by a scheduler before us and
        # not yet known to have ended. A chunk with a task here is not launched again.
        self.running: dict[str, Launch] = {}
        self.unanswered: set[str] = set()  # asked about in a reconciliation; no answer yet
        self.awaiting: set[str] = set()  # finished, with the result still at the agent
        self.pending: deque[int] = deque()  # chunks to launch
        self.attempts: dict[int, int] = {}  # the highest attempt number used, by chunk
        self.failures: dict[int, int] = {}  # failed attempts, by chunk
        self.losses: dict[int, int] = {}  # lost attempts, by chunk
        self.backing_off: set[int] = set()  # chunks waiting to be launched again
        self.agent_urls: dict[str, str] = {}  # agent ID -> its HTTP address, from its offers
        self.days: dict[int, int] = {}  # days counted, by chunk, for the progress bar
        self.suppressed = False
        self.failure: str | None = None  # why the job could not go on, if so
        self.gave_up: GaveUp | None = None  # the attempt that made the job give up, if any
        self.removed = False  # the master no longer knows our framework ID
        self.registered_event = threading.Event()
        self.finished = threading.Event()
        self.timeline = Timeline()
        self.on_progress = on_progress or (lambda done, total: None)
        self.crash = crash_now  # --crash-after; tests replace it
        self.later = after  # how retries and relaunches are scheduled; tests replace it
        self.watchdog = after  # how periodic reconciliation and launch timeouts are; likewise
        self._reconciliation = 0  # which reconciliation a retry belongs to
        self._subscription = 0  # which subscription a periodic reconciliation belongs to
        self._warned_small_offer = False
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

    @property
    def done(self) -> bool:
        return len(self.results) == self.total

    def result(self) -> dict:
        """The job's result: every chunk's counts, merged in chunk order."""
        result = bikeshare.empty_result(self.size)
        for chunk in sorted(self.results):
            bikeshare.merge(result, self.results[chunk])
        return result

    def recover(self) -> None:
        """Load the checkpoint, before the driver starts: the results that are in, and every
        task ever launched for a chunk that has none. Those tasks may still run; until the
        master says otherwise, they count as running, and their chunks are not launched again."""
        with self.lock:
            self.results = self.store.results()
            self.recovered = len(self.results)
            for task_id, agent_id in self.store.tasks().items():
                chunk, attempt = parse_task_id(task_id) or (None, 0)
                if chunk is None:
                    continue
                # Task IDs are never used twice: the next attempt comes after every earlier one.
                self.attempts[chunk] = max(self.attempts.get(chunk, 0), attempt)
                if chunk not in self.results:
                    self.running[task_id] = Launch(chunk, attempt, agent_id)
            in_flight = {launch.chunk for launch in self.running.values()}
            self.pending = deque(
                chunk
                for chunk in bikeshare.chunks(self.size)
                if chunk not in self.results and chunk not in in_flight
            )
            for chunk in self.results:
                self.days[chunk] = bikeshare.WEEKDAYS
            if self.results:
                self.on_progress(self.days_done, self.total_days)
            log.info(
                "checkpoint: %d of %d results, %d tasks that may still run, %d chunks to launch",
                len(self.results),
                self.total,
                len(self.running),
                len(self.pending),
            )

    @locked
    def registered(self, driver, framework_id, master_info) -> None:
        # A new framework: write its ID down before anything else, so that whoever comes after
        # us subscribes with it and gets our tasks back.
        self.framework_id = framework_id["value"]
        if not self.store.save_framework_id(self.framework_id):
            self.failure = (
                f"registered framework {self.framework_id}, but the checkpoint names framework "
                f"{self.store.framework_id()}: another scheduler leads this job"
            )
            self.stop(driver)
            return
        log.info("registered with framework ID %s", self.framework_id)
        self.subscribed(driver)

    @locked
    def reregistered(self, driver, master_info) -> None:
        # pymesos calls this when it subscribes with a framework ID it already has: ours from
        # the checkpoint when we start, and after any reconnection (a master failover, a
        # broken connection). Either way, we may have missed updates: reconcile.
        self.framework_id = driver.framework_id
        log.info("re-registered with framework ID %s", self.framework_id)
        self.subscribed(driver)

    def subscribed(self, driver) -> None:
        # A new subscription starts unsuppressed (pymesos lists no suppressed roles).
        self.suppressed = False
        self.registered_event.set()
        self._subscription += 1
        self.reconcile(driver)
        self.reconcile_later(driver, self._subscription, RECONCILE_PERIOD)
        self.end_if_done()

    def disconnected(self, driver) -> None:
        # pymesos reconnects on its own. Until then every call is dropped, and the master keeps
        # our updates: reregistered() reconciles when we are back.
        log.info("disconnected from the master")

    def reconcile(self, driver) -> None:
        """EJERCICIO reconcile (paso 3).

        Pregunta al maestro por tus tareas tras (volver a) suscribirte.

        Mientras no estábamos suscritos pudimos perdernos actualizaciones: antes de decidir qué
        lanzar otra vez, hay que saber qué sigue vivo.

        - Empieza una reconciliación nueva: self._reconciliation += 1.
        - Explícita: las tareas que pueden estar corriendo son las de self.running. Apúntalas en
          self.unanswered = set(self.running) y pregunta por ellas con
          self.ask(driver, self._reconciliation, RECONCILE_FIRST_RETRY), que vuelve a preguntar,
          cada vez más despacio, hasta que todas tengan respuesta.
        - Implícita: pregunta por cualquier otra tarea nuestra que conozca el maestro, con una
          lista vacía: self.call(driver.reconcileTasks, []).

        Las respuestas llegan como actualizaciones de estado, a statusUpdate().

        Lo explica el post del paso 3, en «Reconciliación explícita, y luego implícita»:
        _posts/2026-11-24-paso-3-tolerancia-a-fallos.md
        Comprueba tu código con: make ejercicio PASO=3
        """
        raise NotImplementedError("ejercicio reconcile: escribe reconcile() (lee su docstring)")

    def ask(self, driver, reconciliation: int, retry: float) -> None:
        wanted = self.unanswered | self.awaiting
        if reconciliation != self._reconciliation or not wanted or self.finished.is_set():
            return  # a later (re)registration started another one, or nothing is in doubt
        tasks = [{"task_id": {"value": task_id}} for task_id in sorted(wanted)]
        self.call(driver.reconcileTasks, tasks)
        self.later(retry, lambda: self.ask_again(driver, reconciliation, retry))

    @locked
    def ask_again(self, driver, reconciliation: int, retry: float) -> None:
        if reconciliation == self._reconciliation and self.unanswered:
            log.info("no answer yet about %d tasks: asking again", len(self.unanswered))
        self.ask(driver, reconciliation, min(retry * 2, RECONCILE_MAX_RETRY))

    def reconcile_later(self, driver, subscription: int, period: float) -> None:
        self.watchdog(period, lambda: self.reconcile_again(driver, subscription, period))

    @locked
    def reconcile_again(self, driver, subscription: int, period: float) -> None:
        """Now and then, while tasks run: reconcile, as after a subscription, and less often
        each time. A new subscription starts its own round of these."""
        if subscription != self._subscription or self.finished.is_set():
            return
        if self.running:
            log.info("periodic reconciliation")
            self.reconcile(driver)
        self.reconcile_later(driver, subscription, min(period * 2, RECONCILE_MAX_PERIOD))

    @locked
    def launch_timed_out(self, driver, task_ids: list[str]) -> None:
        """No update about these tasks since their launch: ask the master. If it does not know
        a task, it answers TASK_UNKNOWN (TASK_LOST for an older master), and statusUpdate()
        ends the task as a loss, which launches its chunk again."""
        silent = [
            task_id
            for task_id in task_ids
            if task_id in self.running and not self.running[task_id].heard
        ]
        if not silent or self.finished.is_set():
            return
        log.warning(
            "no update about %s within %g s of the launch; asking the master",
            ", ".join(silent),
            LAUNCH_TIMEOUT,
        )
        self.unanswered.update(silent)
        self.call(driver.reconcileTasks, [{"task_id": {"value": t}} for t in silent])

    def task(self, chunk: int, offer: dict) -> dict:
        """A task that counts one chunk on our executor. It is written down in the checkpoint
        before it is launched: a scheduler that takes over knows every task that may exist."""
        attempt = self.attempts.get(chunk, 0) + 1
        task_id = f"chunk-{chunk}-attempt-{attempt}"
        while not self.store.save_task(task_id, offer["agent_id"]["value"]):
            attempt += 1  # that ID was used by a scheduler we know nothing of: never reuse one
            task_id = f"chunk-{chunk}-attempt-{attempt}"
        self.attempts[chunk] = attempt
        self.running[task_id] = Launch(chunk, attempt, offer["agent_id"]["value"])
        data = {
            "week": chunk,
            "size": self.settings.size,
            "fail": chunk == self.settings.fail_chunk,
            "progress": self.settings.progress,
        }
        return {
            "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "name": f"week {chunk + 1} (attempt {attempt})",
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.settings.task_cpus}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": self.settings.task_mem}},
            ],
            "executor": self.executor,
            "data": messages.encode(data),
        }

    @locked
    def resourceOffers(self, driver, offers) -> None:
        started: set[str] = set()  # agents where a task of this call starts our executor
        for offer in offers:
            agent = offer["agent_id"]["value"]
            if "url" in offer:  # where to read a failed executor's sandbox, if it comes to that
                self.agent_urls[agent] = sandbox.agent_url(offer)
            cpus, mem = scalar(offer, "cpus"), scalar(offer, "mem")
            ours = any(e["value"] == EXECUTOR_ID for e in offer.get("executor_ids", []))
            starts_executor = not ours and agent not in started
            if starts_executor:
                cpus = round(cpus - self.settings.executor_cpus, 3)
                mem = round(mem - self.settings.executor_mem, 3)
            tasks = []
            while (
                self.pending and cpus >= self.settings.task_cpus and mem >= self.settings.task_mem
            ):
                tasks.append(self.task(self.pending.popleft(), offer))
                cpus = round(cpus - self.settings.task_cpus, 3)
                mem = round(mem - self.settings.task_mem, 3)
            if tasks and starts_executor:
                started.add(agent)
            self.timeline.offer(offer, len(tasks), starts_executor=bool(tasks) and starts_executor)
            if tasks:
                self.call(driver.launchTasks, offer["id"], tasks, filters=DECLINE_FILTER)
                log.info("offer %s: launched %d tasks", offer["id"]["value"], len(tasks))
                ids = [task["task_id"]["value"] for task in tasks]
                self.watchdog(LAUNCH_TIMEOUT, lambda ids=ids: self.launch_timed_out(driver, ids))
            else:
                self.call(driver.declineOffer, offer["id"], filters=DECLINE_FILTER)
                self._explain_decline(offer)
        if not self.pending and not self.suppressed:
            self.call(driver.suppressOffers)
            self.suppressed = True
            log.info("nothing left to launch: offers suppressed")

    def _explain_decline(self, offer: dict) -> None:
        if not self.pending or self.running or self._warned_small_offer:
            return
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
        """EJERCICIO updates (paso 3).

        Atiende cada actualización, y confírmala solo cuando ya ha surtido efecto.

        Cada actualización se atiende igual, lanzara quien lanzara la tarea y llegue las veces que
        llegue: lo que significa lo dicen el identificador de la tarea y el checkpoint.

        - task_id = update["task_id"]["value"], state = update["state"].
        - Ya hay respuesta sobre esa tarea: self.unanswered.discard(task_id).
        - task = parse_task_id(task_id) da (semana, intento), o None si no es nuestra. Apúntala:
          self.timeline.update(update, task[0] if task else None).
        - Según el caso, en este orden:
          - task es None: no es de este trabajo; ignórala (log.warning);
          - su semana ya está en self.results: self.already_done(driver, task_id, state);
          - TASK_FINISHED: self.collect(driver, task_id, task[0], update);
          - un estado de ACTIVE_STATES: self.runs(driver, task_id, task, update);
          - la tarea está en self.running: acabó sin resultado, self.ended(driver, task_id, update);
          - si no, es una repetida: ignórala.
        - Por último, y solo entonces: self.acknowledge(driver, update). Si el planificador muere
          antes de esta línea, el agente reenvía la actualización al siguiente planificador.

        Lo explica el post del paso 3, en «Guardar primero, confirmar después»:
        _posts/2026-11-24-paso-3-tolerancia-a-fallos.md
        Comprueba tu código con: make ejercicio PASO=3
        """
        raise NotImplementedError("ejercicio updates: escribe statusUpdate() (lee su docstring)")

    def acknowledge(self, driver, update: dict) -> None:
        # We acknowledge ourselves (the driver is built with implicit_acknowledgements=False),
        # and only here, after the update is acted on: if we die before this line, the agent
        # sends the update again, to whichever scheduler subscribes next. Updates from the
        # master (reconciliation, agent loss) carry no uuid and need no acknowledgement.
        if "uuid" in update:
            self.call(driver.acknowledgeStatusUpdate, update)

    def already_done(self, driver, task_id: str, state: str) -> None:
        """The chunk has its result. A repeated TASK_FINISHED, another attempt that finished
        too, a task back from an agent that was unreachable: none of them changes the result.
        A task of the chunk that still runs is of no use: kill it."""
        if state in ACTIVE_STATES:
            self.kill_redundant(driver, task_id, f"is {state}")
        else:
            self.forget(task_id)
            log.info("ignoring %s for %s: its chunk is already done", state, task_id)

    def kill_redundant(self, driver, task_id: str, what: str) -> None:
        self.forget(task_id)
        log.info("%s %s, but its chunk is done: killing it", task_id, what)
        self.call(driver.killTask, {"value": task_id})

    def runs(self, driver, task_id: str, task: tuple[int, int], update: dict) -> None:
        """A task is running. It may be one we did not know of: launched by the scheduler
        before us, or back from an agent that was unreachable. Its chunk needs no other launch."""
        if task_id not in self.running:
            chunk, attempt = task
            log.info("%s is %s: its chunk is on its way", task_id, update["state"])
            agent = update.get("agent_id", {}).get("value", "")
            self.running[task_id] = Launch(chunk, attempt, agent)
            self.unqueue(chunk)
        if update["state"] == "TASK_RUNNING":
            self.running[task_id].started = True

    def collect(self, driver, task_id: str, chunk: int, update: dict) -> None:
        """A chunk's result travels in its TASK_FINISHED; `record()` keeps it."""
        try:
            counts = messages.decode(update.get("data"))
            if counts.get("week") != chunk:
                raise ValueError(f"it is for week {counts.get('week')!r}")
        except ValueError as error:
            if task_id not in self.running:
                # A second answer (explicit and implicit reconciliation both answer), or an
                # attempt we had already given up on.
                log.debug("ignoring %s for %s, which is not running", update["state"], task_id)
            elif update.get("reason") == "REASON_RECONCILIATION":
                # The master's answer to a reconciliation carries no data. The real update is
                # still at the agent (nobody acknowledged it), which sends it again as soon as
                # we subscribe. We wait for it, and keep asking about the task: if the agent
                # dies first, the master will say the task is gone, and the chunk runs again.
                if task_id not in self.awaiting:
                    log.info("%s finished; waiting for its result from the agent", task_id)
                    self.awaiting.add(task_id)
            else:
                why = f"could not read its result: {error}"
                self.ended(driver, task_id, update, why, failed=True)
            return
        self.record(driver, task_id, chunk, counts)

    def record(self, driver, task_id: str, chunk: int, counts: dict) -> None:
        """EJERCICIO record (paso 3).

        Guarda el resultado de una semana en el checkpoint, antes que nada.

        collect() ya ha leído el resultado (counts) del TASK_FINISHED de task_id.

        - self.store.save_result(chunk, counts) lo escribe solo si no existe, y devuelve True si
          lo ha escrito esta llamada: entonces apunta la semana en self.recorded.
        - Si devuelve False, otro planificador lo guardó antes, y el suyo es el que vale:
          counts = self.store.result(chunk).
        - Después: self.results[chunk] = counts, self.forget(task_id), self.unqueue(chunk) y
          self.advance(chunk, bikeshare.WEEKDAYS).
        - Otro intento de la misma semana que siga en self.running sobra: mátalo con
          self.kill_redundant(driver, other_task_id, "may still run").
        - --crash-after: si self.settings.crash_after y len(self.recorded) llega a él, llama a
          self.crash(f"--crash-after {self.settings.crash_after}: {task_id} is recorded").
        - Por último, self.end_if_done().

        Lo explica el post del paso 3, en «Guardar primero, confirmar después»:
        _posts/2026-11-24-paso-3-tolerancia-a-fallos.md
        Comprueba tu código con: make ejercicio PASO=3
        """
        raise NotImplementedError("ejercicio record: escribe record() (lee su docstring)")

    def ended(
        self, driver, task_id: str, update: dict, why: str = "", failed: bool | None = None
    ) -> None:
        """A task ended with no result: launch its chunk again, after a pause, unless the chunk
        has used up its failures (--max-attempts) or its losses (--max-losses)."""
        launch = self.running[task_id]
        self.forget(task_id)
        state = update["state"]
        why = why or update.get("message") or update.get("reason") or "no message"
        chunk = launch.chunk
        if failed is None:
            failed = state in FAILED_STATES
        counts, limit, what = (
            (self.failures, self.settings.max_attempts, "failed")
            if failed
            else (self.losses, self.settings.max_losses, "was lost")
        )
        counts[chunk] = counts.get(chunk, 0) + 1
        if counts[chunk] >= limit:
            times = counts[chunk]
            self.failure = (
                f"chunk {chunk} {what} {times} time{'s' if times > 1 else ''}; the last "
                f"attempt, {task_id} on agent {launch.agent_id}, ended with {state}: {why}"
            )
            self.gave_up = GaveUp(
                task_id,
                launch.agent_id,
                self.agent_urls.get(launch.agent_id),
                update.get("reason"),
                launch.started,
            )
            self.finished.set()
            return
        if self.on_its_way(chunk):
            log.info("%s: %s: %s; its chunk is already on its way", task_id, state, why)
            return
        ends = self.failures.get(chunk, 0) + self.losses.get(chunk, 0)
        delay = min(RELAUNCH_FIRST_DELAY * 2 ** (ends - 1), RELAUNCH_MAX_DELAY)
        log.warning(
            "%s: %s: %s; launching chunk %d again in %g s", task_id, state, why, chunk, delay
        )
        self.backing_off.add(chunk)
        self.later(delay, lambda: self.relaunch(driver, chunk))

    @locked
    def relaunch(self, driver, chunk: int) -> None:
        """The pause is over: the chunk waits for an offer, unless it no longer needs one."""
        if chunk not in self.backing_off or self.finished.is_set():
            return  # done meanwhile, or a task of it turned up (unqueue() took it off)
        self.backing_off.discard(chunk)
        self.pending.append(chunk)
        if self.suppressed:
            self.call(driver.reviveOffers)
            self.suppressed = False

    def on_its_way(self, chunk: int) -> bool:
        return (
            chunk in self.pending
            or chunk in self.backing_off
            or any(launch.chunk == chunk for launch in self.running.values())
        )

    def unqueue(self, chunk: int) -> None:
        """The chunk is taken care of: it no longer waits for an offer."""
        self.backing_off.discard(chunk)
        if chunk in self.pending:
            self.pending.remove(chunk)

    def forget(self, task_id: str) -> Launch | None:
        """The task is no longer running: the master need not be asked about it."""
        self.unanswered.discard(task_id)
        self.awaiting.discard(task_id)
        return self.running.pop(task_id, None)

    def advance(self, chunk: int, days: int) -> None:
        """Move a chunk's progress forward to `days`, and report it. Never backwards."""
        if days <= self.days.get(chunk, 0):
            return
        self.days[chunk] = days
        self.on_progress(self.days_done, self.total_days)

    def end_if_done(self) -> None:
        if self.done:
            log.info("all %d chunks are done", self.total)
            self.finished.set()

    # -- messages from the executors -----------------------------------------------------------

    @locked
    def frameworkMessage(self, driver, executor_id, agent_id, data) -> None:
        agent = agent_id["value"]
        try:
            message = messages.decode(data)
        except ValueError as error:
            log.warning("ignoring a message from agent %s that is not ours: %s", agent, error)
            return
        self.timeline.message(agent, message)
        kind = message.get("type")
        if kind == messages.HELLO:
            log.info("executor on agent %s says hello (pid %s)", agent, message.get("pid"))
        elif kind == messages.PROGRESS:
            task_id, days = message.get("task_id"), message.get("days")
            launch = self.running.get(task_id) if isinstance(task_id, str) else None
            if launch is not None and isinstance(days, int):
                self.advance(launch.chunk, min(days, bikeshare.WEEKDAYS))

    # -- news of lost agents and executors: for the log only ------------------------------------

    def offerRescinded(self, driver, offer_id) -> None:
        log.info("offer %s was rescinded", offer_id["value"])

    @locked
    def slaveLost(self, driver, agent_id) -> None:
        # Each of our tasks there gets a status update of its own (TASK_UNREACHABLE, since we
        # are partition-aware), and that is where its chunk is launched again. This event may
        # come before or after those updates, or not at all if we were disconnected.
        log.warning("agent %s was lost", agent_id["value"])
        self.timeline.lost_one(agent_id["value"])

    @locked
    def executorLost(self, driver, executor_id, agent_id, status) -> None:
        # Its tasks get TASK_FAILED updates from the agent (REASON_EXECUTOR_TERMINATED).
        executor, agent = executor_id["value"], agent_id["value"]
        log.warning("executor %s on agent %s exited (wait status %s)", executor, agent, status)
        self.timeline.lost_one(agent_id["value"], executor_id["value"], status)

    @locked
    def error(self, driver, message) -> None:
        """The master refuses us. "Framework failed over": another scheduler subscribed with our
        framework ID, so it leads now. "Framework has been removed": our failover timeout
        expired, or an operator tore the framework down. pymesos would subscribe again at
        once, forever, so we stop the driver, and without TEARDOWN: the framework, if it still
        exists, is not ours to end."""
        self.failure = f"the master reported an error: {message}"
        self.removed = "removed" in message
        self.stop(driver)

    def stop(self, driver) -> None:
        driver.stop(failover=True)  # only tells pymesos's thread to end; safe from it
        self.finished.set()

    def lost_the_checkpoint(self, driver, error: StoreError) -> None:
        # Without the checkpoint we could record nothing, and what we do not record, the next
        # scheduler would not know: stop, without acknowledging the update in hand, and let the
        # next scheduler pick up from what the checkpoint has.
        log.error("the checkpoint failed: %s", error)
        self.failure = f"the checkpoint failed: {error}"
        self.stop(driver)

    def call(self, method: Callable, *args, **kwargs) -> None:
        """A call to the master from a callback. If it fails (we were failed over, the master
        went away), pymesos will tell us through the callbacks; an exception here would only
        kill its thread."""
        try:
            method(*args, **kwargs)
        except SEND_ERRORS as error:
            log.warning("%s failed: %r", method.__name__, error)
