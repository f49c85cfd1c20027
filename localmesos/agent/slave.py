"""The agent actor (src/slave/slave.cpp): finds the leading master and (re)registers with it,
answers its pings, takes the master's messages (tasks to run, kills, shutdowns, acknowledgements)
and sends status updates on; it dies as a process or with its machine.

Comments cite the Mesos sources each behaviour follows; localmesos/CONFORMANCE.md lists them
all, with the tests that show them.

What it does with a task is in the modules around it, in this package: command_tasks.py
(command tasks: the command executor the agent makes for each, launch, end, kills) and
command_executor.py (that executor's log, kills and accounting, which the agent plays);
executors.py (frameworks' own executors, from launch to exit, and their calls); and http.py
(its endpoints and the executor API), files.py (/files), operator.py and monitor.py (operator
API, statistics, metrics), status_updates.py (the status update manager), containerizer.py
(sandboxes, what containers are refused, the fetch, environment, commands), checkpoint.py and
recovery.py (what survives a restart, and how the agent comes back). Processes are started
and killed by localmesos.processes, URIs fetched by localmesos.fetcher.

An agent dies in one of two ways (LocalCluster's `kill_agent` and `kill_host`): as a process
(`exit`), which closes its sockets, so that the master hears of it at once and the executors
of frameworks that do not checkpoint end themselves; or with its whole machine (`crash`),
which closes nothing and takes every process along.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localmesos import authentication, protocol
from localmesos.actors import Actor, Timer
from localmesos.agent import checkpoint, command_tasks, executors, gc, monitor, recovery
from localmesos.agent.checkpoint import Checkpointer
from localmesos.agent.command_tasks import Run
from localmesos.agent.containerizer import SandboxError, relink
from localmesos.agent.executors import EXECUTOR_REGISTRATION_TIMEOUT, Executor
from localmesos.agent.http import route
from localmesos.agent.status_updates import STATUS_UPDATE_RETRY, StatusUpdateManager
from localmesos.election import SESSION_TIMEOUT, Detector
from localmesos.fetcher import Fetcher
from localmesos.link import new_secret
from localmesos.processes import Adopted, Launcher
from localmesos.protocol import task_status
from localmesos.resources import Resources
from localmesos.web import Server

log = logging.getLogger("localmesos.agent")

# --registration_backoff_factor: the agent (re)registers after a random delay of up to this, and
# retries with the bound doubled each time, up to REGISTER_RETRY_INTERVAL_MAX
# (slave.cpp `Slave::detected`, `doReliableRegistration`; slave/constants.hpp).
REGISTRATION_BACKOFF_FACTOR = 1.0
REGISTER_RETRY_INTERVAL_MAX = 60.0
# slave/constants.hpp MAX_COMPLETED_FRAMEWORKS, and DEFAULT_MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK
# (--max_completed_executors_per_framework).
MAX_COMPLETED_FRAMEWORKS = 50
MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK = 150


class _NoMaster:
    """The link while no master is known: what is sent goes nowhere."""

    def send(self, message: str, *args: Any) -> None:
        log.debug("no master: dropping %s", message)


NO_MASTER = _NoMaster()


class Agent(Actor):
    """An agent finds its master through ``master_link`` (one fixed master), or, with ``zk``,
    through a ZooKeeper detector: ``link_to_master(master_info)`` then gives the link to
    whichever master leads. The links are all the agent knows of masters."""

    def __init__(
        self,
        master_link: Any | None,
        *,
        ip: str,
        resources: Resources,
        work_dir: Path,
        launcher: Launcher,
        port: int = 0,
        status_update_retry: float = STATUS_UPDATE_RETRY,
        executor_registration_timeout: float = EXECUTOR_REGISTRATION_TIMEOUT,
        name: str = "agent",
        zk: str | None = None,
        link_to_master: Callable[[dict], Any] | None = None,
        zk_session_timeout: float = SESSION_TIMEOUT,
        registration_backoff_factor: float = REGISTRATION_BACKOFF_FACTOR,
        registration_retry_max: float = REGISTER_RETRY_INTERVAL_MAX,
        agent_id: str | None = None,
        executor_reregistration_timeout: float = recovery.EXECUTOR_REREGISTRATION_TIMEOUT,
        fetcher_cache_dir: Path | None = None,
        link_secret: str | None = None,
        gc_delay: float = gc.GC_DELAY,
        gc_disk_headroom: float = gc.GC_DISK_HEADROOM,
        disk_watch_interval: float = gc.DISK_WATCH_INTERVAL,
        disk_usage: gc.DiskUsage = gc.disk_usage,
        max_completed_executors_per_framework: int = MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK,
        credentials: dict[str, str] | None = None,
    ) -> None:
        """``agent_id``: the agent restarts, and recovers that agent from ``work_dir``.
        ``link_secret``: what its cluster's masters send to its /link (link.py); an agent
        alone makes its own. ``gc_delay``, ``gc_disk_headroom``, ``disk_watch_interval``:
        Mesos's flags of those names (gc.py); ``disk_usage`` measures how full the work
        directory's disk is. ``credentials``: principal -> secret, Mesos's --http_credentials:
        with them the read-only and read-write endpoints require HTTP Basic (http.py)."""
        super().__init__(name)
        self.credentials = credentials
        self.link_secret = link_secret or new_secret()
        if (master_link is None) == (zk is None) or (zk is not None and link_to_master is None):
            raise ValueError("an agent needs either master_link, or zk and link_to_master")
        if max_completed_executors_per_framework < 0:
            raise ValueError(
                "--max_completed_executors_per_framework must not be negative, "
                f"not {max_completed_executors_per_framework}"
            )
        self.gc = gc.GarbageCollector(
            self,
            delay=gc_delay,
            disk_headroom=gc_disk_headroom,
            disk_watch_interval=disk_watch_interval,
            usage=disk_usage,
        )
        self.max_completed_executors_per_framework = max_completed_executors_per_framework
        self._fixed_master = master_link
        self.master: Any = NO_MASTER
        self.zk = zk
        self._link_to_master = link_to_master
        self.zk_session_timeout = zk_session_timeout
        self._detector: Detector | None = None
        self._detected: dict | None = None  # the leader's MasterInfo, from the detector
        self._self_link: Any = None
        self.registration_backoff_factor = registration_backoff_factor
        self.registration_retry_max = registration_retry_max
        # Mesos's agent states DISCONNECTED and RUNNING: (re)registered with the current
        # master or not. While disconnected the status updates wait (the status update
        # manager is paused) and the agent keeps trying to (re)register.
        self.connected = False
        self._registration_timer: Timer | None = None
        self._ping_timeout: float | None = None
        self._ping_timer: Timer | None = None
        self._last_ping = 0.0
        # What masters, executors and frameworks are told; bound to 0.0.0.0, a real address.
        self.ip = authentication.advertised_ip(ip)
        self.resources = resources
        self.work_dir = work_dir
        self.launcher = launcher
        self.status_update_retry = status_update_retry
        self.executor_registration_timeout = executor_registration_timeout
        self.executor_reregistration_timeout = executor_reregistration_timeout
        self.id: str | None = agent_id
        # Mesos's RECOVERING state: until it is over the agent does not register, and answers
        # 503 to most requests; `reconnect`: executors may subscribe again (recovery.py).
        self.recovering = agent_id is not None
        self.reconnect = not self.recovering
        self.checkpointer = Checkpointer(self)
        self.death: str | None = None  # "process" (exit) or "host" (crash)
        self.master_info: dict | None = None
        self.hostname = authentication.advertised_hostname(self.ip)
        self.server = Server(ip, port, functools.partial(route, self), name)
        # --fetcher_cache_dir: Mesos's default, <tmp>/mesos/fetch, is emptied by each agent
        # that starts; agents here share a work directory, so each has its own cache in it.
        self.fetcher = Fetcher(fetcher_cache_dir or work_dir / "fetch" / f"{ip}-{self.port}")
        self.start_time = time.time()
        # Framework ID -> FrameworkInfo, of the frameworks running something here and of the
        # completed ones still kept (`Slave::frameworks`, `completedFrameworks`).
        self.frameworks: dict[str, dict] = {}
        # The completed frameworks' IDs, the oldest completion first (a BoundedHashMap of
        # MAX_COMPLETED_FRAMEWORKS in Mesos: the oldest is forgotten).
        self.completed_frameworks: dict[str, None] = {}
        self.runs: dict[tuple[str, str], Run] = {}  # (framework ID, executor ID)
        self.executors: dict[tuple[str, str], Executor] = {}  # (framework ID, executor ID)
        # Each framework's completed executors, command executors included, the newest
        # --max_completed_executors_per_framework of them (`Framework::completedExecutors`).
        self.completed: dict[str, deque[Run | Executor]] = {}
        self.status_updates = StatusUpdateManager(
            self, self._send_status_update, status_update_retry, self.checkpointer.update_record
        )
        # Frameworks being shut down: their updates have nobody to go to (Mesos cleans up the
        # framework's status update streams at this point).
        self.removed_frameworks: set[str] = set()
        self.registered = threading.Event()
        # The counters of /metrics/snapshot (monitor.py), by their Mesos names.
        self.counters: dict[str, int] = {}

    @property
    def port(self) -> int:
        return self.server.port

    # -- completed executors and frameworks (`Framework::completedExecutors`,
    # `Slave::removeFramework`, `completedFrameworks`) ---------------------------------------

    @property
    def completed_runs(self) -> list[Run]:
        return [c for done in self.completed.values() for c in done if isinstance(c, Run)]

    @property
    def completed_executors(self) -> list[Executor]:
        return [c for done in self.completed.values() for c in done if isinstance(c, Executor)]

    def complete(self, framework_id: str, done: Run | Executor) -> None:
        """An executor has ended (`Framework::removeExecutor`): kept among its framework's
        completed executors, and its sandbox scheduled for removal."""
        completed = self.completed.setdefault(
            framework_id, deque(maxlen=self.max_completed_executors_per_framework)
        )
        completed.append(done)
        executor_id = done.task_id if isinstance(done, Run) else done.id
        self.gc.schedule(done.directory, functools.partial(setattr, done, "detached", True))
        self.gc.schedule(done.directory.parent.parent)  # the executor's directory
        if self.checkpointer.checkpoints(framework_id):
            meta = self.checkpointer.executor_meta_dir(framework_id, executor_id)
            self.gc.schedule(meta / "runs" / done.container_id)
            self.gc.schedule(meta)
        self.settle_frameworks()

    def framework_dirs(self, framework_id: str) -> list[Path]:
        work = self.work_dir / "slaves" / str(self.id) / "frameworks" / framework_id
        return [work, checkpoint.framework_dir(self.work_dir, str(self.id), framework_id)]

    def settle_frameworks(self) -> None:
        """A framework with no executor left and every update of its tasks acknowledged is
        completed (`Slave::removeFramework`): its directories are scheduled for removal, and
        once more than MAX_COMPLETED_FRAMEWORKS are completed, the oldest is forgotten. A
        framework that runs something again is no longer completed."""
        live = {key[0] for key in self.runs} | {key[0] for key in self.executors}
        live |= {key[0] for key in self.status_updates.streams}
        for framework_id in self.frameworks:
            if framework_id in live:
                self._uncomplete(framework_id)
            elif framework_id not in self.completed_frameworks:
                self.completed_frameworks[framework_id] = None
                for path in self.framework_dirs(framework_id):
                    if path.exists():
                        self.gc.schedule(path)
        while len(self.completed_frameworks) > MAX_COMPLETED_FRAMEWORKS:
            framework_id = next(iter(self.completed_frameworks))
            del self.completed_frameworks[framework_id]
            self.frameworks.pop(framework_id, None)
            self.completed.pop(framework_id, None)
            self.removed_frameworks.discard(framework_id)
            self.checkpointer.forget(framework_id)

    def _uncomplete(self, framework_id: str) -> None:
        """A completed framework runs something again: its directories stay (`Slave::_run`
        unschedules them)."""
        if framework_id in self.completed_frameworks:
            del self.completed_frameworks[framework_id]
            for path in self.framework_dirs(framework_id):
                self.gc.unschedule(path)

    @property
    def pid(self) -> str:
        return protocol.pid_string("slave(1)", self.ip, self.port)

    @property
    def link_url(self) -> str:
        """Where masters of other processes send this agent's messages."""
        return f"http://{self.ip}:{self.port}/slave(1)/link"

    def info(self) -> dict:
        return {
            "hostname": self.hostname,
            "ip": self.ip,
            "port": self.port,
            "resources": self.resources.to_json(),
            "attributes": [],
        }

    def start(self, link_to_self: Any) -> None:
        self._self_link = link_to_self
        self.start_actor()
        self.gc.start()
        if self.recovering:
            self.dispatch(recovery.recover, self)  # first of all, before any request
        self.server.start()
        if self.zk is None:
            self.dispatch(self._new_master, self._fixed_master)
            return
        try:
            self._detector = Detector(
                self.zk,
                lambda info: self.dispatch(self._master_detected, info),
                session_timeout=self.zk_session_timeout,
            ).start()
        except BaseException:
            self.crash()
            raise

    def exit(self) -> None:
        """Die as a process (SIGKILL, a crash, an upgrade): its sockets close, so the master
        and the executors hear of it at once. Executors of frameworks that checkpoint wait
        for the agent to come back; the others end, as Mesos's executor libraries end them
        when their agent goes and their framework does not checkpoint
        (src/exec/exec.cpp `ExecutorProcess::exited`, src/executor/executor.cpp). pymesos's
        executor would wait whatever MESOS_CHECKPOINT says, so the agent does it for it; it
        also plays its command tasks' executor, and writes what that one logs. Fetches under
        way stop, and their containers never start: a restarted agent finds them without a
        process."""
        if self.death is not None:
            return
        self.death = "process"
        self.stop_actor(wait=True)  # no message is left half done
        self.fail_pending_calls()
        self.fetcher.stop()
        if self._detector is not None:
            self._detector.stop()
        for run in self.runs.values():
            if run.process is not None:
                run.executor.agent_exited(self.checkpointer.checkpoints(run.framework_id))
        for framework_id, process in self._processes():
            if not self.checkpointer.checkpoints(framework_id):
                self.launcher.kill_group(process.pid)
        self.server.stop()
        self.notify_exited()

    def crash(self) -> None:
        """Die at once, as a machine does: nothing closes toward the master (it learns from
        the health checks), and every process dies with it."""
        if self.death is not None:
            return
        self.death = "host"
        self.stop_actor(wait=False)
        self.fetcher.stop()
        if self._detector is not None:
            self._detector.stop()
        self.server.stop()
        for _, process in self._processes():
            self.launcher.kill_group(process.pid)

    def stop(self) -> None:
        self.crash()

    def _processes(self) -> list[tuple[str, Any]]:
        found = [(r.framework_id, r.process) for r in self.runs.values()]
        found += [(e.framework_id, e.process) for e in self.executors.values()]
        return [(framework_id, process) for framework_id, process in found if process]

    # -- messages from the master ---------------------------------------------------------------

    # -- finding the master and (re)registering (slave.cpp `detected`, `doReliableRegistration`)

    def _master_detected(self, info: dict | None) -> None:
        assert self._link_to_master is not None
        self._detected = info
        if info is None:
            log.info("%s: no master is leading; waiting for one", self.name)
            self._disconnect()
            self.master = NO_MASTER
            return
        log.info("%s: new master detected at %s", self.name, info.get("pid"))
        try:
            link = self._link_to_master(info)
        except LookupError as error:
            # A master this agent cannot reach (of another process, while links are local
            # only): as good as no master; the agent waits for the next detection.
            log.warning("%s: %s", self.name, error)
            self._disconnect()
            self.master = NO_MASTER
            return
        self._new_master(link)

    def _new_master(self, link: Any) -> None:
        """Pause the status updates and (re)register with the master behind ``link``."""
        self._disconnect()
        self.master = link
        # Mesos waits a random delay of up to --registration_backoff_factor even the first
        # time, so that a restarted cluster's agents do not all arrive at once. A fresh agent
        # here registers at once, which is how localmesos starts in no time; an agent that
        # comes back to a master keeps the delay.
        delay = 0.0 if self.id is None else random.uniform(0, self.registration_backoff_factor)
        self._registration_timer = self.after(
            delay, self._register, self.registration_backoff_factor * 2
        )

    def _disconnect(self) -> None:
        self.connected = False
        for timer in (self._registration_timer, self._ping_timer):
            if timer is not None:
                timer.cancel()
        self._registration_timer = self._ping_timer = None

    def start_registration(self) -> None:
        """Recovery is over: (re)register with the master known by now, if any."""
        if self.master is not NO_MASTER:
            self._new_master(self.master)

    def _register(self, backoff: float) -> None:
        if self.connected or self.master is NO_MASTER or self.recovering:
            return
        if self.id is None:
            self.master.send("register_agent", self.info(), self._self_link)
        else:
            self.master.send(
                "reregister_agent", self.id, self.info(), self._self_link, self.report()
            )
        # The master may not lead yet, or the message may be lost: try again, later each time.
        backoff = min(backoff, self.registration_retry_max)
        self._registration_timer = self.after(
            random.uniform(0, backoff), self._register, backoff * 2
        )

    def report(self) -> dict:
        """What ReregisterSlaveMessage carries: every task with its latest state and the state
        and uuid of its oldest unacknowledged update (terminal ones too, until acknowledged;
        queued ones as TASK_STAGING), the custom executors still running (command executors
        are the agent's own and are not reported), and each framework's FrameworkInfo."""
        tasks: list[dict] = []
        reported: set[tuple[str, str]] = set()

        def add(framework_id: str, task: dict, state: str) -> None:
            key = (framework_id, task["task_id"]["value"])
            if key in reported:
                return
            reported.add(key)
            entry = {"framework_id": framework_id, "task": task, "state": state}
            pending = self.status_updates.pending(*key)
            if pending is not None:
                entry["status_update_state"] = pending["state"]
                entry["status_update_uuid"] = pending.get("uuid")
            tasks.append(entry)

        for (framework_id, _), run in self.runs.items():
            add(framework_id, run.task, run.state)
        for run in self.completed_runs:
            if (run.framework_id, run.task_id) in self.status_updates.streams:  # not acknowledged
                add(run.framework_id, run.task, run.state)
        executors = []
        for (framework_id, _), executor in self.executors.items():
            for task_id, task in executor.tasks.items():
                state = "TASK_STAGING" if task_id in executor.queued else None
                add(framework_id, task, state or executor.task_states.get(task_id, "TASK_STAGING"))
            for done in executor.completed_tasks:
                task_id = done["task"]["task_id"]["value"]
                if (framework_id, task_id) in self.status_updates.streams:
                    add(framework_id, done["task"], done["state"])
            if executor.state != "TERMINATED":
                executors.append(executor.info)
        frameworks = [
            info for fid, info in self.frameworks.items() if fid not in self.removed_frameworks
        ]
        return {"tasks": tasks, "executors": executors, "frameworks": frameworks}

    def _connected(self, master_info: dict, ping_timeout: float | None) -> None:
        self.connected = True
        self.master_info = master_info
        if self._registration_timer is not None:
            self._registration_timer.cancel()
            self._registration_timer = None
        self._ping_timeout = ping_timeout
        self._last_ping = time.monotonic()
        self._arm_ping_timer()
        # The status update manager resumes: what waited goes out now, and is retried.
        self.status_updates.resume()

    def on_registered(
        self, agent_id: str, master_info: dict, ping_timeout: float | None = None
    ) -> None:
        if self.connected:
            return  # the answer to a retry; Mesos logs "Already registered"
        self.id = agent_id
        slaves = self.work_dir / "slaves"
        (slaves / agent_id).mkdir(parents=True, exist_ok=True)
        relink(slaves / "latest", agent_id)
        # `Slave::registered`: what a restart needs to come back as this agent.
        self.checkpointer.agent_info({**self.info(), "id": {"value": agent_id}})
        self.checkpointer.boot_id()
        self._connected(master_info, ping_timeout)
        self.registered.set()
        log.info("agent %s registered on port %d", agent_id, self.port)

    def on_reregistered(
        self,
        agent_id: str,
        master_info: dict,
        ping_timeout: float | None = None,
        reconciliations: list[dict] | None = None,
    ) -> None:
        if not self.connected:
            log.info("agent %s reregistered with master %s", agent_id, master_info.get("pid"))
            self._connected(master_info, ping_timeout)
            self.registered.set()
        for wanted in reconciliations or []:
            # slave.cpp `reregistered`: a task that the master knows and this agent does not
            # (its RunTask was lost) ends, so that the master forgets it.
            framework_id, task_id = wanted["framework_id"], wanted["task_id"]
            if self._knows_task(framework_id, task_id):
                continue
            capabilities = wanted.get("framework", {}).get("capabilities", [])
            partition_aware = any(c.get("type") == "PARTITION_AWARE" for c in capabilities)
            status = task_status(
                task_id,
                "TASK_DROPPED" if partition_aware else "TASK_LOST",
                "SOURCE_AGENT",
                agent_id=self.id,
                reason="REASON_RECONCILIATION",
                message="Reconciliation: task unknown to the agent",
                with_uuid=True,
            )
            self.queue_update(framework_id, status)

    def _knows_task(self, framework_id: str, task_id: str) -> bool:
        return (
            (framework_id, task_id) in self.runs
            or (framework_id, task_id) in self.status_updates.streams
            or executors.of_task(self, framework_id, task_id) is not None
        )

    # -- health checks: the master pings, the agent answers and watches for silence ----------

    def _arm_ping_timer(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._ping_timeout is not None:
            self._ping_timer = self.after(self._ping_timeout, self._ping_overdue)

    def _ping_overdue(self) -> None:
        # Timers run before the mailbox: pings that a busy agent has not read yet wait in it.
        # Look again once they have been read.
        self.dispatch(self._check_pings)

    def _check_pings(self) -> None:
        if not self.connected or self._ping_timeout is None:
            return
        silent = time.monotonic() - self._last_ping
        if silent < self._ping_timeout:
            self._ping_timer = self.after(self._ping_timeout - silent, self._ping_overdue)
            return
        # slave.cpp `pingTimeout`: "No pings from master received within ..."; the agent
        # detects the master again and reregisters (the master may have marked it unreachable
        # meanwhile).
        log.info(
            "%s: no pings from the master within %s; reregistering",
            self.name,
            protocol.format_duration(self._ping_timeout),
        )
        if self.zk is None:
            self._new_master(self._fixed_master)
        else:
            self._master_detected(self._detected)

    def on_ping(self, connected: bool = True) -> None:
        """`Slave::ping`, answered in any state, recovery included."""
        self._last_ping = time.monotonic()
        if not connected and self.connected:
            # The master took this agent for disconnected (its link broke) while it thinks
            # itself registered: "Forcing re-registration".
            log.info("%s: the master marked this agent disconnected; reregistering", self.name)
            self._new_master(self.master)
        self.master.send("pong", self.id)

    def on_run_task(self, payload: dict) -> None:
        """`Slave::runTask`: the task goes to its framework's executor (executors.py), or to
        the command executor the agent makes for it (command_tasks.py)."""
        framework_info = payload["framework_info"]
        task = payload["task"]
        framework_id = framework_info["id"]["value"]
        if self.recovering:
            # `Slave::runTask` from a master it does not know yet: ignored; the master
            # reconciles the task once the agent has reregistered.
            log.warning("%s: ignoring a task launch during recovery", self.name)
            return
        self.frameworks[framework_id] = framework_info
        self._uncomplete(framework_id)  # with its completed executors (`Slave::run`)
        # The framework's own executor, if the task names one, and whether it runs already.
        key = (
            (framework_id, task["executor"]["executor_id"]["value"]) if "executor" in task else None
        )
        running = key in self.executors
        try:
            self.checkpointer.framework(framework_id)
            if "executor" in task:
                executors.run_task(self, framework_id, task)
            else:
                command_tasks.launch(self, framework_info, task)
        except (SandboxError, OSError) as error:
            # Mesos CHECKs its checkpoints and aborts the agent; a task that cannot be
            # started here is lost instead, so that a full or read-only disk wedges nothing.
            message = (
                str(error) if isinstance(error, SandboxError) else f"Failed to checkpoint: {error}"
            )
            launched = self.executors.get(key) if key is not None and not running else None
            if launched is not None:
                # Launched for this task alone, which it will never get: shut down, its
                # exit then reported to the master as any executor's.
                executors.shutdown(self, launched)
            self._executor_not_added(
                framework_info, task, message, executor_exited=not running and launched is None
            )

    def _executor_not_added(
        self, framework_info: dict, task: dict, message: str, *, executor_exited: bool = True
    ) -> None:
        """`Slave::__run` when `Framework::addExecutor` fails (its sandbox cannot be made):
        the task is dropped (TASK_LOST for a framework that is not PARTITION_AWARE), and the
        master hears that the executor exited, so that it gives its resources back. An
        executor that runs (or was launched and is being shut down) is not said to have
        exited: `sendExitedExecutorMessage` is for an executor that never started."""
        framework_id = framework_info["id"]["value"]
        task_id = task["task_id"]["value"]
        executor_id = task["executor"]["executor_id"]["value"] if "executor" in task else task_id
        self.runs.pop((framework_id, task_id), None)
        capabilities = framework_info.get("capabilities", [])
        partition_aware = any(c.get("type") == "PARTITION_AWARE" for c in capabilities)
        log.warning("%s: task %s of framework %s: %s", self.name, task_id, framework_id, message)
        status = task_status(
            task_id,
            "TASK_DROPPED" if partition_aware else "TASK_LOST",
            "SOURCE_AGENT",
            agent_id=self.id,
            executor_id=executor_id,
            reason="REASON_EXECUTOR_TERMINATED",
            message=message,
            with_uuid=True,
        )
        self.queue_update(framework_id, status)
        if executor_exited:
            self.master.send("executor_exited", self.id, framework_id, executor_id, -1)

    def on_kill_task(self, framework_id: str, task_id: str, kill_policy: dict | None) -> None:
        executor = executors.of_task(self, framework_id, task_id)
        if executor is not None:
            executors.kill_task(self, executor, task_id, kill_policy)
            return
        run = self.runs.get((framework_id, task_id))
        if run is not None:
            command_tasks.kill(self, run, kill_policy)

    def on_shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        executor = self.executors.get((framework_id, executor_id))
        if executor is not None:
            executors.shutdown(self, executor)
            return
        run = self.runs.get((framework_id, executor_id))
        if run is not None:
            command_tasks.shutdown(self, run)

    def on_shutdown_framework(self, framework_id: str) -> None:
        self.removed_frameworks.add(framework_id)
        for key, run in list(self.runs.items()):
            if key[0] == framework_id:
                command_tasks.shutdown(self, run)
        for key, executor in list(self.executors.items()):
            if key[0] == framework_id:
                executors.shutdown(self, executor)
        self.status_updates.cleanup(framework_id)
        self.settle_frameworks()

    def on_update_framework(self, framework_id: str, framework_info: dict) -> None:
        """UpdateFrameworkMessage: the framework failed over, or a RECOVERED one subscribed.
        `Slave::updateFramework` (src/slave/slave.cpp) drops it unless the agent is registered
        (RUNNING), ignores a framework it does not know or that is terminating, else stores
        the new FrameworkInfo and pid and "Inform[s] status update manager to immediately
        resend any pending updates" (`statusUpdateManager->resume()`). Mesos's resume()
        flushes every framework's streams; here only this framework's are, which spares the
        others duplicates and changes nothing else they see."""
        if not self.connected:
            return
        if framework_id not in self.frameworks or framework_id in self.removed_frameworks:
            return
        self.frameworks[framework_id] = framework_info
        self.checkpointer.framework(framework_id)
        self.status_updates.resume(framework_id)

    def on_framework_message(self, framework_id: str, executor_id: str, data: str) -> None:
        executor = self.executors.get((framework_id, executor_id))
        if executor is None or executor.state != "RUNNING" or executor.stream is None:
            # Best effort, as in Mesos: nobody to give it to, so it is dropped
            # (`Slave::schedulerMessage`).
            why = "does not exist" if executor is None else "is not running"
            log.info("Dropping message for executor %s because executor %s", executor_id, why)
            return
        executor.stream.send({"type": "MESSAGE", "message": {"data": data}})

    def on_acknowledge(self, framework_id: str, task_id: str, ack_uuid: str) -> None:
        self.status_updates.acknowledgement(framework_id, task_id, ack_uuid)
        if (framework_id, task_id) not in self.status_updates.streams:
            self.settle_frameworks()

    # -- kill_executor and kill_task_process (fault injection) ----------------------------------

    def kill_executor(self, framework_id: str, executor_id: str) -> bool:
        executor = self.executors.get((framework_id, executor_id))
        if executor is not None and executor.process is not None:
            self.launcher.kill_group(executor.process.pid)
            return True
        run = self.runs.get((framework_id, executor_id))
        if run is None or run.process is None:
            return False
        run.executor_terminated = True
        self.launcher.kill_group(run.process.pid)
        return True

    def kill_task_process(self, task_id: str) -> bool:
        for (_, executor_id), run in self.runs.items():
            if executor_id == task_id and run.process is not None:
                os.kill(run.process.pid, signal.SIGKILL)
                return True
        return False

    # -- status updates -------------------------------------------------------------------------

    def executor_update(self, run: Run, state: str, message: str | None = None) -> None:
        """An update from a command executor (SOURCE_EXECUTOR, no reason)."""
        run.state = state
        status = task_status(run.task_id, state, "SOURCE_EXECUTOR", message=message, with_uuid=True)
        self.enqueue(run.framework_id, run.task_id, run.container_id, run.process, status)

    def agent_update(self, run: Run, state: str, *, reason: str, message: str) -> None:
        """An update the agent writes itself about a command task (SOURCE_AGENT)."""
        run.state = state
        status = task_status(
            run.task_id, state, "SOURCE_AGENT", reason=reason, message=message, with_uuid=True
        )
        self.enqueue(run.framework_id, run.task_id, run.container_id, run.process, status)

    def enqueue(
        self,
        framework_id: str,
        executor_id: str | None,
        container_id: str,
        process: subprocess.Popen | Adopted | None,
        status: dict,
    ) -> None:
        # The agent fills in who it is and which container the update is about.
        status["agent_id"] = {"value": self.id}
        if executor_id is not None:
            status["executor_id"] = {"value": executor_id}
        status["container_status"] = {
            "container_id": {"value": container_id},
            "network_infos": [{"ip_addresses": [{"ip_address": self.ip}]}],
        }
        if process is not None:
            status["container_status"]["executor_pid"] = process.pid
        self.queue_update(framework_id, status)

    def queue_update(self, framework_id: str, status: dict) -> None:
        if framework_id in self.removed_frameworks:
            return
        monitor.count_update(self, status)
        self.status_updates.update(framework_id, status)

    def _send_status_update(self, framework_id: str, status: dict, latest_state: str) -> bool:
        """The status update manager's way to the master (slave.cpp `Slave::forward`);
        False while the agent is not (re)registered, which pauses the manager."""
        if not self.connected:
            return False
        self.master.send(
            "status_update",
            self.id,
            {"framework_id": framework_id, "status": status, "latest_state": latest_state},
        )
        return True
