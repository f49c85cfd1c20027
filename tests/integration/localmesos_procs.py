"""Helpers for the tests that run localmesos as real processes: start the `localmesos` command,
speak the v1 scheduler API over raw HTTP, and tell from /proc whether a process still lives.

A process is named by its pid *and* its start time, so that a pid the kernel hands out again
is never mistaken for the process the test saw. A zombie counts as gone: it has died, and only
waits for a parent (possibly a PID 1 that never reaps) to collect its exit status.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localmesos import zookeeper
from tools import in_ci

LOCALMESOS = Path(sys.executable).parent / "localmesos"
READY = re.compile(r"http://127\.0\.0\.1:(\d+)")


# -- processes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # clock ticks after boot (/proc/PID/stat field 22)


@dataclass(frozen=True)
class Stat:
    state: str
    ppid: int
    pgid: int
    sid: int
    start: int


def stat(pid: int) -> Stat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return Stat(fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def proc(pid: int) -> Proc:
    """The live process ``pid``; fails if there is none."""
    info = stat(pid)
    assert info is not None and info.state not in "ZX", f"process {pid} is not running"
    return Proc(pid, info.start)


def alive(p: Proc) -> bool:
    info = stat(p.pid)
    if info is None or info.start != p.start:
        return False  # gone, or the pid now belongs to another process
    if info.state in "ZX":
        return False  # dead, waiting to be reaped
    with contextlib.suppress(ProcessLookupError):
        os.kill(p.pid, 0)
        return True
    return False


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def descendants(root: int) -> set[Proc]:
    """Every live process below ``root`` in the process tree (children, grandchildren ...)."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        info = stat(pid)
        if info is not None and info.state not in "ZX":
            children.setdefault(info.ppid, []).append(pid)
    found: set[Proc] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        info = stat(pid)
        if info is not None and info.state not in "ZX":
            found.add(Proc(pid, info.start))
            todo += children.get(pid, [])
    return found


def in_sessions(sids: set[int]) -> set[Proc]:
    """Every live process whose session is one of ``sids``: a task and all it started, even
    what has been re-parented to init."""
    found = set()
    for pid in all_pids():
        info = stat(pid)
        if info is not None and info.state not in "ZX" and info.sid in sids:
            found.add(Proc(pid, info.start))
    return found


def watchdogs(parent: int) -> set[Proc]:
    """The Launcher's watchdog among ``parent``'s children (`python -I -S -c ...`)."""
    found = set()
    for pid in all_pids():
        info = stat(pid)
        argv = cmdline(pid)
        if info is not None and info.ppid == parent and argv[1:4] == ["-I", "-S", "-c"]:
            found.add(Proc(pid, info.start))
    return found


def survivors(procs: set[Proc], timeout: float = 5.0) -> set[Proc]:
    """Waits up to ``timeout`` for every process in ``procs`` to die; returns those that live."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p for p in procs if alive(p)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def describe(procs: set[Proc]) -> str:
    return ", ".join(f"{p.pid} {' '.join(cmdline(p.pid))!r}" for p in sorted(procs, key=str))


def kill_all(procs: set[Proc]) -> None:
    """Clean-up after a failed test: SIGKILL whatever is still alive."""
    for p in procs:
        if alive(p):
            with contextlib.suppress(OSError):
                os.kill(p.pid, signal.SIGKILL)


# -- leak check -----------------------------------------------------------------------------------

# Runs a command as a child subreaper (Linux prctl PR_SET_CHILD_SUBREAPER): whatever the command
# leaves running is re-parented here, not to init, so it can be found without racing it.
# argv: REPORT GRACE COMMAND...; writes the leftovers' command lines to REPORT as JSON, kills
# them, and exits with the command's status.
SUBREAPER = r"""
import ctypes, json, os, signal, subprocess, sys, time

if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
report, grace, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
code = subprocess.call(command)


def children():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass  # reap what has died: a zombie is not a leak
    except ChildProcessError:
        pass
    found = {}
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as file:
                argv = file.read().decode(errors="replace").split("\0")[:-1]
        except (OSError, IndexError):
            continue
        if fields[1] == str(os.getpid()) and fields[0] not in "ZX":
            found[int(name)] = argv
    return found


deadline = time.monotonic() + grace
while (left := children()) and time.monotonic() < deadline:
    time.sleep(0.01)
with open(report, "w") as file:
    json.dump(list(left.values()), file)
