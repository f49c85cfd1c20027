"""The Mesos v1 messages as JSON: checking calls the way stout's JSON-to-protobuf conversion
does, and building the task statuses that the master and the agents send.

Every field that Mesos 1.11's v1 protos give the messages described here is listed; a key that
is not one of them is dropped, as stout's `protobuf::internal::parse` drops a JSON key that
`FindFieldByName` does not find (3rdparty/stout/include/stout/protobuf.hpp). Fields whose
message localmesos does not describe field by field (kind "object") are kept as sent. A
missing *required* field is an error naming its path.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import socket
import struct
import time
import uuid
from typing import Any

# A field is (kind, required, repeated); kind is a message name, "string", "bytes", "double",
# "int", "bool", "enum:Name", or "object": a message of Mesos's that is not described here,
# kept as sent (it must be a JSON object, as stout expects of a message field). Values of enums
# we do not list are accepted by name.
F = tuple[str, bool, bool]


def _f(kind: str, required: bool = False, repeated: bool = False) -> F:
    return (kind, required, repeated)


ID = {"value": _f("string", True)}

# Task states (mesos.proto) and the ones that end a task (protobuf_utils isTerminalState).
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)
MESSAGES: dict[str, dict[str, F]] = {
    "ID": ID,
    "Call": {
        "framework_id": _f("ID"),
        "type": _f("enum:Call.Type"),
        "subscribe": _f("Subscribe"),
        "accept": _f("Accept"),
        "decline": _f("Decline"),
        "accept_inverse_offers": _f("InverseOffers"),
        "decline_inverse_offers": _f("InverseOffers"),
        "revive": _f("Roles"),
        "suppress": _f("Roles"),
        "kill": _f("Kill"),
        "shutdown": _f("Shutdown"),
        "acknowledge": _f("Acknowledge"),
        "reconcile": _f("Reconcile"),
        "message": _f("Message"),
        "request": _f("Request"),
        "acknowledge_operation_status": _f("object"),
        "reconcile_operations": _f("object"),
        "update_framework": _f("object"),
    },
    "Subscribe": {
        "framework_info": _f("FrameworkInfo", True),
        "suppressed_roles": _f("string", False, True),
        "offer_constraints": _f("object"),
    },
    "FrameworkInfo": {
        "user": _f("string", True),
        "name": _f("string", True),
        "id": _f("ID"),
        "failover_timeout": _f("double"),
        "checkpoint": _f("bool"),
        "role": _f("string"),
        "roles": _f("string", False, True),
        "hostname": _f("string"),
        "principal": _f("string"),
        "webui_url": _f("string"),
        "capabilities": _f("Capability", False, True),
        "labels": _f("Labels"),
        "offer_filters": _f("object"),  # a map<string, OfferFilters>: a JSON object
    },
    "Capability": {"type": _f("enum:Capability")},
    "Accept": {
        "offer_ids": _f("ID", False, True),
        "operations": _f("Operation", False, True),
        "filters": _f("Filters"),
    },
    "Decline": {"offer_ids": _f("ID", False, True), "filters": _f("Filters")},
    "InverseOffers": {"inverse_offer_ids": _f("ID", False, True), "filters": _f("Filters")},
    "Filters": {"refuse_seconds": _f("double")},
    "Roles": {"roles": _f("string", False, True)},
    "Kill": {"task_id": _f("ID", True), "agent_id": _f("ID"), "kill_policy": _f("KillPolicy")},
    "KillPolicy": {"grace_period": _f("DurationInfo")},
    "DurationInfo": {"nanoseconds": _f("int", True)},
    "Shutdown": {"executor_id": _f("ID", True), "agent_id": _f("ID", True)},
    "Acknowledge": {
        "agent_id": _f("ID", True),
        "task_id": _f("ID", True),
        "uuid": _f("bytes", True),
    },
    "Reconcile": {"tasks": _f("ReconcileTask", False, True)},
    "ReconcileTask": {"task_id": _f("ID", True), "agent_id": _f("ID")},
    "Message": {
        "agent_id": _f("ID", True),
        "executor_id": _f("ID", True),
        "data": _f("bytes", True),
    },
    "Request": {"requests": _f("ResourceRequest", False, True)},
    "ResourceRequest": {"agent_id": _f("ID"), "resources": _f("Resource", False, True)},
    "Operation": {
        "type": _f("enum:Operation.Type"),
        "id": _f("ID"),
        "launch": _f("Launch"),
        "launch_group": _f("LaunchGroup"),
        "reserve": _f("object"),
        "unreserve": _f("object"),
        "create": _f("object"),
        "destroy": _f("object"),
        "grow_volume": _f("object"),
        "shrink_volume": _f("object"),
        "create_disk": _f("object"),
        "destroy_disk": _f("object"),
    },
    "Launch": {"task_infos": _f("TaskInfo", False, True)},
    "LaunchGroup": {"executor": _f("ExecutorInfo", True), "task_group": _f("TaskGroup", True)},
    "TaskGroup": {"tasks": _f("TaskInfo", False, True)},
    "TaskInfo": {
        "name": _f("string", True),
        "task_id": _f("ID", True),
        "agent_id": _f("ID", True),
        "resources": _f("Resource", False, True),
        "executor": _f("ExecutorInfo"),
        "command": _f("CommandInfo"),
        "data": _f("bytes"),
        "kill_policy": _f("KillPolicy"),
        "container": _f("ContainerInfo"),
        "health_check": _f("object"),
        "check": _f("object"),
        "labels": _f("Labels"),
        "discovery": _f("object"),
        "max_completion_time": _f("DurationInfo"),
        "limits": _f("object"),  # a map<string, Value.Scalar>
    },
    "ExecutorInfo": {
        "type": _f("enum:ExecutorInfo.Type"),
        "executor_id": _f("ID", True),
        "framework_id": _f("ID"),
        "command": _f("CommandInfo"),
        "resources": _f("Resource", False, True),
        "name": _f("string"),
        "data": _f("bytes"),
        "shutdown_grace_period": _f("DurationInfo"),
        "container": _f("ContainerInfo"),
        "source": _f("string"),
        "discovery": _f("object"),
        "labels": _f("Labels"),
    },
    "CommandInfo": {
        "value": _f("string"),
        "arguments": _f("string", False, True),
        "shell": _f("bool"),
        "environment": _f("Environment"),
        "uris": _f("URI", False, True),
        "user": _f("string"),
    },
    "Environment": {"variables": _f("Variable", False, True)},
    "Variable": {
        "name": _f("string", True),
        "type": _f("enum:Variable.Type"),
        "value": _f("string"),
        "secret": _f("object"),
    },
    "URI": {
        "value": _f("string", True),
        "executable": _f("bool"),
        "extract": _f("bool"),
        "cache": _f("bool"),
        "output_file": _f("string"),
    },
    "ContainerInfo": {
        "type": _f("enum:ContainerInfo.Type", True),
        "docker": _f("DockerInfo"),
        "mesos": _f("MesosInfo"),
        "volumes": _f("object", False, True),
        "hostname": _f("string"),
        "network_infos": _f("object", False, True),
        "linux_info": _f("object"),
        "rlimit_info": _f("object"),
        "tty_info": _f("object"),
    },
    "DockerInfo": {
        "image": _f("string", True),
        "network": _f("enum:DockerInfo.Network"),
        "port_mappings": _f("object", False, True),
        "privileged": _f("bool"),
        "parameters": _f("Parameter", False, True),
        "force_pull_image": _f("bool"),
        "volume_driver": _f("string"),
    },
    "Parameter": {"key": _f("string", True), "value": _f("string", True)},
    "MesosInfo": {"image": _f("Image")},
    "Image": {
        "type": _f("enum:Image.Type", True),
        "appc": _f("Image.Appc"),
        "docker": _f("Image.Docker"),
        "cached": _f("bool"),
    },
    "Image.Appc": {"name": _f("string", True), "id": _f("string"), "labels": _f("Labels")},
    "Image.Docker": {
        "name": _f("string", True),
        "credential": _f("object"),
        "config": _f("object"),
    },
    "Labels": {"labels": _f("Label", False, True)},
    "Label": {"key": _f("string", True), "value": _f("string")},
    "Resource": {
        "name": _f("string", True),
        "type": _f("enum:Value.Type", True),
        "scalar": _f("Scalar"),
        "ranges": _f("Ranges"),
        "set": _f("Set"),
        "role": _f("string"),
        "provider_id": _f("object"),
        "allocation_info": _f("object"),
        "reservation": _f("object"),
        "reservations": _f("object", False, True),
        "disk": _f("object"),
        "revocable": _f("object"),
        "shared": _f("object"),
    },
    "Scalar": {"value": _f("double", True)},
    "Ranges": {"range": _f("Range", False, True)},
    "Range": {"begin": _f("int", True), "end": _f("int", True)},
    "Set": {"item": _f("string", False, True)},
    # The executor API's call (executor/executor.proto).
    "executor.Call": {
        "executor_id": _f("ID", True),
        "framework_id": _f("ID", True),
        "type": _f("enum:executor.Call.Type"),
        "subscribe": _f("executor.Subscribe"),
        "update": _f("executor.Update"),
        "message": _f("executor.Message"),
    },
    "executor.Subscribe": {
        "unacknowledged_tasks": _f("TaskInfo", False, True),
        "unacknowledged_updates": _f("executor.Update", False, True),
    },
    "executor.Update": {"status": _f("TaskStatus", True)},
    "executor.Message": {"data": _f("bytes", True)},
    "TaskStatus": {
        "task_id": _f("ID", True),
        "state": _f("enum:TaskState", True),
        "message": _f("string"),
        "source": _f("enum:TaskStatus.Source"),
        "reason": _f("string"),
        "data": _f("bytes"),
        "agent_id": _f("ID"),
        "executor_id": _f("ID"),
        "timestamp": _f("double"),
        "uuid": _f("bytes"),
        "healthy": _f("bool"),
        "check_status": _f("object"),
        "labels": _f("Labels"),
        "container_status": _f("object"),
        "unreachable_time": _f("object"),
        "limitation": _f("object"),
    },
    # The operator API's calls (master/master.proto, agent/agent.proto): their type, and the
    # bodies of the calls that localmesos answers.
    "master.Call": {
        "type": _f("enum:master.Call.Type"),
        "get_metrics": _f("GetMetrics"),
        "list_files": _f("ListFiles"),
        "read_file": _f("ReadFile"),
        # The bodies of the calls that localmesos does not answer (501).
        "set_logging_level": _f("object"),
        "update_weights": _f("object"),
        "reserve_resources": _f("object"),
        "unreserve_resources": _f("object"),
        "create_volumes": _f("object"),
        "destroy_volumes": _f("object"),
        "grow_volume": _f("object"),
        "shrink_volume": _f("object"),
        "update_maintenance_schedule": _f("object"),
        "start_maintenance": _f("object"),
        "stop_maintenance": _f("object"),
        "drain_agent": _f("object"),
        "deactivate_agent": _f("object"),
        "reactivate_agent": _f("object"),
        "update_quota": _f("object"),
        "teardown": _f("object"),
        "mark_agent_gone": _f("object"),
        "set_quota": _f("object"),
        "remove_quota": _f("object"),
    },
    "agent.Call": {
        "type": _f("enum:agent.Call.Type"),
        "get_metrics": _f("GetMetrics"),
        "list_files": _f("ListFiles"),
        "read_file": _f("ReadFile"),
        # The bodies of the calls that localmesos does not answer (501).
        "set_logging_level": _f("object"),
        "get_containers": _f("object"),
        "launch_nested_container": _f("object"),
        "wait_nested_container": _f("object"),
        "kill_nested_container": _f("object"),
        "remove_nested_container": _f("object"),
        "launch_nested_container_session": _f("object"),
        "attach_container_input": _f("object"),
        "attach_container_output": _f("object"),
        "launch_container": _f("object"),
        "wait_container": _f("object"),
        "kill_container": _f("object"),
        "remove_container": _f("object"),
        "add_resource_provider_config": _f("object"),
        "update_resource_provider_config": _f("object"),
        "remove_resource_provider_config": _f("object"),
        "mark_resource_provider_gone": _f("object"),
        "prune_images": _f("object"),
    },
    "GetMetrics": {"timeout": _f("DurationInfo")},
    "ListFiles": {"path": _f("string", True)},
    "ReadFile": {
        "path": _f("string", True),
        "offset": _f("int", True),
        "length": _f("int"),
    },
}

ENUMS: dict[str, set[str]] = {
    "Call.Type": {
        "UNKNOWN",
        "SUBSCRIBE",
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "REVIVE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE",
        "RECONCILE_OPERATIONS",
        "MESSAGE",
        "REQUEST",
        "SUPPRESS",
        "UPDATE_FRAMEWORK",
    },
    "Operation.Type": {
        "UNKNOWN",
        "LAUNCH",
        "LAUNCH_GROUP",
        "RESERVE",
        "UNRESERVE",
        "CREATE",
        "DESTROY",
        "GROW_VOLUME",
        "SHRINK_VOLUME",
        "CREATE_DISK",
        "DESTROY_DISK",
    },
    "Value.Type": {"SCALAR", "RANGES", "SET", "TEXT"},
    "ExecutorInfo.Type": {"UNKNOWN", "DEFAULT", "CUSTOM"},
    "ContainerInfo.Type": {"DOCKER", "MESOS"},
    "Image.Type": {"APPC", "DOCKER"},
    "Variable.Type": {"UNKNOWN", "VALUE", "SECRET"},
    "DockerInfo.Network": {"HOST", "BRIDGE", "NONE", "USER"},
    "executor.Call.Type": {"UNKNOWN", "SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT"},
    "TaskState": TERMINAL_STATES
    | {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}
    | {"TASK_UNREACHABLE", "TASK_UNKNOWN"},
    "TaskStatus.Source": {"SOURCE_MASTER", "SOURCE_AGENT", "SOURCE_EXECUTOR"},
    "master.Call.Type": {
        "UNKNOWN",
        "GET_HEALTH",
        "GET_FLAGS",
        "GET_VERSION",
        "GET_METRICS",
        "GET_LOGGING_LEVEL",
        "SET_LOGGING_LEVEL",
        "LIST_FILES",
        "READ_FILE",
        "GET_STATE",
        "GET_AGENTS",
        "GET_FRAMEWORKS",
        "GET_EXECUTORS",
        "GET_OPERATIONS",
        "GET_TASKS",
        "GET_ROLES",
        "GET_WEIGHTS",
        "UPDATE_WEIGHTS",
        "GET_MASTER",
        "SUBSCRIBE",
        "RESERVE_RESOURCES",
        "UNRESERVE_RESOURCES",
        "CREATE_VOLUMES",
        "DESTROY_VOLUMES",
        "GROW_VOLUME",
        "SHRINK_VOLUME",
        "GET_MAINTENANCE_STATUS",
        "GET_MAINTENANCE_SCHEDULE",
        "UPDATE_MAINTENANCE_SCHEDULE",
        "START_MAINTENANCE",
        "STOP_MAINTENANCE",
        "DRAIN_AGENT",
        "DEACTIVATE_AGENT",
        "REACTIVATE_AGENT",
        "GET_QUOTA",
        "UPDATE_QUOTA",
        "SET_QUOTA",
        "REMOVE_QUOTA",
        "TEARDOWN",
        "MARK_AGENT_GONE",
    },
    "agent.Call.Type": {
        "UNKNOWN",
        "GET_HEALTH",
        "GET_FLAGS",
        "GET_VERSION",
        "GET_METRICS",
        "GET_LOGGING_LEVEL",
        "SET_LOGGING_LEVEL",
        "LIST_FILES",
        "READ_FILE",
        "GET_STATE",
        "GET_CONTAINERS",
        "GET_FRAMEWORKS",
        "GET_EXECUTORS",
        "GET_OPERATIONS",
        "GET_TASKS",
        "GET_AGENT",
        "GET_RESOURCE_PROVIDERS",
        "LAUNCH_NESTED_CONTAINER",
        "WAIT_NESTED_CONTAINER",
        "KILL_NESTED_CONTAINER",
        "REMOVE_NESTED_CONTAINER",
        "LAUNCH_NESTED_CONTAINER_SESSION",
        "ATTACH_CONTAINER_INPUT",
        "ATTACH_CONTAINER_OUTPUT",
        "LAUNCH_CONTAINER",
        "WAIT_CONTAINER",
        "KILL_CONTAINER",
        "REMOVE_CONTAINER",
        "ADD_RESOURCE_PROVIDER_CONFIG",
        "UPDATE_RESOURCE_PROVIDER_CONFIG",
        "REMOVE_RESOURCE_PROVIDER_CONFIG",
        "MARK_RESOURCE_PROVIDER_GONE",
        "PRUNE_IMAGES",
    },
    "Capability": {
        "UNKNOWN",
        "REVOCABLE_RESOURCES",
        "TASK_KILLING_STATE",
        "GPU_RESOURCES",
        "SHARED_RESOURCES",
        "PARTITION_AWARE",
        "MULTI_ROLE",
        "RESERVATION_REFINEMENT",
        "REGION_AWARE",
    },
}


class Invalid(ValueError):
    """A call that does not convert into its protobuf message; the text is Mesos's."""


