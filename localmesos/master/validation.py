"""What the master checks before it acts (src/master/validation.cpp): scheduler calls,
FrameworkInfo on SUBSCRIBE, the offers of an ACCEPT, and each task and executor it launches.
Each check returns the message that Mesos gives, or None.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from localmesos import protocol
from localmesos.master.models import AgentRecord, Executor, Framework, Offer
from localmesos.resources import Resources

log = logging.getLogger("localmesos.master")


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
    """master/validation.cpp `scheduler::call::validate`."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    body = BODY_OF.get(kind)
    if body is not None and body not in call:
        return f"Expecting '{body}' to be present"
    if kind == "SUBSCRIBE":
        # Two FrameworkIDs compare by value, and one that is not set has the value ""
        # (`frameworkInfo.id() != call.framework_id()`, type_utils.cpp `operator==`).
        info = call["subscribe"]["framework_info"]
        if info.get("id", {}).get("value", "") != call.get("framework_id", {}).get("value", ""):
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    if kind == "ACKNOWLEDGE" and not protocol.valid_uuid(call["acknowledge"]["uuid"]):
        return "Not a valid UUID"
    return None


def validate_framework_info(info: dict) -> str | None:
    """The checks that refuse a SUBSCRIBE with an ERROR event (validation.cpp
    `framework::validate`, `Master::validateFramework`), in their order: roles, the
    framework's ID, the failover timeout."""
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
    # `validateFrameworkId`: an ID of "" is no ID (the master gives the framework one); any
    # other must be a valid ID, since agents name sandbox directories after it.
    framework_id = info.get("id", {}).get("value", "")
    if framework_id:
        problem = id_error(framework_id)
        if problem is not None:
            return problem
    timeout = info.get("failover_timeout", 0.0)
    if timeout < 0 or timeout > 10 * 365 * 86400:
        return f"Invalid failover_timeout: {timeout}"
    return None


def id_error(value: str) -> str | None:
    """common/validation.cpp `validateID`."""
    if not value:
        return "ID must not be empty"
    if len(value.encode("utf-8", "surrogatepass")) > 255:  # C++ counts bytes
        return "ID must not be greater than 255 characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in value):
        return f"'{value}' contains invalid characters"
    return None


def protocol_task_id_error(task_id: str) -> str | None:
    """common/validation.cpp validateID, as the task validation reports it."""
    problem = id_error(task_id)
    return None if problem is None else f"Task ID is invalid: {problem}"


def validate_offers(
    framework: Framework, offer_ids: list[str], offers: dict[str, Offer]
) -> str | None:
    """master/validation.cpp `offer::validate`: the offers of an ACCEPT, against the master's
    outstanding ``offers``."""
    if not offer_ids:
        return "No offers specified"
    if len(set(offer_ids)) != len(offer_ids):
        duplicate = next(o for o in offer_ids if offer_ids.count(o) > 1)
        return f"Duplicate offer {duplicate} in offers list"
    agents = set()
    for offer_id in offer_ids:
        offer = offers.get(offer_id)
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


@dataclass(frozen=True)
class ValidTask:
    """A task that passed validation, as the master launches it."""

    info: dict  # the TaskInfo as the agent gets it: its ExecutorInfo with framework_id set
    resources: Resources
    executor: Executor | None  # an executor that this task starts on the agent
    needed: Resources  # what the task takes from the offers: its resources and its executor's


def validate_task(
    framework: Framework,
    agent: AgentRecord,
    info: dict,
    available: Resources,
    operation_id: dict | None,
) -> ValidTask | str:
    """master/validation.cpp `task::validate` (and `task::internal::validateTask`,
    `validateResources`, `validateExecutor`): the task as it will be launched, or the message
    of the TASK_ERROR that refuses it."""
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
    if error is None and "container" in info:
        problem = validate_container_info(info["container"])
        if problem is not None:
            error = f"Task's `ContainerInfo` is invalid: {problem}"
    if error is None and ("command" in info) == ("executor" in info):
        error = (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
        )
    executor: Executor | None = None  # an executor that this task starts on the agent
    if error is None and "executor" in info:
        error, executor = validate_executor(framework, agent, info["executor"])
        if error is None:
            # The agent gets the ExecutorInfo with the framework ID filled in.
            info = {**info, "executor": with_framework_id(framework, info["executor"])}
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
        return error
    assert resources is not None and needed is not None
    return ValidTask(info, resources, executor, needed)


def with_framework_id(framework: Framework, executor_info: dict) -> dict:
    return {**executor_info, "framework_id": {"value": framework.id}}


def validate_executor(
    framework: Framework, agent: AgentRecord, executor_info: dict
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
    if "container" in executor_info:
        problem = validate_container_info(executor_info["container"])
        if problem is not None:
            return f"Executor's `ContainerInfo` is invalid: {problem}", None
    given = executor_info.get("framework_id", {}).get("value")
    if given is not None and given != framework.id:
        return (
            f"ExecutorInfo has an invalid FrameworkID (Actual: {given} vs Expected: {framework.id})"
        ), None
    try:
        resources = Resources.from_json(executor_info.get("resources", []))
    except ValueError as problem_text:
        return f"Executor uses invalid resources: {problem_text}", None
    info = with_framework_id(framework, executor_info)
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


def validate_container_info(container: dict) -> str | None:
    """common/validation.cpp `validateContainerInfo`, but for volumes, which localmesos does
    not mount. What passes may still be refused by the agent's containerizer
    (agent/containerizer.py `refuse_container`)."""
    if container.get("type") == "DOCKER":
        if "docker" not in container:
            return "DockerInfo 'docker' is not set for DOCKER typed ContainerInfo"
        if any(p.get("key") == "name" for p in container["docker"].get("parameters", [])):
            return "Parameter in DockerInfo must not be 'name'"
    return None


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
