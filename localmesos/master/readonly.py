"""The master's read-only endpoints (src/master/readonly_handler.cpp, src/master/http.cpp):
/master/state, /master/frameworks, /master/slaves, /master/tasks, /master/roles, /master/flags,
/master/maintenance/*, and the v1 forms that the operator API answers with and sends in its
events (GET_STATE, GET_AGENTS, GET_FRAMEWORKS, GET_EXECUTORS, GET_TASKS, GET_ROLES;
src/master/http.cpp and src/internal/evolve.cpp). Plain functions of the master: they only
read it, on its thread (`master.call`), and shape what they read as Mesos does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from localmesos import protocol
from localmesos.master.models import AgentRecord, Executor, Framework, Task
from localmesos.protocol import AGENT_CAPABILITIES, MESOS_VERSION, version_json
from localmesos.resources import Resources
from localmesos.web import Request

if TYPE_CHECKING:
    from localmesos.master.master import Master

# master/constants.hpp TASK_LIMIT: /master/tasks's default page.
TASK_LIMIT = 100
SIZE_T = 2**64
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def task_json(master: Master, task: Task) -> dict:
    framework = master.frameworks.get(task.framework_id)
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


def framework_json(master: Master, framework: Framework) -> dict:
    info = framework.info
    # A terminal task waiting for its acknowledgement is still listed, but no longer uses
    # anything: Mesos takes its resources back with the terminal update (`Master::updateTask`).
    executors = framework_executors(master, framework.id)
    used, offered = framework_usage(master, framework, executors)
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
        "tasks": [task_json(master, t) for t in framework.tasks.values()],
        "unreachable_tasks": [task_json(master, t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [task_json(master, t) for t in framework.completed_tasks],
        "offers": [
            {
                "id": o.id,
                "framework_id": o.framework_id,
                # common/http.cpp `json(Offer)`; the web UI's offers page shows the role.
                "allocation_info": {"role": framework.role},
                "slave_id": o.agent_id,
                "resources": o.resources.to_flat(),
            }
            for o in framework.offers.values()
        ],
        "executors": [executor_json(e, framework.role) for e in executors],
    }
    # Only v0 (libprocess) frameworks have a pid; the principal appears only when set.
    if framework.principal:
        result["principal"] = framework.principal
    return result


def framework_usage(
    master: Master, framework: Framework, executors: list[Executor] | None = None
) -> tuple[Resources, Resources]:
    """`Framework::totalUsedResources` (live tasks and executors) and
    `totalOfferedResources`; ``executors``: the framework's, when the caller has them."""
    used = Resources()
    for task in framework.tasks.values():
        if not task.resources_recovered:
            used = used + task.resources
    if executors is None:
        executors = framework_executors(master, framework.id)
    for executor in executors:
        used = used + executor.resources
    offered = Resources()
    for offer in framework.offers.values():
        offered = offered + offer.resources
    return used, offered


def framework_executors(master: Master, framework_id: str) -> list[Executor]:
    return [
        executor
        for agent in master.agents.values()
        for executor in agent.executors.values()
        if executor.framework_id == framework_id
    ]


def executor_json(executor: Executor, role: str) -> dict:
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


def agent_usage(master: Master, agent: AgentRecord) -> tuple[Resources, Resources]:
    """What the agent's live tasks and executors use, and what its offers hold."""
    used = Resources()
    offered = Resources()
    for framework in master.frameworks.values():
        for task in framework.tasks.values():
            if task.agent_id == agent.id and not task.resources_recovered:
                used = used + task.resources
    for executor in agent.executors.values():
        used = used + executor.resources
    for offer in master.offers.values():
        if offer.agent_id == agent.id:
            offered = offered + offer.resources
    return used, offered


def agent_json(master: Master, agent: AgentRecord) -> dict:
    used, offered = agent_usage(master, agent)
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
        "active": agent.active,
        "deactivated": False,
        "version": MESOS_VERSION,
        "capabilities": AGENT_CAPABILITIES,
    }


