"""Stand-ins for what pymesos hands a scheduler or an executor, for the checks: drivers that
record what they are asked, and offers and status updates shaped as pymesos delivers them
(Mesos v1 JSON)."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

_ids = itertools.count(1)


def decode(data: str) -> Any:
    """What messages.encode() made (the checks read it without trusting the package's own)."""
    return json.loads(base64.b64decode(data))


class Driver:
    """A scheduler driver: every call is recorded as (name, arguments), in order."""

    def __init__(self, framework_id: str = "F0") -> None:
        self.framework_id = framework_id  # what pymesos's driver knows after subscribing
        self.calls: list[tuple[str, dict]] = []
        # Called with each acknowledged update, as it is acknowledged.
        self.on_acknowledge: Callable[[dict], None] = lambda update: None

    def _record(self, name: str, **arguments: Any) -> None:
        self.calls.append((name, arguments))

    def launchTasks(self, offer_ids: Any, tasks: list[dict], filters: Any = None) -> None:
        self._record("launchTasks", offer=offer_ids, tasks=tasks, filters=filters)

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self._record("declineOffer", offer=offer_ids, filters=filters)

    def suppressOffers(self) -> None:
        self._record("suppressOffers")

    def reviveOffers(self) -> None:
        self._record("reviveOffers")

    def sendFrameworkMessage(self, executor_id: dict, agent_id: dict, data: str) -> None:
        self._record(
            "sendFrameworkMessage", executor=executor_id, agent=agent_id, message=decode(data)
        )

    def reconcileTasks(self, tasks: list[dict]) -> None:
        self._record("reconcileTasks", tasks=sorted(t["task_id"]["value"] for t in tasks))

    def killTask(self, task_id: dict) -> None:
        self._record("killTask", task=task_id["value"])

    def acknowledgeStatusUpdate(self, status: dict) -> None:
        self.on_acknowledge(status)
        self._record("acknowledgeStatusUpdate", update=status)

    def stop(self, failover: bool = False) -> None:
        self._record("stop", failover=failover)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[dict]:
        return [arguments for call, arguments in self.calls if call == name]

    def launched(self) -> list[str]:
        return [t["task_id"]["value"] for call in self.of("launchTasks") for t in call["tasks"]]

    def clear(self) -> None:
        self.calls.clear()


class ExecutorDriver:
    """An executor driver, called from the tasks' threads: it records status updates and
    messages under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.updates: list[dict] = []
        self.messages: list[dict] = []

    def sendStatusUpdate(self, status: dict) -> None:
        with self.lock:
            self.updates.append(dict(status))

    def sendFrameworkMessage(self, data: str) -> None:
        with self.lock:
            self.messages.append(decode(data))

    def states(self, task_id: str) -> list[str]:
        with self.lock:
            return [u["state"] for u in self.updates if u["task_id"]["value"] == task_id]

    def last(self, task_id: str) -> dict:
        with self.lock:
            return [u for u in self.updates if u["task_id"]["value"] == task_id][-1]


def offer(cpus: float, mem: float, agent: str = "S0", executors: tuple[str, ...] = ()) -> dict:
    """An offer as pymesos hands it to a scheduler. `executors`: the IDs of the framework's
    executors that run on the agent already."""
    made = {
        "id": {"value": f"O{next(_ids)}"},
        "framework_id": {"value": "F0"},
        "agent_id": {"value": agent},
        "hostname": f"{agent.lower()}.example",
        "url": {
            "scheme": "http",
            "address": {"hostname": f"{agent.lower()}.example", "ip": "10.0.0.1", "port": 5051},
            "path": "/slave(1)",
        },
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*"},
        ],
    }
    if executors:
        made["executor_ids"] = [{"value": e} for e in executors]
    return made


def update(task_id: str, state: str, agent: str = "S0", **fields: Any) -> dict:
    """A status update from an agent (or its executor): with a uuid, to be acknowledged."""
    return {
        "task_id": {"value": task_id},
        "state": state,
        "agent_id": {"value": agent},
        "source": "SOURCE_EXECUTOR",
        "uuid": f"u{next(_ids)}",
        **fields,
    }


def from_master(task_id: str, state: str, reason: str, **fields: Any) -> dict:
    """An update that the master makes itself (a reconciliation's answer, an agent's loss):
    with no uuid, and nothing to acknowledge."""
    return {
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_MASTER",
        "reason": reason,
        **fields,
    }


class Timers:
    """Stands for a scheduler's `later(seconds, function)`: records what it schedules, and runs
    it when told to."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, seconds: float, function: Callable[[], None]) -> None:
        self.scheduled.append((seconds, function))

    def fire(self) -> float:
        """Run the oldest scheduled call; returns how long it was to wait."""
        seconds, function = self.scheduled.pop(0)
        function()
        return seconds


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
