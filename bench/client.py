"""A bare v1 scheduler client for the benchmarks (and the live page's load test): SUBSCRIBE on
its own socket, the chunked RecordIO stream decoded by hand, every other call on one keep-alive
connection. `Batch` runs one such framework on a thread.

No pymesos here, so that the latency benchmarks time the cluster rather than a client library.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Scheduler:
    def __init__(
        self,
        master: str,
        name: str = "bench",
        timeout: float = 30.0,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        host, port = master.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        framework = {"user": "nobody", "name": name}
        body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework}})
        head = ["POST /api/v1/scheduler HTTP/1.1", f"Host: {master}"]
        auth = {}
        if credentials is not None:
            # HTTP Basic, for a master that asks for it (a room: --credentials).
            token = base64.b64encode(":".join(credentials).encode()).decode()
            auth = {"Authorization": f"Basic {token}"}
        head += [f"{k}: {v}" for k, v in {**JSON_HEADERS, **auth}.items()]
        head.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n" + body).encode())
        self.stream = self.sock.makefile("rb")
        status = self.stream.readline().split()
        if len(status) < 2 or status[1] != b"200":
            raise ConnectionError(f"SUBSCRIBE answered {b' '.join(status).decode()!r}")
        stream_id = ""
        while (line := self.stream.readline().strip()) != b"":
            key, _, value = line.decode().partition(":")
            if key.strip().lower() == "mesos-stream-id":
                stream_id = value.strip()
        self.headers = {**JSON_HEADERS, **auth, "Mesos-Stream-Id": stream_id}
        self.records = b""
        subscribed = self.event()
        if subscribed["type"] != "SUBSCRIBED":
            raise ConnectionError(f"expected SUBSCRIBED, got {subscribed}")
        self.framework_id = subscribed["subscribed"]["framework_id"]["value"]
        self.calls = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def _chunk(self) -> None:
        size = int(self.stream.readline().split(b";")[0], 16)
        if size == 0:
            raise EOFError("the master closed the event stream")
        self.records += self.stream.read(size)
        self.stream.readline()

    def event(self) -> dict:
        """The next event on the stream (blocks)."""
        while True:
            length, newline, rest = self.records.partition(b"\n")
            if newline and len(rest) >= int(length):
                self.records = rest[int(length) :]
                return json.loads(rest[: int(length)])
            self._chunk()

    def next(self, kind: str) -> dict:
        """The next event of type ``kind``; status updates on the way are acknowledged."""
        while True:
            event = self.event()
            if event["type"] == "UPDATE":
                self.acknowledge(event["update"]["status"])
            if event["type"] == kind:
                return event

    def call(self, kind: str, **body: Any) -> int:
        payload = {"type": kind, "framework_id": {"value": self.framework_id}, **body}
        self.calls.request(
            "POST", "/api/v1/scheduler", body=json.dumps(payload).encode(), headers=self.headers
        )
        response = self.calls.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{kind} answered {response.status}")
        return response.status

    def acknowledge(self, status: dict) -> None:
        if "uuid" in status:  # updates from the master itself need no acknowledgement
            self.call(
                "ACKNOWLEDGE",
                acknowledge={
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": status["uuid"],
                },
            )

    def teardown(self) -> None:
        self.call("TEARDOWN")

    def close(self) -> None:
        self.calls.close()
        self.stream.close()
        self.sock.close()


def command_task(task_id: str, agent_id: dict, command: str, cpus: float, mem: float) -> dict:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": agent_id,
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
        "command": {"value": command},
    }


def scalar(offer: dict, name: str) -> float:
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


def accept_with_true_tasks(
    scheduler: Scheduler, offer: dict, prefix: str, first: int, most: int, cpus: float, mem: float
) -> int:
    """Accept ``offer`` with as many `true` command tasks as fit it, at most ``most``, named
    ``prefix-N`` from ``first`` on (none: the offer is declined, with no filter); how many."""
    fits = min(
        int(scalar(offer, "cpus") / cpus + 1e-6), int(scalar(offer, "mem") / mem + 1e-6), most
    )
    tasks = [
        command_task(f"{prefix}-{first + i}", offer["agent_id"], "true", cpus, mem)
        for i in range(fits)
    ]
    operations = [{"type": "LAUNCH", "launch": {"task_infos": tasks}}] if tasks else []
    scheduler.call(
        "ACCEPT",
        accept={
            "offer_ids": [offer["id"]],
            "operations": operations,
            "filters": {"refuse_seconds": 0},
        },
    )
    return fits


TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"}
)
HOUR = 3600.0


@dataclass
class TaskSpec:
    task_id: str
    command: str
    cpus: float = 0.01
    mem: float = 16.0


class Batch(threading.Thread):
    """One framework on its own thread: subscribes (after ``start_together``, if given), launches
    ``tasks`` as command tasks, at most ``per_offer`` from each offer, acknowledges every update,
    and ends once every task has ended. Each update's arrival is stamped with ``clock``, by task
    and state. Once nothing is left to launch, offers are declined for an hour, so that the
    allocation stops moving. The caller tears the framework down with ``close()``."""

    def __init__(
        self,
        master: str,
        name: str,
        tasks: list[TaskSpec],
        *,
        per_offer: int | None = None,
        start_together: threading.Barrier | None = None,
        clock: Callable[[], float] = time.time,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(name=f"batch-{name}", daemon=True)
        self.master = master
        self.framework_name = name
        self.tasks = list(tasks)
        self.per_offer = per_offer or len(self.tasks)
        self.start_together = start_together
        self.clock = clock
        self.credentials = credentials
        self.scheduler: Scheduler | None = None
        self.states: dict[str, str] = {}
        self.arrivals: dict[tuple[str, str], float] = {}
        self.error: BaseException | None = None
        self.subscribed = threading.Event()
        self.done = threading.Event()

    @property
    def framework_id(self) -> str:
        if self.scheduler is None:
            raise RuntimeError(f"{self.framework_name} has not subscribed")
        return self.scheduler.framework_id

    def run(self) -> None:
        try:
            if self.start_together is not None:
                self.start_together.wait()
            self.scheduler = Scheduler(
                self.master, name=self.framework_name, credentials=self.credentials
            )
            self.subscribed.set()
            left = list(self.tasks)
            while len([s for s in self.states.values() if s in TERMINAL]) < len(self.tasks):
                event = self.scheduler.event()
                if event["type"] == "UPDATE":
                    status = event["update"]["status"]
                    task_id, state = status["task_id"]["value"], status["state"]
                    self.arrivals.setdefault((task_id, state), self.clock())
                    self.states[task_id] = state
                    self.scheduler.acknowledge(status)
                elif event["type"] == "OFFERS":
                    for offer in event["offers"]["offers"]:
                        left = self._answer(offer, left)
        except BaseException as error:  # the caller reports it
            self.error = error
        finally:
            self.subscribed.set()
            self.done.set()

    def _answer(self, offer: dict, left: list[TaskSpec]) -> list[TaskSpec]:
        assert self.scheduler is not None
        cpus, mem = scalar(offer, "cpus"), scalar(offer, "mem")
        chosen: list[TaskSpec] = []
        for spec in left[: self.per_offer]:
            if spec.cpus > cpus + 1e-9 or spec.mem > mem + 1e-9:
                break
            cpus -= spec.cpus
            mem -= spec.mem
            chosen.append(spec)
        rest = left[len(chosen) :]
        infos = [
            command_task(s.task_id, offer["agent_id"], s.command, s.cpus, s.mem) for s in chosen
        ]
        operations = [{"type": "LAUNCH", "launch": {"task_infos": infos}}] if infos else []
        # While tasks wait, what is left of an agent comes back at the next round; after the
        # last launch, nothing more is wanted.
        refuse = 0.0 if rest else HOUR
        self.scheduler.call(
            "ACCEPT",
            accept={
                "offer_ids": [offer["id"]],
                "operations": operations,
                "filters": {"refuse_seconds": refuse},
            },
        )
        return rest

    def close(self) -> None:
        """Tear the framework down (its tasks are killed) and close its connections."""
        if self.scheduler is None:
            return
        try:
            self.scheduler.teardown()
        except (OSError, RuntimeError, http.client.HTTPException):
            pass  # the master is gone, or the framework already is
        finally:
            self.scheduler.close()
