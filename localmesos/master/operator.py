"""The master's operator API (src/master/http.cpp `Master::Http::api`, and the handlers of
src/master/readonly_handler.cpp): one `POST /api/v1` for every call, answered
`{"type": T, "<t>": {...}}`, and SUBSCRIBE, a RecordIO stream of what changes in the cluster.

The event stream follows `Master::Subscribers` (src/master/master.hpp): the master's own thread
sends every event, at the moment it changes its state, so a subscriber sees SUBSCRIBED (the
whole state, as GET_STATE) and then every change after it, in order. The master calls the
`Subscribers` methods below from the places where Mesos calls `subscribers.send(...)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localmesos.master import metrics, readonly
from localmesos.master.models import AgentRecord, Framework, Task
from localmesos.protocol import version_json
from localmesos.web import EventStream, Request, Response

if TYPE_CHECKING:
    from localmesos.master.master import Master

log = logging.getLogger("localmesos.master")

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
# --max_operator_event_stream_subscribers (src/master/flags.cpp): past it, the oldest stream is
# closed to make room (`Master::subscribe`).
MAX_SUBSCRIBERS = 1000


def operator_endpoint(master: Master, request: Request) -> Response | EventStream:
    """`Master::Http::api`, after the redirect of a standby (http.py `route`)."""
    # http.py routes here, so its parser is imported when the first call comes, not before.
    from localmesos.master.http import parse_call

    call = parse_call(request, "master.Call")
    if isinstance(call, Response):
        return call
    error = validate_call(call)
    if error is not None:
        return Response.text(400, f"Failed to validate master::Call: {error}")
    refused = refuse_accept(request)
    if refused is not None:
        return refused
    kind = call["type"]
    if kind == "UNKNOWN":
        return Response(501)  # `NotImplemented()`, no body
    if kind == "SUBSCRIBE":
        return master.call(subscribe, master)
    if kind in ("LIST_FILES", "READ_FILE"):
        # A master serves only its log file, and only with --log_dir (master.cpp
        # `Master::initialize`, `files->attach(...)`); localmesos has none, so nothing
        # resolves: 404 with no body, as files.cpp answers a path it cannot find.
        return Response(404)
    reader = READERS.get(kind)
    if reader is None:
        return Response.text(501, f"localmesos does not implement the operator call {kind}")
    return Response.json({"type": kind, kind.lower(): master.call(reader, master, call)})


def validate_call(call: dict) -> str | None:
    """src/master/validation.cpp `master::call::validate`: the type, and the body of the calls
    that need one."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    body = {"GET_METRICS": "get_metrics", "LIST_FILES": "list_files", "READ_FILE": "read_file"}
    needed = body.get(kind)
    if needed is not None and needed not in call:
        return f"Expecting '{needed}' to be present"
    return None


