"""The agent's HTTP surface (src/slave/http.cpp): routing, the executor API
(`POST /api/v1/executor`, `Http::executor`), /state and /flags, with their JSONP form; the
operator API is in operator.py, /monitor/statistics and /metrics/snapshot in monitor.py, /files
in files.py. These run on the HTTP server's threads; whatever reads or changes the agent runs
on its thread (`agent.call`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localmesos import authentication, protocol
from localmesos.agent import executors, files, monitor
from localmesos.agent.command_executor import EXECUTOR_OVERHEAD, executor_name
from localmesos.agent.operator import api_endpoint, flags_json, framework_ids
from localmesos.authentication import AGENT_READONLY, AGENT_READWRITE
from localmesos.link import AGENT_MESSAGES, decode_link_message
from localmesos.master.http import parse_call
from localmesos.protocol import AGENT_CAPABILITIES, MESOS_VERSION, version_json
from localmesos.resources import Resources
from localmesos.web import EventStream, Request, Response

if TYPE_CHECKING:
    from localmesos.agent.command_tasks import Run
    from localmesos.agent.executors import Executor
    from localmesos.agent.slave import Agent


# Every path the agent answers (each also under /slave(1)); anything else is 404. The
# reliability tests send hostile bodies to each of these, so a new endpoint belongs here.
ENDPOINTS = frozenset(
    {
        "/api/v1/executor",
        "/link",
        "/api/v1",
        "/api/v1/operator",
        "/files/read",
        "/files/browse",
        "/files/download",
        "/health",
        "/state",
        "/flags",
        "/monitor/statistics",
        "/metrics/snapshot",
        "/version",
    }
)


# The realm each endpoint is routed in (slave.cpp `Slave::initialize`), asked only when the
# agent has credentials (CONFORMANCE.md: Authentication). The executor API's realm is
# authenticated only with --authenticate_http_executors, off by default (and executors are not
# given the secret): it stays open, as /health and /version do; /link checks its own secret.
REALMS: dict[str, str] = {
    # The operator API: the read-write realm, for its reads too.
    "/api/v1": AGENT_READWRITE,
    "/api/v1/operator": AGENT_READWRITE,
    "/state": AGENT_READONLY,
    "/flags": AGENT_READONLY,
    "/monitor/statistics": AGENT_READONLY,
    # libprocess's MetricsProcess, given the agent's read-only realm in slave/main.cpp.
    "/metrics/snapshot": AGENT_READONLY,
    # slave/main.cpp builds its `Files` with the read-only realm (files.cpp routes them in it).
    "/files/read": AGENT_READONLY,
    "/files/browse": AGENT_READONLY,
    "/files/download": AGENT_READONLY,
}


def route(agent: Agent, request: Request) -> Response:
    path = request.path.rstrip("/") or "/"
    if path.startswith("/slave(1)/"):
        path = path[len("/slave(1)") :]
    realm = authentication.realm_of(path, REALMS)
    if realm is not None:
        # Before anything else looks at the request, as libprocess does.
        refused = authentication.authenticate(agent.credentials, realm, request)
        if isinstance(refused, Response):
            return refused
    if path not in ENDPOINTS:
        return Response(404)
    if path == "/api/v1/executor":
        return executor_endpoint(agent, request)
    if path == "/link":
        # Messages from masters of other processes, and their watch (see link.HttpLink).
        decoded = decode_link_message(
            request, agent, AGENT_MESSAGES, agent.link_secret, prefix="on_", linkable=True
        )
        if not isinstance(decoded, tuple):
            return decoded
        method, args = decoded
        agent.dispatch(method, *args)
        return Response(202)
    if path in ("/api/v1", "/api/v1/operator"):
        # libprocess serves /api/v1/<anything> but the executor's with `/api/v1`.
        if agent.recovering:
            return Response.text(503, "Agent has not finished recovery")  # `Http::api`
        return api_endpoint(agent, request)
    if path == "/files/read":
        return agent.call(files.read, agent, request)
    if path == "/files/browse":
        return agent.call(files.browse, agent, request)
    if path == "/files/download":
        return agent.call(files.download, agent, request)
    if path == "/health":
        return Response(200)
    # The JSON endpoints, each with its JSONP form; the `.json` aliases that Mesos 1.8
    # removed (`/state.json`, `/monitor/statistics.json`) are 404 with no body.
    readers = {
        "/state": state_json,
        "/flags": lambda agent: {"flags": flags_json(agent)},
        "/monitor/statistics": monitor.statistics,
        "/metrics/snapshot": monitor.metrics_snapshot,
        "/version": lambda agent: version_json(),
    }
    reader = readers[path]
    if path == "/state" and agent.recovering:
        return Response.text(503, "Agent has not finished recovery")  # `Http::state`
    return Response.json(agent.call(reader, agent), jsonp=request.arg("jsonp"))


def executor_endpoint(agent: Agent, request: Request) -> Response | EventStream:
    call = parse_call(request, "executor.Call")
    if isinstance(call, Response):
        return call
    error = validate_executor_call(call)
    if error is not None:
        return Response.text(400, f"Failed to validate Executor::Call: {error}")
    return agent.call(executor_call, agent, call)


def executor_call(agent: Agent, call: dict) -> Response | EventStream:
    """slave/http.cpp `Http::executor`, on the agent's thread."""
    if not agent.reconnect or (agent.recovering and call["type"] != "SUBSCRIBE"):
        # Only SUBSCRIBE, and only once the executors may reconnect, during recovery.
        return Response.text(503, "Agent has not finished recovery")
    framework_id = call["framework_id"]["value"]
    if framework_id not in agent.frameworks:
        return Response.text(400, "Framework cannot be found")
    executor = agent.executors.get((framework_id, call["executor_id"]["value"]))
    if executor is None:
        return Response.text(400, "Executor cannot be found")
    kind = call["type"]
    if kind == "SUBSCRIBE":
        return executors.subscribe(agent, executor, call.get("subscribe"))
    if executor.state == "REGISTERING":
        return Response.text(403, "Executor is not subscribed")
    if kind == "UPDATE":
        executors.status_update(agent, executor, call["update"]["status"])
    elif kind == "MESSAGE" and framework_id not in agent.removed_frameworks:
        agent.master.send(
            "executor_message", agent.id, framework_id, executor.id, call["message"]["data"]
        )
    elif kind == "UNKNOWN":
        return Response.text(501, "501 Not Implemented.")
    return Response(202)


