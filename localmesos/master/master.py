"""The master actor (src/master/master.cpp): leadership, frameworks' lives (SUBSCRIBE,
failover, heartbeats, removal), what each scheduler call does, offers, and the messages from
agents. It runs on one actor thread (see actors.py); HTTP threads only parse requests.

Comments cite the Mesos sources each behaviour follows; localmesos/CONFORMANCE.md lists them
all, with the tests that show them.

Around it, in this package: models.py (what the master keeps), http.py (its endpoints),
validation.py, readonly.py and metrics.py (what it shows), agents.py (agents' registration,
health checks and removal), allocator.py (hierarchical DRF).
"""

from __future__ import annotations

import functools
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from localmesos import authentication, protocol
from localmesos.actors import Actor, Stopped
from localmesos.election import Contender, Detector
from localmesos.master import agents
from localmesos.master.allocator import DEFAULT_REFUSE_SECONDS, Allocator
from localmesos.master.http import route
from localmesos.master.models import (
    MAX_COMPLETED_FRAMEWORKS,
    TASK_FIELDS,
    AgentRecord,
    Framework,
    MasterFlags,
    Offer,
    Task,
    completed_framework_info,
)
from localmesos.master.operator import Subscribers
from localmesos.master.validation import validate_framework_info, validate_offers, validate_task
from localmesos.protocol import MESOS_VERSION, is_terminal, task_status
from localmesos.resources import Resources
from localmesos.web import EventStream, Response, Server

log = logging.getLogger("localmesos.master")


def from_agent(method: Callable[..., None]) -> Callable[..., None]:
    """A message that agents send over their links. A master that does not lead drops it, as
    Mesos's does with every libprocess message ("Dropping '...' message since not elected
    yet", `Master::consume(MessageEvent&&)`); the agent retries or re-registers."""

    @functools.wraps(method)
    def guarded(self: Master, *args: Any) -> None:
        if not self.serving:
            log.info("master %s: dropping %s since not elected yet", self.address, method.__name__)
            return
        method(self, *args)

    return guarded