def state_json(master: Master) -> dict:
    now = time.time()
    return {
        "version": MESOS_VERSION,
        "build_date": version_json()["build_date"],
        "build_time": version_json()["build_time"],
        "build_user": version_json()["build_user"],
        "start_time": master.start_time,
        "elected_time": master.elected_time or master.start_time,
        "id": master.id,
        "pid": protocol.pid_string("master", master.ip, master.server.port),
        "hostname": master.hostname,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING"],
        # stout writes these counts as doubles.
        "activated_slaves": float(sum(a.active for a in master.agents.values())),
        "deactivated_slaves": float(sum(not a.active for a in master.agents.values())),
        "unreachable_slaves": float(len(master.unreachable_agents)),
        "leader": (master.leader or master.master_info())["pid"],
        "leader_info": master.leader or master.master_info(),
        "log_dir": "",
        "flags": flags_json(master),
        "slaves": [agent_json(master, a) for a in master.agents.values()],
        "recovered_slaves": [],
        "frameworks": [framework_json(master, f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_json(master, f) for f in master.completed_frameworks],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
        "now": now,
    }


def flags_json(master: Master) -> dict:
    flags = {
        "allocation_interval": protocol.format_duration(master.flags.allocation_interval),
        "agent_ping_timeout": protocol.format_duration(master.flags.agent_timeout / 5),
        "max_agent_ping_timeouts": "5",
        "agent_reregister_timeout": protocol.format_duration(master.flags.agent_reregister_timeout),
        # With credentials the master behaves as one started with all four (CONFORMANCE.md:
        # Authentication).
        **dict.fromkeys(
            (
                "authenticate_frameworks",
                "authenticate_http_frameworks",
                "authenticate_http_readonly",
                "authenticate_http_readwrite",
            ),
            str(master.flags.credentials is not None).lower(),
        ),
        "ip": master.flags.ip,
        "port": str(master.server.port),
        "work_dir": master.flags.work_dir,
        "version": "false",
    }
    if master.flags.zk is not None:
        flags["zk"] = master.flags.zk
        flags["zk_session_timeout"] = protocol.format_duration(master.flags.zk_session_timeout)
        # No replicated log: the registry is this master's memory (README, differences).
        flags["registry"] = "in_memory"
    if master.flags.credentials is not None:
        flags["http_framework_authenticators"] = "basic"
    if master.flags.offer_timeout is not None:  # an Option flag: absent when not set
        flags["offer_timeout"] = protocol.format_duration(master.flags.offer_timeout)
    return flags


def frameworks_json(master: Master) -> dict:
    return {
        "frameworks": [framework_json(master, f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_json(master, f) for f in master.completed_frameworks],
        "unregistered_frameworks": [],
    }


def slaves_json(master: Master) -> dict:
    return {
        "slaves": [agent_json(master, a) for a in master.agents.values()],
        "recovered_slaves": [],
    }


def tasks_json(master: Master, request: Request) -> dict:
    # readonly_handler.cpp `tasks` reads both numbers as int and keeps them in a size_t: a
    # negative one wraps around. limit=-1 is then "every task" (what the `mesos` CLI asks
    # for), and the window's end, offset + limit, wraps too (limit=-1&offset=1 is empty).
    limit = _int_arg(request, "limit", TASK_LIMIT) % SIZE_T
    offset = _int_arg(request, "offset", 0) % SIZE_T
    order = request.arg("order") or "des"
    if order not in ("asc", "des"):
        raise ValueError(f"Unknown 'order' value '{order}': expected 'asc' or 'des'")
    framework_filter = request.arg("framework_id")
    task_filter = request.arg("task_id")
    tasks: list[Task] = []
    frameworks = [*master.frameworks.values(), *master.completed_frameworks]
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
    end = min((offset + limit) % SIZE_T, len(tasks))
    return {"tasks": [task_json(master, t) for t in tasks[offset:end]]}


def _int_arg(request: Request, name: str, default: int) -> int:
    """A number as numify<int> reads it; junk is refused here, where Mesos would silently
    take the default (CONFORMANCE.md, differences)."""
    value = request.arg(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"Failed to parse '{name}': '{value}' is not a number") from None
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError(f"Failed to parse '{name}': '{value}' is out of range")
    return number


# -- /master/roles and GET_ROLES (readonly_handler.cpp `roles`, `getRoles`) -------------------


def known_roles(master: Master) -> list[str]:
    """`Master::knownRoles`: the roles of the registered frameworks and their ancestors, in
    order. localmesos has no reservations, weights, quotas nor --roles to add more."""
    roles: set[str] = set()
    for framework in master.frameworks.values():
        parts = framework.role.split("/")
        roles.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(roles)


def _in_subtree(role: str, tree: str) -> bool:
    return role == tree or role.startswith(tree + "/")


def role_breakdown(master: Master, role: str) -> tuple[Resources, Resources]:
    """`RoleResourceBreakdown::allocated` and `offered`: what the registered frameworks of
    the role's subtree use and hold in offers."""
    allocated = Resources()
    offered = Resources()
    for framework in master.frameworks.values():
        if not _in_subtree(framework.role, role):
            continue
        used, held = framework_usage(master, framework)
        allocated = allocated + used
        offered = offered + held
    return allocated, offered


def quantities(resources: Resources) -> dict[str, float]:
    """`json(ResourceQuantities)`: name to amount, by name, none that is zero; ranges count
    their elements (`ResourceQuantities::fromResources`)."""
    result: dict[str, float] = {}
    for resource in resources.to_json():
        if resource["type"] == "SCALAR":
            result[resource["name"]] = resource["scalar"]["value"]
        else:
            pairs = resource["ranges"]["range"]
            result[resource["name"]] = float(sum(r["end"] - r["begin"] + 1 for r in pairs))
    return dict(sorted(result.items()))


def roles_json(master: Master) -> dict:
    roles = []
    for name in known_roles(master):
        allocated, offered = role_breakdown(master, name)
        roles.append(
            {
                "name": name,
                "weight": 1.0,
                # No quotas: guarantee and limit are empty, and what a role consumes is what
                # it has allocated (there are no reservations either).
                "quota": {
                    "role": name,
                    "guarantee": {},
                    "limit": {},
                    "consumed": quantities(allocated),
                },
                "resources": quantities(allocated + offered),
                "allocated": quantities(allocated),
                "offered": quantities(offered),
                "reserved": {},
                "frameworks": [f.id for f in master.frameworks.values() if f.role == name],
            }
        )
    return {"roles": roles}


def v1_roles(master: Master) -> dict:
    """GET_ROLES goes through `evolve`, so with no role at all its body is `{}`."""
    roles = []
    for name in known_roles(master):
        allocated, offered = role_breakdown(master, name)
        total = allocated + offered
        role: dict = {"name": name, "weight": 1.0}
        resources = [
            {"name": kind, "type": "SCALAR", "scalar": {"value": total.scalar(kind)}}
            for kind in sorted(total.scalars())
            if kind in ("cpus", "mem", "disk", "gpus") and total.scalar(kind)
        ]
        if resources:
            role["resources"] = resources
        frameworks = [{"value": f.id} for f in master.frameworks.values() if f.role == name]
        if frameworks:
            role["frameworks"] = frameworks
        roles.append(role)
    return {"roles": roles} if roles else {}


# -- /master/maintenance/* (http.cpp `getMaintenanceSchedule`, `getMaintenanceStatus`) --------


def maintenance_schedule_json(master: Master) -> dict:
    """`JSON::protobuf(Schedule)`: localmesos schedules no maintenance, and an empty
    `windows` is left out."""
    return {}


def maintenance_status_json(master: Master) -> dict:
    """`JSON::protobuf(ClusterStatus)`: no machine draining or down."""
    return {}


def v1_task(task: Task) -> dict:
    result = {
        "name": task.info.get("name", ""),
        "task_id": {"value": task.id},
        "framework_id": {"value": task.framework_id},
        "agent_id": {"value": task.agent_id},
        "state": task.state,
        "resources": task.resources.to_json(),
    }
    # A Task as protobuf renders it: an empty repeated field is left out.
    if task.statuses:
        result["statuses"] = [{"task_id": {"value": task.id}, **s} for s in task.statuses]
    if task.executor_id:
        result["executor_id"] = {"value": task.executor_id}
    return result


def v1_tasks(master: Master) -> dict:
    frameworks = list(master.frameworks.values())
    return {
        "tasks": [v1_task(t) for f in frameworks for t in f.tasks.values()],
        "unreachable_tasks": [v1_task(t) for f in frameworks for t in f.unreachable_tasks.values()],
        "completed_tasks": [
            v1_task(t)
            for f in [*frameworks, *master.completed_frameworks]
            for t in f.completed_tasks
        ],
    }


def v1_framework(framework: Framework) -> dict:
    return {
        "framework_info": framework.info,
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": {"nanoseconds": int(framework.registered_time * 1e9)},
    }


def v1_framework_event(framework: Framework) -> dict:
    """The framework of FRAMEWORK_ADDED and FRAMEWORK_UPDATED (protobuf_utils.cpp
    `createFrameworkAdded`): the three times are always there, 0 when unset, and a new
    framework's reregistered time is its registered time (framework.cpp)."""

    def ns(seconds: float) -> dict:
        return {"nanoseconds": int(seconds * 1e9)}

    return {
        "framework_info": framework.info,
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": ns(framework.registered_time),
        "reregistered_time": ns(framework.reregistered_time or framework.registered_time),
        "unregistered_time": ns(framework.unregistered_time),
    }


def v1_frameworks(master: Master) -> dict:
    return {
        "frameworks": [v1_framework(f) for f in master.frameworks.values()],
        "completed_frameworks": [v1_framework(f) for f in master.completed_frameworks],
    }


def v1_agent(master: Master, agent: AgentRecord) -> dict:
    """An agent of GET_AGENTS and AGENT_ADDED (protobuf_utils.cpp `createAgentResponse`);
    resources that are empty are left out, as protobuf leaves out an empty repeated field."""
    used, offered = agent_usage(master, agent)
    result = {
        "agent_info": {
            "hostname": agent.hostname,
            "port": agent.info["port"],
            "id": {"value": agent.id},
            "resources": agent.total.to_json(),
        },
        "active": agent.active,
        "deactivated": False,
        "version": MESOS_VERSION,
        "pid": agent.pid,
        "registered_time": {"nanoseconds": int(agent.registered_time * 1e9)},
        "total_resources": agent.total.to_json(),
        "capabilities": [{"type": c} for c in AGENT_CAPABILITIES],
    }
    if used:
        result["allocated_resources"] = used.to_json()
    if offered:
        result["offered_resources"] = offered.to_json()
    return result


def v1_agents(master: Master) -> dict:
    return {
        "agents": [v1_agent(master, agent) for agent in master.agents.values()],
        "recovered_agents": [],
    }


def v1_executors(master: Master) -> dict:
    """readonly_handler.cpp `getExecutors`: the frameworks' own executors (the master never
    hears of command executors), the array always there."""
    return {
        "executors": [
            {"executor_info": executor.info, "agent_id": {"value": executor.agent_id}}
            for agent in master.agents.values()
            for executor in agent.executors.values()
        ]
    }


def v1_state(master: Master) -> dict:
    return {
        "get_tasks": v1_tasks(master),
        "get_executors": v1_executors(master),
        "get_frameworks": v1_frameworks(master),
        "get_agents": v1_agents(master),
    }