def validate_executor_call(call: dict) -> str | None:
    """common/validation.cpp `validateExecutorCall`."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    body = {"SUBSCRIBE": "subscribe", "UPDATE": "update", "MESSAGE": "message"}.get(kind)
    if body is not None and body not in call:
        return f"Expecting '{body}' to be present"
    if kind != "UPDATE":
        return None
    status = call["update"]["status"]
    executor_id = call["executor_id"]["value"]
    if "uuid" not in status:
        return "Expecting 'uuid' to be present"
    if not protocol.valid_uuid(status["uuid"]):
        return "Not a valid UUID"
    given = status.get("executor_id", {}).get("value")
    if given is not None and given != executor_id:
        return f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: {given}"
    if status.get("source") != "SOURCE_EXECUTOR":
        return (
            f"Received Call from executor {executor_id} of framework "
            f"{call['framework_id']['value']} with invalid source, expecting 'SOURCE_EXECUTOR'"
        )
    if status["state"] == "TASK_STAGING":
        return (
            f"Received TASK_STAGING from executor {executor_id} of framework "
            f"{call['framework_id']['value']} which is not allowed"
        )
    return None


def executor_json(agent: Agent, run: Run) -> dict:
    """A command executor as `ExecutorWriter` shows it (slave/http.cpp): the name and the
    resources that `Slave::getExecutorInfo` gives it, its own 0.1 cpus and 32 MB added to its
    task's while the task lives (`Executor::allocatedResources`), and no `type`."""
    task = {
        "id": run.task_id,
        "name": run.task.get("name", ""),
        "framework_id": run.framework_id,
        "executor_id": "",
        "slave_id": agent.id,
        "state": run.state,
        "resources": run.resources.to_flat(),
    }
    live = (run.framework_id, run.task_id) in agent.runs and not protocol.is_terminal(run.state)
    resources = EXECUTOR_OVERHEAD + run.resources if live else EXECUTOR_OVERHEAD
    return {
        "id": run.task_id,
        "name": executor_name(run.task),
        "source": run.task_id,
        "container": run.container_id,
        "directory": str(run.directory),
        "resources": resources.to_flat(),
        "role": "*",
        "framework_id": run.framework_id,
        "tasks": [task] if live else [],
        "queued_tasks": [],
        "completed_tasks": [] if live else [task],
    }