class Master(Actor):
    def __init__(self, flags: MasterFlags) -> None:
        super().__init__("master")
        self.flags = flags
        self.id = protocol.mesos_id()
        self.allocator = Allocator(allocation_interval=flags.allocation_interval)
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED_FRAMEWORKS)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, AgentRecord] = {}
        self.unreachable_agents: dict[str, float] = {}
        self.offers: dict[str, Offer] = {}
        self._next_framework = 0
        self._next_agent = 0
        self._next_offer = 0
        self._allocation_pending = False
        self.start_time = time.time()
        self.counters: dict[str, int] = {}
        # The operator API's event streams (operator.py); the master tells them of each change.
        self.subscribers = Subscribers()
        self.server = Server(flags.ip, flags.port, functools.partial(route, self), "master")
        # What agents and frameworks are told; bound to 0.0.0.0, a real address.
        self.ip = authentication.advertised_ip(flags.ip)
        self.hostname = authentication.advertised_hostname(self.ip)
        # Leadership. HTTP threads read these two without going through the actor, because a
        # standby answers every request with them, and pymesos retries a 503 in a tight loop
        # (its process.py reconnects at once): a reference read is atomic, and a moment's
        # staleness is what a Mesos master shows during an election too. Only the actor's
        # thread writes them.
        self.serving = False  # elected and serving, as Mesos's `elected()` once recovered
        self.leader: dict | None = None  # the leader's MasterInfo, as the detector last saw it
        self.elected_time: float | None = None
        self._contender: Contender | None = None
        self._detector: Detector | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.server.port}"

    def start(self) -> None:
        self.start_actor()
        self.server.start()
        if self.flags.zk is None:
            self.dispatch(self._elected)
            return
        # Mesos's master watches the leader with a detector and contends with a contender, both
        # on the --zk URL. Their callbacks run on their own threads: hand them to the actor.
        try:
            self._detector = Detector(
                self.flags.zk,
                lambda info: self.dispatch(self._leader_detected, info),
                session_timeout=self.flags.zk_session_timeout,
            ).start()
            self._contender = Contender(
                self.flags.zk,
                self.master_info(),
                on_elected=lambda: self.dispatch(self._elected),
                on_lost=lambda why: self.dispatch(self._lost_leadership, why),
                session_timeout=self.flags.zk_session_timeout,
            ).start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """A clean stop: the znode goes at once, so the next master is elected at once."""
        if self._contender is not None:
            self._contender.withdraw()
        self._shut_down()

    def crash(self) -> None:
        """Die as a SIGKILLed master does: no goodbye to ZooKeeper, so its znode, and its
        leadership in the eyes of everyone else, lasts until its session expires."""
        # A killed process stops answering and sending at once. Letting go of ZooKeeper takes
        # a while (kazoo's threads end), and until the actor and the server stop this master
        # would still forward agents' updates to frameworks and answer their calls.
        self._shut_down()
        if self._contender is not None:
            self._contender.abandon()

    def _shut_down(self) -> None:
        # The server and the actor before `serving`: a request that comes in meanwhile gets a
        # broken connection, not the 503 of a master that is not yet serving.
        self.server.stop()
        self.stop_actor()  # on its own thread (lost leadership) it does not wait for itself
        self.serving = False
        self._fail_pending_calls()
        if self._detector is not None:
            self._detector.stop()

    def _fail_pending_calls(self) -> None:
        """HTTP threads waiting in `call` for a stopped actor would wait out their timeout;
        they get an error at once instead (their connections are closed anyway)."""
        mailbox = self._mailbox
        while True:
            try:
                _, _, future = mailbox.get_nowait()
            except queue.Empty:
                return
            if future is not None and not future.done():
                future.set_exception(Stopped(f"{self.name} is stopped"))

    # -- leadership (Master::detected, Master::lostCandidacy) ---------------------------------

    def _elected(self) -> None:
        if self.serving or not self.alive:
            return
        # Mesos recovers its registry here before it serves; this master's registry is its
        # memory, and a new leader starts empty: agents and frameworks come back to it
        # (CONFORMANCE.md, "Master election and failover").
        self.serving = True
        self.elected_time = time.time()
        self.leader = self.master_info()
        if self.flags.zk is not None:
            log.info("master %s: elected as the leading master", self.address)
        self._allocation_tick()
        agents.ping_agents(self)

    def _leader_detected(self, info: dict | None) -> None:
        # Only the contender decides whether this master leads; the detector says where the
        # others are, for redirects.
        self.leader = self.master_info() if self.serving else info
        if info is None:
            log.info("master %s: no leading master", self.address)

    def _lost_leadership(self, why: str) -> None:
        """Mesos's master exits here ("Lost leadership... committing suicide!"): its state may
        already be stale, and a new leader rebuilds everything from agents and frameworks.
        In one process the same effect is a crash of this master alone."""
        log.warning(
            "master %s: lost leadership (%s); stopping, as a Mesos master exits", self.address, why
        )
        self.crash()

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def master_info(self) -> dict:
        return {
            "id": self.id,
            "ip": protocol.ip_as_uint32(self.ip),
            "port": self.server.port,
            "pid": protocol.pid_string("master", self.ip, self.server.port),
            "hostname": self.hostname,
            "version": MESOS_VERSION,
            "address": {"hostname": self.hostname, "ip": self.ip, "port": self.server.port},
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}],
        }

    # -- SUBSCRIBE, and the framework life cycle (`Master::subscribe`, `removeFramework`) -------

    def subscribe(self, call: dict, principal: str | None) -> Response | EventStream:
        info = dict(call["subscribe"]["framework_info"])
        if principal is not None:
            info.setdefault("principal", principal)
            if info["principal"] != principal:
                return Response.text(
                    400,
                    f"Authenticated principal '{principal}' does not match "
                    f"principal '{info['principal']}' set in `FrameworkInfo`",
                )
        stream = EventStream({"Mesos-Stream-Id": protocol.mesos_id()})
        refusal = validate_framework_info(info)
        # A FrameworkID of "" is none: a new framework (`Master::_subscribe`, `!has_id() ||
        # id() == ""`).
        framework_id = (info.get("id") or {}).get("value") or None
        if refusal is None and framework_id in self.removed_framework_ids:
            refusal = "Framework has been removed"
        if refusal is not None:
            # A refusal after parsing is a 200 stream with one ERROR in it (`Master::_subscribe`).
            stream.send({"type": "ERROR", "error": {"message": refusal}})
            stream.close()
            return stream
        now = time.time()
        framework = self.frameworks.get(framework_id) if framework_id else None
        failed_over = False
        if framework is None:
            # An ID this master has never seen is accepted: after a master failover the new
            # leader rebuilds the framework from its FrameworkInfo (`Master::_subscribe`).
            if framework_id is None:
                framework_id = f"{self.id}-{self._next_framework:04d}"
                self._next_framework += 1
            info["id"] = {"value": framework_id}
            framework = Framework(framework_id, info, info.get("principal"), now)
            self.frameworks[framework_id] = framework
            self.allocator.add_framework(framework_id, role=framework.role, active=False)
        else:
            if framework.principal != info.get("principal"):
                stream.send(
                    {
                        "type": "ERROR",
                        "error": {"message": "Changing framework's principal is not allowed."},
                    }
                )
                stream.close()
                return stream
            self._failover(framework, info)
            failed_over = True
            framework.reregistered_time = now
            if framework.recovered:
                # `connectAndActivateRecoveredFramework`: the first registration this master
                # saw, so both times restart; the tasks that agents reported are its again.
                framework.recovered = False
                framework.registered_time = now
        framework.stream = stream
        framework.stream_id = stream.headers["Mesos-Stream-Id"]
        framework.active = True
        stream.on_close = lambda closed: self.dispatch(self._stream_closed, framework_id, closed)
        # pymesos never lists suppressed roles, so every subscription starts unsuppressed
        # (hierarchical.cpp `updateFramework`).
        self.allocator.revive(framework_id)
        self.allocator.activate_framework(framework_id)
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": framework_id},
                    "heartbeat_interval_seconds": self.flags.heartbeat_interval,
                    "master_info": self.master_info(),
                },
            }
        )
        stream.send({"type": "HEARTBEAT"})
        self._schedule_heartbeat(framework, stream)
        self.count("master/messages_register_framework")
        if failed_over:
            self._update_framework_on_agents(framework)
        # Operator events (`Master::_subscribe`, `sendFrameworkUpdates`).
        if failed_over:
            self.subscribers.framework_updated(framework)
        else:
            self.subscribers.framework_added(framework)
        self._request_allocation()
        return stream

    def _update_framework_on_agents(self, framework: Framework) -> None:
        """UpdateFrameworkMessage after a failover or a RECOVERED framework's SUBSCRIBE: at the
        end of `Master::_subscribe` (HTTP schedulers) Mesos sends the framework ID and its new
        FrameworkInfo to every registered agent, "We have to broadcast because an executor
        might be running on a slave but it currently isn't running any tasks" (master.cpp,
        `foreachvalue (Slave* slave, slaves.registered) { UpdateFrameworkMessage ... }`). The
        agents resend the framework's pending status updates at once (`on_update_framework`);
        an agent that does not know the framework ignores it."""
        for agent in self.agents.values():
            agent.link.send("update_framework", framework.id, framework.info)

    def _failover(self, framework: Framework, info: dict) -> None:
        """A known framework subscribes again: the old stream is told and closed
        (`Master::failoverFramework`)."""
        if framework.failover_timer:
            framework.failover_timer.cancel()
            framework.failover_timer = None
        if framework.stream is not None:
            framework.stream.send({"type": "ERROR", "error": {"message": "Framework failed over"}})
            framework.stream.close()
            framework.stream = None
        self._drop_offers(framework)
        # user and checkpoint cannot change; Mesos keeps the old values silently.
        for key in ("user", "checkpoint"):
            if key in framework.info:
                info[key] = framework.info[key]
            else:
                info.pop(key, None)
        info["id"] = {"value": framework.id}
        framework.info = info

    def _schedule_heartbeat(self, framework: Framework, stream: EventStream) -> None:
        def beat() -> None:
            if framework.stream is stream:
                stream.send({"type": "HEARTBEAT"})
                self.after(self.flags.heartbeat_interval, beat)

        self.after(self.flags.heartbeat_interval, beat)

    def _stream_closed(self, framework_id: str, stream: EventStream) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.stream is not stream:
            return
        log.info("framework %s disconnected", framework_id)
        framework.stream = None
        framework.active = False
        framework.unregistered_time = time.time()
        self.allocator.deactivate_framework(framework_id)
        self._drop_offers(framework)
        timeout = float(framework.info.get("failover_timeout", 0.0))
        framework.failover_timer = self.after(timeout, self._failover_timeout, framework_id)

    def _failover_timeout(self, framework_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is not None and not framework.connected:
            log.info("framework %s failover timeout expired", framework_id)
            self.remove_framework(framework)

    def remove_framework(self, framework: Framework) -> None:
        """TEARDOWN and an expired failover timeout (`Master::teardown`,
        `Master::frameworkFailoverTimeout`, `Master::removeFramework`)."""
        if framework.failover_timer:
            framework.failover_timer.cancel()
        self._drop_offers(framework)
        agents = {task.agent_id for task in framework.tasks.values()}
        for agent in self.agents.values():
            for key in [k for k in agent.executors if k[0] == framework.id]:
                # The allocator forgets all the framework's resources below, executors' too.
                del agent.executors[key]
                agents.add(agent.id)
        for agent_id in agents:
            agent = self.agents.get(agent_id)
            if agent:
                agent.link.send("shutdown_framework", framework.id)
        for task in list(framework.tasks.values()):
            # Recorded as TASK_KILLED, REASON_FRAMEWORK_REMOVED; nobody is left to tell.
            self._set_state(
                task,
                "TASK_KILLED",
                status=task_status(
                    task.id,
                    "TASK_KILLED",
                    "SOURCE_MASTER",
                    reason="REASON_FRAMEWORK_REMOVED",
                    message=f"Framework {framework.id} removed",
                ),
            )
            self._retire_task(framework, task)
        if framework.stream is not None:
            framework.stream.close()
            framework.stream = None
        framework.active = False
        framework.unregistered_time = time.time()
        self.allocator.remove_framework(framework.id)
        del self.frameworks[framework.id]
        self.removed_framework_ids.add(framework.id)
        self.completed_frameworks.append(framework)
        self.subscribers.framework_removed(framework)  # with the FrameworkInfo whole, as Mesos
        framework.info = completed_framework_info(framework.info)

    # -- the other calls (`Master::accept`, `decline`, `kill`, `acknowledge`, ...) -------------

    def handle_call(self, call: dict, stream_id: str | None, principal: str | None) -> Response:
        framework_id = call["framework_id"]["value"]
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return Response.text(400, "Framework cannot be found")
        if principal is not None and principal != framework.principal:
            return Response.text(
                400,
                f"Authenticated principal '{principal}' does not match "
                f"principal '{framework.principal}' set in `FrameworkInfo`",
            )
        if not framework.connected:
            return Response.text(403, "Framework is not subscribed")
        if stream_id is None:
            return Response.text(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != framework.stream_id:
            return Response.text(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the "
                f"stream ID currently associated with framework ID {framework_id}",
            )
        kind = call["type"]
        self.count(f"master/messages_{kind.lower()}")
        handler = {
            "TEARDOWN": lambda: self.remove_framework(framework),
            "ACCEPT": lambda: self.accept(framework, call["accept"]),
            "DECLINE": lambda: self.decline(framework, call["decline"]),
            "REVIVE": lambda: self.revive(framework),
            "SUPPRESS": lambda: self.allocator.suppress(framework.id),
            "KILL": lambda: self.kill(framework, call["kill"]),
            "SHUTDOWN": lambda: self.shutdown_executor(framework, call["shutdown"]),
            "ACKNOWLEDGE": lambda: self.acknowledge(framework, call["acknowledge"]),
            "RECONCILE": lambda: self.reconcile(framework, call["reconcile"].get("tasks", [])),
            "MESSAGE": lambda: self.framework_message(framework, call["message"]),
            "UPDATE_FRAMEWORK": lambda: None,
        }.get(kind)
        if kind == "UNKNOWN":
            return Response.text(501, "501 Not Implemented.")
        if handler is not None:
            handler()
        # REQUEST and the inverse-offer calls are accepted and ignored, as Mesos's allocator does.
        return Response(200 if kind == "UPDATE_FRAMEWORK" else 202)

    def revive(self, framework: Framework) -> None:
        self.allocator.revive(framework.id)
        self._request_allocation()

    def decline(self, framework: Framework, decline: dict) -> None:
        refuse = refuse_seconds(decline)
        for offer_id in decline.get("offer_ids", []):
            offer = framework.offers.get(offer_id["value"])
            if offer is not None:
                framework.offer_counts["declined"] += 1  # only the offers still good
                self._remove_offer(offer)
                self.allocator.recover(framework.id, offer.agent_id, offer.resources, refuse)

    def accept(self, framework: Framework, accept: dict) -> None:
        offer_ids = [o["value"] for o in accept.get("offer_ids", [])]
        operations = accept.get("operations", [])
        error = validate_offers(framework, offer_ids, self.offers)
        if error is not None:
            # `Master::accept`: every task of the call is lost; offers that were still good go
            # back unfiltered.
            for offer_id in offer_ids:
                offer = framework.offers.get(offer_id)
                if offer is not None:
                    self._remove_offer(offer)
                    self.allocator.recover(framework.id, offer.agent_id, offer.resources)
            state = "TASK_DROPPED" if framework.capable("PARTITION_AWARE") else "TASK_LOST"
            for task in launched_tasks(operations):
                self._send_update(
                    framework,
                    task_status(
                        task["task_id"]["value"],
                        state,
                        "SOURCE_MASTER",
                        reason="REASON_INVALID_OFFERS",
                        message=f"Task launched with invalid offers: {error}",
                    ),
                )
            return
        offers = [framework.offers[offer_id] for offer_id in offer_ids]
        framework.offer_counts["accepted"] += len(offers)
        agent_id = offers[0].agent_id
        available = Resources()
        for offer in offers:
            available = available + offer.resources
            self._remove_offer(offer)
        agent = self.agents[agent_id]
        for operation in operations:
            kind = operation.get("type")
            if kind == "LAUNCH":
                for info in operation.get("launch", {}).get("task_infos", []):
                    available = self._launch(
                        framework, agent, info, available, operation_id=operation.get("id")
                    )
            elif kind == "LAUNCH_GROUP":
                group = operation.get("launch_group", {}).get("task_group", {}).get("tasks", [])
                for info in group:
                    self._send_update(
                        framework,
                        task_status(
                            info["task_id"]["value"],
                            "TASK_ERROR",
                            "SOURCE_MASTER",
                            reason="REASON_TASK_GROUP_INVALID",
                            message="Task group cannot be launched: localmesos agents have no "
                            "default executor, so LAUNCH_GROUP is not supported",
                        ),
                    )
            else:
                log.warning("framework %s: ignoring unsupported operation %s", framework.id, kind)
        # What the tasks did not use is declined with this call's filters (`Master::_accept`).
        self.allocator.recover(framework.id, agent_id, available, refuse_seconds(accept))

    def _launch(
        self,
        framework: Framework,
        agent: AgentRecord,
        info: dict,
        available: Resources,
        operation_id: dict | None,
    ) -> Resources:
        task_id = info["task_id"]["value"]
        valid = validate_task(framework, agent, info, available, operation_id)
        if isinstance(valid, str):
            self._send_update(
                framework,
                task_status(
                    task_id,
                    "TASK_ERROR",
                    "SOURCE_MASTER",
                    reason="REASON_TASK_INVALID",
                    message=valid,
                ),
            )
            self.count("master/tasks_error")
            return available
        info = valid.info
        task = Task(info, framework.id, agent.id, valid.resources)
        if "executor" in info:
            task.executor_id = info["executor"]["executor_id"]["value"]
        if valid.executor is not None:
            agent.executors[(framework.id, valid.executor.id)] = valid.executor
        framework.tasks[task_id] = task
        self.subscribers.task_added(task)
        self.count("master/messages_launch_tasks")
        agent.link.send("run_task", {"framework_info": framework.info, "task": info})
        return available - valid.needed

    def kill(self, framework: Framework, kill: dict) -> None:
        task_id = kill["task_id"]["value"]
        task = framework.tasks.get(task_id)
        if task is None:
            # `Master::kill`: an unknown task is answered by an explicit reconciliation.
            self.reconcile(framework, [kill])
            return
        given = kill.get("agent_id", {}).get("value")
        if given is not None and given != task.agent_id:
            return
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.link.send("kill_task", framework.id, task_id, kill.get("kill_policy"))

    def shutdown_executor(self, framework: Framework, shutdown: dict) -> None:
        agent = self.agents.get(shutdown["agent_id"]["value"])
        if agent is not None:
            agent.link.send("shutdown_executor", framework.id, shutdown["executor_id"]["value"])

    def framework_message(self, framework: Framework, message: dict) -> None:
        agent = self.agents.get(message["agent_id"]["value"])
        if agent is None:
            return  # dropped, as Mesos drops messages to unknown agents (`Master::message`)
        self.count("master/messages_framework_to_executor")
        agent.link.send(
            "framework_message", framework.id, message["executor_id"]["value"], message["data"]
        )

    def acknowledge(self, framework: Framework, ack: dict) -> None:
        agent = self.agents.get(ack["agent_id"]["value"])
        if agent is None:
            return
        task_id = ack["task_id"]["value"]
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.status_update_uuid == ack["uuid"]
            and task.status_update_state
            and is_terminal(task.status_update_state)
        ):
            self._retire_task(framework, task)
        agent.link.send("acknowledge", framework.id, task_id, ack["uuid"])

    def reconcile(self, framework: Framework, tasks: list[dict]) -> None:
        """`Master::reconcile`: answers from the master, without uuid, so they need no
        acknowledgement.

        Only `framework.tasks` counts as known, in both forms: Mesos keeps unreachable tasks
        in `framework->unreachableTasks`, which neither the implicit loop (`foreachvalue (Task*
        task, framework->tasks)`) nor `Framework::getTask` looks at (master.cpp
        `Master::reconcile`, framework.cpp `Framework::getTask`). An unreachable task is
        therefore "unreachable" only when asked for with its agent ID.

        Case (2) of Mesos's table, silence while agents recovered from the registry have not
        reregistered, never arises: a new localmesos leader has no registry to recover agents
        from, so it answers at once, as a Mesos master with `--registry=in_memory` does.
        """
        partition_aware = framework.capable("PARTITION_AWARE")
        if not tasks:
            for task in list(framework.tasks.values()):
                self._send_reconciled(framework, task)
            return
        for wanted in tasks:
            task_id = wanted["task_id"]["value"]
            task = framework.tasks.get(task_id)
            if task is not None:
                self._send_reconciled(framework, task)
                continue
            agent_id = wanted.get("agent_id", {}).get("value")
            extra: dict[str, Any] = {"agent_id": {"value": agent_id}} if agent_id else {}
            if agent_id in self.agents:
                state, message = "TASK_GONE", "Reconciliation: Task is unknown to the agent"
            elif agent_id in self.unreachable_agents:
                state, message = "TASK_UNREACHABLE", "Reconciliation: Task is unreachable"
                extra["unreachable_time"] = {
                    "nanoseconds": int(self.unreachable_agents[agent_id] * 1e9)
                }
            else:
                state, message = "TASK_UNKNOWN", "Reconciliation: Task is unknown"
            if not partition_aware:
                state = "TASK_LOST"
            framework.send(
                {
                    "type": "UPDATE",
                    "update": {
                        "status": task_status(
                            task_id,
                            state,
                            "SOURCE_MASTER",
                            reason="REASON_RECONCILIATION",
                            message=message,
                            **extra,
                        )
                    },
                }
            )

    def _send_reconciled(self, framework: Framework, task: Task) -> None:
        state = task.status_update_state or task.state
        if not framework.capable("PARTITION_AWARE") and state in protocol.PARTITION_STATES:
            state = "TASK_LOST"
        extra: dict[str, Any] = {}
        if task.executor_id:
            extra["executor_id"] = task.executor_id  # task_status wraps it
        framework.send(
            {
                "type": "UPDATE",
                "update": {
                    "status": task_status(
                        task.id,
                        state,
                        "SOURCE_MASTER",
                        agent_id=task.agent_id,
                        reason="REASON_RECONCILIATION",
                        message="Reconciliation: Latest task state",
                        **extra,
                    )
                },
            }
        )

    def _send_update(self, framework: Framework, status: dict) -> None:
        framework.send({"type": "UPDATE", "update": {"status": status}})

    # -- offers and allocation (`Master::offer`; the allocator is allocator.py) -----------------

    def _request_allocation(self) -> None:
        """Allocate soon, once, however many events asked for it in the meantime (Mesos
        coalesces these into one `generateOffers`)."""
        if not self._allocation_pending:
            self._allocation_pending = True
            self.dispatch(self._allocate)

    def _allocation_tick(self) -> None:
        self._allocate()
        self.after(self.flags.allocation_interval, self._allocation_tick)

    def _allocate(self) -> None:
        self._allocation_pending = False
        by_framework = self.allocator.allocate()
        for framework_id, by_agent in by_framework.items():
            framework = self.frameworks.get(framework_id)
            offers = []
            for agent_id, resources in by_agent.items():
                agent = self.agents.get(agent_id)
                if framework is None or not framework.connected or agent is None:
                    self.allocator.recover(framework_id, agent_id, resources)
                    continue
                offer = Offer(f"{self.id}-O{self._next_offer}", framework_id, agent_id, resources)
                self._next_offer += 1
                if self.flags.offer_timeout is not None:
                    # `Master::offer`: each offer has its timer.
                    offer.timer = self.after(
                        self.flags.offer_timeout, self._offer_timeout, offer.id
                    )
                self.offers[offer.id] = offer
                framework.offers[offer.id] = offer
                offers.append(self.offer_json(offer, framework))
            if offers:
                self.count("master/messages_offers", len(offers))
                framework.offer_counts["sent"] += len(offers)  # `Master::offer`
                framework.send({"type": "OFFERS", "offers": {"offers": offers}})

    def offer_json(self, offer: Offer, framework: Framework) -> dict:
        agent = self.agents[offer.agent_id]
        executors = sorted(e for f, e in agent.executors if f == framework.id)
        return {
            "id": {"value": offer.id},
            "framework_id": {"value": offer.framework_id},
            "agent_id": {"value": agent.id},
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                "address": {
                    "hostname": agent.hostname,
                    "ip": agent.info["ip"],
                    "port": agent.info["port"],
                },
                "path": "/slave(1)",
            },
            "resources": offer.resources.to_json(framework.role),
            "attributes": agent.info.get("attributes", []),
            "executor_ids": [{"value": e} for e in executors],
        }

    def _offer_timeout(self, offer_id: str) -> None:
        """`Master::offerTimeout`: an offer still unanswered is rescinded, and its resources go
        back without a filter (`rescindOffer`), to be offered again at the next allocation,
        to whichever framework the allocator picks."""
        offer = self.offers.get(offer_id)
        if offer is None:
            return
        log.info("master: offer %s of framework %s timed out", offer_id, offer.framework_id)
        self._remove_offer(offer, rescind=True)
        self.allocator.recover(offer.framework_id, offer.agent_id, offer.resources)

    def _remove_offer(self, offer: Offer, rescind: bool = False) -> None:
        self.offers.pop(offer.id, None)
        if offer.timer is not None:
            offer.timer.cancel()  # `Master::_removeOffer`
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.pop(offer.id, None)
            if rescind:
                framework.offer_counts["rescinded"] += 1  # `Master::rescindOffer`
                framework.send({"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})

    def _drop_offers(self, framework: Framework) -> None:
        """Offers vanish without RESCIND when their framework disconnects or fails over
        (`Master::deactivate`, `Master::_failoverFramework`)."""
        for offer in list(framework.offers.values()):
            self._remove_offer(offer)
            self.allocator.recover(framework.id, offer.agent_id, offer.resources)

    # -- messages from agents about themselves (their handling is in agents.py) ---------------

    @from_agent
    def register_agent(self, info: dict, link: Any) -> None:
        """RegisterSlaveMessage (`Master::registerSlave`)."""
        agents.register_agent(self, info, link)

    @from_agent
    def reregister_agent(self, agent_id: str, info: dict, link: Any, report: dict) -> None:
        """ReregisterSlaveMessage (`Master::reregisterSlave`); see agents.reregister_agent."""
        agents.reregister_agent(self, agent_id, info, link, report)

    @staticmethod
    def _as_seen_by(framework: Framework, status: dict) -> dict:
        """The states that only PARTITION_AWARE frameworks know reach the others as TASK_LOST."""
        if (
            not framework.capable("PARTITION_AWARE")
            and status["state"] in protocol.PARTITION_STATES
        ):
            return {**status, "state": "TASK_LOST"}
        return status

    @from_agent
    def pong(self, agent_id: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.last_pong = time.monotonic()

    def exited(self, pid: str) -> None:
        """libprocess's `exited` for an agent this master links to: its process died and the
        socket closed (`Master::exited`); see agents.agent_exited. Not a link message: the
        link itself reports it (`link.monitor`)."""
        agents.agent_exited(self, pid)

    def mark_unreachable(self, agent: AgentRecord, why: str) -> None:
        """The agent is gone (`Master::markUnreachable`); see agents.mark_unreachable."""
        agents.mark_unreachable(self, agent, why)

    # -- status updates from agents (`Master::statusUpdate`, `exitedExecutor`) -----------------

    @from_agent
    def status_update(self, agent_id: str, update: dict) -> None:
        if agent_id not in self.agents:
            return
        # An agent spawns tasks on its own thread, so a burst of launches can hold its pong
        # back past agent_timeout on a loaded machine; its updates show it is up all the same.
        self.pong(agent_id)
        status = update["status"]
        framework = self.frameworks.get(update["framework_id"])
        if framework is None:
            return
        task = framework.tasks.get(status["task_id"]["value"])
        if task is not None:
            task.status_update_state = status["state"]
            task.status_update_uuid = status.get("uuid")
            self._set_state(task, update.get("latest_state", status["state"]), status=status)
        self.count("master/messages_status_update")
        if framework.connected:
            self._send_update(framework, self._as_seen_by(framework, status))

    @from_agent
    def executor_exited(
        self, agent_id: str, framework_id: str, executor_id: str, status: int
    ) -> None:
        """A custom executor's resources come back, and its framework hears of it with a
        FAILURE event and the raw wait status. Command executors end quietly
        (`Master::exitedExecutor`)."""
        self.count("master/executors_exited")
        agent = self.agents.get(agent_id)
        executor = agent.executors.pop((framework_id, executor_id), None) if agent else None
        if executor is None:
            return  # a command executor, or one of a framework already removed
        self.allocator.recover(framework_id, agent_id, executor.resources)
        framework = self.frameworks.get(framework_id)
        if framework is not None and framework.connected:
            framework.send(
                {
                    "type": "FAILURE",
                    "failure": {
                        "agent_id": {"value": agent_id},
                        "executor_id": {"value": executor_id},
                        "status": status,
                    },
                }
            )

    @from_agent
    def executor_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: str
    ) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None or not framework.connected or agent_id not in self.agents:
            return
        self.count("master/messages_executor_to_framework")
        framework.send(
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": agent_id},
                    "executor_id": {"value": executor_id},
                    "data": data,
                },
            }
        )

    def _set_state(self, task: Task, state: str, status: dict | None = None) -> None:
        previous = task.state
        task.state = state
        if status is not None and (
            not task.statuses or task.statuses[-1]["state"] != status["state"]
        ):
            entry = {"state": status["state"], "timestamp": status.get("timestamp", time.time())}
            if "container_status" in status:
                entry["container_status"] = status["container_status"]
            task.statuses.append(entry)
            # `Master::updateTask`: operators hear of every new state of a task.
            self.subscribers.task_updated(task, status)
        if is_terminal(state) or state == "TASK_UNREACHABLE":
            if previous != state:
                self.count("master/tasks_" + state.removeprefix("TASK_").lower())
            if not task.resources_recovered:
                task.resources_recovered = True
                self.allocator.recover(task.framework_id, task.agent_id, task.resources)

    def _retire_task(self, framework: Framework, task: Task) -> None:
        framework.tasks.pop(task.id, None)
        task.info = {key: value for key, value in task.info.items() if key in TASK_FIELDS}
        framework.completed_tasks.append(task)


def refuse_seconds(call_body: dict) -> float:
    """Filters.refuse_seconds, 5 s when the call has no filters (mesos.proto `Filters`)."""
    return float(call_body.get("filters", {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS))


def launched_tasks(operations: list[dict]) -> list[dict]:
    tasks = []
    for operation in operations:
        if operation.get("type") == "LAUNCH":
            tasks += operation.get("launch", {}).get("task_infos", [])
        elif operation.get("type") == "LAUNCH_GROUP":
            tasks += operation.get("launch_group", {}).get("task_group", {}).get("tasks", [])
    return tasks
