"""What tests of the agent's launch path share: reading a sandbox's files the way a user does
(`GET /files/read` on the agent), splitting its `stderr` into the glog lines that Mesos's
fetcher and command executor write, and a loopback HTTP server to fetch URIs from.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from localmesos.cluster import LocalCluster
from tests.integration import raw_http as rh

# glog: severity, MMDD, time with microseconds, the thread ID right-aligned in 5, file:line.
GLOG = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d\d\.\d{6} [ \d]{4}\d+ ([\w.]+:\d+)\] (.*)")


@dataclass(frozen=True)
class Line:
    severity: str  # "I", "W", "E": a glog line; "" for anything else (the task's own stderr)
    where: str  # "executor.cpp:722"
    text: str  # the message (first line of it), or the whole line if not glog


def parse(text: str) -> list[Line]:
    lines = []
    for raw in text.splitlines():
        match = GLOG.fullmatch(raw)
        lines.append(Line(*match.groups()) if match else Line("", "", raw))
    return lines


def glog(lines: list[Line], where_prefix: str = "") -> list[tuple[str, str]]:
    """The glog lines as (file:line, message), those of one file only if asked."""
    return [
        (ln.where, ln.text) for ln in lines if ln.severity and ln.where.startswith(where_prefix)
    ]


def agent_address(cluster: LocalCluster, agent_id: str) -> str:
    return cluster.agent_url(agent_id).removeprefix("http://")


def read_sandbox(
    cluster: LocalCluster, agent_id: str, framework_id: str, executor_id: str, name: str
) -> str:
    """A file of the executor's latest run, through the agent's /files/read, as the web UI
    reads it."""
    path = f"/frameworks/{framework_id}/executors/{executor_id}/runs/latest/{name}"
    reply = rh.get(agent_address(cluster, agent_id), f"/files/read?path={quote(path)}&offset=0")
    assert reply.status == 200, (path, reply.status, reply.body)
    return reply.json()["data"]


def agent_state(cluster: LocalCluster, agent_id: str) -> dict:
    return rh.get(agent_address(cluster, agent_id), "/state").json()


class FileServer:
    """A loopback HTTP server over ``root``, which records every request (method, path). A
    GET of a path in ``held`` waits until `release()`."""

    def __init__(self, root: Path) -> None:
        self.requests: list[tuple[str, str]] = []
        self.held: set[str] = set()
        self._released = threading.Event()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path))
                if self.path in server.held:
                    server._released.wait(30)
                super().do_GET()

            def do_HEAD(self) -> None:
                server.requests.append(("HEAD", self.path))
                super().do_HEAD()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def gets(self, path: str) -> int:
        return self.requests.count(("GET", "/" + path))

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()


def file_server(root: Path) -> Iterator[FileServer]:
    server = FileServer(root)
    try:
        yield server
    finally:
        server.close()
