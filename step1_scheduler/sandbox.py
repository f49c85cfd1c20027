"""Reading a task's files from its agent, as the Mesos web UI does.

A command task's output stays in its sandbox, a directory on the agent that ran it. The agent
serves sandboxes over HTTP: `/state` names each executor's directory (a command task runs under
a command executor whose ID is the task's ID), and `/files/read` returns a file's bytes. This
works the same on localmesos and on a real Mesos agent.

A cluster shared by a workshop room asks who we are on every request (HTTP Basic, as a Mesos
agent started with --authenticate_http_readonly): then each read carries our `Credential`.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass

HTTP_TIMEOUT = 10.0  # seconds; an agent that takes longer is treated as unreachable


class SandboxError(Exception):
    """The agent could not be reached, or it does not know the executor or the file."""


# ANCHOR: credential
@dataclass(frozen=True)
class Credential:
    """Who we are to a cluster that asks, as Mesos's `Credential` message: a principal (the
    framework's, in FrameworkInfo.principal) and its secret."""

    principal: str
    secret: str

    def authorization(self) -> str:
        """The `Authorization` header of HTTP Basic: "Basic " and base64 of principal:secret."""
        token = base64.b64encode(f"{self.principal}:{self.secret}".encode()).decode()
        return f"Basic {token}"


# ANCHOR_END: credential


def agent_url(offer: dict) -> str:
    """The agent's HTTP address, from the offer that it made.

    The hostname is what the agent advertises (on the compose cluster, `localhost` with a
    published port), which is reachable from the scheduler where its IP may not be."""
    address = offer["url"]["address"]
    host = address.get("hostname") or address["ip"]
    return f"{offer['url'].get('scheme', 'http')}://{host}:{address['port']}"


def get_json(url: str, credential: Credential | None = None) -> object:
    """GET ``url`` and parse its JSON; with ``credential``, authenticated."""
    headers = {"Authorization": credential.authorization()} if credential else {}
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return json.load(response)
    except (OSError, ValueError) as error:  # URLError is an OSError; bad JSON a ValueError
        raise SandboxError(f"GET {url} failed: {error}") from error


# ANCHOR: directory
def executor_directory(
    agent: str, framework_id: str, executor_id: str, credential: Credential | None = None
) -> str:
    """The sandbox directory of one executor, as the agent's `/state` reports it."""
    state = get_json(f"{agent}/state", credential)
    assert isinstance(state, dict)
    # A finished executor moves to `completed_executors`; a framework with no executor left
    # on the agent moves to `completed_frameworks`.
    for framework in state.get("frameworks", []) + state.get("completed_frameworks", []):
        if framework["id"] != framework_id:
            continue
        for executor in framework.get("executors", []) + framework.get("completed_executors", []):
            if executor["id"] == executor_id:
                return executor["directory"]
    raise SandboxError(f"agent {agent} has no executor {executor_id} of framework {framework_id}")


# ANCHOR_END: directory


# ANCHOR: read
def read_file(agent: str, path: str, offset: int = 0, credential: Credential | None = None) -> str:
    """The contents of `path` on the agent, from `offset` to the end.

    `/files/read` returns at most one page per request, so read until it returns nothing."""
    parts = []
    while True:
        query = urllib.parse.urlencode({"path": path, "offset": offset})
        page = get_json(f"{agent}/files/read?{query}", credential)
        assert isinstance(page, dict)
        if not page["data"]:
            return "".join(parts)
        parts.append(page["data"])
        offset += len(page["data"].encode())


# ANCHOR_END: read


def read_task_output(
    agent: str,
    framework_id: str,
    task_id: str,
    name: str = "stdout",
    credential: Credential | None = None,
) -> str:
    """A command task's `stdout` (or `stderr`)."""
    directory = executor_directory(agent, framework_id, task_id, credential)
    return read_file(agent, f"{directory}/{name}", credential=credential)


# Mesos's fetcher and command executor write their own log into the task's `stderr`, as glog
# lines: "I0823 14:59:00.113000  4249 executor.cpp:722] Starting task chunk-3-attempt-1".
MESOS_LOG_LINE = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.]+:\d+\] ")


def tail(text: str, lines: int = 5) -> str:
    """The last ``lines`` lines that the task itself wrote."""
    own = [line for line in text.rstrip("\n").splitlines() if not MESOS_LOG_LINE.match(line)]
    return "\n".join(own[-lines:])
