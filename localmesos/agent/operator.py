"""The agent's operator API, `POST /api/v1` (src/slave/http.cpp `Http::api`), and the views of
the agent it answers with: its frameworks, running and completed, their executors and tasks
in the v1 form (`Http::getFrameworks`, `getExecutors`, `getTasks`, `getState`), its flags and
its metrics. Agents have no leader: nothing here redirects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localmesos import protocol
from localmesos.agent import files
from localmesos.agent.command_executor import executor_info
from localmesos.master.http import parse_json
from localmesos.protocol import is_terminal, version_json
from localmesos.resources import Resources
from localmesos.web import Request, Response

if TYPE_CHECKING:
    from localmesos.agent.executors import Executor
    from localmesos.agent.slave import Agent

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
RECORDIO = "application/recordio"


def api_endpoint(agent: Agent, request: Request) -> Response:
    """`Http::api`: the request's checks, then each call on the agent's thread."""
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
    if content_type in (PROTOBUF, RECORDIO):
        return Response.text(
            415, "localmesos speaks JSON only: send 'Content-Type: application/json'"
        )
    if content_type != JSON:
        return Response.text(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF} or {RECORDIO}")
    if request.headers.get("Message-Content-Type") is not None:
        return Response.text(
            415, "Expecting 'Message-Content-Type' to be not set for non-streaming requests"
        )
    # Unlike the master, the agent checks `Accept` before it reads the body.
    accept = request.headers.get("Accept")
    if accept is not None:
        kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
        if not kinds & {JSON, "*/*", "application/*"}:
            return Response.text(
                406, f"Expecting 'Accept' to allow {JSON} or {PROTOBUF} or {RECORDIO}"
            )
    # The agent words a conversion error without the master's prefix (common/http.hpp
    # `deserialize`).
    value = parse_json(request.body)
    if isinstance(value, Response):
        return value
    try:
        call = protocol.convert("agent.Call", value)
    except protocol.Invalid as error:
        return Response.text(400, str(error))
    error = validate_call(call)
    if error is not None:
        return Response.text(400, f"Failed to validate agent::Call: {error}")
    kind = call["type"]
    if kind == "UNKNOWN":
        return Response(501)
    answer = CALLS.get(kind)
    if answer is None:
        return Response.text(501, f"localmesos does not implement the agent call {kind}")
    body = agent.call(answer, agent, call)
    if isinstance(body, Response):
        return body
    return Response.json({"type": kind, kind.lower(): body})


def validate_call(call: dict) -> str | None:
    """src/slave/validation.cpp `agent::call::validate`, for the calls answered here."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    needed = {"GET_METRICS": "get_metrics", "LIST_FILES": "list_files", "READ_FILE": "read_file"}
    body = needed.get(kind)
    if body is not None and body not in call:
        return f"Expecting '{body}' to be present"
    return None


# -- frameworks, running and completed -------------------------------------------------------


def framework_ids(agent: Agent) -> tuple[list[str], list[str]]:
    """The frameworks the agent runs something for, and the completed ones: a framework
    completes once it has no executor left and every update of its tasks is acknowledged
    (`Slave::removeExecutor`, `Slave::removeFramework`). A new task brings it back. The 50
    most recent completed ones are kept (MAX_COMPLETED_FRAMEWORKS)."""
    agent.settle_frameworks()
    running = [f for f in agent.frameworks if f not in agent.completed_frameworks]
    return running, list(agent.completed_frameworks)


def flags_json(agent: Agent) -> dict[str, str]:
    return {
        "work_dir": str(agent.work_dir),
        "port": str(agent.port),
        "ip": agent.ip,
        "resources": str(agent.resources),
        "gc_delay": protocol.format_duration(agent.gc.delay),
        "gc_disk_headroom": f"{agent.gc.disk_headroom:g}",
        "disk_watch_interval": protocol.format_duration(agent.gc.disk_watch_interval),
        "max_completed_executors_per_framework": str(agent.max_completed_executors_per_framework),
        # With credentials the agent behaves as one started with both (CONFORMANCE.md:
        # Authentication); executors are not authenticated, Mesos's default.
        **dict.fromkeys(
            ("authenticate_http_readonly", "authenticate_http_readwrite"),
            str(agent.credentials is not None).lower(),
        ),
        "authenticate_http_executors": "false",
    }


# -- the v1 views --------------------------------------------------------------------------


