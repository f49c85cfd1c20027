"""The master: the v1 scheduler API, offers, task state, and the read-only and operator
endpoints. It runs on one actor thread (see actors.py); HTTP threads only parse requests.

Section numbers in comments (§1.7, §9.2 ...) point to ../shared/docs/mesos-http-api-notes.md,
which cites the Mesos source for each behaviour.
"""

from __future__ import annotations

import base64
import binascii
import functools
import http.client
import json
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from localmesos import protocol
from localmesos.actors import Actor, Stopped, Timer
from localmesos.election import SESSION_TIMEOUT, Contender, Detector
from localmesos.master.allocator import DEFAULT_REFUSE_SECONDS, Allocator
from localmesos.protocol import Invalid, is_terminal, task_status
from localmesos.resources import Resources
from localmesos.web import EventStream, Request, Response, Server, dumps

log = logging.getLogger("localmesos.master")

MESOS_VERSION = "1.11.0"
HEARTBEAT_SECONDS = 15.0
MAX_COMPLETED_TASKS = 1000
MAX_COMPLETED_FRAMEWORKS = 50
AGENT_CAPABILITIES = ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


# The endpoints that a master which does not lead answers with a redirect to the leader (or 503)
# instead of its own answer (http.cpp, each handler's `if (!master->elected())`, research §2).
LEADER_ONLY = frozenset(
    {
        "/api/v1/scheduler",
        "/api/v1",
        "/api/v1/operator",
        "/state",
        "/state.json",
        "/frameworks",
        "/slaves",
        "/tasks",
        "/teardown",
    }
)


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


# The messages each side accepts over HTTP links: the methods the in-process links call, and no
# other (a link must not be a way to call anything at all). Agent methods carry the `on_` prefix.
MASTER_MESSAGES = frozenset(
    {
        "register_agent",
        "reregister_agent",
        "pong",
        "status_update",
        "executor_exited",
        "executor_message",
    }
)
AGENT_MESSAGES = frozenset(
    {
        "registered",
        "reregistered",
        "ping",
        "run_task",
        "kill_task",
        "shutdown_executor",
        "shutdown_framework",
        "framework_message",
        "acknowledge",
        "update_framework",
    }
)
# A peer that takes longer than this to take a message is treated as gone for that message.
LINK_TIMEOUT = 5.0


