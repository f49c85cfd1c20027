"""Chaos runs for step 3 (`step3_failover`): one job, run by `python -m step3_failover`
processes as a reader runs them, on a fresh localmesos cluster in HA mode (a private
ZooKeeper, 2 or 3 masters, 2 or 3 agents), while a schedule drawn from a seed kills, at random
moments of the job, agents (with their machine, or only their process, or restarting them),
executors, the active scheduler and the leading master.

    python -m tests.integration.chaos --runs 100   # 100 seeds from a random first one
    python -m tests.integration.chaos --seed 17    # seed 17 again, as a failure's report says
    python -m tests.integration.chaos --broken-executor one-chunk --runs 10

With --broken-executor, the job's executor is broken, as well as the cluster: it always exits 1
before it registers ("always"), or its process dies whenever it counts one chunk ("one-chunk").
Such a run must end otherwise: every scheduler exits 1 with step 3's error naming the chunk
that used up its attempts and quoting the executor's stderr, the checkpoint holds a bounded
number of tasks per chunk, the master removes the framework once its (short) failover timeout
has passed (step 3 leaves a failed job's framework to a scheduler that may take it over), its
executors exit, and no process is left. Its faults fire once the checkpoint holds a drawn
number of tasks, not of results.

Each run must end with the result of `bikeshare.run_sequential`, every chunk recorded once (in
the checkpoint, and in the schedulers' logs), the framework torn down so that its executors
exit, and no process of the run alive once the cluster has stopped. A run has a deadline: past
it, everything it started is killed and the run is reported as failed, with its schedule of
faults, its event log and the tail of its schedulers' logs.

The moments are moments of the job, not of the clock: a fault fires once a drawn fraction of
the chunks is in the checkpoint (plus a drawn delay), so it lands mid-job however fast or slow
the machine is. The seed also draws the cluster (masters, agents, their size, how soon agents
resend an unacknowledged update) and the checkpoint (ZooKeeper or a directory).
tests/integration/test_step3_chaos.py runs 12 seeds; `make chaos` runs more.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs import bikeshare
from localmesos import zookeeper
from localmesos.agent import STATUS_UPDATE_RETRY
from localmesos.cluster import LocalCluster, NoLeader
from step3_failover.checkpoint import Checkpoint, DirectoryStore, ZooKeeperStore
from step3_failover.scheduler import TASK_ID, Settings
from tests.integration.localmesos_procs import (
    Proc,
    alive,
    cmdline,
    descendants,
    describe,
    in_sessions,
    kill_all,
    stat,
    survivors,
)
from tests.integration.step3_support import Scheduler, crashing_python, failing_python

# The kinds of fault. "agent" kills an agent's machine (`kill_host`: the master finds out from
# its health checks) and adds a new agent; "agent-crash" kills only the agent's process
# (`kill_agent`: the master hears at once; step 3 checkpoints, so its executors and tasks there
# live on until the health checks give the agent up, and then are unreachable) and adds a new
# agent; "agent-restart" kills the agent's process and starts it again (`restart_agent`),
# which comes back as the same agent, with step 3's executors and their tasks, which must
# survive.
# "scheduler-standby" kills the active scheduler while another instance waits to take over;
# "scheduler-restart" kills it and starts the same command again.
KINDS = (
    "agent",
    "executor",
    "scheduler-standby",
    "scheduler-restart",
    "master",
    "agent-crash",
    "agent-restart",
)

# The job: 52 chunks of a few milliseconds each ("tiny"), so that a run takes a few seconds,
# spent on the tasks' round trips. An executor is then idle most of the time, and killing it
# would rarely lose a task: a run that kills executors counts the "demo" dataset instead, whose
# chunks keep each executor busy for a tenth of a second or so.
SIZE = "tiny"
BUSY_SIZE = "demo"
# Room for our executor (0.1 cpus) and one or two tasks (0.1 each) per agent: a few chunks
# at a time, so that the job takes a few seconds and a fault always finds some in flight.
AGENT_CPUS = (0.2, 0.3)
AGENT_RESOURCES = "cpus:{cpus};mem:1024;disk:1024"
ALLOCATION_INTERVAL = 0.1  # seconds between offers
AGENT_TIMEOUT = 1.0  # seconds before the master gives up on a silent agent
# How soon an agent sends an unacknowledged status update again: Mesos's 10 s, or so soon that
# updates often arrive twice, the at-least-once delivery that step 3 must count once.
STATUS_UPDATE_RETRIES = (STATUS_UPDATE_RETRY, 0.02)
SESSION_TIMEOUT = "1"  # step 3's --session-timeout: how soon a standby replaces a dead leader
# Faults fire between these fractions of the job's chunks, so that they land mid-job; the
# first one early enough that the job cannot end before it (a tiny job may do its last quarter
# in a few tenths of a second), since a run without a fault tests nothing.
EARLIEST, FIRST_LATEST, LATEST = 0.05, 0.4, 0.75
MAX_DELAY = 0.4  # seconds after its fraction is reached, drawn per fault (half for the first)
RESTART_DELAY = 1.0  # at most this many seconds between a kill and the restart
DEADLINE = 80.0  # seconds for a whole run, checks included
WAIT = 20.0  # seconds for one step of a fault (a standby to be ready, an agent to register)
EXECUTORS_GONE = 15.0  # seconds for the executors to exit once the job has torn down
GONE_WITHIN = 5.0  # seconds for every process to be gone once the cluster has stopped
# What the orphan check must have seen during a run, by command line: the ZooKeeper server and
# our executors.
LOOKED_FOR = ("org.apache.zookeeper.server.ZooKeeperServerMain", "step3_failover.executor")
POLL = 0.02

# The broken executors of --broken-executor, and what each writes to its stderr, which step 3's
# error must quote.
BROKEN = ("always", "one-chunk")
BROKEN_STDERR = {
    "always": "failing-python: cannot run -m step3_failover.executor",
    "one-chunk": "crashing on week {week}, on purpose",
}
CRASH_WEEKS = 8  # the chunk that crashes is one of the first: the job does not last long
# A failed job's framework stays, for a scheduler to take it over, until its failover timeout:
# short in a broken run, so that the master removes it (and its executors) within the run, yet
# longer than a restarted scheduler takes to come back.
BROKEN_FAILOVER_TIMEOUT = 5.0  # seconds


class Cancelled(Exception):
    """The run's deadline passed while it was waiting."""


