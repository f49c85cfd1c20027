"""LocalCluster: a master and its agents in this process, with fault injection.

    with LocalCluster(agents=2) as cluster:
        driver = MesosSchedulerDriver(scheduler, framework, cluster.master)

The master and the agents talk only through links (`send(message, *args)`), never by calling
each other, so that they can later run in separate processes with the links carried over HTTP.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from localmesos.agent import EXECUTOR_REGISTRATION_TIMEOUT, STATUS_UPDATE_RETRY, Agent
from localmesos.master import Master, MasterFlags
from localmesos.processes import Launcher
from localmesos.resources import Resources

DEFAULT_RESOURCES = "cpus:2;mem:2048;disk:4096;ports:[31000-31999]"


class LocalLink:
    """Delivers a message to an actor of this process: asynchronously, in order, and dropped
    when the receiver is dead, as libprocess delivers messages between processes."""

    def __init__(self, target: Any, prefix: str = "") -> None:
        self.target = target
        self.prefix = prefix

    def send(self, message: str, *args: Any) -> None:
        if self.target.alive:
            self.target.dispatch(getattr(self.target, self.prefix + message), *args)


class LocalCluster:
    def __init__(
        self,
        agents: int = 2,
        *,
        ip: str = "127.0.0.1",
        port: int = 0,
        resources: str | Resources = DEFAULT_RESOURCES,
        work_dir: str | Path | None = None,
        allocation_interval: float = 1.0,
        agent_timeout: float = 2.0,
        credentials: dict[str, str] | None = None,
        status_update_retry: float = STATUS_UPDATE_RETRY,
        executor_registration_timeout: float = EXECUTOR_REGISTRATION_TIMEOUT,
    ) -> None:
        if agents < 0:
            raise ValueError(f"agents must be 0 or more, not {agents}")
        self._agent_count = agents
        self.ip = ip
        self.resources = Resources.parse(resources) if isinstance(resources, str) else resources
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="localmesos-"))
        self.status_update_retry = status_update_retry
        self.executor_registration_timeout = executor_registration_timeout
        self._flags = MasterFlags(
            ip=ip,
            port=port,
            allocation_interval=allocation_interval,
            agent_timeout=agent_timeout,
            credentials=credentials,
            work_dir=str(self.work_dir),
        )
        self._master: Master | None = None
        self._agents: list[Agent] = []
        self._launcher: Launcher | None = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._launcher = Launcher()
        try:
            self._master = Master(self._flags)
            self._master.start()
            for _ in range(self._agent_count):
                self.add_agent()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every task and stop every component; nothing that the cluster started lives on."""
        for agent in self._agents:
            agent.stop()
        if self._master is not None:
            self._master.stop()
        if self._launcher is not None:
            self._launcher.close()
            self._launcher = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------

    @property
    def master(self) -> str:
        """The master as pymesos takes it: "127.0.0.1:PORT"."""
        return self._running_master().address

    @property
    def url(self) -> str:
        return f"http://{self.master}"

    @property
    def agents(self) -> list[str]:
        """The IDs of the agents that are up (killed ones are left out)."""
        return [a.id for a in self._agents if a.alive and a.id]

    def agent_url(self, agent_id: str) -> str:
        agent = self._agent(agent_id)
        return f"http://{agent.ip}:{agent.port}"

    def _running_master(self) -> Master:
        if self._master is None:
            raise RuntimeError(
                "the cluster is not started: use `with LocalCluster() as c:` or call start()"
            )
        return self._master

    def _agent(self, agent_id: str) -> Agent:
        for agent in self._agents:
            if agent.id == agent_id and agent.alive:
                return agent
        known = ", ".join(self.agents) or "none"
        raise KeyError(f"no running agent {agent_id!r} (running: {known})")

    # -- fault injection ------------------------------------------------------------------------

    def add_agent(self, resources: str | Resources | None = None, timeout: float = 10) -> str:
        """Start one more agent and wait until the master has registered it; returns its ID."""
        master = self._running_master()
        assert self._launcher is not None
        if isinstance(resources, str):
            resources = Resources.parse(resources)
        agent = Agent(
            LocalLink(master),
            ip=self.ip,
            resources=resources or self.resources,
            work_dir=self.work_dir,
            launcher=self._launcher,
            status_update_retry=self.status_update_retry,
            executor_registration_timeout=self.executor_registration_timeout,
            name=f"agent-{len(self._agents) + 1}",
        )
        self._agents.append(agent)
        agent.start(LocalLink(agent, prefix="on_"))
        if not agent.registered.wait(timeout):
            raise TimeoutError(f"agent on port {agent.port} did not register within {timeout} s")
        assert agent.id is not None
        return agent.id

    def kill_agent(self, agent_id: str) -> None:
        """The agent and all its processes die at once, as a machine would. The master notices
        when its health checks time out (agent_timeout)."""
        self._agent(agent_id).crash()

    def kill_executor(self, framework_id: str, executor_id: str) -> None:
        """SIGKILL an executor's process group, as a crash would (for a command task, the
        executor ID is the task ID)."""
        for agent in self._agents:
            if agent.alive and agent.call(agent.kill_executor, framework_id, executor_id):
                return
        raise KeyError(f"no running executor {executor_id!r} of framework {framework_id!r}")

    def kill_task_process(self, task_id: str) -> None:
        """SIGKILL a task's own process, leaving its executor to report what happened."""
        for agent in self._agents:
            if agent.alive and agent.call(agent.kill_task_process, task_id):
                return
        raise KeyError(f"no running task {task_id!r}")

    # -- inspection -----------------------------------------------------------------------------

    def state(self) -> dict:
        """The same dict as GET /master/state."""
        master = self._running_master()
        return json.loads(json.dumps(master.call(master.state_json)))

    def wait_for(self, predicate: Any, timeout: float = 10, interval: float = 0.02) -> Any:
        """Poll ``predicate(state)`` until it returns something true; returns that value."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self.state())
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not reach the expected state in {timeout} s")
            time.sleep(interval)
