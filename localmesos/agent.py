"""An agent: runs command tasks as local processes the way Mesos's command executor does,
keeps their sandboxes in the Mesos layout, retries status updates until they are acknowledged,
and serves the sandbox files over HTTP.

Section numbers (§5.10 ...) point to ../shared/docs/mesos-http-api-notes.md.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import signal
import stat
import subprocess
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localmesos import protocol
from localmesos.actors import Actor, Timer
from localmesos.master import AGENT_CAPABILITIES, MESOS_VERSION, version_json
from localmesos.processes import Launcher
from localmesos.protocol import task_status
from localmesos.resources import Resources
from localmesos.web import Request, Response, Server

log = logging.getLogger("localmesos.agent")

# slave/constants.hpp: the first retry after 10 s, doubling up to 10 min.
STATUS_UPDATE_RETRY = 10.0
STATUS_UPDATE_RETRY_MAX = 600.0
# The command executor's default grace between SIGTERM and SIGKILL (launcher/executor.cpp).
KILL_GRACE = 3.0
# slave/constants.hpp DEFAULT_EXECUTOR_SHUTDOWN_GRACE_PERIOD.
SHUTDOWN_GRACE = 5.0
# files.cpp caps one read at 16 pages.
READ_CAP = 16 * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 65536


@dataclass
class Run:
    """One command executor and its single task (executor ID = task ID, §5.10)."""

    framework_id: str
    task: dict
    container_id: str
    directory: Path
    resources: Resources
    process: subprocess.Popen | None = None
    state: str = "TASK_STAGING"
    killed: bool = False
    executor_terminated: bool = False
    kill_timer: Timer | None = None

    @property
    def task_id(self) -> str:
        return self.task["task_id"]["value"]

    @property
    def command(self) -> dict:
        return self.task.get("command", {})


@dataclass
class UpdateStream:
    """The updates of one task not yet acknowledged; only the oldest is in flight (§3.9)."""

    updates: deque[dict] = field(default_factory=deque)
    timer: Timer | None = None
    interval: float = STATUS_UPDATE_RETRY


class Agent(Actor):
    def __init__(
        self,
        master_link: Any,
        *,
        ip: str,
        resources: Resources,
        work_dir: Path,
        launcher: Launcher,
        port: int = 0,
        status_update_retry: float = STATUS_UPDATE_RETRY,
        name: str = "agent",
    ) -> None:
        super().__init__(name)
        self.master = master_link
        self.ip = ip
        self.resources = resources
        self.work_dir = work_dir
        self.launcher = launcher
        self.status_update_retry = status_update_retry
        self.id: str | None = None
        self.master_info: dict | None = None
        self.hostname = protocol.hostname_for(ip)
        self.server = Server(ip, port, self.route, name)
        self.start_time = time.time()
        self.frameworks: dict[str, dict] = {}  # framework ID -> FrameworkInfo
        self.runs: dict[tuple[str, str], Run] = {}  # (framework ID, executor ID)
        self.completed_runs: deque[Run] = deque(maxlen=150)
        self.streams: dict[tuple[str, str], UpdateStream] = {}
        # Frameworks being shut down: their updates have nobody to go to (Mesos cleans up the
        # framework's status update streams at this point).
        self.removed_frameworks: set[str] = set()
        self.registered = threading.Event()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pid(self) -> str:
        return protocol.pid_string("slave(1)", self.ip, self.port)

    def info(self) -> dict:
        return {
            "hostname": self.hostname,
            "ip": self.ip,
            "port": self.port,
            "resources": self.resources.to_json(),
            "attributes": [],
        }

    def start(self, link_to_self: Any) -> None:
        self.start_actor()
        self.server.start()
        self.master.send("register_agent", self.info(), link_to_self)

    def crash(self) -> None:
        """Die at once, as a machine does: no goodbye to the master, every process killed."""
        self.stop_actor(wait=False)
        self.server.stop()
        for run in list(self.runs.values()):
            if run.process is not None:
                self.launcher.kill_group(run.process.pid)

    def stop(self) -> None:
        self.crash()

    # -- messages from the master ---------------------------------------------------------------

    def on_registered(self, agent_id: str, master_info: dict) -> None:
        self.id = agent_id
        self.master_info = master_info
        slaves = self.work_dir / "slaves"
        (slaves / agent_id).mkdir(parents=True, exist_ok=True)
        _relink(slaves / "latest", agent_id)
        self.registered.set()
        log.info("agent %s registered on port %d", agent_id, self.port)

    def on_ping(self) -> None:
        self.master.send("pong", self.id)

    def on_run_task(self, payload: dict) -> None:
        framework_info = payload["framework_info"]
        task = payload["task"]
        framework_id = framework_info["id"]["value"]
        self.frameworks[framework_id] = framework_info
        task_id = task["task_id"]["value"]
        container_id = str(uuid.uuid4())
        executors = (
            self.work_dir
            / "slaves"
            / str(self.id)
            / "frameworks"
            / framework_id
            / "executors"
            / task_id
            / "runs"
        )
        directory = executors / container_id
        directory.mkdir(parents=True)
        _relink(executors / "latest", container_id)
        run = Run(
            framework_id,
            task,
            container_id,
            directory,
            Resources.from_json(task.get("resources", [])),
        )
        self.runs[(framework_id, task_id)] = run
        # The command executor reports STARTING before it spawns the command (MESOS-7941).
        self._executor_update(run, "TASK_STARTING")
        try:
            argv, executable = self._command(run)
            run.process = self.launcher.spawn(
                argv, executable=executable, cwd=directory, env=self._environment(run)
            )
        except OSError as error:
            self._executor_update(
                run, "TASK_FAILED", message=f"Failed to launch the command: {error}"
            )
            self._executor_done(run)
            return
        self._executor_update(run, "TASK_RUNNING")
        threading.Thread(
            target=self._wait, args=(run,), daemon=True, name=f"wait-{task_id}"
        ).start()

    def _command(self, run: Run) -> tuple[list[str], str | None]:
        command = run.command
        value = command.get("value", "")
        if command.get("shell", True):
            return ["/bin/sh", "-c", value], None
        # Without a shell, `arguments` is the whole argv, argv[0] included (§5.9).
        return list(command.get("arguments") or [value]), value

    def _environment(self, run: Run) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MESOS_FRAMEWORK_ID": run.framework_id,
                "MESOS_EXECUTOR_ID": run.task_id,
                "MESOS_DIRECTORY": str(run.directory),
                "MESOS_SANDBOX": str(run.directory),
                "MESOS_AGENT_ENDPOINT": f"{self.ip}:{self.port}",
                "MESOS_SLAVE_ID": str(self.id),
                "MESOS_SLAVE_PID": self.pid,
                "MESOS_CHECKPOINT": "0",
                "MESOS_HTTP_COMMAND_EXECUTOR": "0",
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": protocol.format_duration(SHUTDOWN_GRACE),
                "MESOS_TASK_ID": run.task_id,
                "LIBPROCESS_PORT": "0",
            }
        )
        for variable in run.command.get("environment", {}).get("variables", []):
            env[variable["name"]] = variable.get("value", "")
        return env

    def _wait(self, run: Run) -> None:
        assert run.process is not None
        status = self.launcher.reap(run.process)
        self.dispatch(self._exited, run, status)

    def _exited(self, run: Run, status: int) -> None:
        if run.kill_timer:
            run.kill_timer.cancel()
        if run.executor_terminated:
            # The executor itself died: the agent reports what it still had (§4.4).
            self._agent_update(
                run,
                "TASK_FAILED",
                reason="REASON_EXECUTOR_TERMINATED",
                message="Executor terminated",
            )
        else:
            how = _wait_status(status)
            if run.killed:
                self._executor_update(run, "TASK_KILLED", message=f"Command {how}")
            elif status == 0:
                self._executor_update(run, "TASK_FINISHED", message=f"Command {how}")
            else:
                self._executor_update(run, "TASK_FAILED", message=f"Command {how}")
        self._executor_done(run)

    def _executor_done(self, run: Run) -> None:
        self.runs.pop((run.framework_id, run.task_id), None)
        self.completed_runs.append(run)
        self.master.send("executor_exited", self.id, run.framework_id, run.task_id, 0)

    def on_kill_task(self, framework_id: str, task_id: str, kill_policy: dict | None) -> None:
        run = self.runs.get((framework_id, task_id))
        if run is None or run.process is None or run.killed:
            return
        # The KILL's policy wins over the task's own (launcher/executor.cpp `killTask`).
        grace = KILL_GRACE
        for policy in (kill_policy, run.task.get("kill_policy")):
            if policy and "grace_period" in policy:
                grace = policy["grace_period"].get("nanoseconds", 0) / 1e9
                break
        framework = self.frameworks.get(framework_id, {})
        if any(c.get("type") == "TASK_KILLING_STATE" for c in framework.get("capabilities", [])):
            self._executor_update(run, "TASK_KILLING")
        self._terminate(run, grace)

    def _terminate(self, run: Run, grace: float) -> None:
        assert run.process is not None
        run.killed = True
        self.launcher.kill_group(run.process.pid, signal.SIGTERM)
        run.kill_timer = self.after(grace, self.launcher.kill_group, run.process.pid)

    def on_shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        # The command executor answers SHUTDOWN by killing its task (§2.8).
        run = self.runs.get((framework_id, executor_id))
        if run is not None and run.process is not None and not run.killed:
            self._terminate(run, SHUTDOWN_GRACE)

    def on_shutdown_framework(self, framework_id: str) -> None:
        self.removed_frameworks.add(framework_id)
        for key, run in list(self.runs.items()):
            if key[0] == framework_id and run.process is not None and not run.killed:
                self._terminate(run, SHUTDOWN_GRACE)
        for key in [k for k in self.streams if k[0] == framework_id]:
            stream = self.streams.pop(key)
            if stream.timer:
                stream.timer.cancel()

    def on_framework_message(self, framework_id: str, executor_id: str, data: str) -> None:
        log.debug(
            "dropping a message for command executor %s: it cannot receive messages", executor_id
        )

    def on_acknowledge(self, framework_id: str, task_id: str, ack_uuid: str) -> None:
        key = (framework_id, task_id)
        stream = self.streams.get(key)
        if stream is None or not stream.updates or stream.updates[0].get("uuid") != ack_uuid:
            return  # a duplicate or stale acknowledgement
        stream.updates.popleft()
        if stream.timer:
            stream.timer.cancel()
        if stream.updates:
            stream.interval = self.status_update_retry
            self._forward(key)
        else:
            del self.streams[key]

    # -- kill_executor and kill_task_process (fault injection) ----------------------------------

    def kill_executor(self, framework_id: str, executor_id: str) -> bool:
        run = self.runs.get((framework_id, executor_id))
        if run is None or run.process is None:
            return False
        run.executor_terminated = True
        self.launcher.kill_group(run.process.pid)
        return True

    def kill_task_process(self, task_id: str) -> bool:
        for (_, executor_id), run in self.runs.items():
            if executor_id == task_id and run.process is not None:
                os.kill(run.process.pid, signal.SIGKILL)
                return True
        return False

    # -- status updates -------------------------------------------------------------------------

    def _executor_update(self, run: Run, state: str, message: str | None = None) -> None:
        run.state = state
        status = task_status(run.task_id, state, "SOURCE_EXECUTOR", message=message, with_uuid=True)
        self._enqueue(run, status)

    def _agent_update(self, run: Run, state: str, *, reason: str, message: str) -> None:
        run.state = state
        status = task_status(
            run.task_id, state, "SOURCE_AGENT", reason=reason, message=message, with_uuid=True
        )
        self._enqueue(run, status)

    def _enqueue(self, run: Run, status: dict) -> None:
        # The agent fills in who it is and which container the update is about.
        status["agent_id"] = {"value": self.id}
        status["executor_id"] = {"value": run.task_id}
        status["container_status"] = {
            "container_id": {"value": run.container_id},
            "network_infos": [{"ip_addresses": [{"ip_address": self.ip}]}],
        }
        if run.process is not None:
            status["container_status"]["executor_pid"] = run.process.pid
        if run.framework_id in self.removed_frameworks:
            return
        key = (run.framework_id, run.task_id)
        stream = self.streams.setdefault(key, UpdateStream(interval=self.status_update_retry))
        stream.updates.append(status)
        if len(stream.updates) == 1:
            self._forward(key)

    def _forward(self, key: tuple[str, str]) -> None:
        stream = self.streams.get(key)
        if stream is None or not stream.updates:
            return
        self.master.send(
            "status_update",
            self.id,
            {
                "framework_id": key[0],
                "status": stream.updates[0],
                "latest_state": stream.updates[-1]["state"],
            },
        )
        stream.timer = self.after(stream.interval, self._retry, key)

    def _retry(self, key: tuple[str, str]) -> None:
        stream = self.streams.get(key)
        if stream is None or not stream.updates:
            return
        stream.interval = min(stream.interval * 2, STATUS_UPDATE_RETRY_MAX)
        self._forward(key)

    # -- HTTP: /files and /state ----------------------------------------------------------------

    def route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/slave(1)/"):
            path = path[len("/slave(1)") :]
        if path == "/files/read":
            return self.call(self.files_read, request)
        if path == "/files/browse":
            return self.call(self.files_browse, request)
        if path in ("/state", "/state.json"):
            return Response.json(self.call(self.state_json))
        if path == "/health":
            return Response(200)
        if path == "/version":
            return Response.json(version_json())
        return Response(404)

    def _attached(self) -> dict[str, Path]:
        """The sandbox paths the agent serves: each run's real directory, and the virtual path
        `/frameworks/F/executors/E/runs/latest` of each executor's latest run."""
        attached: dict[str, Path] = {}
        for run in [*self.completed_runs, *self.runs.values()]:
            attached[str(run.directory)] = run.directory
            attached[str(run.directory.parent / "latest")] = run.directory
            virtual = f"/frameworks/{run.framework_id}/executors/{run.task_id}/runs/latest"
            attached[virtual] = run.directory
        return attached

    def _resolve(self, path: str) -> Path | Response:
        if not path:
            return Response.text(400, "Expecting 'path=value' in query.\n")
        attached = self._attached()
        cleaned = "/" + path.strip("/")
        for prefix in sorted(attached, key=len, reverse=True):
            if cleaned == prefix or cleaned.startswith(prefix + "/"):
                root = attached[prefix].resolve()
                joined = root / cleaned[len(prefix) :].lstrip("/")
                try:
                    target = joined.resolve()
                    if not target.exists():
                        return Response(404)
                except (OSError, RuntimeError, ValueError) as error:
                    # A symlink loop (pathlib raises RuntimeError for ELOOP), a NUL byte...
                    reason = os.strerror(errno.ELOOP) if isinstance(error, RuntimeError) else error
                    return Response.text(
                        400, f"Failed to determine canonical path of '{joined}': {reason}.\n"
                    )
                if target != root and root not in target.parents:
                    # files.cpp: a real path outside the attached directory is refused.
                    # files.cpp quotes the sandbox joined with the rest of the request.
                    return Response.text(400, f"'{joined}' is inaccessible.\n")
                return target
        return Response(404)

    def files_read(self, request: Request) -> Response:
        # files.cpp checks the path, then the numbers, then resolves the path.
        if not request.arg("path"):
            return Response.text(400, "Expecting 'path=value' in query.\n")
        try:
            offset = _number_arg(request, "offset", -1)
            length = _number_arg(request, "length", -1)
        except ValueError as error:
            return Response.text(400, f"{error}.\n")
        if length < -1:
            return Response.text(400, f"Negative length provided: {length}.\n")
        if offset < -1:
            return Response.text(400, f"Negative offset provided: {offset}.\n")
        target = self._resolve(request.arg("path") or "")
        if isinstance(target, Response):
            return target
        if target.is_dir():
            return Response.text(400, "Cannot read a directory.\n")
        size = target.stat().st_size
        if offset == -1:
            return Response.json({"data": "", "offset": size})
        if offset >= size:
            return Response.json({"data": "", "offset": offset})  # no seek past the end
        if length == -1:
            length = size - offset
        length = max(0, min(length, READ_CAP))
        with open(target, "rb") as file:
            file.seek(offset)
            data = file.read(length)
        return Response.json({"data": data.decode("utf-8", "replace"), "offset": offset})

    def files_browse(self, request: Request) -> Response:
        target = self._resolve(request.arg("path") or "")
        if isinstance(target, Response):
            return target
        entries: list[dict] = []
        if not target.is_dir():
            return Response.json(entries)  # browsing a file lists nothing, as files.cpp does
        base = request.arg("path") or ""
        for child in sorted(target.iterdir()):
            try:
                info = child.stat()
            except OSError:
                continue  # a broken symlink
            entries.append(
                {
                    "path": base.rstrip("/") + "/" + child.name,
                    "nlink": info.st_nlink,
                    "size": info.st_size,
                    "mtime": float(int(info.st_mtime)),
                    "mode": stat.filemode(info.st_mode),
                    "uid": _user(info.st_uid),
                    "gid": _group(info.st_gid),
                }
            )
        return Response.json(entries)

    def executor_json(self, run: Run) -> dict:
        command = run.command
        shown = command.get("value", "")
        if not command.get("shell", True):
            shown = " ".join(shlex.quote(a) for a in command.get("arguments") or [shown])
        task = {
            "id": run.task_id,
            "name": run.task.get("name", ""),
            "framework_id": run.framework_id,
            "executor_id": "",
            "slave_id": self.id,
            "state": run.state,
            "resources": run.resources.to_flat(),
        }
        live = (run.framework_id, run.task_id) in self.runs
        return {
            "id": run.task_id,
            "name": f"Command Executor (Task: {run.task_id}) (Command: sh -c '{shown}')",
            "source": run.task_id,
            "container": run.container_id,
            "directory": str(run.directory),
            "resources": run.resources.to_flat(),
            "role": "*",
            "type": "COMMAND",
            "framework_id": run.framework_id,
            "tasks": [task] if live else [],
            "queued_tasks": [],
            "completed_tasks": [] if live else [task],
        }

    def state_json(self) -> dict:
        frameworks = []
        for framework_id, info in self.frameworks.items():
            frameworks.append(
                {
                    "id": framework_id,
                    "name": info.get("name", ""),
                    "user": info.get("user", ""),
                    "failover_timeout": info.get("failover_timeout", 0.0),
                    "checkpoint": info.get("checkpoint", False),
                    "hostname": info.get("hostname", ""),
                    "role": info.get("role", "*"),
                    "executors": [
                        self.executor_json(r) for k, r in self.runs.items() if k[0] == framework_id
                    ],
                    "completed_executors": [
                        self.executor_json(r)
                        for r in self.completed_runs
                        if r.framework_id == framework_id
                    ],
                }
            )
        return {
            "version": MESOS_VERSION,
            **{k: v for k, v in version_json().items() if k != "version"},
            "start_time": self.start_time,
            "id": self.id,
            "pid": self.pid,
            "hostname": self.hostname,
            "capabilities": AGENT_CAPABILITIES,
            "resources": self.resources.to_flat(),
            "attributes": {},
            "master_hostname": (self.master_info or {}).get("hostname", ""),
            "log_dir": "",
            "flags": {
                "work_dir": str(self.work_dir),
                "port": str(self.port),
                "ip": self.ip,
                "resources": str(self.resources),
            },
            "frameworks": frameworks,
            "completed_frameworks": [],
        }


def _number_arg(request: Request, name: str, default: int) -> int:
    """files.cpp's `offset` and `length`: absent means ``default``; junk is an error."""
    text = request.arg(name)
    if text is None:
        return default
    try:
        return _off_t(text)
    except ValueError:
        raise ValueError(f"Failed to parse {name}: Failed to convert '{text}' to number") from None


def _off_t(text: str) -> int:
    """numify<off_t>: a number that fits 64 bits, or ValueError."""
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise ValueError(text)
    return number


def _relink(link: Path, target: str) -> None:
    """Point the `latest` symlink at ``target`` (a sibling), replacing the old one atomically."""
    temporary = link.with_name(f".{link.name}.{uuid.uuid4().hex}")
    temporary.symlink_to(target)
    temporary.replace(link)


def _wait_status(status: int) -> str:
    """WSTRINGIFY from stout: how Mesos words a wait status."""
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"terminated with signal {signal.strsignal(os.WTERMSIG(status))}"
    return f"wait status {status}"


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _group(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)
