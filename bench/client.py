"""A bare v1 scheduler client for the benchmarks: SUBSCRIBE on its own socket, the chunked
RecordIO stream decoded by hand, every other call on one keep-alive connection.

No pymesos here, so that the latency benchmarks time the cluster rather than a client library.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Scheduler:
    def __init__(self, master: str, name: str = "bench", timeout: float = 30.0) -> None:
        host, port = master.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        framework = {"user": "nobody", "name": name}
        body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework}})
        head = ["POST /api/v1/scheduler HTTP/1.1", f"Host: {master}"]
        head += [f"{k}: {v}" for k, v in JSON_HEADERS.items()]
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
        self.headers = {**JSON_HEADERS, "Mesos-Stream-Id": stream_id}
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
