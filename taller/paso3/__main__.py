# Generated from step3_failover/__main__.py by `python -m taller generate`: the workshop's
# skeleton of step 3. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=3`.
# fingerprint: b4e57d12cf60f0c1
"""Run the example job on a Mesos cluster, and survive the failures along the way.

python -m taller.paso3 --master 127.0.0.1:5050 --state build/step3-state
python -m taller.paso3 --master zk://127.0.0.1:2181/mesos --state zk://127.0.0.1:2181/bikeshare
python -m taller.paso3 --master 192.168.1.10:5050 --principal ana --secret ...  # a room

Run the same command again after a crash, and it carries on where the job was. With a
ZooKeeper --state, start it several times, anywhere: one instance leads, the others wait.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from pymesos import MesosSchedulerDriver, Scheduler
from pymesos.detector import MasterDetector
from tqdm import tqdm

from jobs import bikeshare
from step1_scheduler import sandbox
from step1_scheduler.sandbox import Credential
from taller.paso3 import archive
from taller.paso3.checkpoint import Checkpoint, Leadership, StoreError, open_store
from taller.paso3.scheduler import EXECUTOR_ID, JobScheduler, Settings, executor_info

# Where the schedulers serve the executor's code (see archive.py), one port for the whole job.
CODE_PORT = 5070
# Binding the code's port again, when it is taken but nothing answers on it.
TAKEN_ATTEMPTS = 3
URI = re.compile(r"^(https?://[^/\s]+/\S*|file:///\S+)$")
MASTER = re.compile(r"^(zk://[^/\s]+/\S+|[\w.-]+:\d{1,5})$")
log = logging.getLogger("taller.paso3")


class JobError(Exception):
    """The job could not run to the end here; the message says why."""


def framework_info(
    failover_timeout: float, framework_id: str | None, credential: Credential | None = None
) -> dict:
    info = {
        "user": getpass.getuser(),
        "name": "step3: bike-share trips",
        # How long the master keeps our tasks and executors after this scheduler disconnects,
        # waiting for a scheduler to subscribe again with the same framework ID. After that,
        # it kills them and forgets the framework for good.
        "failover_timeout": failover_timeout,
        # Tell us TASK_UNREACHABLE (not TASK_LOST) for tasks on an agent that stopped
        # answering: it may come back, and its tasks with it.
        "capabilities": [{"type": "PARTITION_AWARE"}],
        # The agents write down our executors and tasks (and the updates not yet
        # acknowledged), so that they survive a restart of the agent's process: the executors
        # keep counting, and the restarted agent takes them back. Without it, an agent process
        # that dies takes every task of ours there with it (TASK_LOST at once).
        "checkpoint": True,
    }
    if framework_id is not None:
        # The framework ID from the checkpoint: we are the same framework, subscribing again.
        info["id"] = {"value": framework_id}
    if credential is not None:
        # A cluster that authenticates frameworks (a workshop room) checks that this is the
        # principal we authenticated as.
        info["principal"] = credential.principal
    return info


def job(settings: Settings) -> dict:
    """What every scheduler of one job must agree on (see Checkpoint.check_job)."""
    return {"size": settings.size, "executor": executor_info(settings)}


def me() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def run(
    master: str,
    settings: Settings,
    store: Checkpoint,
    *,
    progress: bool = True,
    connect_timeout: float = 10.0,
    say: Callable[[str], None] = lambda text: None,
) -> JobScheduler:
    """Wait until this instance leads the job, then drive the framework until every chunk has
    its result, and tear it down. `say` hears what a person should know (standby, take over)."""
    store.check_job(job(settings))

    def standby(leader: str) -> None:
        say(f"standby: {leader} leads the job in {store.description}; waiting to take over")

    with store.leadership(me(), on_wait=standby) as leadership:
        bar = tqdm(
            total=bikeshare.SIZES[settings.size].weeks * bikeshare.WEEKDAYS,
            unit="day",
            desc="days",
            disable=not progress,
            delay=0.1,
        )
        try:
            while True:
                scheduler = JobScheduler(settings, store, lambda done, _: bar.update(done - bar.n))
                scheduler.recover()
                framework_id = store.framework_id()
                if framework_id is None and scheduler.done:
                    return scheduler  # the job was done before we came: nothing to run
                if framework_id is not None or scheduler.recovered:
                    what = (
                        f"taking over framework {framework_id}"
                        if framework_id
                        else "resuming the job"
                    )
                    say(f"{what}: {scheduler.recovered} of {scheduler.total} chunks are done")
                drive(master, scheduler, framework_id, leadership, connect_timeout)
                if not scheduler.removed:
                    break
                # The master has forgotten that framework for good (its failover timeout
                # expired, or an operator tore it down), and its tasks with it. The results are
                # in the checkpoint: a new framework does what is left.
                say(f"framework {framework_id} was removed; registering a new one")
                store.forget_framework_id(framework_id or "")
        finally:
            bar.close()
    if scheduler.failure:
        raise JobError(scheduler.failure + likely_cause(scheduler))
    return scheduler


def likely_cause(scheduler: JobScheduler) -> str:
    """What to add to the error of a job that gave up on a chunk: the likely cause, and the
    last lines that the executor wrote to its stderr, read from its sandbox on the agent as
    step 1 reads a task's output."""
    gave_up = scheduler.gave_up
    if gave_up is None or gave_up.reason not in EXECUTOR_ENDED | {"REASON_RECONCILIATION"}:
        return ""  # the chunk's own error, in the executor's words, is in the message already
    if gave_up.reason == "REASON_RECONCILIATION":
        # The master's answer restates the task's last state, not why: the update that said
        # why went to the scheduler before us. The executor's stderr may still tell.
        cause = "\nthe master's reconciliation answer does not say why the task ended"
    elif gave_up.started:
        cause = "\nthe executor died while it ran the chunk"
    else:
        cause = (
            "\nthe executor ended before it ran the chunk: it may not start on the agents "
            "(check --executor-python, and that the agents can fetch --executor-uri)"
        )
    if gave_up.agent_url is None or scheduler.framework_id is None:
        return cause
    try:
        text = executor_stderr(
            gave_up.agent_url, scheduler.framework_id, scheduler.settings.credential
        )
    except sandbox.SandboxError as error:
        return f"{cause}; its stderr could not be read: {error}"
    lines = sandbox.tail(text, STDERR_LINES)
    if not lines:
        return f"{cause}; its stderr on agent {gave_up.agent_id} is empty"
    return f"{cause}; the end of its stderr on agent {gave_up.agent_id}:\n{lines}"


