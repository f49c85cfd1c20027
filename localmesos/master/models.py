"""What the master keeps about frameworks, their tasks and offers, custom executors and
agents (src/master/master.hpp `Framework` and `Slave`, src/master/framework.cpp), and the
master's flags (src/master/flags.cpp).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from localmesos import protocol
from localmesos.actors import Timer
from localmesos.election import SESSION_TIMEOUT
from localmesos.link import new_secret
from localmesos.resources import Resources
from localmesos.web import EventStream, dumps

HEARTBEAT_SECONDS = 15.0
MAX_COMPLETED_TASKS = 1000
MAX_COMPLETED_FRAMEWORKS = 50
# Ten times agent_timeout, as Mesos's 10 minutes are eight times its 75 s of health checks: an
# agent that restarts answers pings while it recovers, and this bounds how long that may take.
AGENT_REREGISTER_TIMEOUT = 20.0


# What a completed framework keeps of its FrameworkInfo (see `completed_framework_info`).
COMPLETED_FRAMEWORK_INFO_BYTES = 16 * 1024
# The fields of a FrameworkInfo in the order a completed framework keeps them while they fit:
# what the web UI, the CLI and the operator API show of one first, labels last.
FRAMEWORK_INFO_ORDER = (
    "id",
    "name",
    "user",
    "principal",
    "role",
    "roles",
    "hostname",
    "webui_url",
    "failover_timeout",
    "checkpoint",
    "capabilities",
    "labels",
    "offer_filters",
)
# The fields of a TaskInfo that Mesos's `Task` keeps (protobuf_utils.cpp `createTask`): a
# finished task keeps no `data`, `command` or `executor` (its ID is kept apart).
TASK_FIELDS = frozenset(
    {"name", "task_id", "agent_id", "resources", "limits", "labels", "discovery", "container"}
    | {"health_check", "check", "kill_policy"}
)


def completed_framework_info(info: dict) -> dict:
    """The FrameworkInfo that a completed framework keeps. Mesos keeps it whole
    (`Master::removeFramework` moves the Framework into `frameworks.completed`, 50 of them),
    and so does localmesos while it is under COMPLETED_FRAMEWORK_INFO_BYTES as JSON, as any
    framework's is; a larger one keeps its fields whole in FRAMEWORK_INFO_ORDER while they
    fit, `name` and `user` (required) becoming "" if they alone do not. What the 50 completed
    frameworks hold is then bounded however large their SUBSCRIBEs were."""
    if len(dumps(info)) <= COMPLETED_FRAMEWORK_INFO_BYTES:
        return info
    summary: dict[str, Any] = {"name": "", "user": ""}
    for key in FRAMEWORK_INFO_ORDER:
        if key in info:
            candidate = {**summary, key: info[key]}
            if key == "id" or len(dumps(candidate)) <= COMPLETED_FRAMEWORK_INFO_BYTES:
                summary = candidate
    return summary


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
    timer: Timer | None = None  # --offer_timeout's (`Master::offerTimers`)


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
    # has not subscribed yet. Not connected, not active, no offers, no failover timer
    # (`Master::recoverFramework`).
    recovered: bool = False
    # FrameworkMetrics's offer counters (src/master/metrics.cpp): sent, accepted, declined,
    # rescinded; they live and die with the framework, as its metrics do in Mesos.
    offer_counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("sent", "accepted", "declined", "rescinded"), 0)
    )

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
    its first task until the agent reports that it exited (`Master::_accept`,
    `Master::exitedExecutor`)."""

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
    # `Slave::connected`: false once its process has exited (its socket closed), until it
    # reregisters. `Slave::active`: offered or not; a disconnected agent is inactive.
    connected: bool = True
    active: bool = True
    # `Slave::reregistrationTimer`: how long a disconnected agent has to come back.
    reregistration_timer: Timer | None = None

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
    # --agent_reregister_timeout: how long an agent whose process exited has to reregister
    # before it is marked unreachable, if its health checks have not done so first (Mesos: 10
    # minutes, and no less; the health checks come first there too, after 75 s).
    agent_reregister_timeout: float = AGENT_REREGISTER_TIMEOUT
    credentials: dict[str, str] | None = None
    heartbeat_interval: float = HEARTBEAT_SECONDS
    work_dir: str = ""
    # --zk: with it the master contends for leadership in ZooKeeper and serves only once
    # elected; without it, it leads alone from the start, as before.
    zk: str | None = None
    # MASTER_CONTENDER_ZK_SESSION_TIMEOUT is 10 s in Mesos, and not a flag; LocalCluster passes
    # less, so that a crashed leader's znode expires, and a successor is elected, sooner.
    zk_session_timeout: float = SESSION_TIMEOUT
    # What every request to /link must carry (link.py); a master alone makes its own.
    link_secret: str = field(default_factory=new_secret)
    # --offer_timeout: how long an offer may stay unanswered before it is rescinded and its
    # resources go back to the allocator; None, as Mesos's default, keeps offers for ever.
    offer_timeout: float | None = None

    def __post_init__(self) -> None:
        validate_offer_timeout(self.offer_timeout)


def validate_offer_timeout(offer_timeout: float | None) -> None:
    """master.cpp `Master::initialize`, in its words."""
    if offer_timeout is not None and not offer_timeout > 0:
        raise ValueError(
            f"Invalid value '{protocol.format_duration(offer_timeout)}' for --offer_timeout: "
            "Must be greater than zero"
        )