def custom_executor_json(agent: Agent, executor: Executor) -> dict:
    """The agent's /state entry for a custom executor, with its tasks by where they are."""

    def task_json(task: dict, state: str) -> dict:
        return {
            "id": task["task_id"]["value"],
            "name": task.get("name", ""),
            "framework_id": executor.framework_id,
            "executor_id": executor.id,
            "slave_id": agent.id,
            "state": state,
            "resources": Resources.from_json(task.get("resources", [])).to_flat(),
        }

    live = [(i, t) for i, t in executor.tasks.items() if i not in executor.queued]
    return {
        "id": executor.id,
        "name": executor.info.get("name", ""),
        "source": "",
        "container": executor.container_id,
        "directory": str(executor.directory),
        "resources": executor.resources.to_flat(),
        "role": "*",
        "type": "CUSTOM",
        "framework_id": executor.framework_id,
        "tasks": [task_json(t, executor.task_states[i]) for i, t in live],
        "queued_tasks": [
            task_json(executor.tasks[i], "TASK_STAGING")
            for i in executor.queued
            if i in executor.tasks
        ],
        "completed_tasks": [task_json(c["task"], c["state"]) for c in executor.completed_tasks],
    }


def framework_json(agent: Agent, framework_id: str) -> dict:
    info = agent.frameworks[framework_id]
    return {
        "id": framework_id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "failover_timeout": info.get("failover_timeout", 0.0),
        "checkpoint": info.get("checkpoint", False),
        "hostname": info.get("hostname", ""),
        "role": info.get("role", "*"),
        "executors": [
            executor_json(agent, r) for k, r in agent.runs.items() if k[0] == framework_id
        ]
        + [
            custom_executor_json(agent, e)
            for k, e in agent.executors.items()
            if k[0] == framework_id
        ],
        "completed_executors": [
            executor_json(agent, r) for r in agent.completed_runs if r.framework_id == framework_id
        ]
        + [
            custom_executor_json(agent, e)
            for e in agent.completed_executors
            if e.framework_id == framework_id
        ],
    }


def state_json(agent: Agent) -> dict:
    running, completed = framework_ids(agent)
    return {
        "version": MESOS_VERSION,
        **{k: v for k, v in version_json().items() if k != "version"},
        "start_time": agent.start_time,
        "id": agent.id,
        "pid": agent.pid,
        "hostname": agent.hostname,
        "capabilities": AGENT_CAPABILITIES,
        "resources": agent.resources.to_flat(),
        "attributes": {},
        "master_hostname": (agent.master_info or {}).get("hostname", ""),
        "log_dir": "",
        "flags": flags_json(agent),
        "frameworks": [framework_json(agent, f) for f in running],
        # Frameworks with nothing left here (`Slave::removeFramework`), in the same form.
        "completed_frameworks": [framework_json(agent, f) for f in completed],
    }