class BadJson(ValueError):
    """A body that is not JSON as stout's `JSON::parse` reads it; the text is what Mesos puts
    after "Failed to parse body into JSON: "."""


# stout's JSON::parse gives up past 200 nested arrays and objects (json.hpp
# `STOUT_JSON_MAX_DEPTH`, counted in its picojson `ParseContext`): no Mesos message nests
# that deep, and a deeper value would only exhaust the stack of whoever walks it later.
MAX_JSON_DEPTH = 200
_SPECIAL = re.compile(r'[][{}"\\]')


def parse_json(body: bytes) -> Any:
    """A request body as stout's `JSON::parse` reads it: UTF-8, no NaN or Infinity, numbers
    that fit a double, at most MAX_JSON_DEPTH levels. Raises BadJson, saying where it broke
    as picojson does ("syntax error at line N near: <the rest of that line>")."""
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, parse_float=_float)
    except UnicodeDecodeError as error:
        raise BadJson(str(error)) from None
    except json.JSONDecodeError as error:
        # picojson stops at whichever comes first: the syntax error or the level too deep.
        deep = _too_deep_at(error.doc, error.pos)
        if deep is not None:
            raise BadJson(_near(error.doc, deep)) from None
        rest = error.doc[error.pos :].split("\n", 1)[0]
        raise BadJson(f"syntax error at line {error.lineno} near: {rest}") from None
    except RecursionError:
        deep = _too_deep_at(text, len(text))
        raise BadJson(_near(text, deep) if deep is not None else "nested too deep") from None
    except ValueError as error:  # NaN/Infinity, a number out of range, too many digits
        raise BadJson(str(error)) from None
    if _too_deep(text, value):
        deep = _too_deep_at(text, len(text))
        assert deep is not None
        raise BadJson(_near(text, deep))
    return value