class RunFailed(Exception):
    """A step of the run could not be done; the message says which."""


# -- the plan of a run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    kind: str
    progress: float  # fires once this fraction of the chunks has a result in the checkpoint
    delay: float  # ... and this many seconds later

    def __str__(self) -> str:
        return f"{self.kind}@{self.progress:.0%}+{self.delay:.2f}s"


@dataclass(frozen=True)
class Plan:
    seed: int
    size: str
    masters: int
    agents: int
    agent_cpus: float
    status_update_retry: float
    zookeeper_state: bool  # --state in ZooKeeper, or else a directory (a file lock)
    two_at_start: bool  # two schedulers started together: one leads, one waits
    faults: tuple[Fault, ...]
    broken: str | None = None  # a kind of BROKEN executor, or None for step 3's own
    crash_week: int = 0  # the chunk on which a "one-chunk" executor dies

    @property
    def broken_stderr(self) -> str:
        return BROKEN_STDERR[self.broken or ""].format(week=self.crash_week)

    @property
    def resources(self) -> str:
        return AGENT_RESOURCES.format(cpus=self.agent_cpus)

    def describe(self) -> str:
        state = "zk" if self.zookeeper_state else "directory"
        start = "2 schedulers" if self.two_at_start else "1 scheduler"
        faults = ", ".join(str(fault) for fault in self.faults)
        broken = ""
        if self.broken == "always":
            broken = "an executor that always exits 1, "
        elif self.broken == "one-chunk":
            broken = f"an executor that crashes on chunk {self.crash_week}, "
        return (
            f"{self.size}, {broken}{self.masters} masters, {self.agents} agents "
            f"({self.resources}), updates resent after {self.status_update_retry:g} s, --state "
            f"{state}, {start} at start; faults: {faults}"
        )


def plan(seed: int, size: str | None = None, broken: str | None = None) -> Plan:
    """The run of ``seed``: everything random about it except what the processes decide.
    The first fault's kind goes round KINDS with the seed, so that any five consecutive seeds
    have each kind; the first fault is also the earliest, the one surest to fire. A broken
    executor changes nothing else that the seed draws, but the default size."""
    if broken is not None and broken not in BROKEN:
        raise ValueError(f"unknown broken executor {broken!r}; expected one of {BROKEN}")
    rng = random.Random(seed)
    count = rng.randint(1, 3)
    first = rng.uniform(EARLIEST, FIRST_LATEST)
    moments = [first, *sorted(rng.uniform(first, LATEST) for _ in range(count - 1))]
    kinds = [KINDS[seed % len(KINDS)]] + [rng.choice(KINDS) for _ in range(count - 1)]
    return Plan(
        seed=seed,
        # A broken executor is seldom busy: its runs count the tiny dataset, whose sequential
        # reference (to check the results that it does record) takes no time to compute.
        size=size or (BUSY_SIZE if "executor" in kinds and broken is None else SIZE),
        masters=rng.choice((2, 3)),
        agents=rng.choice((2, 3)),
        agent_cpus=rng.choice(AGENT_CPUS),
        status_update_retry=rng.choice(STATUS_UPDATE_RETRIES),
        zookeeper_state=rng.random() < 0.7,
        two_at_start=rng.random() < 0.3,
        faults=tuple(
            Fault(kind, round(moment, 3), round(rng.uniform(0, delay), 3))
            for kind, moment, delay in zip(
                kinds, moments, [MAX_DELAY / 2] + [MAX_DELAY] * (count - 1), strict=True
            )
        ),
        broken=broken,
        crash_week=random.Random(f"{seed}:crash").randrange(CRASH_WEEKS),
    )