class HttpLink:
    """A link to a master or an agent of another process: each message is one POST of
    `{"message": ..., "args": [...]}` to the peer's `/link` endpoint, sent in order by the
    link's own thread. A message that cannot be delivered is dropped, as libprocess drops
    messages to a process that has gone; the protocols above already retry what matters.
    A link passed as an argument travels as `{"$link": URL}`.

    One link (and thread) per URL, shared: agents hand over their link at every
    (re)registration, and masters must not collect threads."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"a link URL is http://HOST:PORT/PATH, not {url!r}")
        self.url = url
        self._host, self._port, self._path = parts.hostname, parts.port, parts.path
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._deliver, name=f"link {url}", daemon=True)
        self._thread.start()

    @classmethod
    def to(cls, url: str) -> HttpLink:
        with _HTTP_LINKS_LOCK:
            link = _HTTP_LINKS.get(url)
            if link is None:
                link = _HTTP_LINKS[url] = cls(url)
            return link

    def send(self, message: str, *args: Any) -> None:
        self._outbox.put(dumps({"message": message, "args": [_encode_arg(a) for a in args]}))

    def _deliver(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            body = self._outbox.get()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        self._host, self._port, timeout=LINK_TIMEOUT
                    )
                connection.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 202:
                    log.warning("link %s: %d %s", self.url, response.status, response.reason)
            except (OSError, http.client.HTTPException) as error:
                log.debug("link %s: dropping a message (%s)", self.url, error)
                if connection is not None:
                    connection.close()
                connection = None


def master_link_url(address: str) -> str:
    """Where agents of other processes send a master ("ip:port") their messages."""
    return f"http://{address}/master/link"


_HTTP_LINKS: dict[str, HttpLink] = {}
_HTTP_LINKS_LOCK = threading.Lock()


def _encode_arg(value: Any) -> Any:
    if isinstance(value, HttpLink):
        return {"$link": value.url}
    return value


def decode_link_message(request: Request, accepted: frozenset[str]) -> tuple[str, list] | Response:
    """The message and arguments of a POST to `/link`, links made HttpLinks again; or the
    response that refuses it."""
    if request.method != "POST":
        return Response.text(405, "Expecting 'POST'", Allow="POST")
    try:
        body = json.loads(request.body)
        message, args = body["message"], list(body["args"])
    except (ValueError, KeyError, TypeError):
        return Response.text(400, 'Expecting {"message": ..., "args": [...]}')
    if message not in accepted:
        return Response.text(400, f"Unknown link message {message!r}")
    decoded = [
        HttpLink.to(a["$link"]) if isinstance(a, dict) and set(a) == {"$link"} else a for a in args
    ]
    return message, decoded


def version_json() -> dict:
    return {
        "version": MESOS_VERSION,
        "build_date": "2026-11-24 00:00:00",
        "build_time": 1795478400.0,
        "build_user": "localmesos",
    }


@dataclass
class Task:
    info: dict
    framework_id: str
    agent_id: str
    resources: Resources
    executor_id: str = ""
    state: str = "TASK_STAGING"
    statuses: list[dict] = field(default_factory=list)
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    resources_recovered: bool = False

    @property
    def id(self) -> str:
        return self.info["task_id"]["value"]


@dataclass
class Offer:
    id: str
    framework_id: str
    agent_id: str
    resources: Resources


@dataclass
class Framework:
    id: str
    info: dict
    principal: str | None
    registered_time: float
    stream: EventStream | None = None
    stream_id: str | None = None
    active: bool = False
    offers: dict[str, Offer] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    unreachable_tasks: dict[str, Task] = field(default_factory=dict)
    completed_tasks: deque[Task] = field(default_factory=lambda: deque(maxlen=MAX_COMPLETED_TASKS))
    failover_timer: Timer | None = None
    reregistered_time: float | None = None
    unregistered_time: float = 0.0
    # Framework::State RECOVERED: a new master learnt of it from a reregistering agent and it
    # has not subscribed yet. Not connected, not active, no offers, no failover timer (§3).
    recovered: bool = False

    @property
    def connected(self) -> bool:
        return self.stream is not None

    @property
    def role(self) -> str:
        return self.info.get("role") or (self.info.get("roles") or ["*"])[0]

    def capable(self, name: str) -> bool:
        return any(c.get("type") == name for c in self.info.get("capabilities", []))

    def send(self, event: dict) -> None:
        if self.stream is not None:
            self.stream.send(event)


@dataclass
class Executor:
    """A custom executor as the master sees it: charged to its framework from the launch of
    its first task until the agent reports that it exited (§5.9)."""

    info: dict  # the ExecutorInfo, with framework_id filled in
    framework_id: str
    agent_id: str
    resources: Resources

    @property
    def id(self) -> str:
        return self.info["executor_id"]["value"]


@dataclass
class AgentRecord:
    id: str
    info: dict  # hostname, ip, port, resources (v1 JSON), attributes
    link: Any  # AgentLink: how the master reaches the agent
    total: Resources
    registered_time: float
    last_pong: float
    # Custom executors running here, by (framework ID, executor ID).
    executors: dict[tuple[str, str], Executor] = field(default_factory=dict)

    @property
    def hostname(self) -> str:
        return self.info["hostname"]

    @property
    def pid(self) -> str:
        return protocol.pid_string("slave(1)", self.info["ip"], self.info["port"])


@dataclass
class MasterFlags:
    ip: str = "127.0.0.1"
    port: int = 5050
    allocation_interval: float = 1.0
    # Mesos declares an agent lost after 5 missed pings 15 s apart; one short timeout here.
    agent_timeout: float = 2.0
    credentials: dict[str, str] | None = None
    heartbeat_interval: float = HEARTBEAT_SECONDS
    work_dir: str = ""
    # --zk: with it the master contends for leadership in ZooKeeper and serves only once
    # elected; without it, it leads alone from the start, as before.
    zk: str | None = None
    # MASTER_CONTENDER_ZK_SESSION_TIMEOUT is 10 s in Mesos, and not a flag; LocalCluster passes
    # less, so that a crashed leader's znode expires, and a successor is elected, sooner.
    zk_session_timeout: float = SESSION_TIMEOUT


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
        self.server = Server(flags.ip, flags.port, self.route, "master")
        self.hostname = protocol.hostname_for(flags.ip)
        # Leadership. HTTP threads read these two without going through the actor, because a
        # standby answers every request with them, and pymesos retries a 503 in a tight loop
        # (§6.4): a reference read is atomic, and a moment's staleness is what a Mesos master
        # shows during an election too. Only the actor's thread writes them.
        self.serving = False  # elected and serving, as Mesos's `elected()` once recovered
        self.leader: dict | None = None  # the leader's MasterInfo, as the detector last saw it
        self.elected_time: float | None = None
        self._contender: Contender | None = None
        self._detector: Detector | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.flags.ip}:{self.server.port}"

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
        # memory, and a new leader starts empty: agents and frameworks come back to it (§3).
        self.serving = True
        self.elected_time = time.time()
        self.leader = self.master_info()
        if self.flags.zk is not None:
            log.info("master %s: elected as the leading master", self.address)
        self._allocation_tick()
        self._ping_agents()

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

    def redirect(self, request: Request) -> Response:
        """http.cpp `Master::Http::redirect`: 307 to the leader's hostname and port, with the
        path and query of the request; a protocol-relative Location, on purpose."""
        leader = self.leader
        if leader is None:
            return Response.text(503, "No leader elected")
        if leader.get("id") == self.id:
            # The detector already names this master, but the contender's word has not
            # arrived yet: Mesos answers so while it recovers its registry.
            return Response.text(503, "Master has not finished recovery")
        address = leader.get("address", {})
        host = address.get("hostname") or leader.get("hostname") or address.get("ip")
        # The server keeps the query parsed; encoded again, it names the same parameters.
        query = urlencode(request.query, doseq=True)
        target = f"//{host}:{address.get('port', leader.get('port'))}{request.path}"
        return Response(307, headers={"Location": target + (f"?{query}" if query else "")})

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def master_info(self) -> dict:
        return {
            "id": self.id,
            "ip": protocol.ip_as_uint32(self.flags.ip),
            "port": self.server.port,
            "pid": protocol.pid_string("master", self.flags.ip, self.server.port),
            "hostname": self.hostname,
            "version": MESOS_VERSION,
            "address": {"hostname": self.hostname, "ip": self.flags.ip, "port": self.server.port},
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}],
        }

    # -- HTTP routing (runs on the HTTP threads) ----------------------------------------------

    def route(self, request: Request) -> Response | EventStream:
        # libprocess also accepts the paths without the process name (§1.1).
        path = request.path
        if path.startswith("/master/"):
            path = path[len("/master") :]
        path = path.rstrip("/") or "/"
        if path == "/version":
            return Response.json(version_json())
        if path == "/health":
            return Response(200)  # any master, leading or not
        if path == "/link":
            # Messages from agents of other processes; a standby drops them (`from_agent`).
            decoded = decode_link_message(request, MASTER_MESSAGES)
            if isinstance(decoded, Response):
                return decoded
            message, args = decoded
            self.dispatch(getattr(self, message), *args)
            return Response(202)
        if path == "/redirect":
            # To the leader, from the leader too; no path of its own (http.cpp `redirect`).
            if self.serving:
                return Response(307, headers={"Location": f"//{self.hostname}:{self.server.port}"})
            return self.redirect(Request(request.method, "", {}, request.headers, b"", ""))
        if not self.serving and path in LEADER_ONLY:
            # http.cpp: `if (!master->elected()) return redirect(request);` (§6.4).
            return self.redirect(request)
        if path == "/api/v1/scheduler":
            return self.scheduler_endpoint(request)
        if path in ("/api/v1", "/api/v1/operator"):
            return self.operator_endpoint(request)
        readers: dict[str, Callable[[Request], Any]] = {
            "/state": lambda _: self.state_json(),
            "/state.json": lambda _: self.state_json(),
            "/frameworks": lambda _: self.frameworks_json(),
            "/slaves": lambda _: self.slaves_json(),
            "/tasks": self.tasks_json,
            "/metrics/snapshot": lambda _: self.metrics(),
        }
        reader = readers.get(path)
        if reader is None:
            return Response(404)
        try:
            return Response.json(self.call(reader, request))
        except ValueError as error:
            return Response.text(400, str(error))

    def _authenticate(self, request: Request) -> str | Response | None:
        """The authenticated principal, None when authentication is off, or a 401 (§10)."""
        credentials = self.flags.credentials
        if credentials is None:
            return None
        refused = Response.text(
            401, "", **{"WWW-Authenticate": 'Basic realm="mesos-master-scheduler"'}
        )
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return refused
        try:
            principal, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, ValueError):
            return refused
        if credentials.get(principal) != secret:
            return refused
        return principal

    def scheduler_endpoint(self, request: Request) -> Response | EventStream:
        principal = self._authenticate(request)
        if isinstance(principal, Response):
            return principal
        call = parse_call(request, "Call")
        if isinstance(call, Response):
            return call
        error = validate_scheduler_call(call)
        if error:
            return Response.text(400, f"Failed to validate scheduler::Call: {error}")
        stream_id = request.headers.get("Mesos-Stream-Id")
        if call["type"] == "SUBSCRIBE":
            if stream_id is not None:
                return Response.text(
                    400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"
                )
            accept = request.headers.get("Accept", JSON)
            if not any(
                kind.split(";")[0].strip() in (JSON, PROTOBUF, "*/*", "application/*")
                for kind in accept.split(",")
            ):
                return Response.text(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
            return self.call(self.subscribe, call, principal)
        return self.call(self.handle_call, call, stream_id, principal)

    def operator_endpoint(self, request: Request) -> Response:
        call = parse_call(request, "master.Call")  # only `type` matters here
        if isinstance(call, Response):
            return call
        kind = call.get("type")
        readers: dict[str, Callable[[], dict]] = {
            "GET_HEALTH": lambda: {"healthy": True},
            "GET_VERSION": lambda: {"version_info": version_json()},
            "GET_STATE": self.v1_state,
            "GET_AGENTS": self.v1_agents,
            "GET_FRAMEWORKS": self.v1_frameworks,
            "GET_TASKS": self.v1_tasks,
        }
        if kind is None:
            return Response.text(
                400, "Failed to validate master::Call: Expecting 'type' to be present"
            )
        reader = readers.get(kind)
        if reader is None:
            return Response.text(501, f"localmesos does not implement the operator call {kind}")
        body = self.call(reader)
        return Response.json({"type": kind, kind.lower(): body})

    # -- SUBSCRIBE, and the framework life cycle (§3) -------------------------------------------

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
        framework_id = (info.get("id") or {}).get("value")
        if refusal is None and framework_id in self.removed_framework_ids:
            refusal = "Framework has been removed"
        if refusal is not None:
            # A refusal after parsing is a 200 stream with one ERROR in it (§1.9).
            stream.send({"type": "ERROR", "error": {"message": refusal}})
            stream.close()
            return stream
        now = time.time()
        framework = self.frameworks.get(framework_id) if framework_id else None
        failed_over = False
        if framework is None:
            # An ID this master has never seen is accepted: after a master failover the new
            # leader rebuilds the framework from its FrameworkInfo (`Master::_subscribe`, §3.3).
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
        # pymesos never lists suppressed roles, so every subscription starts unsuppressed (§2.6).
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
        """A known framework subscribes again: the old stream is told and closed (§3.2)."""
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
        """TEARDOWN and an expired failover timeout (§3.6, §3.7)."""
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

    # -- the other calls (§2) -------------------------------------------------------------------

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
                self._remove_offer(offer)
                self.allocator.recover(framework.id, offer.agent_id, offer.resources, refuse)

    def accept(self, framework: Framework, accept: dict) -> None:
        offer_ids = [o["value"] for o in accept.get("offer_ids", [])]
        operations = accept.get("operations", [])
        error = self._validate_offers(framework, offer_ids)
        if error is not None:
            # §9.2: every task of the call is lost; offers that were still good go back unfiltered.
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
        # What the tasks did not use is declined with this call's filters (§9.4).
        self.allocator.recover(framework.id, agent_id, available, refuse_seconds(accept))

    def _validate_offers(self, framework: Framework, offer_ids: list[str]) -> str | None:
        if not offer_ids:
            return "No offers specified"
        if len(set(offer_ids)) != len(offer_ids):
            duplicate = next(o for o in offer_ids if offer_ids.count(o) > 1)
            return f"Duplicate offer {duplicate} in offers list"
        agents = set()
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id)
            if offer is None:
                return f"Offer {offer_id} is no longer valid"
            if offer.framework_id != framework.id:
                return (
                    f"Offer {offer_id} has invalid framework {offer.framework_id} while "
                    f"framework {framework.id} is expected"
                )
            agents.add(offer.agent_id)
        if len(agents) > 1:
            return (
                "Aggregated offers must belong to one single agent. Offer "
                f"{offer_ids[-1]} uses agent {sorted(agents)[-1]} and agent "
                f"{sorted(agents)[0]}"
            )
        return None

    def _launch(
        self,
        framework: Framework,
        agent: AgentRecord,
        info: dict,
        available: Resources,
        operation_id: dict | None,
    ) -> Resources:
        task_id = info["task_id"]["value"]
        resources, error = None, None
        if operation_id is not None:
            error = "The `id` field is only valid for operations that apply to resource providers"
        else:
            error = protocol_task_id_error(task_id)
        if error is None and task_id in framework.tasks:
            error = f"Task has duplicate ID: {task_id}"
        if error is None and task_id in framework.unreachable_tasks:
            error = f"Task reuses the ID of an unreachable task: {task_id}"
        if error is None and info["agent_id"]["value"] != agent.id:
            error = f"Task uses invalid agent: {info['agent_id']['value']}"
        if error is None:
            try:
                resources = Resources.from_json(info.get("resources", []))
            except ValueError as problem:
                error = f"Task uses invalid resources: {problem}"
        if error is None and not resources:
            error = "Task uses no resources"
        if error is None and ("command" in info) == ("executor" in info):
            error = (
                "Task should have at least one (but not both) of CommandInfo or "
                "ExecutorInfo present"
            )
        executor: Executor | None = None  # an executor that this task starts on the agent
        if error is None and "executor" in info:
            error, executor = self._executor_for(framework, agent, info["executor"])
            if error is None:
                # The agent gets the ExecutorInfo with the framework ID filled in.
                info = {**info, "executor": self._with_framework_id(framework, info["executor"])}
        grace = info.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds", 0)
        if error is None and grace < 0:
            error = "Task's 'kill_policy.grace_period' must be non-negative"
        needed = resources
        if error is None and executor is not None:
            needed = resources + executor.resources
        if error is None and not available.contains(needed):
            error = (
                f"Total resources {resources_text(needed, framework.role)} required by "
                "task and its executor is more than available "
                f"{resources_text(available, framework.role)}"
            )
        if error is not None:
            self._send_update(
                framework,
                task_status(
                    task_id,
                    "TASK_ERROR",
                    "SOURCE_MASTER",
                    reason="REASON_TASK_INVALID",
                    message=error,
                ),
            )
            self.count("master/tasks_error")
            return available
        task = Task(info, framework.id, agent.id, resources)
        if "executor" in info:
            task.executor_id = info["executor"]["executor_id"]["value"]
        if executor is not None:
            agent.executors[(framework.id, executor.id)] = executor
        framework.tasks[task_id] = task
        self.count("master/messages_launch_tasks")
        agent.link.send("run_task", {"framework_info": framework.info, "task": info})
        return available - needed

    @staticmethod
    def _with_framework_id(framework: Framework, executor_info: dict) -> dict:
        return {**executor_info, "framework_id": {"value": framework.id}}

    def _executor_for(
        self, framework: Framework, agent: AgentRecord, executor_info: dict
    ) -> tuple[str | None, Executor | None]:
        """master/validation.cpp `executor::validate` and `validateCompatibleExecutorInfo`:
        an error, or None and the executor that the task starts (None if it runs already)."""
        executor_id = executor_info["executor_id"]["value"]
        kind = executor_info.get("type", "UNKNOWN")
        if kind == "CUSTOM" and "command" not in executor_info:
            return "'ExecutorInfo.command' must be set for 'CUSTOM' executor", None
        problem = protocol_task_id_error(executor_id)
        if problem is not None:
            return problem.replace("Task ID", "Executor ID", 1), None
        grace = executor_info.get("shutdown_grace_period", {}).get("nanoseconds", 0)
        if grace < 0:
            return "ExecutorInfo's 'shutdown_grace_period' must be non-negative", None
        given = executor_info.get("framework_id", {}).get("value")
        if given is not None and given != framework.id:
            return (
                f"ExecutorInfo has an invalid FrameworkID (Actual: {given} vs "
                f"Expected: {framework.id})"
            ), None
        try:
            resources = Resources.from_json(executor_info.get("resources", []))
        except ValueError as problem_text:
            return f"Executor uses invalid resources: {problem_text}", None
        info = self._with_framework_id(framework, executor_info)
        running = agent.executors.get((framework.id, executor_id))
        if running is not None and running.info != info:
            line = "-" * 60
            return (
                "ExecutorInfo is not compatible with existing ExecutorInfo with same "
                f"ExecutorID.\n{line}\nExisting ExecutorInfo:\n{json.dumps(running.info)}\n"
                f"{line}\nExecutorInfo:\n{json.dumps(info)}\n{line}\n"
            ), None
        # The checks that only a LAUNCH makes (a LAUNCH_GROUP wants the DEFAULT executor).
        if kind not in ("UNKNOWN", "CUSTOM"):
            return "'ExecutorInfo.type' must be 'CUSTOM'", None
        if "command" not in executor_info:
            return "'ExecutorInfo.command' must be set", None
        if running is not None:
            return None, None
        for name, minimum, unit in (("cpus", 0.01, "CPUs"), ("mem", 32, "memory")):
            # Mesos launches such an executor, but warns that this will be refused one day.
            amount = resources.scalar(name)
            if amount < minimum:
                log.warning(
                    "Executor '%s' uses less %s (%s) than the minimum required (%s). Please "
                    "update your executor, as this will be mandatory in future releases.",
                    executor_id,
                    unit,
                    amount or "None",
                    "32MB" if name == "mem" else minimum,
                )
        return None, Executor(info, framework.id, agent.id, resources)

    def kill(self, framework: Framework, kill: dict) -> None:
        task_id = kill["task_id"]["value"]
        task = framework.tasks.get(task_id)
        if task is None:
            # §2.7: an unknown task is answered by an explicit reconciliation.
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
            return  # dropped, as Mesos drops messages to unknown agents (§5.8)
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
        """§4.5: answers from the master, without uuid, so they need no acknowledgement.

        Only `framework.tasks` counts as known, in both forms: Mesos keeps unreachable tasks
        in `framework->unreachableTasks`, which neither the implicit loop (`foreachvalue (Task*
        task, framework->tasks)`) nor `Framework::getTask` looks at (master.cpp
        `Master::reconcile`, framework.cpp `Framework::getTask`; research §3, §9 item 6). An
        unreachable task is therefore "unreachable" only when asked for with its agent ID.

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
            extra["executor_id"] = {"value": task.executor_id}
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

    # -- offers and allocation (§8) -------------------------------------------------------------

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
                self.offers[offer.id] = offer
                framework.offers[offer.id] = offer
                offers.append(self.offer_json(offer, framework))
            if offers:
                self.count("master/messages_offers", len(offers))
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

    def _remove_offer(self, offer: Offer, rescind: bool = False) -> None:
        self.offers.pop(offer.id, None)
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.pop(offer.id, None)
            if rescind:
                framework.send({"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})

    def _drop_offers(self, framework: Framework) -> None:
        """Offers vanish without RESCIND when their framework disconnects or fails over (§8.6)."""
        for offer in list(framework.offers.values()):
            self._remove_offer(offer)
            self.allocator.recover(framework.id, offer.agent_id, offer.resources)

    # -- agents ---------------------------------------------------------------------------------

    @from_agent
    def register_agent(self, info: dict, link: Any) -> None:
        pid = protocol.pid_string("slave(1)", info["ip"], info["port"])
        for known in self.agents.values():
            if known.pid == pid:
                # A retry whose first attempt got through: Mesos answers again with the same ID
                # ("Agent ... already registered, resending acknowledgement").
                known.link = link
                link.send("registered", known.id, self.master_info(), self.flags.agent_timeout)
                return
        agent_id = f"{self.id}-S{self._next_agent}"
        self._next_agent += 1
        now = time.time()
        total = Resources.from_json(info["resources"])
        self.agents[agent_id] = AgentRecord(agent_id, info, link, total, now, time.monotonic())
        self.allocator.add_agent(agent_id, total)
        self.count("master/slave_registrations")
        # MasterSlaveConnection.total_ping_timeout_seconds: how long the agent waits for a ping
        # before it looks for the master again and reregisters.
        link.send("registered", agent_id, self.master_info(), self.flags.agent_timeout)
        self._request_allocation()

    @from_agent
    def reregister_agent(self, agent_id: str, info: dict, link: Any, report: dict) -> None:
        """ReregisterSlaveMessage: an agent that has an ID comes back, after a master failover
        (this master has never seen it), after a partition (this master marked it
        unreachable), or after it missed pings from a master that still knows it.

        ``report`` holds what the agent runs: `tasks` (each with its TaskInfo, framework ID,
        latest `state`, and the state and uuid of its oldest unacknowledged update),
        `executors` (custom ExecutorInfos, framework_id set) and `frameworks` (FrameworkInfos).
        """
        self.count("master/messages_reregister_slave")
        # Frameworks first: a task here lives in its framework. (Mesos keeps tasks in the
        # Slave and attaches them to a framework recovered afterwards, in
        # `updateSlaveFrameworks`; its updates for such a framework are dropped, just as
        # they are not sent here to a framework that is not connected.)
        self._recover_frameworks(agent_id, report["frameworks"])
        known = self.agents.get(agent_id)
        if known is not None:
            self._reregister_known_agent(known, info, link, report)
        else:
            self._readmit_agent(agent_id, info, link, report)
        self._request_allocation()

    def _reregister_known_agent(
        self, agent: AgentRecord, info: dict, link: Any, report: dict
    ) -> None:
        """`___reregisterSlave` and `reconcileKnownSlave`: the agent is still registered here.
        Tasks that the master has and the agent does not (a RunTask lost on the way) go back
        to the agent for reconciliation; executors the agent no longer has are removed."""
        agent.link = link
        agent.info = info
        agent.last_pong = time.monotonic()
        reported = {(t["framework_id"], t["task"]["task_id"]["value"]) for t in report["tasks"]}
        reconciliations: list[dict] = []
        for framework in self.frameworks.values():
            for task in framework.tasks.values():
                if task.agent_id == agent.id and (framework.id, task.id) not in reported:
                    log.warning(
                        "task %s of framework %s unknown to agent %s during re-registration: "
                        "reconciling with the agent",
                        task.id,
                        framework.id,
                        agent.id,
                    )
                    reconciliations.append(
                        {
                            "framework_id": framework.id,
                            "framework": framework.info,
                            "task_id": task.id,
                        }
                    )
        executors = {
            (e["framework_id"]["value"], e["executor_id"]["value"]) for e in report["executors"]
        }
        for key in [k for k in agent.executors if k not in executors]:
            executor = agent.executors.pop(key)
            self.allocator.recover(executor.framework_id, agent.id, executor.resources)
        self.count("master/slave_reregistrations")
        link.send(
            "reregistered", agent.id, self.master_info(), self.flags.agent_timeout, reconciliations
        )

    def _readmit_agent(self, agent_id: str, info: dict, link: Any, report: dict) -> None:
        """`__reregisterSlave` for an agent that is not registered here: one this master marked
        unreachable ("Unreachable agent re-reregistered"), or one it has never seen, as after
        a master failover with no persistent registry ("Unknown agent reregistered"). Its
        tasks and executors are the master's again, and connected frameworks hear each task's
        current state. Nothing is killed, PARTITION_AWARE or not (Mesos >= 1.5, MESOS-7215)."""
        unreachable = agent_id in self.unreachable_agents
        message = (
            "Unreachable agent re-reregistered" if unreachable else "Unknown agent reregistered"
        )
        log.info("agent %s (%s): %s", agent_id, info["hostname"], message)
        total = Resources.from_json(info["resources"])
        agent = AgentRecord(agent_id, info, link, total, time.time(), time.monotonic())
        self.agents[agent_id] = agent
        self.allocator.add_agent(agent_id, total)
        self.unreachable_agents.pop(agent_id, None)
        for executor_info in report["executors"]:
            framework_id = executor_info["framework_id"]["value"]
            if framework_id not in self.frameworks:
                continue  # a framework removed here: it is shut down on the agent below
            executor = Executor(
                executor_info,
                framework_id,
                agent_id,
                Resources.from_json(executor_info.get("resources", [])),
            )
            agent.executors[(framework_id, executor.id)] = executor
            self.allocator.add_used(framework_id, agent_id, executor.resources)
        for reported in report["tasks"]:
            framework = self.frameworks.get(reported["framework_id"])
            if framework is None:
                continue
            task = self._readmit_task(framework, agent_id, reported)
            extra: dict[str, Any] = {}
            if task.executor_id:
                extra["executor_id"] = {"value": task.executor_id}
            status = task_status(
                task.id,
                task.state,
                "SOURCE_MASTER",
                agent_id=agent_id,
                reason="REASON_AGENT_REREGISTERED",
                message=message,
                **extra,
            )
            if framework.connected:
                self._send_update(framework, self._as_seen_by(framework, status))
        self.count("master/slave_reregistrations")
        link.send("reregistered", agent_id, self.master_info(), self.flags.agent_timeout, [])
        for framework_info in report["frameworks"]:
            framework_id = framework_info["id"]["value"]
            if framework_id in self.removed_framework_ids:
                # Removed while the agent was away: "Shutting down framework ... because the
                # framework has been shutdown at the master".
                link.send("shutdown_framework", framework_id)

    def _readmit_task(self, framework: Framework, agent_id: str, reported: dict) -> Task:
        info = reported["task"]
        task_id = info["task_id"]["value"]
        old = framework.unreachable_tasks.pop(task_id, None)
        # MESOS-9940: a task the master had declared terminal may come back alive.
        for done in [t for t in framework.completed_tasks if t.id == task_id]:
            framework.completed_tasks.remove(done)
        state = reported["state"]
        task = Task(
            info,
            framework.id,
            agent_id,
            Resources.from_json(info.get("resources", [])),
            executor_id=(info.get("executor") or {}).get("executor_id", {}).get("value", ""),
            state=state,
            statuses=old.statuses if old is not None else [],
            status_update_state=reported.get("status_update_state"),
            status_update_uuid=reported.get("status_update_uuid"),
        )
        if not task.statuses or task.statuses[-1]["state"] != state:
            task.statuses.append({"state": state, "timestamp": time.time()})
        framework.tasks[task_id] = task
        if is_terminal(state):
            task.resources_recovered = True  # it waits only for its update's acknowledgement
        else:
            self.allocator.add_used(framework.id, agent_id, task.resources)
        return task

    def _recover_frameworks(self, agent_id: str, infos: list[dict]) -> None:
        """`updateSlaveFrameworks`: a framework that the agent runs and this master does not
        know is recovered from its FrameworkInfo, in state RECOVERED ("Recovering framework X
        from reregistering agent"); removed ones are not."""
        for info in infos:
            framework_id = info["id"]["value"]
            if framework_id in self.frameworks or framework_id in self.removed_framework_ids:
                continue
            log.info("recovering framework %s from reregistering agent %s", framework_id, agent_id)
            framework = Framework(
                framework_id, dict(info), info.get("principal"), time.time(), recovered=True
            )
            self.frameworks[framework_id] = framework
            self.allocator.add_framework(framework_id, role=framework.role, active=False)

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

    def _ping_agents(self) -> None:
        now = time.monotonic()
        for agent in list(self.agents.values()):
            if now - agent.last_pong > self.flags.agent_timeout:
                self.mark_unreachable(agent, "health check timed out")
            else:
                agent.link.send("ping")
        self.after(self.flags.agent_timeout / 5, self._ping_agents)

    def mark_unreachable(self, agent: AgentRecord, why: str) -> None:
        """§4.4: the agent is gone. In Mesos's order: the tasks' updates, RESCIND for its
        offers, then FAILURE to every connected framework."""
        log.info("agent %s (%s) is unreachable: %s", agent.id, agent.hostname, why)
        self.count("master/slave_unreachable_scheduled")
        for framework in self.frameworks.values():
            state = "TASK_UNREACHABLE" if framework.capable("PARTITION_AWARE") else "TASK_LOST"
            for task in [t for t in framework.tasks.values() if t.agent_id == agent.id]:
                extra: dict[str, Any] = {}
                if task.executor_id:
                    extra["executor_id"] = {"value": task.executor_id}
                status = task_status(
                    task.id,
                    state,
                    "SOURCE_MASTER",
                    agent_id=agent.id,
                    reason="REASON_AGENT_REMOVED",
                    message=why,
                    unreachable_time={"nanoseconds": int(time.time() * 1e9)},
                    **extra,
                )
                task.status_update_state = state
                task.status_update_uuid = None
                self._set_state(task, state, status=status)
                del framework.tasks[task.id]
                framework.unreachable_tasks[task.id] = task
                self._send_update(framework, status)
        for offer in [o for o in self.offers.values() if o.agent_id == agent.id]:
            self._remove_offer(offer, rescind=True)
        self.allocator.remove_agent(agent.id)
        del self.agents[agent.id]
        self.unreachable_agents[agent.id] = time.time()
        self.count("master/slave_unreachable_completed")
        self.count("master/slave_removals")
        self.count("master/slave_removals/reason_unhealthy")
        for framework in self.frameworks.values():
            framework.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent.id}}})

    # -- status updates from agents (§3.9) ------------------------------------------------------

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
        FAILURE event and the raw wait status. Command executors end quietly (§2.20)."""
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
        if is_terminal(state) or state == "TASK_UNREACHABLE":
            if previous != state:
                self.count("master/tasks_" + state.removeprefix("TASK_").lower())
            if not task.resources_recovered:
                task.resources_recovered = True
                self.allocator.recover(task.framework_id, task.agent_id, task.resources)

    def _retire_task(self, framework: Framework, task: Task) -> None:
        framework.tasks.pop(task.id, None)
        framework.completed_tasks.append(task)

    # -- read-only endpoints (§7) ---------------------------------------------------------------

    def task_json(self, task: Task) -> dict:
        framework = self.frameworks.get(task.framework_id)
        role = framework.role if framework else "*"
        result = {
            "id": task.id,
            "name": task.info.get("name", ""),
            "framework_id": task.framework_id,
            "executor_id": task.executor_id,
            "slave_id": task.agent_id,
            "state": task.state,
            "resources": task.resources.to_flat(),
            "role": role,
            "statuses": task.statuses,
        }
        for key in ("labels", "discovery", "container", "health_check"):
            if key in task.info:
                result[key] = task.info[key]
        return result

    def framework_json(self, framework: Framework) -> dict:
        info = framework.info
        used = Resources()
        for task in framework.tasks.values():
            used = used + task.resources
        executors = self.framework_executors(framework.id)
        for executor in executors:
            used = used + executor.resources
        offered = Resources()
        for offer in framework.offers.values():
            offered = offered + offer.resources
        result = {
            "id": framework.id,
            "name": info.get("name", ""),
            "used_resources": used.to_flat(),
            "offered_resources": offered.to_flat(),
            "capabilities": [c["type"] for c in info.get("capabilities", []) if "type" in c],
            "hostname": info.get("hostname", ""),
            "webui_url": info.get("webui_url", ""),
            "active": framework.active,
            "connected": framework.connected,
            "recovered": framework.recovered,
            "user": info.get("user", ""),
            "failover_timeout": info.get("failover_timeout", 0.0),
            "checkpoint": info.get("checkpoint", False),
            "registered_time": framework.registered_time,
            "unregistered_time": framework.unregistered_time,
            "reregistered_time": framework.reregistered_time or framework.registered_time,
            "resources": (used + offered).to_flat(),
            "role": framework.role,
            "tasks": [self.task_json(t) for t in framework.tasks.values()],
            "unreachable_tasks": [self.task_json(t) for t in framework.unreachable_tasks.values()],
            "completed_tasks": [self.task_json(t) for t in framework.completed_tasks],
            "offers": [
                {
                    "id": o.id,
                    "framework_id": o.framework_id,
                    "slave_id": o.agent_id,
                    "resources": o.resources.to_flat(),
                }
                for o in framework.offers.values()
            ],
            "executors": [self.executor_json(e, framework.role) for e in executors],
        }
        # Only v0 (libprocess) frameworks have a pid; the principal appears only when set.
        if framework.principal:
            result["principal"] = framework.principal
        return result

    def framework_executors(self, framework_id: str) -> list[Executor]:
        return [
            executor
            for agent in self.agents.values()
            for executor in agent.executors.values()
            if executor.framework_id == framework_id
        ]

    def executor_json(self, executor: Executor, role: str) -> dict:
        """An entry of a framework's `executors` in /master/state: the ExecutorInfo, flat."""
        info = executor.info
        return {
            "executor_id": executor.id,
            "name": info.get("name", ""),
            "framework_id": executor.framework_id,
            "command": info.get("command", {}),
            "resources": executor.resources.to_flat(),
            "role": role,
            "slave_id": executor.agent_id,
            "type": info.get("type", "CUSTOM"),
        }

    def agent_usage(self, agent: AgentRecord) -> tuple[Resources, Resources]:
        """What the agent's live tasks and executors use, and what its offers hold."""
        used = Resources()
        offered = Resources()
        for framework in self.frameworks.values():
            for task in framework.tasks.values():
                if task.agent_id == agent.id and not task.resources_recovered:
                    used = used + task.resources
        for executor in agent.executors.values():
            used = used + executor.resources
        for offer in self.offers.values():
            if offer.agent_id == agent.id:
                offered = offered + offer.resources
        return used, offered

    def agent_json(self, agent: AgentRecord) -> dict:
        used, offered = self.agent_usage(agent)
        return {
            "id": agent.id,
            "pid": agent.pid,
            "hostname": agent.hostname,
            "port": agent.info["port"],
            "registered_time": agent.registered_time,
            "resources": agent.total.to_flat(),
            "used_resources": used.to_flat(),
            "offered_resources": offered.to_flat(),
            "reserved_resources": {},
            "unreserved_resources": agent.total.to_flat(),
            "attributes": {},
            "active": True,
            "deactivated": False,
            "version": MESOS_VERSION,
            "capabilities": AGENT_CAPABILITIES,
        }

    def state_json(self) -> dict:
        now = time.time()
        return {
            "version": MESOS_VERSION,
            "build_date": version_json()["build_date"],
            "build_time": version_json()["build_time"],
            "build_user": version_json()["build_user"],
            "start_time": self.start_time,
            "elected_time": self.elected_time or self.start_time,
            "id": self.id,
            "pid": protocol.pid_string("master", self.flags.ip, self.server.port),
            "hostname": self.hostname,
            "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING"],
            # stout writes these counts as doubles.
            "activated_slaves": float(len(self.agents)),
            "deactivated_slaves": 0.0,
            "unreachable_slaves": float(len(self.unreachable_agents)),
            "leader": (self.leader or self.master_info())["pid"],
            "leader_info": self.leader or self.master_info(),
            "log_dir": "",
            "flags": self.flags_json(),
            "slaves": [self.agent_json(a) for a in self.agents.values()],
            "recovered_slaves": [],
            "frameworks": [self.framework_json(f) for f in self.frameworks.values()],
            "completed_frameworks": [self.framework_json(f) for f in self.completed_frameworks],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
            "now": now,
        }

    def flags_json(self) -> dict:
        flags = {
            "allocation_interval": protocol.format_duration(self.flags.allocation_interval),
            "agent_ping_timeout": protocol.format_duration(self.flags.agent_timeout / 5),
            "max_agent_ping_timeouts": "5",
            "authenticate_http_frameworks": str(self.flags.credentials is not None).lower(),
            "ip": self.flags.ip,
            "port": str(self.server.port),
            "work_dir": self.flags.work_dir,
            "version": "false",
        }
        if self.flags.zk is not None:
            flags["zk"] = self.flags.zk
            flags["zk_session_timeout"] = protocol.format_duration(self.flags.zk_session_timeout)
            # No replicated log: the registry is this master's memory (README, differences).
            flags["registry"] = "in_memory"
        if self.flags.credentials is not None:
            flags["http_framework_authenticators"] = "basic"
        return flags

    def frameworks_json(self) -> dict:
        return {
            "frameworks": [self.framework_json(f) for f in self.frameworks.values()],
            "completed_frameworks": [self.framework_json(f) for f in self.completed_frameworks],
            "unregistered_frameworks": [],
        }

    def slaves_json(self) -> dict:
        return {
            "slaves": [self.agent_json(a) for a in self.agents.values()],
            "recovered_slaves": [],
        }

    def tasks_json(self, request: Request) -> dict:
        limit = _int_arg(request, "limit", 100)
        offset = _int_arg(request, "offset", 0)
        order = request.arg("order") or "des"
        if order not in ("asc", "des"):
            raise ValueError(f"Unknown 'order' value '{order}': expected 'asc' or 'des'")
        framework_filter = request.arg("framework_id")
        task_filter = request.arg("task_id")
        tasks: list[Task] = []
        frameworks = [*self.frameworks.values(), *self.completed_frameworks]
        for framework in frameworks:
            if framework_filter and framework.id != framework_filter:
                continue
            tasks += [
                *framework.tasks.values(),
                *framework.unreachable_tasks.values(),
                *framework.completed_tasks,
            ]
        if task_filter:
            tasks = [t for t in tasks if t.id == task_filter]
        tasks.sort(
            key=lambda t: t.statuses[0]["timestamp"] if t.statuses else 0.0, reverse=order == "des"
        )
        return {"tasks": [self.task_json(t) for t in tasks[offset : offset + limit]]}

    def metrics(self) -> dict:
        tasks = [t for f in self.frameworks.values() for t in f.tasks.values()]
        gauges: dict[str, float] = {
            "master/elected": int(self.serving),
            "master/uptime_secs": time.time() - self.start_time,
            "master/frameworks_active": sum(f.active for f in self.frameworks.values()),
            "master/frameworks_inactive": sum(not f.active for f in self.frameworks.values()),
            "master/frameworks_connected": sum(f.connected for f in self.frameworks.values()),
            "master/frameworks_disconnected": sum(
                not f.connected for f in self.frameworks.values()
            ),
            "master/slaves_active": len(self.agents),
            "master/slaves_connected": len(self.agents),
            "master/slaves_disconnected": 0,
            "master/slaves_inactive": 0,
            "master/slaves_unreachable": len(self.unreachable_agents),
            "master/outstanding_offers": len(self.offers),
        }
        for state in ("staging", "starting", "running", "killing"):
            gauges[f"master/tasks_{state}"] = sum(t.state == f"TASK_{state.upper()}" for t in tasks)
        for state in (
            "finished",
            "failed",
            "killed",
            "lost",
            "error",
            "dropped",
            "unreachable",
            "gone",
            "gone_by_operator",
        ):
            gauges[f"master/tasks_{state}"] = self.counters.get(f"master/tasks_{state}", 0)
        total = self.allocator.total()
        used = Resources()
        for task in tasks:
            if not task.resources_recovered:
                used = used + task.resources
        for name in ("cpus", "mem", "disk", "gpus"):
            gauges[f"master/{name}_total"] = total.scalar(name)
            gauges[f"master/{name}_used"] = used.scalar(name)
            gauges[f"master/{name}_percent"] = (
                used.scalar(name) / total.scalar(name) if total.scalar(name) else 0.0
            )
        for key, value in self.counters.items():
            gauges.setdefault(key, value)
        return gauges

    # -- v1 operator API (§7.8) -----------------------------------------------------------------

    def v1_task(self, task: Task) -> dict:
        result = {
            "name": task.info.get("name", ""),
            "task_id": {"value": task.id},
            "framework_id": {"value": task.framework_id},
            "agent_id": {"value": task.agent_id},
            "state": task.state,
            "resources": task.resources.to_json(),
            "statuses": [{"task_id": {"value": task.id}, **s} for s in task.statuses],
        }
        if task.executor_id:
            result["executor_id"] = {"value": task.executor_id}
        return result

    def v1_tasks(self) -> dict:
        frameworks = list(self.frameworks.values())
        return {
            "tasks": [self.v1_task(t) for f in frameworks for t in f.tasks.values()],
            "unreachable_tasks": [
                self.v1_task(t) for f in frameworks for t in f.unreachable_tasks.values()
            ],
            "completed_tasks": [
                self.v1_task(t)
                for f in [*frameworks, *self.completed_frameworks]
                for t in f.completed_tasks
            ],
        }

    def v1_framework(self, framework: Framework) -> dict:
        return {
            "framework_info": framework.info,
            "active": framework.active,
            "connected": framework.connected,
            "recovered": framework.recovered,
            "registered_time": {"nanoseconds": int(framework.registered_time * 1e9)},
        }

    def v1_frameworks(self) -> dict:
        return {
            "frameworks": [self.v1_framework(f) for f in self.frameworks.values()],
            "completed_frameworks": [self.v1_framework(f) for f in self.completed_frameworks],
        }

    def v1_agents(self) -> dict:
        agents = []
        for agent in self.agents.values():
            used, offered = self.agent_usage(agent)
            agents.append(
                {
                    "agent_info": {
                        "hostname": agent.hostname,
                        "port": agent.info["port"],
                        "id": {"value": agent.id},
                        "resources": agent.total.to_json(),
                    },
                    "active": True,
                    "deactivated": False,
                    "version": MESOS_VERSION,
                    "pid": agent.pid,
                    "registered_time": {"nanoseconds": int(agent.registered_time * 1e9)},
                    "total_resources": agent.total.to_json(),
                    "allocated_resources": used.to_json(),
                    "offered_resources": offered.to_json(),
                    "capabilities": [{"type": c} for c in AGENT_CAPABILITIES],
                }
            )
        return {"agents": agents, "recovered_agents": []}

    def v1_state(self) -> dict:
        return {
            "get_tasks": self.v1_tasks(),
            "get_executors": {
                "executors": [
                    {"agent_id": {"value": e.agent_id}, "executor_info": e.info}
                    for agent in self.agents.values()
                    for e in agent.executors.values()
                ]
            },
            "get_frameworks": self.v1_frameworks(),
            "get_agents": self.v1_agents(),
        }