def refuse_accept(request: Request) -> Response | None:
    """406 unless the `Accept` header allows JSON (`Master::Http::api`: JSON first, then
    protobuf; neither is NotAcceptable). A client that takes protobuf only is told that
    localmesos answers JSON."""
    accept = request.headers.get("Accept")
    if accept is None:
        return None
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if kinds & {JSON, "*/*", "application/*"}:
        return None
    if PROTOBUF in kinds:
        return Response.text(406, "localmesos speaks JSON only: send 'Accept: application/json'")
    return Response.text(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")


# -- the calls answered from the master's state (readonly_handler.cpp, http.cpp) ---------------


def get_flags(master: Master, call: dict) -> dict:
    """`evolve<GET_FLAGS>`: every flag with a value, by name, the values as strings."""
    flags = readonly.flags_json(master)
    return {"flags": [{"name": name, "value": flags[name]} for name in sorted(flags)]}


def get_metrics(master: Master, call: dict) -> dict:
    """common/http.hpp: every metric, by name, as a double. localmesos's metrics are all
    ready at once, so `get_metrics.timeout` leaves none out."""
    snapshot = metrics.snapshot(master)
    return {
        "metrics": [{"name": name, "value": float(snapshot[name])} for name in sorted(snapshot)]
    }


def get_master(master: Master, call: dict) -> dict:
    """http.cpp `Master::Http::getMaster`."""
    return {
        "master_info": master.master_info(),
        "start_time": master.start_time,
        "elected_time": master.elected_time or master.start_time,
    }


READERS: dict[str, Callable[[Master, dict], dict]] = {
    "GET_HEALTH": lambda master, call: {"healthy": True},
    "GET_VERSION": lambda master, call: {"version_info": version_json()},
    "GET_FLAGS": get_flags,
    "GET_METRICS": get_metrics,
    "GET_STATE": lambda master, call: readonly.v1_state(master),
    "GET_AGENTS": lambda master, call: readonly.v1_agents(master),
    "GET_FRAMEWORKS": lambda master, call: readonly.v1_frameworks(master),
    "GET_EXECUTORS": lambda master, call: readonly.v1_executors(master),
    "GET_TASKS": lambda master, call: readonly.v1_tasks(master),
    "GET_ROLES": lambda master, call: readonly.v1_roles(master),
    "GET_MASTER": get_master,
}


# -- SUBSCRIBE (readonly_handler.cpp `subscribe`, master.cpp `Master::subscribe`) ---------------


def subscribe(master: Master) -> EventStream:
    """On the master's thread: the stream starts with SUBSCRIBED, which holds the state as
    GET_STATE shows it, then a HEARTBEAT at once and one every 15 s; the events follow from
    the next change on. Unlike a scheduler's, the stream has no Mesos-Stream-Id."""
    stream = EventStream()
    stream.send(
        {
            "type": "SUBSCRIBED",
            "subscribed": {
                "get_state": readonly.v1_state(master),
                "heartbeat_interval_seconds": master.flags.heartbeat_interval,
            },
        }
    )
    stream.send({"type": "HEARTBEAT"})
    master.subscribers.add(stream)
    stream.on_close = lambda closed: master.dispatch(master.subscribers.remove, closed)

    def beat() -> None:
        if stream in master.subscribers.streams:
            stream.send({"type": "HEARTBEAT"})
            master.after(master.flags.heartbeat_interval, beat)

    master.after(master.flags.heartbeat_interval, beat)
    return stream


class Subscribers:
    """The operator event streams open on one master, and the events it sends them
    (src/common/protobuf_utils.cpp `protobuf::master::event::create*`). Only the master's
    thread calls these."""

    def __init__(self) -> None:
        self.streams: list[EventStream] = []

    def __len__(self) -> int:
        return len(self.streams)

    def add(self, stream: EventStream) -> None:
        if len(self.streams) >= MAX_SUBSCRIBERS:
            oldest = self.streams.pop(0)
            log.info(
                "reached the maximum number of operator event stream subscribers (%d): "
                "closing the oldest",
                MAX_SUBSCRIBERS,
            )
            oldest.close()
        self.streams.append(stream)

    def remove(self, stream: EventStream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)

    def _send(self, kind: str, body: dict[str, Any]) -> None:
        if not self.streams:
            return
        event = {"type": kind, kind.lower(): body}
        for stream in self.streams:
            stream.send(event)

    def task_added(self, task: Task) -> None:
        """`Framework::addTask`: a task launched, or one that came back with its agent."""
        self._send("TASK_ADDED", {"task": readonly.v1_task(task)})

    def task_updated(self, task: Task, status: dict) -> None:
        """`Master::updateTask`, for a status whose state differs from the task's last one:
        the status as it came, and the task's latest state."""
        self._send(
            "TASK_UPDATED",
            {"framework_id": {"value": task.framework_id}, "status": status, "state": task.state},
        )

    def framework_added(self, framework: Framework) -> None:
        """A new framework subscribed, or one was recovered from a reregistering agent."""
        self._send("FRAMEWORK_ADDED", {"framework": readonly.v1_framework_event(framework)})

    def framework_updated(self, framework: Framework) -> None:
        """A known framework subscribed again (`Master::sendFrameworkUpdates`); nothing is
        sent when it disconnects."""
        self._send("FRAMEWORK_UPDATED", {"framework": readonly.v1_framework_event(framework)})

    def framework_removed(self, framework: Framework) -> None:
        """`Master::removeFramework`: torn down, or its failover timeout expired."""
        self._send("FRAMEWORK_REMOVED", {"framework_info": framework.info})

    def agent_added(self, master: Master, agent: AgentRecord) -> None:
        """`Master::addSlave`: a new agent, or one readmitted after it was unreachable or
        unknown; not a known agent that reregisters."""
        self._send("AGENT_ADDED", {"agent": readonly.v1_agent(master, agent)})

    def agent_removed(self, agent_id: str) -> None:
        """Only `Master::_removeSlave`: an agent that unregistered, or that a new agent at the
        same address replaced. An agent marked unreachable is not "removed" here."""
        self._send("AGENT_REMOVED", {"agent_id": {"value": agent_id}})