# -- the references -----------------------------------------------------------------------------


@functools.cache
def reference(size: str) -> dict:
    return bikeshare.run_sequential(bikeshare.SIZES[size])


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Fired:
    fault: Fault
    at: float | None = None  # seconds into the run; None if the job ended first
    what: str = ""


@dataclass
class Outcome:
    plan: Plan
    duration: float
    failures: list[str]
    fired: list[Fired]
    events: list[tuple[float, str]]
    schedulers: list[Scheduler]
    killed: list[Scheduler]
    directory: Path

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        """One line: seed, outcome, duration, and each fault with when it fired."""
        faults = ", ".join(
            f"{f.fault.kind}@{f.at:.1f}s" if f.at is not None else f"{f.fault.kind}@(not fired)"
            for f in self.fired
        )
        outcome = "ok" if self.ok else "FAILED"
        broken = f"broken executor: {self.plan.broken}; " if self.plan.broken else ""
        return (
            f"seed {self.plan.seed:<10} {outcome:<6} {self.duration:5.1f} s  "
            f"{self.plan.size:<5} {broken}{faults}"
        )

    def report(self, tail: int = 30) -> str:
        """Everything needed to understand a failure, and to reproduce it with --seed."""
        lines = [
            f"chaos run, seed {self.plan.seed}: {'ok' if self.ok else 'FAILED'} after "
            f"{self.duration:.1f} s",
            f"reproduce: {sys.executable} -m tests.integration.chaos --seed {self.plan.seed}"
            + (
                f" --size {self.plan.size}"
                if self.plan.size != plan(self.plan.seed, broken=self.plan.broken).size
                else ""
            )
            + (f" --broken-executor {self.plan.broken}" if self.plan.broken else ""),
            f"plan: {self.plan.describe()}",
            "failures:" if self.failures else "failures: none",
            *(f"  - {failure}" for failure in self.failures),
            "faults:",
            *(
                f"  {f.fault}: "
                + (f"fired at {f.at:.2f} s: {f.what}" if f.at is not None else "not fired")
                + ("" if f.at is not None or not f.what else f" ({f.what})")
                for f in self.fired
            ),
            "events:",
            *(f"  {at:6.2f} s  {text}" for at, text in self.events),
        ]
        for scheduler in self.schedulers:
            code = scheduler.process.poll()
            killed = " (killed by the run)" if scheduler in self.killed else ""
            lines.append(
                f"scheduler {scheduler.name}, pid {scheduler.pid}, exit {code}{killed}: "
                f"last {tail} lines of stderr, then stdout"
            )
            for stream in (scheduler.err, scheduler.out):
                with contextlib.suppress(OSError):
                    lines += [f"  | {line}" for line in stream.read_text().splitlines()[-tail:]]
        lines.append(f"files: {self.directory}")
        return "\n".join(lines)