# The reasons with which an agent ends the tasks of an executor that is gone, or never came.
EXECUTOR_ENDED = {
    "REASON_EXECUTOR_TERMINATED",
    "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
    "REASON_CONTAINER_LAUNCH_FAILED",
}
STDERR_LINES = 10


def executor_stderr(agent: str, framework_id: str, credential: Credential | None) -> str:
    """The stderr of our executor that ended last on the agent. Every executor that the agent
    started for us has the same ID; the agent's `/state` lists the ended ones oldest first
    (Mesos keeps them in a circular buffer), after those that still run."""
    state = sandbox.get_json(f"{agent}/state", credential)
    assert isinstance(state, dict)
    for framework in state.get("frameworks", []) + state.get("completed_frameworks", []):
        if framework["id"] != framework_id:
            continue
        executors = framework.get("executors", []) + framework.get("completed_executors", [])
        ours = [executor for executor in executors if executor["id"] == EXECUTOR_ID]
        if ours:
            return sandbox.read_file(
                agent, f"{ours[-1]['directory']}/stderr", credential=credential
            )
    raise sandbox.SandboxError(f"agent {agent} has no executor of framework {framework_id}")


# After this many heartbeat intervals without a HEARTBEAT, the connection to the master is taken
# for dead and dropped, and pymesos subscribes again (scheduler-http-api.md: "If a scheduler
# doesn't receive a bunch (e.g., 5) of these heartbeats within a time window, it should
# immediately disconnect and try to resubscribe").
MISSED_HEARTBEATS = 5
HEARTBEAT_INTERVAL = 15.0  # seconds, Mesos's default, until SUBSCRIBED says otherwise