def v1_task(agent: Agent, framework_id: str, task: dict, state: str, executor_id: str = "") -> dict:
    """`protobuf::createTask` in the v1 form (the agent keeps no statuses of its own here)."""
    result: dict[str, Any] = {
        "name": task.get("name", ""),
        "task_id": task["task_id"],
        "framework_id": {"value": framework_id},
        "agent_id": {"value": agent.id},
        "state": state,
        "resources": Resources.from_json(task.get("resources", [])).to_json(),
    }
    if executor_id:
        result["executor_id"] = {"value": executor_id}
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if key in task:
            result[key] = task[key]
    return result


def _frameworks(agent: Agent) -> list[str]:
    running, completed = framework_ids(agent)
    return running + completed


def get_frameworks(agent: Agent, call: dict) -> dict:
    """Only each framework's FrameworkInfo; both arrays always there (`getFrameworks`)."""
    running, completed = framework_ids(agent)
    return {
        "frameworks": [{"framework_info": agent.frameworks[f]} for f in running],
        "completed_frameworks": [{"framework_info": agent.frameworks[f]} for f in completed],
    }


def get_executors(agent: Agent, call: dict) -> dict:
    """Running and completed executors, command executors included (`getExecutors`)."""
    frameworks = set(_frameworks(agent))
    live: list[dict] = [executor_info(r) for r in agent.runs.values()]
    live += [e.info for e in agent.executors.values() if e.state != "TERMINATED"]
    done: list[dict] = [executor_info(r) for r in agent.completed_runs]
    done += [e.info for e in agent.completed_executors]
    return {
        "executors": [
            {"executor_info": i} for i in live if i["framework_id"]["value"] in frameworks
        ],
        "completed_executors": [
            {"executor_info": i} for i in done if i["framework_id"]["value"] in frameworks
        ],
    }


def get_tasks(agent: Agent, call: dict) -> dict:
    """`getTasks`: queued (their executor has not subscribed yet), launched (not terminal),
    terminated (terminal, update not yet acknowledged) and completed tasks; no task waits
    before its executor here, so `pending_tasks` is empty. All five always there."""
    queued: list[dict] = []
    launched: list[dict] = []
    terminated: list[dict] = []
    completed: list[dict] = []

    def place(framework_id: str, task: dict, state: str, executor_id: str = "") -> None:
        entry = v1_task(agent, framework_id, task, state, executor_id)
        if not is_terminal(state):
            launched.append(entry)
        elif (framework_id, task["task_id"]["value"]) in agent.status_updates.streams:
            terminated.append(entry)
        else:
            completed.append(entry)

    for run in [*agent.runs.values(), *agent.completed_runs]:
        place(run.framework_id, run.task, run.state)
    executors: list[Executor] = [*agent.executors.values(), *agent.completed_executors]
    for executor in executors:
        for task_id, task in executor.tasks.items():
            if task_id in executor.queued:
                queued.append(v1_task(agent, executor.framework_id, task, "TASK_STAGING"))
            else:
                state = executor.task_states.get(task_id, "TASK_STAGING")
                place(executor.framework_id, task, state, executor.id)
        for done in executor.completed_tasks:
            place(executor.framework_id, done["task"], done["state"], executor.id)
    return {
        "pending_tasks": [],
        "queued_tasks": queued,
        "launched_tasks": launched,
        "terminated_tasks": terminated,
        "completed_tasks": completed,
    }


def get_state(agent: Agent, call: dict) -> dict:
    return {
        "get_tasks": get_tasks(agent, call),
        "get_executors": get_executors(agent, call),
        "get_frameworks": get_frameworks(agent, call),
    }


def get_flags(agent: Agent, call: dict) -> dict:
    flags = flags_json(agent)
    return {"flags": [{"name": name, "value": flags[name]} for name in sorted(flags)]}


def get_metrics(agent: Agent, call: dict) -> dict:
    # monitor.py reads this module's views, so it is imported here, once both are loaded.
    from localmesos.agent import monitor

    snapshot = monitor.metrics_snapshot(agent)
    return {
        "metrics": [{"name": name, "value": float(snapshot[name])} for name in sorted(snapshot)]
    }


def list_files(agent: Agent, call: dict) -> dict | Response:
    return files.list_files(agent, call["list_files"]["path"])


def read_file(agent: Agent, call: dict) -> dict | Response:
    body = call["read_file"]
    return files.read_file(agent, body["path"], body["offset"], body.get("length"))


CALLS = {
    "GET_HEALTH": lambda agent, call: {"healthy": True},
    "GET_VERSION": lambda agent, call: {"version_info": version_json()},
    "GET_FLAGS": get_flags,
    "GET_METRICS": get_metrics,
    "GET_STATE": get_state,
    "GET_FRAMEWORKS": get_frameworks,
    "GET_EXECUTORS": get_executors,
    "GET_TASKS": get_tasks,
    "LIST_FILES": list_files,
    "READ_FILE": read_file,
}