class ChaosRun:
    """One seeded run. `execute()` never takes much longer than ``deadline`` seconds: the run's
    steps happen on a thread of their own, and when the deadline passes this thread kills the
    schedulers and stops the cluster under it."""

    def __init__(self, plan: Plan, directory: Path, deadline: float = DEADLINE) -> None:
        self.plan = plan
        self.directory = directory
        self.deadline = deadline
        self.rng = random.Random(f"{plan.seed}:run")  # which agent, which executor...
        self.shape = bikeshare.SIZES[plan.size]
        self.total = self.shape.weeks
        self.events: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self.fired = [Fired(fault) for fault in plan.faults]
        self.schedulers: list[Scheduler] = []
        self.killed: list[Scheduler] = []
        self.orphans: set[Proc] = set()  # executors of agents whose process was killed
        self.cluster: LocalCluster | None = None
        self.store: Checkpoint | None = None
        self.state = ""
        self.executor_python: str | None = None  # the broken executor's --executor-python
        self.cancelled = threading.Event()
        self.lock = threading.Lock()  # the scheduler list, against the deadline's clean-up
        self.started = time.monotonic()
        self.before: frozenset[Proc] = frozenset()
        # Every process below ours since the run started, with its command line.
        self.seen: dict[Proc, str] = {}
        self.addresses: set[str] = set()  # every master's and agent's ip:port
        self.sampling = threading.Event()

    # -- bookkeeping ----------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        self.events.append((round(self.now(), 2), text))

    def fail(self, text: str) -> None:
        self.note(f"FAILURE: {text}")
        self.failures.append(text)

    def sleep(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise Cancelled

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """``predicate()``'s first true value, polled; RunFailed after ``timeout``."""
        limit = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > limit:
                raise RunFailed(f"timed out after {timeout:g} s waiting for {what}")
            self.sleep(POLL)

    # -- the run --------------------------------------------------------------------------------

    def execute(self) -> Outcome:
        self.started = time.monotonic()
        self.before = frozenset(descendants(os.getpid()))
        sampler = threading.Thread(target=self._sample, name="chaos-sampler", daemon=True)
        self.sampling.set()
        sampler.start()
        steps = threading.Thread(target=self._steps, name=f"chaos-{self.plan.seed}", daemon=True)
        steps.start()
        steps.join(self.deadline)
        if steps.is_alive():
            self.fail(f"deadline: the run did not end within {self.deadline:g} s")
            self.cancelled.set()
        self._stop_everything()
        steps.join(10)
        if steps.is_alive():
            self.fail("the run's thread is still busy 10 s after the clean-up")
        self.sampling.clear()
        sampler.join(5)
        self._check_nothing_left()
        return Outcome(
            self.plan,
            round(self.now(), 2),
            self.failures,
            self.fired,
            self.events,
            self.schedulers,
            self.killed,
            self.directory,
        )

    def _steps(self) -> None:
        try:
            self._job()
        except Cancelled:
            self.note("cancelled by the deadline")
        except RunFailed as error:
            self.fail(str(error))
        except Exception as error:
            self.fail(f"the run crashed: {error!r}\n{traceback.format_exc()}")

    def _job(self) -> None:
        plan = self.plan
        self.note(f"plan: {plan.describe()}")
        self.cluster = LocalCluster(
            plan.agents,
            masters=plan.masters,
            resources=plan.resources,
            allocation_interval=ALLOCATION_INTERVAL,
            agent_timeout=AGENT_TIMEOUT,
            status_update_retry=plan.status_update_retry,
            work_dir=self.directory / "cluster",
        )
        self.cluster.start()
        self._remember_addresses()
        self.note(f"cluster up: masters {self.cluster.masters}, agents {self.cluster.agents}")
        zk = self.cluster.zk
        assert zk is not None
        if plan.zookeeper_state:
            self.state = re.sub(r"/mesos$", "/chaos/bikeshare", zk)
            self.store = ZooKeeperStore(self.state, session_timeout=10.0)
        else:
            self.state = str(self.directory / "state")
            self.store = DirectoryStore(self.state)
        if plan.broken == "always":
            self.executor_python = failing_python(self.directory)
        elif plan.broken == "one-chunk":
            self.executor_python = crashing_python(self.directory, plan.crash_week)
        self.start_scheduler()
        if plan.two_at_start:
            self.start_scheduler()
        for fired in self.fired:
            if not self.wait_for_progress(fired.fault.progress):
                fired.what = "the job ended first"
                continue
            self.sleep(fired.fault.delay)
            if self.job_over():
                fired.what = "the job ended first"
                continue
            fired.at = round(self.now(), 2)
            fired.what = self.fire(fired.fault)
            self.note(f"fault {fired.fault}: {fired.what}")
        self.wait_for_the_end()
        if not any(fired.at is not None for fired in self.fired):
            self.fail("no fault fired: the job ended before the first one, and tested nothing")
        if plan.broken:
            self.check_the_failed_job()
            self.check_the_framework_removed()
        else:
            self.check_the_job()
        self.check_executors_exit()

    # -- the cluster and the schedulers ---------------------------------------------------------

    def _remember_addresses(self) -> None:
        assert self.cluster is not None
        self.addresses.update(self.cluster.masters)
        for agent_id in self.cluster.agents:
            with contextlib.suppress(KeyError):
                self.addresses.add(self.cluster.agent_url(agent_id).removeprefix("http://"))

    def start_scheduler(self) -> Scheduler:
        assert self.cluster is not None
        name = "abcdefghijklmnopqrstuvwxyz"[len(self.schedulers) % 26]
        argv = ["--master", self.cluster.master, "--state", self.state, "--size", self.plan.size]
        argv += ["--quiet", "--verbose", "--session-timeout", SESSION_TIMEOUT]
        # A killed executor costs each of its chunks a failed attempt (TASK_FAILED from the
        # agent); no fault costs a chunk more than one attempt. A job that outlasts them all
        # needs one attempt more than there are faults.
        argv += ["--max-attempts", str(self.max_attempts)]
        if self.executor_python is not None:
            argv += ["--executor-python", self.executor_python]
            argv += ["--failover-timeout", str(BROKEN_FAILOVER_TIMEOUT)]
        with self.lock:
            if self.cancelled.is_set():
                raise Cancelled
            scheduler = Scheduler(name, argv, self.directory)
            self.schedulers.append(scheduler)
        self.note(f"scheduler {name} started (pid {scheduler.pid})")
        return scheduler

    @property
    def max_attempts(self) -> int:
        return len(self.plan.faults) + 1

    def running(self) -> list[Scheduler]:
        return [s for s in self.schedulers if s.process.poll() is None]

    def active_scheduler(self) -> Scheduler | None:
        """The live scheduler that drives the framework: it has subscribed."""
        for scheduler in self.running():
            if "registered with framework ID" in scheduler.log():
                return scheduler
        return None

    def standby(self) -> Scheduler | None:
        """A live scheduler that waits for the leadership."""
        for scheduler in self.running():
            log = scheduler.log()
            leads = ("registered with framework ID", "taking over", "resuming the job")
            if "standby:" in log and not any(text in log for text in leads):
                return scheduler
        return None

    def progress(self) -> int:
        assert self.store is not None
        return len(self.store.list("results"))

    def job_over(self) -> bool:
        return self.progress() >= self.total or not self.running()

    def launched(self) -> int:
        assert self.store is not None
        return len(self.store.list("tasks"))

    def wait_for_progress(self, fraction: float) -> bool:
        """Wait until ``fraction`` of the chunks are recorded; False if the job ends first.
        Only the deadline bounds this wait: a job that stops moving is what it catches.
        With a broken executor, results may never come: wait instead until the checkpoint
        holds tasks, one more for each ``1 / agents`` of ``fraction`` (a round of launches)."""
        if self.plan.broken:
            wanted = 1 + int(fraction * self.plan.agents)
            while self.running():
                if self.launched() >= wanted:
                    return True
                self.sleep(POLL)
            return False
        target = max(1, math.ceil(fraction * self.total))
        while True:
            done = self.progress()
            if done >= self.total or not self.running():
                return False
            if done >= target:
                return True
            self.sleep(POLL)

    # -- the faults -----------------------------------------------------------------------------

    def fire(self, fault: Fault) -> str:
        if fault.kind == "agent":
            return self.kill_agent(host=True)
        if fault.kind == "agent-crash":
            return self.kill_agent(host=False)
        if fault.kind == "agent-restart":
            return self.restart_agent()
        if fault.kind == "executor":
            return self.kill_executor()
        if fault.kind == "master":
            return self.kill_master()
        return self.kill_scheduler(with_standby=fault.kind == "scheduler-standby")

    def kill_agent(self, host: bool) -> str:
        assert self.cluster is not None
        victim = self.rng.choice(sorted(self.cluster.agents))
        if host:
            self.cluster.kill_host(victim)
            self.note(f"agent {victim} killed with its host")
        else:
            address = self.cluster.agent_url(victim).removeprefix("http://")
            self.cluster.kill_agent(victim)
            self.note(f"agent {victim}'s process killed")
            # Step 3 checkpoints: its executors there outlive the agent's process, waiting for
            # an agent that never comes back, as Mesos's would until their recovery timeout
            # (15 min). No TEARDOWN reaches them; stopping the cluster ends them.
            self.orphans |= {p for p in self.executors() if agent_endpoint(p.pid) == address}
        # Agents register with the leading master: during a master failover, later.
        added = self.cluster.add_agent(timeout=WAIT)
        self._remember_addresses()
        what = "killed agent" if host else "killed the process of agent"
        return f"{what} {victim}; agent {added} added"

    def restart_agent(self) -> str:
        assert self.cluster is not None
        victim = self.rng.choice(sorted(self.cluster.agents))
        before = self.executors()
        self.note(f"restarting agent {victim}")
        self.cluster.restart_agent(victim, timeout=WAIT)
        # Step 3 checkpoints: its executors, on this agent too, outlive the agent's process,
        # and the restarted agent takes them back. Only the job's end (a TEARDOWN) ends them.
        # A broken executor dies of its own accord meanwhile: only step 3's must survive.
        died = [p.pid for p in before if not alive(p)]
        if died and not self.job_over() and not self.plan.broken:
            self.fail(f"executors {died} did not survive the restart of agent {victim}")
        return f"restarted agent {victim}; it reregistered with {len(before)} executors kept"

    def executors(self) -> list[Proc]:
        found = []
        for p in descendants(os.getpid()) - self.before:
            if "step3_failover.executor" in cmdline(p.pid):
                found.append(p)
        return sorted(found, key=lambda p: p.pid)

    def kill_executor(self) -> str:
        # An agent starts our executor with the first task it gets; one may be starting.
        try:
            candidates = self.wait(self.executors, "an executor to kill", timeout=5)
        except RunFailed:
            return "no executor was running"
        victim = self.rng.choice(candidates)
        if not alive(victim):
            return f"executor pid {victim.pid} exited before the kill"
        # What a crash does to it, and what LocalCluster.kill_executor does on its agent: the
        # executor leads its own process group (the agent starts it in a new session).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)
        return f"SIGKILL to executor pid {victim.pid}"

    def kill_master(self) -> str:
        assert self.cluster is not None
        limit = time.monotonic() + WAIT
        while True:
            self.cluster.wait_for_leader(timeout=WAIT)
            try:
                killed = self.cluster.kill_master()
                break
            except NoLeader:  # the leader changed between the two calls
                if time.monotonic() > limit:
                    raise RunFailed(f"no master led for {WAIT:g} s") from None
        added = self.cluster.add_master()
        self._remember_addresses()
        return f"killed the leading master {killed}; master {added} added"

    def kill_scheduler(self, with_standby: bool) -> str:
        active = self.wait(
            lambda: self.active_scheduler() or self.job_over(), "an active scheduler"
        )
        if active is True:
            return "no active scheduler: the job ended first"
        what = ""
        if with_standby:
            waiting = self.standby()
            if waiting is None:
                waiting = self.start_scheduler()
                what = f"started scheduler {waiting.name}; "
                ready = self.wait(
                    lambda: self.standby() is waiting or waiting.process.poll() is not None,
                    f"scheduler {waiting.name} to wait as a standby",
                )
                if ready and self.standby() is not waiting:
                    return what + f"scheduler {waiting.name} ended before it was a standby"
            what += f"{waiting.name} waits as a standby; "
        if active.process.poll() is not None:
            return what + f"scheduler {active.name} ended before the kill"
        active.kill()
        self.killed.append(active)
        what += f"SIGKILL to scheduler {active.name} (pid {active.pid})"
        if not with_standby:
            self.note(what)
            self.sleep(self.rng.uniform(0, RESTART_DELAY))
            again = self.start_scheduler()
            what += f"; restarted as {again.name}"
        return what

    # -- the end, and the checks ----------------------------------------------------------------

    def wait_for_the_end(self) -> None:
        """Every scheduler that was not killed ends on its own: the leader once the job is done,
        and the standbys after it, finding the job done. Only the deadline bounds this."""
        while self.running():
            self.sleep(POLL)
        self.note(
            "every scheduler has exited: "
            + ", ".join(f"{s.name} {s.process.returncode}" for s in self.schedulers)
        )

    def check_the_job(self) -> None:
        assert self.store is not None
        expected = reference(self.plan.size)
        summary = bikeshare.summary(expected)
        finished = [s for s in self.schedulers if s not in self.killed]
        if not any(s.process.returncode == 0 for s in finished):
            self.fail("no scheduler finished the job")
        for scheduler in finished:
            code = scheduler.process.returncode
            if code != 0:
                self.fail(f"scheduler {scheduler.name} exited with {code}, not 0")
                continue
            lines = scheduler.stdout().splitlines()
            header = re.fullmatch(
                rf"{self.total} chunks in \d+\.\d s: (\d+) from the checkpoint, (\d+) recorded "
                r"by this scheduler",
                lines[0] if lines else "",
            )
            if header is None or len(lines) < 2:
                self.fail(f"scheduler {scheduler.name} printed {lines!r}")
                continue
            if lines[1] != summary:
                self.fail(
                    f"scheduler {scheduler.name} printed {lines[1]!r}; the sequential "
                    f"reference is {summary!r}"
                )
            if int(header[2]) != len(scheduler.recorded()):
                self.fail(
                    f"scheduler {scheduler.name} says it recorded {header[2]} results; its log "
                    f"says {len(scheduler.recorded())}"
                )

        # The checkpoint: one result per chunk, each the chunk's own, adding up exactly.
        results = self.store.results()
        chunks = bikeshare.chunks(self.shape)
        if sorted(results) != chunks:
            missing = sorted(set(chunks) - set(results))
            self.fail(f"the checkpoint has {len(results)} results; missing chunks {missing}")
        wrong = sorted(
            chunk
            for chunk, result in results.items()
            if result.get("week") != chunk or result.get("trips") != expected["per_week"][chunk]
        )
        if wrong:
            self.fail(f"the checkpoint's results of chunks {wrong} are not the chunks' own")
        merged = bikeshare.empty_result(self.shape)
        for chunk in sorted(results):
            bikeshare.merge(merged, results[chunk])
        if merged != expected:
            self.fail("the checkpoint's results do not add up to the sequential reference")

        # Each result was recorded once, by one scheduler. A SIGKILL can land after a result
        # is written and before its log line: one chunk per killed scheduler may be unlogged.
        recorded = Counter(c for s in self.schedulers for c in s.recorded())
        twice = sorted(c for c, n in recorded.items() if n > 1)
        if twice:
            by = {c: [s.name for s in self.schedulers if c in s.recorded()] for c in twice}
            self.fail(f"chunks recorded more than once (chunk: schedulers): {by}")
        unlogged = sorted(set(results) - set(recorded))
        if len(unlogged) > len(self.killed):
            self.fail(
                f"chunks {unlogged} are in the checkpoint, but no scheduler logged recording "
                f"them (only {len(self.killed)} were killed)"
            )
        if self.store.framework_id() is not None:
            self.fail(f"the checkpoint still names framework {self.store.framework_id()}")

    def check_the_failed_job(self) -> None:
        """A broken executor: no scheduler may print a result. Each one that was not killed
        gives up (after taking over the failed job, for a standby) with an error, and one of
        them at least with step 3's own, naming the chunk and quoting the executor's stderr.
        Each scheduler counts a chunk's attempts afresh; it launches at most --max-attempts
        failed and --max-losses lost tasks of it, so the checkpoint's tasks are bounded."""
        assert self.store is not None
        finished = [s for s in self.schedulers if s not in self.killed]
        if not finished:
            self.fail("every scheduler was killed: none ended the job")
        gave_up = re.compile(
            r"^error: chunk (\d+) failed \d+ times; the last attempt, chunk-\1-attempt-\d+ on "
            r"agent \S+, ended with TASK_FAILED",
            re.MULTILINE,
        )
        clear = []
        for scheduler in finished:
            code = scheduler.process.returncode
            log = scheduler.log()
            if code != 1:
                self.fail(f"scheduler {scheduler.name} exited with {code}, not 1")
            if bikeshare.summary(reference(self.plan.size)) in scheduler.stdout():
                self.fail(f"scheduler {scheduler.name} printed the job's result")
            if not re.search(r"^error: ", log, re.MULTILINE):
                self.fail(f"scheduler {scheduler.name} exited without an error")
            if gave_up.search(log) and self.plan.broken_stderr in log:
                clear.append(scheduler.name)
        if finished and not clear:
            self.fail(
                "no scheduler ended with step 3's error about a chunk that failed, quoting "
                f"the executor's stderr ({self.plan.broken_stderr!r})"
            )
        else:
            self.note(f"schedulers {clear} ended with the executor's stderr in their error")

        tasks: Counter[int] = Counter()
        for task_id in self.store.tasks():
            match = TASK_ID.match(task_id)
            if match is None:
                self.fail(f"the checkpoint has a task {task_id!r} that is not step 3's")
                continue
            tasks[int(match["chunk"])] += 1
        bound = (self.max_attempts + Settings().max_losses) * len(self.schedulers)
        over = {chunk: n for chunk, n in tasks.items() if n > bound}
        if over:
            self.fail(f"chunks with more than {bound} tasks (chunk: tasks): {over}")
        most = max(tasks.values(), default=0)
        self.note(f"{sum(tasks.values())} tasks in the checkpoint, at most {most} of a chunk")

        expected = reference(self.plan.size)["per_week"]
        results = self.store.results()
        wrong = sorted(c for c, r in results.items() if r.get("trips") != expected[c])
        if wrong:
            self.fail(f"the checkpoint's results of chunks {wrong} are not the chunks' own")
        broken = range(self.total) if self.plan.broken == "always" else [self.plan.crash_week]
        if any(chunk in results for chunk in broken):
            self.fail(f"the checkpoint has results {sorted(results)} from a broken executor")

    def check_the_framework_removed(self) -> None:
        """Step 3 leaves a failed job's framework running, for a scheduler to take over; the
        master removes it once its failover timeout has passed, and shuts its executors down."""
        assert self.cluster is not None
        cluster = self.cluster

        def removed() -> bool:
            with contextlib.suppress(NoLeader, OSError, ValueError):
                return cluster.state()["frameworks"] == []
            return False

        try:
            self.wait(removed, "the master to remove the framework", BROKEN_FAILOVER_TIMEOUT + WAIT)
        except RunFailed as error:
            self.fail(str(error))
        else:
            self.note("the master has removed the framework")

    def check_executors_exit(self) -> None:
        """The job tore its framework down: the agents shut its executors down, and they exit.
        The executors of agents whose process was killed are not told: they are left alone."""

        def left() -> set[Proc]:
            return set(self.executors()) - self.orphans

        try:
            self.wait(lambda: not left(), "the executors to exit", EXECUTORS_GONE)
        except RunFailed:
            still = left()
            self.fail(
                f"executors still running {EXECUTORS_GONE:g} s after the job: {describe(still)}"
            )

    # -- clean-up, and nothing left -------------------------------------------------------------

    def _sample(self) -> None:
        """Every process that appears below ours during the run: executors, schedulers, the
        ZooKeeper JVM, watchdogs. A process that lived between two samples is gone anyway."""
        while self.sampling.is_set():
            self._look()
            time.sleep(0.05)

    def _look(self) -> None:
        for p in descendants(os.getpid()) - self.before:
            # Read again each time: between fork and exec a child still shows our command line.
            line = " ".join(cmdline(p.pid))
            if line or p not in self.seen:
                self.seen[p] = line

    def _stop_everything(self) -> None:
        with self.lock:
            self.cancelled.set()  # no scheduler starts after this
            leftover = self.running()
        for scheduler in leftover:
            self.note(f"scheduler {scheduler.name} still running at the clean-up: SIGKILL")
            with contextlib.suppress(OSError):
                scheduler.process.send_signal(signal.SIGKILL)
            with contextlib.suppress(Exception):
                scheduler.process.wait(10)
        self._look()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self._remember_addresses()
            try:
                self.cluster.stop()
            except Exception as error:
                self.fail(f"the cluster's stop() raised {error!r}")
        self.note("cluster stopped")

    def _check_nothing_left(self) -> None:
        self._look()
        seen = set(self.seen)
        sessions = {s.sid for p in seen if (s := stat(p.pid)) is not None and s.start == p.start}
        everything = seen | in_sessions(sessions) | (descendants(os.getpid()) - self.before)
        left = survivors(everything, GONE_WITHIN)
        if left:
            self.fail(
                f"processes alive {GONE_WITHIN:g} s after the cluster stopped: {describe(left)}"
            )
            kill_all(left)
        # A check that saw nothing would pass: it must have seen the JVM and an executor.
        # An executor that always exits 1 lives too briefly to be seen for sure.
        looked_for = LOOKED_FOR[:1] if self.plan.broken == "always" else LOOKED_FOR
        kinds = {what: any(what in line for line in self.seen.values()) for what in looked_for}
        if not all(kinds.values()):
            self.fail(
                f"the orphan check saw no process of {[k for k, v in kinds.items() if not v]}"
            )
        if self.cluster is not None:
            if self.cluster.masters or self.cluster.agents:
                self.fail(
                    f"after stop(): masters {self.cluster.masters} and agents "
                    f"{self.cluster.agents} still up"
                )
            for address in sorted(self.addresses):
                host, port = address.rsplit(":", 1)
                with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1):
                    self.fail(f"something still listens on {address}, a master's or an agent's")