for pid in left:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
sys.exit(code)
"""


def run_leak_checked(
    argv: list[str], report: Path, grace: float = 5.0, timeout: float = 60.0
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Runs ``argv`` to completion; returns its result and the command lines of the processes
    it left running (given ``grace`` seconds to go away), which are then killed."""
    result = subprocess.run(
        [sys.executable, "-c", SUBREAPER, str(report), str(grace), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result, json.loads(report.read_text())


# -- the localmesos command -----------------------------------------------------------------------


def start_localmesos(args: Sequence[str], timeout: float) -> tuple[subprocess.Popen, str]:
    """`localmesos ARGS` started, and the first line it prints (its ready line)."""
    process = subprocess.Popen(
        [str(LOCALMESOS), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            process.wait(10)
            raise AssertionError(f"localmesos printed nothing within {timeout} s")
    line = process.stdout.readline()
    if not line:
        code = process.wait(5)
        stderr = process.stderr.read() if process.stderr else ""
        raise AssertionError(f"localmesos exited with {code} before it was ready: {stderr}")
    return process, line


class Cli:
    """`localmesos ARGS` in the foreground, as a user starts it."""

    def __init__(self, *args: str, timeout: float = 15.0) -> None:
        self.process, self.ready_line = start_localmesos(args, timeout)
        match = READY.search(self.ready_line)
        assert match, f"no master URL in the ready line {self.ready_line!r}"
        self.port = int(match.group(1))
        self.master = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.master}"

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def state(self) -> dict:
        status, body = self.get("/master/state")
        assert status == 200, status
        return json.loads(body)

    def signal(self, sig: int, timeout: float = 15.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Clean-up: SIGKILL if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


# -- a scheduler over raw HTTP --------------------------------------------------------------------


class Subscription:
    """One SUBSCRIBE: the RecordIO event stream, and calls on a second keep-alive connection."""

    def __init__(
        self,
        master: str,
        *,
        name: str = "test",
        credentials: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        host, port = master.rsplit(":", 1)
        self.master = master
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        framework: dict[str, Any] = {"user": "nobody", "name": name}
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
            framework["principal"] = credentials[0]
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework}})
        head = ["POST /api/v1/scheduler HTTP/1.1", f"Host: {master}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n" + body).encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.response_headers: dict[str, str] = {}
        while (line := self.file.readline().decode().strip()) != "":
            key, _, value = line.partition(":")
            self.response_headers[key.strip().lower()] = value.strip()
        self.records = b""
        self.framework_id = ""
        self.calls: http.client.HTTPConnection | None = None
        if self.status == 200:
            self.headers["Mesos-Stream-Id"] = self.response_headers["mesos-stream-id"]
            subscribed = self.next_event()
            assert subscribed["type"] == "SUBSCRIBED", subscribed
            self.framework_id = subscribed["subscribed"]["framework_id"]["value"]
            self.calls = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def _chunk(self) -> None:
        size = int(self.file.readline().split(b";")[0], 16)
        if size == 0:
            raise EOFError("the master ended the event stream")
        self.records += self.file.read(size)
        self.file.readline()

    def next_event(self) -> dict:
        while b"\n" not in self.records:
            self._chunk()
        length, _, rest = self.records.partition(b"\n")
        while len(rest) < int(length):
            self._chunk()
            length, _, rest = self.records.partition(b"\n")
        self.records = rest[int(length) :]
        return json.loads(rest[: int(length)])

    def wait_for(self, kind: str, timeout: float | None = None) -> dict:
        """The next event of type ``kind``, acknowledging every status update on the way."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            event = self.next_event()
            if event["type"] == "UPDATE":
                self.acknowledge(event["update"]["status"])
            if event["type"] == kind:
                return event
        raise TimeoutError(f"no {kind} event within {timeout or self.timeout} s")

    def call(self, kind: str, **body: Any) -> int:
        assert self.calls is not None, "not subscribed"
        payload = {"type": kind, "framework_id": {"value": self.framework_id}, **body}
        self.calls.request(
            "POST", "/api/v1/scheduler", body=json.dumps(payload).encode(), headers=self.headers
        )
        response = self.calls.getresponse()
        response.read()
        return response.status

    def acknowledge(self, status: dict) -> None:
        if "uuid" in status:
            code = self.call(
                "ACKNOWLEDGE",
                acknowledge={
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": status["uuid"],
                },
            )
            assert code == 202, code

    def launch(self, offer: dict, task_id: str, command: str, cpus: float = 0.1) -> None:
        """Accept ``offer`` with one command task; the rest of the offer is not filtered."""
        task = {
            "name": task_id,
            "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            ],
            "command": {"value": command},
        }
        code = self.call(
            "ACCEPT",
            accept={
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                "filters": {"refuse_seconds": 0},
            },
        )
        assert code == 202, code

    def run_tasks(self, commands: dict[str, str], timeout: float | None = None) -> dict[str, dict]:
        """Launch one task per (task ID, shell command), one per offer, and wait until all are
        running; returns each task's TASK_RUNNING status."""
        pending = dict(commands)
        running: dict[str, dict] = {}
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(running) < len(commands):
            if time.monotonic() > deadline:
                raise TimeoutError(f"tasks not running: {sorted(set(commands) - set(running))}")
            event = self.next_event()
            if event["type"] == "OFFERS":
                for offer in event["offers"]["offers"]:
                    if pending:
                        task_id, command = pending.popitem()
                        self.launch(offer, task_id, command)
                    else:
                        self.call("DECLINE", decline={"offer_ids": [offer["id"]]})
            elif event["type"] == "UPDATE":
                status = event["update"]["status"]
                self.acknowledge(status)
                state = status["state"]
                if state == "TASK_RUNNING":
                    running[status["task_id"]["value"]] = status
                elif state not in ("TASK_STAGING", "TASK_STARTING"):
                    raise AssertionError(f"task {status['task_id']['value']} is {state}: {status}")
        return running

    def close(self) -> None:
        if self.calls is not None:
            self.calls.close()
        self.file.close()
        self.sock.close()


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    """The stripped contents of ``path`` once it is written (a task writing its pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            text = path.read_text()
            if text.endswith("\n"):
                return text.strip()
        time.sleep(0.01)
    raise TimeoutError(f"{path} was not written within {timeout} s")


def need_zookeeper() -> None:
    """Without ZooKeeper or java the test fails in CI and is skipped elsewhere."""
    missing = zookeeper.unavailable()
    if missing is not None:
        if in_ci():
            pytest.fail(f"CI must run every test: {missing}")
        pytest.skip(missing)