class Driver(MesosSchedulerDriver):
    """pymesos's scheduler driver, with two changes.

    pymesos adds the GPU_RESOURCES capability to every framework when the master is 1.0 or
    later (`MesosSchedulerDriver.framework`). The master offers GPU machines only to
    frameworks with it, so that frameworks that do not use GPUs leave those machines to the
    jobs that need them (gpu-support.md): we use none, so we take it off again.

    And it notes when the master last spoke (SUBSCRIBED, HEARTBEAT), and how often it said it
    would send a HEARTBEAT, for `HeartbeatWatch`: pymesos reads neither."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat_interval = HEARTBEAT_INTERVAL
        self.last_heard = time.monotonic()

    @property
    def framework(self) -> dict:
        framework = super().framework
        capabilities = [
            c for c in framework.get("capabilities", []) if c["type"] != "GPU_RESOURCES"
        ]
        if capabilities:
            framework["capabilities"] = capabilities
        else:
            framework.pop("capabilities", None)
        return framework

    def on_subscribed(self, info) -> None:
        self.heartbeat_interval = float(info.get("heartbeat_interval_seconds", HEARTBEAT_INTERVAL))
        self.last_heard = time.monotonic()
        super().on_subscribed(info)

    def on_heartbeat(self) -> None:
        self.last_heard = time.monotonic()
        super().on_heartbeat()


class HeartbeatWatch:
    """A subscription can stay open while nothing comes through it (a network partition that
    leaves the TCP connection up). When the master has missed MISSED_HEARTBEATS heartbeats,
    drop the connection: pymesos is pointed at no master for a moment, which closes it, and
    then at the same master again, which makes it subscribe anew."""

    def __init__(self) -> None:
        self.master: str | None = None  # where to go back to, once the connection is closed

    def check(self, driver: Driver) -> None:
        if self.master is not None:
            if driver.master is None:  # pymesos's thread has closed the connection
                driver.change_master(self.master)
                self.master = None
            return
        silence = time.monotonic() - driver.last_heard
        if driver.connected and silence > MISSED_HEARTBEATS * driver.heartbeat_interval:
            log.warning(
                "no HEARTBEAT from the master at %s for %.0f s: subscribing again",
                driver.master,
                silence,
            )
            self.master = driver.master
            driver.last_heard = time.monotonic()
            driver.change_master(None)


def new_driver(
    scheduler: Scheduler,
    master: str,
    failover_timeout: float,
    framework_id: str | None,
    credential: Credential | None,
) -> MesosSchedulerDriver:
    return Driver(
        scheduler,
        framework_info(failover_timeout, framework_id, credential),
        master,
        use_addict=True,
        # Sent with every call (HTTP Basic); None for a cluster that does not ask.
        principal=credential.principal if credential else None,
        secret=credential.secret if credential else None,
        # failover=True: if pymesos's thread dies (an exception in a callback), pymesos stops
        # without TEARDOWN, which would kill every task of the framework; we stay failed over.
        failover=True,
        # We acknowledge each status update ourselves, once it is in the checkpoint.
        implicit_acknowledgements=False,
    )


def drive(
    master: str,
    scheduler: JobScheduler,
    framework_id: str | None,
    leadership: Leadership,
    connect_timeout: float,
) -> None:
    """One framework, from its subscription until the job is done or this scheduler stops."""
    settings = scheduler.settings
    driver = new_driver(
        scheduler, master, settings.failover_timeout, framework_id, settings.credential
    )
    started = time.monotonic()
    try:
        driver.start()
    except Exception as error:  # for a zk:// master, kazoo gives up on ZooKeeper here
        raise JobError(f"could not find the Mesos master through {master}: {error!r}") from error
    watch = LeaderWatch(master)
    heartbeats = HeartbeatWatch()
    complete = False
    try:
        # The master answers a SUBSCRIBE with SUBSCRIBED, or with an ERROR (finished is set).
        while not (scheduler.registered_event.is_set() or scheduler.finished.wait(0.05)):
            watch.check(driver)
            if time.monotonic() - started < connect_timeout:
                continue
            raise JobError(
                f"could not register with a Mesos master at {master} within "
                f"{connect_timeout:g} s; is the master running, and is --master right?"
            )
        while not scheduler.finished.wait(0.2):
            watch.check(driver)
            heartbeats.check(driver)
            if leadership.lost.is_set():
                raise JobError(
                    "this scheduler lost its ZooKeeper session, and with it the leadership: "
                    "another one may lead the job now"
                )
        complete = scheduler.done
    finally:
        watch.stop()
        if complete:
            # The job is done: TEARDOWN. The master kills what is left of ours (redundant
            # attempts), shuts our executors down and forgets the framework.
            driver.stop()
        else:
            # Anything else (a crash of ours, Ctrl-C, a lost leadership, a failed chunk) leaves
            # the framework running, for the next scheduler to take over within the failover
            # timeout.
            driver.stop(failover=True)
        driver.join()
    if complete and scheduler.framework_id:
        # pymesos forgets the framework ID once a master has accepted the TEARDOWN. It sends
        # none while it is between two masters, and a master may die under it: then the
        # framework and its executors live on until their failover timeout.
        if driver.framework_id is not None and not tear_down(master, scheduler, connect_timeout):
            log.warning(
                "framework %s: no master accepted its TEARDOWN; it keeps its executors until "
                "its failover timeout, or until a scheduler with this --state ends it",
                scheduler.framework_id,
            )
            return  # its ID stays in the checkpoint, for that scheduler
        scheduler.store.forget_framework_id(scheduler.framework_id)


# Seconds without a master after which pymesos is told the leading master again.
REDETECT_AFTER = 3.0


class LeaderWatch:
    """Mesos's own scheduler library asks its detector for the leading master after every lost
    connection. pymesos's detector speaks only when the leader changes, and in between pymesos
    follows the redirects of masters: during a failover, a master that has just been elected
    redirects to the dead leader until it has seen its own election, and pymesos would then
    knock on that dead address for ever. So while the driver stays disconnected, a detector of
    ours tells it the leader again, every REDETECT_AFTER seconds (with a zk:// master only)."""

    def __init__(self, master: str) -> None:
        self.hosts = master.removeprefix("zk://") if master.startswith("zk://") else None
        self.since: float | None = None
        self.detector: MasterDetector | None = None

    def check(self, driver: MesosSchedulerDriver) -> None:
        if self.hosts is None or driver.connected:
            self.since = None
            return
        now = time.monotonic()
        if self.since is None:
            self.since = now
        elif now - self.since >= REDETECT_AFTER:
            self.since = now
            self.stop()
            # It reports the current leader as soon as it has read ZooKeeper, as a new driver's
            # detector does; telling pymesos the address it already has changes nothing.
            detector = MasterDetector(self.hosts, driver)
            try:
                detector.start()
            except Exception as error:  # ZooKeeper out of reach: pymesos's detector waits too
                log.info("could not ask ZooKeeper for the leading master: %r", error)
                detector.stop()
                return
            self.detector = detector

    def stop(self) -> None:
        if self.detector is not None:
            self.detector.stop()
            self.detector = None


# How many times a finished job subscribes again to end a framework whose TEARDOWN was lost.
TEARDOWN_ATTEMPTS = 3


class Ending(Scheduler):
    """The scheduler of a driver that subscribes only to send TEARDOWN."""

    def __init__(self) -> None:
        self.subscribed = threading.Event()
        self.gone = threading.Event()

    def registered(self, driver, framework_id, master_info) -> None:
        self.subscribed.set()

    def reregistered(self, driver, master_info) -> None:
        self.subscribed.set()

    def error(self, driver, message) -> None:
        # "Framework has been removed" (its failover timeout expired): nothing is left to end.
        # "Framework failed over": another scheduler leads it now, and it is not ours to end.
        self.gone.set()


def tear_down(master: str, scheduler: JobScheduler, connect_timeout: float) -> bool:
    """The job is done, and its TEARDOWN did not reach a master: subscribe again with the
    framework ID, and send it again. True once a master has accepted it, or no longer has the
    framework for us to end."""
    for _ in range(TEARDOWN_ATTEMPTS):
        ending = Ending()
        settings = scheduler.settings
        driver = new_driver(
            ending,
            master,
            settings.failover_timeout,
            scheduler.framework_id,
            settings.credential,
        )
        try:
            driver.start()
        except Exception:  # for a zk:// master, kazoo gives up on ZooKeeper here
            driver.stop(failover=True)
            driver.join()
            continue
        started = time.monotonic()
        watch = LeaderWatch(master)
        while not (ending.subscribed.is_set() or ending.gone.is_set()):
            if time.monotonic() - started > connect_timeout:
                break
            watch.check(driver)
            ending.subscribed.wait(0.05)
        watch.stop()
        driver.stop(failover=ending.gone.is_set())
        driver.join()
        if ending.gone.is_set() or driver.framework_id is None:
            return True
    return False


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        prog="python -m taller.paso3",
        description="Count a year of bike-share trips on a Mesos cluster, one task per week, "
        "in a framework that survives the loss of its agents, its executors and itself.",
    )
    parser.add_argument(
        "--master",
        required=True,
        metavar="HOST:PORT|zk://HOSTS/PATH",
        help="the Mesos master, or the ZooKeeper path where masters register",
    )
    parser.add_argument(
        "--state",
        required=True,
        metavar="DIR|zk://HOSTS/PATH",
        help="where the job's checkpoint lives: the framework ID, every task launched and "
        "every chunk's result. A directory serves the schedulers of this machine, which take "
        "turns through a file lock; a ZooKeeper path serves schedulers anywhere, which elect "
        "their leader there. Run again with the same --state to resume the job; once the job "
        "is done, its results stay there, and a run with that --state prints them again",
    )
    parser.add_argument(
        "--size",
        choices=list(bikeshare.SIZES),
        default="demo",
        help="the dataset: 'small' for tests, 'demo' for a whole year, 'tiny' for a year of "
        "very small chunks (default: %(default)s)",
    )
    parser.add_argument(
        "--failover-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long the master keeps our tasks and executors running after this scheduler "
        "stops or dies, waiting for one to take over (default: %(default)s)",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="with a ZooKeeper --state: how long ZooKeeper waits for a leader that has gone "
        "silent before a standby takes over (default: %(default)s)",
    )
    parser.add_argument(
        "--task-cpus",
        type=float,
        default=0.1,
        metavar="CPUS",
        help="cpus for each task, a thread in the executor (default: %(default)s)",
    )
    parser.add_argument(
        "--task-mem",
        type=float,
        default=32.0,
        metavar="MB",
        help="memory for each task, in MB (default: %(default)s)",
    )
    parser.add_argument(
        "--executor-cpus",
        type=float,
        default=0.1,
        metavar="CPUS",
        help="cpus for the executor itself, once per agent (default: %(default)s)",
    )
    parser.add_argument(
        "--executor-mem",
        type=float,
        default=64.0,
        metavar="MB",
        help="memory for the executor itself, in MB, once per agent (default: %(default)s)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="failed attempts per chunk before the job fails: TASK_FAILED, whether the "
        "chunk's code raised or its executor ended, and TASK_ERROR (default: %(default)s)",
    )
    parser.add_argument(
        "--max-losses",
        type=int,
        default=10,
        metavar="N",
        help="lost attempts per chunk before the job fails: TASK_LOST, TASK_UNREACHABLE, "
        "TASK_KILLED and the other ends without a result (default: %(default)s)",
    )
    parser.add_argument(
        "--executor-python",
        default=sys.executable,
        metavar="PATH",
        help="the Python that runs the executor on the agents (default: this one, "
        "%(default)s; on the compose cluster: python3)",
    )
    parser.add_argument(
        "--executor-uri",
        metavar="URI",
        help="where the agents fetch the executor's code, an archive that "
        "'python -m taller.paso3.archive DIR' builds: http(s)://... or, if every agent can "
        "read it, file:///PATH; every scheduler of the job must give the same one "
        "(default: the schedulers serve it over HTTP, see --code-host and --code-port)",
    )
    parser.add_argument(
        "--code-host",
        metavar="HOST",
        help="the name or address at which the agents reach the schedulers, for the URL of "
        "the code they serve (default: this machine's address on the way to the master; on "
        "the laptop with the compose cluster: host.docker.internal)",
    )
    parser.add_argument(
        "--code-port",
        type=int,
        default=CODE_PORT,
        metavar="PORT",
        help="the port where the schedulers serve the code: fixed, so that a scheduler that "
        "takes over names the same URL; 0 takes any free port, for a job with a single "
        "scheduler (default: %(default)s)",
    )
    parser.add_argument(
        "--principal",
        default=os.environ.get("MESOS_PRINCIPAL") or None,
        metavar="NAME",
        help="who we are to a cluster that authenticates frameworks, as a workshop room's "
        "does (default: $MESOS_PRINCIPAL)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("MESOS_SECRET") or None,
        help="the principal's secret (default: $MESOS_SECRET, which keeps it out of the "
        "shell's history)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up if no master accepts us within this time (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-chunk",
        type=int,
        metavar="WEEK",
        help="make this chunk (0-based) fail every time, to watch the bounded retries",
    )
    parser.add_argument(
        "--crash-after",
        type=int,
        metavar="N",
        help="fault injection: once this scheduler has recorded N results, it kills itself "
        "with SIGKILL, right before acknowledging the Nth TASK_FINISHED; run it again, or let "
        "a standby take over",
    )
    parser.add_argument(
        "--no-progress-messages",
        action="store_true",
        help="the executors send no progress messages: the bar moves only when a task finishes",
    )
    parser.add_argument(
        "--chart", metavar="PNG", help="where to draw the chart (default: build/step3-SIZE.png)"
    )
    parser.add_argument(
        "--chart-lang",
        choices=["es", "en"],
        default="es",
        help="the chart's language (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log every offer, update and reconciliation, and pymesos's own messages",
    )
    args = parser.parse_args(argv)

    if not MASTER.match(args.master):
        parser.error(
            f"--master {args.master!r}: expected HOST:PORT (like 127.0.0.1:5050) "
            "or zk://HOST:PORT/PATH"
        )
    if args.state.startswith("zk://") and not MASTER.match(args.state):
        parser.error(f"--state {args.state!r}: expected zk://HOST:PORT/PATH or a directory")
    positive = ("task_cpus", "task_mem", "executor_cpus", "executor_mem", "connect_timeout")
    for name in (*positive, "failover_timeout", "session_timeout"):
        if not getattr(args, name) > 0:  # also refuses NaN
            parser.error(
                f"--{name.replace('_', '-')} must be a positive number, not {getattr(args, name)}"
            )
    for name in ("max_attempts", "max_losses"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more, not {getattr(args, name)}")
    weeks = bikeshare.SIZES[args.size].weeks
    if args.fail_chunk is not None and not 0 <= args.fail_chunk < weeks:
        parser.error(
            f"--fail-chunk {args.fail_chunk}: the '{args.size}' job has chunks 0 to {weeks - 1}"
        )
    if args.crash_after is not None and not 1 <= args.crash_after <= weeks:
        parser.error(f"--crash-after {args.crash_after}: expected 1 to {weeks}")
    if args.executor_uri is not None and not URI.match(args.executor_uri):
        parser.error(
            f"--executor-uri {args.executor_uri!r}: expected http://, https:// or file:///PATH"
        )
    if args.executor_uri is not None and args.code_host is not None:
        parser.error(
            "--code-host names the host of the code that the schedulers serve; "
            "with --executor-uri they serve none"
        )
    if (args.principal is None) != (args.secret is None):
        parser.error("--principal and --secret go together ($MESOS_PRINCIPAL, $MESOS_SECRET)")
    if not 0 <= args.code_port <= 65535:
        parser.error(f"--code-port {args.code_port}: expected a port, 0 to 65535")
    settings = Settings(
        size=args.size,
        task_cpus=args.task_cpus,
        task_mem=args.task_mem,
        executor_cpus=args.executor_cpus,
        executor_mem=args.executor_mem,
        max_attempts=args.max_attempts,
        max_losses=args.max_losses,
        executor_python=args.executor_python,
        executor_uri=args.executor_uri or "",
        fail_chunk=args.fail_chunk,
        progress=not args.no_progress_messages,
        failover_timeout=args.failover_timeout,
        crash_after=args.crash_after,
        credential=None if args.principal is None else Credential(args.principal, args.secret),
    )
    return args, settings


@contextlib.contextmanager
def served(
    args: argparse.Namespace, settings: Settings, say: Callable[[str], None]
) -> Iterator[None]:
    """Unless --executor-uri names the code's archive, build it and serve it over HTTP while
    this scheduler runs, standby or leader, and put its URL in the settings."""
    if settings.executor_uri:
        yield
        return
    try:
        host = args.code_host or archive.local_address(args.master)
    except OSError as error:
        raise JobError(
            f"cannot tell our address on the way to {args.master} ({error}); "
            "name it with --code-host"
        ) from error
    with tempfile.TemporaryDirectory(prefix="step3-code-") as directory:
        code = archive.build(Path(directory))
        for attempt in range(1, TAKEN_ATTEMPTS + 1):
            try:
                settings.executor_uri, server = archive.serve(code, host, args.code_port)
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise JobError(
                        f"cannot serve the code on port {args.code_port}: {error}"
                    ) from error
                # Another scheduler of this job on this machine may serve it already: the
                # same code makes the same archive, and then its URL is ours too.
                elsewhere_url = f"http://{host}:{args.code_port}/{code.name}"
                settings.executor_uri = elsewhere_url
                elsewhere = served_elsewhere(elsewhere_url)
                if elsewhere == code.read_bytes():
                    say(f"another scheduler on this machine serves the code at {elsewhere_url}")
                    with taking_over(code, host, args.code_port):
                        yield
                    return
                if elsewhere is not None or attempt == TAKEN_ATTEMPTS:
                    raise JobError(
                        f"port {args.code_port} is taken, and not by a scheduler that serves "
                        "this code: choose another --code-port, the same for every scheduler "
                        "of the job"
                    ) from error
                # Nothing answers on it: a scheduler that served it may be closing.
                time.sleep(0.5)
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()


@contextlib.contextmanager
def taking_over(code: Path, host: str, port: int) -> Iterator[None]:
    """Once the scheduler that serves the code ends, its port is free: serve the code from
    here, so that an executor that starts after it can still fetch it."""
    stop = threading.Event()
    servers = []

    def try_to_serve() -> None:
        while not stop.wait(1.0):
            try:
                servers.append(archive.serve(code, host, port)[1])
                return
            except OSError:
                continue  # still taken

    thread = threading.Thread(target=try_to_serve, name="take-over-code", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for server in servers:
            server.shutdown()
            server.server_close()


def served_elsewhere(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read()
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # pymesos brings a handler of its own, and its records reach ours too: each line twice.
    logging.getLogger("pymesos").handlers.clear()
    if not args.verbose:
        # As in step 2: pymesos and kazoo log each failed connection; we say it in one line.
        logging.getLogger("pymesos").setLevel(logging.CRITICAL)
        logging.getLogger("kazoo").addHandler(logging.NullHandler())
        logging.getLogger("kazoo").propagate = False
    from tqdm.contrib.logging import logging_redirect_tqdm

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.monotonic()
    resume = (
        f"the framework keeps running for up to {args.failover_timeout:g} s: run the same "
        "command to resume the job"
    )
    try:
        with (
            open_store(args.state, args.session_timeout) as store,
            logging_redirect_tqdm(),
            served(args, settings, say),
        ):
            scheduler = run(
                args.master,
                settings,
                store,
                progress=not args.quiet,
                connect_timeout=args.connect_timeout,
                say=say,
            )
    except (JobError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, JobError) and "removed" not in str(error):
            print(f"note: {resume}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {resume}", file=sys.stderr)
        return 130
    except Exception as error:
        # pymesos hands an error in its event thread to the main thread. The driver was built
        # with failover=True, so the framework is still there.
        logging.getLogger("taller.paso3").debug("traceback", exc_info=True)
        refused = "HTTP 401" in str(error)  # pymesos's words when the master refuses SUBSCRIBE
        hint = "; the master wants a valid --principal and --secret (a workshop room's)"
        print(
            f"error: pymesos's thread stopped after an error: {error!r}{hint if refused else ''}",
            file=sys.stderr,
        )
        if not refused:  # refused, this run subscribed nothing that could keep running
            print(f"note: {resume}", file=sys.stderr)
        return 1
    result = scheduler.result()
    chart = bikeshare.chart(
        result, args.chart or f"build/step3-{args.size}.png", lang=args.chart_lang
    )
    print(
        f"{scheduler.total} chunks in {time.monotonic() - started:.1f} s: "
        f"{scheduler.recovered} from the checkpoint, {len(scheduler.recorded)} recorded by "
        "this scheduler"
    )
    print(bikeshare.summary(result))
    print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