def agent_endpoint(pid: int) -> str | None:
    """The MESOS_AGENT_ENDPOINT an executor was started with: which agent it belongs to."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for variable in environ.split(b"\0"):
        if variable.startswith(b"MESOS_AGENT_ENDPOINT="):
            return variable.split(b"=", 1)[1].decode()
    return None


def run(
    seed: int,
    directory: Path,
    size: str | None = None,
    deadline: float = DEADLINE,
    broken: str | None = None,
) -> Outcome:
    directory.mkdir(parents=True, exist_ok=True)
    return ChaosRun(plan(seed, size, broken), directory, deadline).execute()


# -- the command --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.integration.chaos",
        description="Seeded chaos runs of step 3 on localmesos; exit status 1 if any failed.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="the first seed (default: a random one); a failure's report names its seed",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="how many seeds, from --seed on (default: 1)"
    )
    parser.add_argument(
        "--size",
        choices=list(bikeshare.SIZES),
        help=f"the job's dataset for every run (default: {BUSY_SIZE} for runs that kill "
        f"executors, {SIZE} for the others)",
    )
    parser.add_argument(
        "--broken-executor",
        choices=BROKEN,
        help="run every job with a broken executor: one that always exits 1, or one that dies "
        "on one chunk; the job must then end with step 3's error (default: step 3's executor)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=DEADLINE,
        help="seconds after which a run is stopped and failed (default: %(default)s)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep every run's files, not only failed ones'"
    )
    parser.add_argument(
        "--report", action="store_true", help="print every run's report, not only failed ones'"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    # The masters' and agents' kazoo clients say each broken connection (a killed master's
    # session, the server stopping): the runs' reports say what matters.
    logging.getLogger("kazoo").addHandler(logging.NullHandler())
    logging.getLogger("kazoo").propagate = False
    missing = zookeeper.unavailable()
    if missing is not None:
        print(f"chaos: {missing}", file=sys.stderr)
        return 2
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    seeds = range(first, first + args.runs)
    runs = f"{args.runs} run{'s' if args.runs > 1 else ''} of step 3"
    if args.size:
        runs += f" ({args.size})"
    if args.broken_executor:
        runs += f" with a broken executor ({args.broken_executor})"
    print(
        f"chaos: {runs}, seeds {seeds[0]} to {seeds[-1]}, each within {args.deadline:g} s",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="step3-chaos-"))
    outcomes: list[Outcome] = []
    started = time.monotonic()
    for seed in seeds:
        outcome = run(seed, base / f"seed-{seed}", args.size, args.deadline, args.broken_executor)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
        if args.report or not outcome.ok:
            print(outcome.report(), flush=True)
        elif not args.keep:
            shutil.rmtree(outcome.directory, ignore_errors=True)
    total = time.monotonic() - started
    failed = [o.plan.seed for o in outcomes if not o.ok]
    fired = Counter(f.fault.kind for o in outcomes for f in o.fired if f.at is not None)
    planned = Counter(f.fault.kind for o in outcomes for f in o.fired)
    durations = [o.duration for o in outcomes]
    print(
        f"\n{len(outcomes)} runs: {len(outcomes) - len(failed)} ok, {len(failed)} failed"
        + (f" (seeds {', '.join(map(str, failed))})" if failed else "")
    )
    print(
        "faults fired (of planned): "
        + ", ".join(f"{kind} {fired[kind]} of {planned[kind]}" for kind in KINDS)
    )
    print(
        f"time per run: min {min(durations):.1f} s, median {statistics.median(durations):.1f} s,"
        f" max {max(durations):.1f} s; total {total:.0f} s"
    )
    if not failed and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"files: {base}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