def parse_call(request: Request, message: str) -> dict | Response:
    """405, 400 and 415 exactly as Master::Http checks them (§1.2, §1.3); the agent's
    executor endpoint checks a call the same way."""
    if request.method != "POST":
        return Response.text(
            405,
            "405 Method Not Allowed. Expecting one of { 'POST' }, but received "
            f"'{request.method}'.",
            Allow="POST",
        )
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        return Response.text(400, "Expecting 'Content-Type' to be present")
    if content_type == PROTOBUF:
        return Response.text(
            415, "localmesos speaks JSON only: send 'Content-Type: application/json'"
        )
    if content_type != JSON:
        return Response.text(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
    try:
        value = json.loads(request.body, parse_constant=_no_constant, parse_float=_float)
    except json.JSONDecodeError as error:
        rest = error.doc[error.pos :].split("\n", 1)[0]
        return Response.text(
            400,
            f"Failed to parse body into JSON: syntax error at line {error.lineno} near: {rest}",
        )
    except (ValueError, RecursionError) as error:
        # Bad UTF-8, NaN/Infinity (not JSON), too many digits, too deep a nesting.
        return Response.text(400, f"Failed to parse body into JSON: {error}")
    try:
        return protocol.convert(message, value)
    except Invalid as error:
        return Response.text(400, f"Failed to convert JSON into Call protobuf: {error}")


def resources_text(resources: Resources, role: str) -> str:
    """Resources as the master prints them in messages: `cpus(allocated: *):2; mem(...)`."""
    parts = []
    for item in resources.to_json(role):
        if item["type"] == "SCALAR":
            value = f"{item['scalar']['value']:g}"
        else:
            ranges = item["ranges"]["range"]
            value = "[" + ", ".join(f"{r['begin']}-{r['end']}" for r in ranges) + "]"
        parts.append(f"{item['name']}(allocated: {role}):{value}")
    return "; ".join(parts)


def _no_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not JSON")


def _float(text: str) -> float:
    """A JSON number that fits a double (1e999 would come back as Infinity, which is not JSON)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _int_arg(request: Request, name: str, default: int) -> int:
    value = request.arg(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"Failed to parse '{name}': '{value}' is not a number") from None
    if number < 0:
        raise ValueError(f"Failed to parse '{name}': '{value}' must not be negative")
    return number


def refuse_seconds(call_body: dict) -> float:
    """Filters.refuse_seconds, 5 s when the call has no filters (§8.4)."""
    return float(call_body.get("filters", {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS))


def launched_tasks(operations: list[dict]) -> list[dict]:
    tasks = []
    for operation in operations:
        if operation.get("type") == "LAUNCH":
            tasks += operation.get("launch", {}).get("task_infos", [])
        elif operation.get("type") == "LAUNCH_GROUP":
            tasks += operation.get("launch_group", {}).get("task_group", {}).get("tasks", [])
    return tasks


def protocol_task_id_error(task_id: str) -> str | None:
    """common/validation.cpp validateID, as the task validation reports it."""
    problem = None
    if not task_id:
        problem = "ID must not be empty"
    elif len(task_id.encode("utf-8", "surrogatepass")) > 255:  # C++ counts bytes
        problem = "ID must not be greater than 255 characters"
    elif task_id in (".", ".."):
        problem = f"'{task_id}' is disallowed"
    elif any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in task_id):
        problem = f"'{task_id}' contains invalid characters"
    return None if problem is None else f"Task ID is invalid: {problem}"


BODY_OF = {
    "SUBSCRIBE": "subscribe",
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "RECONCILE": "reconcile",
    "MESSAGE": "message",
    "REQUEST": "request",
}


def validate_scheduler_call(call: dict) -> str | None:
    """master/validation.cpp scheduler::call::validate (§1.7)."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    body = BODY_OF.get(kind)
    if body is not None and body not in call:
        return f"Expecting '{body}' to be present"
    if kind == "SUBSCRIBE":
        info = call["subscribe"]["framework_info"]
        if "framework_id" in call and call["framework_id"] != info.get("id"):
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    if kind == "ACKNOWLEDGE" and not protocol.valid_uuid(call["acknowledge"]["uuid"]):
        return "Not a valid UUID"
    return None


def validate_framework_info(info: dict) -> str | None:
    """The checks that refuse a SUBSCRIBE with an ERROR event (§1.9)."""
    timeout = info.get("failover_timeout", 0.0)
    if timeout < 0 or timeout > 10 * 365 * 86400:
        return f"Invalid failover_timeout: {timeout}"
    roles = info.get("roles") or [info.get("role", "*")]
    for role in roles:
        if role != "*" and (
            not role
            or role in (".", "..")
            or role.startswith("-")
            or any(c in role for c in "/\\ \t\n")
            or role.endswith("/")
        ):
            return f"Role '{role}' is invalid"
    return None