def _too_deep(text: str, value: Any) -> bool:
    """Whether the arrays and objects of ``value`` (parsed from ``text``) nest deeper than
    MAX_JSON_DEPTH: a level at a time, without recursion."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_JSON_DEPTH):
        inner: list = []
        for item in level:
            inner.extend(item.values() if isinstance(item, dict) else item)
        level = [item for item in inner if isinstance(item, dict | list)]
    return bool(level)


def _too_deep_at(text: str, end: int) -> int | None:
    """Where, before ``end``, the first array or object too deep opens; None if none does."""
    depth, in_string, escaped_until = 0, False, -1
    for match in _SPECIAL.finditer(text, 0, end):
        at, char = match.start(), match.group()
        if at < escaped_until:
            continue
        if in_string:
            if char == "\\":
                escaped_until = at + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return at
        elif char in "]}":
            depth -= 1
    return None


def _near(text: str, at: int) -> str:
    """picojson's message for a parse that fails at ``at``: the line, and what follows on it."""
    rest = "".join(c for c in text[at + 1 :].split("\n", 1)[0] if c >= " ")
    return f"syntax error at line {text.count(chr(10), 0, at) + 1} near: {rest}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not JSON")


def _float(text: str) -> float:
    """A JSON number that fits a double (1e999 would come back as Infinity, which is not JSON)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _scalar(kind: str, name: str, value: Any) -> Any:
    """Check one value; returns it in its canonical form, or raises Invalid."""
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind == "bytes":
        if isinstance(value, str):
            try:
                base64.b64decode("".join(value.split()), validate=True)
            except (binascii.Error, ValueError):
                raise Invalid(f"Failed to base64 decode bytes field '{name}': {value}") from None
            return value
    elif kind in ("double", "int"):
        number = value
        if isinstance(value, str):
            try:
                number = float(value) if kind == "double" else int(value)
            except ValueError:
                raise Invalid(f"Failed to convert '{value}' to number for field '{name}'") from None
        if isinstance(number, int | float) and not isinstance(number, bool):
            if kind == "int" and isinstance(number, float):
                if not number.is_integer():
                    raise Invalid(f"Not expecting a fractional number for field '{name}'")
                number = int(number)
            if kind == "double" and not _finite(number):
                raise Invalid(f"Not a finite number for field '{name}'")
            return number
    elif kind == "bool" and isinstance(value, bool):
        return value
    raise Invalid(f"Not expecting a JSON {_json_kind(value)} for field '{name}'")


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer beyond the range of a double
        return False


def convert(message: str, value: Any, path: str = "") -> dict:
    """Check ``value`` against ``message`` as stout would; returns a cleaned copy without the
    keys that are not fields and the unknown enum names of optional fields. Raises Invalid."""
    if not isinstance(value, dict):
        raise Invalid("Expecting a JSON object")
    missing: list[str] = []
    result = _convert(message, value, path, missing)
    if missing:
        raise Invalid("Missing required fields: " + ", ".join(missing))
    return result


def _convert(message: str, value: dict, path: str, missing: list[str]) -> dict:
    fields = MESSAGES[message]
    result: dict[str, Any] = {}
    for key, item in value.items():
        spec = fields.get(key)
        if spec is None:
            continue  # not a field of the message: stout drops it
        kind, _required, repeated = spec
        if item is None:
            continue
        if repeated:
            if not isinstance(item, list):
                raise Invalid(f"Not expecting a JSON {_json_kind(item)} for field '{key}'")
            converted = [
                _one(kind, key, element, f"{path}{key}[{i}].", missing)
                for i, element in enumerate(item)
            ]
            result[key] = [c for c in converted if c is not _DROP]
        else:
            one = _one(kind, key, item, f"{path}{key}.", missing)
            if one is not _DROP:
                result[key] = one
    for key, (_kind, required, _repeated) in fields.items():
        if required and key not in result:
            missing.append(path + key)
    return result


_DROP = object()


def _one(kind: str, key: str, item: Any, path: str, missing: list[str]) -> Any:
    if kind.startswith("enum:"):
        if not isinstance(item, str):
            raise Invalid(f"Not expecting a JSON {_json_kind(item)} for field '{key}'")
        return item if item in ENUMS[kind[5:]] else _DROP
    if kind in MESSAGES or kind == "object":
        if not isinstance(item, dict):
            raise Invalid(f"Not expecting a JSON {_json_kind(item)} for field '{key}'")
        return item if kind == "object" else _convert(kind, item, path, missing)
    return _scalar(kind, key, item)


# What a framework without PARTITION_AWARE is told instead of the newer states.
PARTITION_STATES = frozenset(
    {"TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"}
)


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def new_uuid() -> str:
    """A status update uuid: 16 random bytes, base64 as the bytes field is written in JSON."""
    return base64.b64encode(uuid.uuid4().bytes).decode()


def valid_uuid(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def task_status(
    task_id: str,
    state: str,
    source: str,
    *,
    agent_id: str | None = None,
    executor_id: str | None = None,
    message: str | None = None,
    reason: str | None = None,
    with_uuid: bool = False,
    **extra: Any,
) -> dict:
    status: dict[str, Any] = {"task_id": {"value": task_id}, "state": state, "source": source}
    if agent_id:
        status["agent_id"] = {"value": agent_id}
    if executor_id:
        status["executor_id"] = {"value": executor_id}
    if message is not None:
        status["message"] = message
    if reason:
        status["reason"] = reason
    status["timestamp"] = time.time()
    if with_uuid:
        status["uuid"] = new_uuid()
    status.update(extra)
    return status


# The Mesos release that masters and agents say they are, and what agents say they can do.
MESOS_VERSION = "1.11.0"
AGENT_CAPABILITIES = ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]


def version_json() -> dict:
    return {
        "version": MESOS_VERSION,
        "build_date": "2026-11-24 00:00:00",
        "build_time": 1795478400.0,
        "build_user": "localmesos",
    }


def mesos_id() -> str:
    """Mesos's IDs start with the master's UUID (`<uuid>-0000`, `<uuid>-S0`, `<uuid>-O0`)."""
    return str(uuid.uuid4())


def hostname_for(ip: str) -> str:
    """The name a Mesos agent or master reports for ``ip``: its reverse lookup, as libprocess's
    ``net::getHostname`` does when no --hostname is given (127.0.0.1 becomes "localhost")."""
    try:
        return socket.gethostbyaddr(ip)[0]
    except OSError:
        return ip


def pid_string(name: str, ip: str, port: int) -> str:
    return f"{name}@{ip}:{port}"


def ip_as_uint32(ip: str) -> int:
    """MasterInfo.ip: the address packed in network byte order, read as a little-endian int,
    which is how Mesos fills it in on x86."""
    return struct.unpack("<I", socket.inet_aton(ip))[0]


# stout's duration units, in nanoseconds, smallest first.
DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "secs": 1_000_000_000,
    "mins": 60_000_000_000,
    "hrs": 3_600_000_000_000,
    "days": 86_400_000_000_000,
    "weeks": 604_800_000_000_000,
}


def parse_duration(text: str) -> float:
    """Mesos durations, as its flags take them (stout `Duration::parse`): digits and dots, then
    exactly one of ns|us|ms|secs|mins|hrs|days|weeks. No sign, exponent or spaces."""
    digits = len(text) - len(text.lstrip("0123456789."))
    number, unit = text[:digits], text[digits:]
    if unit in DURATION_UNITS:
        try:
            value = float(number)
        except ValueError:
            value = math.inf
        if math.isfinite(value):
            return value * DURATION_UNITS[unit] / 1e9
    raise ValueError(
        f"invalid duration '{text}': expected a number and one of ns, us, ms, secs, mins, hrs, "
        "days, weeks (for example 1secs)"
    )


def format_duration(seconds: float) -> str:
    """The inverse, as stout prints a Duration ("5secs", "100ms", "1500ms", "2mins"): the unit of
    the duration's size, unless the next smaller unit gives a whole number and this one does not."""
    nanos = round(seconds * 1e9)
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    names = list(DURATION_UNITS)
    sizes = list(DURATION_UNITS.values())
    i = max(i for i, size in enumerate(sizes) if size <= max(nanos, 1))
    if i > 0 and nanos % sizes[i] != 0 and nanos % sizes[i - 1] == 0:
        i -= 1
    return f"{sign}{nanos / sizes[i]:.15g}{names[i]}"


def random_hex(n: int = 8) -> str:
    return os.urandom(n).hex()
