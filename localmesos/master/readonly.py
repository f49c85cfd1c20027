"""The master's read-only endpoints (src/master/readonly_handler.cpp, src/master/http.cpp):
/master/state, /master/frameworks, /master/slaves, /master/tasks, and the operator API's
GET_STATE, GET_AGENTS, GET_FRAMEWORKS and GET_TASKS (the v1 forms, src/master/http.cpp and
src/internal/evolve.cpp). Plain functions of the master: they only read it, on its thread
(`master.call`), and shape what they read as Mesos does.
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
    used = Resources()
    for task in framework.tasks.values():
        used = used + task.resources
    executors = framework_executors(master, framework.id)
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
        "tasks": [task_json(master, t) for t in framework.tasks.values()],
        "unreachable_tasks": [task_json(master, t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [task_json(master, t) for t in framework.completed_tasks],
        "offers": [
            {
                "id": o.id,
                "framework_id": o.framework_id,
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
        "pid": protocol.pid_string("master", master.flags.ip, master.server.port),
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
        "authenticate_http_frameworks": str(master.flags.credentials is not None).lower(),
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
    limit = _int_arg(request, "limit", 100)
    offset = _int_arg(request, "offset", 0)
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
    return {"tasks": [task_json(master, t) for t in tasks[offset : offset + limit]]}


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


def v1_task(task: Task) -> dict:
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


def v1_frameworks(master: Master) -> dict:
    return {
        "frameworks": [v1_framework(f) for f in master.frameworks.values()],
        "completed_frameworks": [v1_framework(f) for f in master.completed_frameworks],
    }


def v1_agents(master: Master) -> dict:
    agents = []
    for agent in master.agents.values():
        used, offered = agent_usage(master, agent)
        agents.append(
            {
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
                "allocated_resources": used.to_json(),
                "offered_resources": offered.to_json(),
                "capabilities": [{"type": c} for c in AGENT_CAPABILITIES],
            }
        )
    return {"agents": agents, "recovered_agents": []}


def v1_state(master: Master) -> dict:
    return {
        "get_tasks": v1_tasks(master),
        "get_executors": {
            "executors": [
                {"agent_id": {"value": e.agent_id}, "executor_info": e.info}
                for agent in master.agents.values()
                for e in agent.executors.values()
            ]
        },
        "get_frameworks": v1_frameworks(master),
        "get_agents": v1_agents(master),
    }
