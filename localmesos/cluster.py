"""LocalCluster: masters and agents in this process, with fault injection.

    with LocalCluster(agents=2) as cluster:
        driver = MesosSchedulerDriver(scheduler, framework, cluster.master)

    with LocalCluster(agents=2, masters=3) as cluster:  # a private ZooKeeper, and HA
        driver = MesosSchedulerDriver(scheduler, framework, cluster.master)  # zk://...
        cluster.kill_master()

The masters and the agents talk only through links (`send(message, *args)`), never by calling
each other: direct ones within this process (`link.LocalLink`), or `link.HttpLink`s, which carry
the same messages over HTTP, between processes (`links="http"`, and `localmesos master` and
`localmesos agents`).

Agents fail as Mesos agents do, in four ways: `kill_agent` (the agent's process dies: the
master hears at once), `kill_host` (its machine dies: the master hears nothing, and finds out
from the health checks), `partition_agent` (the network between it and the masters is cut for
a while) and `restart_agent` (the process dies and starts again, recovering what it had: the
executors of frameworks that checkpoint carry on).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from localmesos.agent import EXECUTOR_REGISTRATION_TIMEOUT, STATUS_UPDATE_RETRY, Agent, gc
from localmesos.agent.recovery import EXECUTOR_REREGISTRATION_TIMEOUT
from localmesos.authentication import check_bind
from localmesos.link import HttpLink, LocalLink, Partition, master_link_url, new_secret
from localmesos.master import Master, MasterFlags, readonly
from localmesos.master.models import AGENT_REREGISTER_TIMEOUT, validate_offer_timeout
from localmesos.processes import Launcher
from localmesos.resources import Resources
from localmesos.zookeeper import ZooKeeper

log = logging.getLogger("localmesos")

DEFAULT_RESOURCES = "cpus:2;mem:2048;disk:4096;ports:[31000-31999]"
# Mesos's masters hold 10 s ZooKeeper sessions, so a crashed leader is succeeded 10 s later at
# the soonest. Two seconds keep the failover quick to watch, and still far above what a local
# ZooKeeper needs to see a live master's heartbeats.
ZK_SESSION_TIMEOUT = 2.0
# How fast agents come back to a new master: Mesos's --registration_backoff_factor is 1 s and
# its retries go up to a minute; a local cluster has a handful of agents, not thousands.
REGISTRATION_BACKOFF_FACTOR = 0.1
REGISTRATION_RETRY_MAX = 1.0


class NoLeader(RuntimeError):
    """No master leads at the moment (during an election, or with every master dead)."""


class LocalCluster:
    def __init__(
        self,
        agents: int = 2,
        *,
        masters: int = 1,
        zookeeper: bool = False,
        ip: str = "127.0.0.1",
        port: int = 0,
        resources: str | Resources = DEFAULT_RESOURCES,
        work_dir: str | Path | None = None,
        allocation_interval: float = 1.0,
        agent_timeout: float = 2.0,
        credentials: dict[str, str] | None = None,
        status_update_retry: float = STATUS_UPDATE_RETRY,
        executor_registration_timeout: float = EXECUTOR_REGISTRATION_TIMEOUT,
        executor_reregistration_timeout: float = EXECUTOR_REREGISTRATION_TIMEOUT,
        agent_reregister_timeout: float = AGENT_REREGISTER_TIMEOUT,
        zk_session_timeout: float = ZK_SESSION_TIMEOUT,
        zk_port: int = 0,
        join: str | None = None,
        links: str = "local",
        link_secret: str | None = None,
        offer_timeout: float | None = None,
        gc_delay: float = gc.GC_DELAY,
        gc_disk_headroom: float = gc.GC_DISK_HEADROOM,
        disk_watch_interval: float = gc.DISK_WATCH_INTERVAL,
        disk_usage: gc.DiskUsage = gc.disk_usage,
    ) -> None:
        """``join``: the masters live elsewhere, found at this "zk://..." URL (or this one
        "ip:port"); the cluster then starts no ZooKeeper, and its own masters (if any) join
        that election. ``links``: "local" (direct, in this process) or "http" (the agents
        and the masters talk over HTTP, as separate processes must). ``link_secret``: what
        the cluster's masters and agents require on their /link (link.py); a new one per
        cluster unless given (a cluster whose masters or agents live in other processes
        passes theirs: `link.shared_secret`).

        Timings, shorter than Mesos's so that a workshop sees failures handled in seconds:
        ``agent_timeout`` (2 s; Mesos: 5 pings 15 s apart), how long an agent may not answer
        the master's pings; ``agent_reregister_timeout`` (20 s; Mesos: 10 min), how long an
        agent whose process exited may take to come back if it still answers pings;
        ``executor_reregistration_timeout`` (5 s; Mesos: 2 s, at most 15 s), how long a
        restarted agent waits for its executors to subscribe again, long enough for
        pymesos's executor, which tries again about 2 s after it loses its agent.

        Mesos's flags, with Mesos's defaults: ``offer_timeout`` (--offer_timeout; None: offers
        never expire; set it when several frameworks share the cluster, so that one that
        stops answering cannot hold every offer), ``gc_delay``, ``gc_disk_headroom`` and
        ``disk_watch_interval`` (the agents' sandbox garbage collection, agent/gc.py);
        ``disk_usage`` measures how full the work directory's disk is (tests fake it)."""
        if agents < 0:
            raise ValueError(f"agents must be 0 or more, not {agents}")
        if masters < (0 if join else 1):
            raise ValueError(f"masters must be 1 or more, not {masters}")
        if join is not None and not join.startswith("zk://") and masters:
            raise ValueError("masters can only join other masters through a zk:// URL")
        if links not in ("local", "http"):
            raise ValueError(f"links are 'local' or 'http', not {links!r}")
        for name, value in (
            ("executor_reregistration_timeout", executor_reregistration_timeout),
            ("agent_reregister_timeout", agent_reregister_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be more than 0 seconds, not {value!r}")
        validate_offer_timeout(offer_timeout)
        # No test-only way around it: tests bind 127.0.0.1, or give credentials.
        check_bind(ip, credentials, "credentials", "credentials={principal: secret}")
        gc.validate(gc_delay, gc_disk_headroom, disk_watch_interval)
        self._gc_options: dict[str, Any] = {
            "gc_delay": gc_delay,
            "gc_disk_headroom": gc_disk_headroom,
            "disk_watch_interval": disk_watch_interval,
            "disk_usage": disk_usage,
        }
        self._agent_count = agents
        self._master_count = masters
        self._join = join
        # Agents of a cluster without masters of its own can only reach them over HTTP.
        self.links = "http" if join is not None and not masters else links
        # More than one master needs an election; one master under ZooKeeper is asked for.
        self.ha = masters > 1 or zookeeper or (join is not None and join.startswith("zk://"))
        self.ip = ip
        self.port = port
        self.resources = Resources.parse(resources) if isinstance(resources, str) else resources
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="localmesos-"))
        self.status_update_retry = status_update_retry
        self.executor_registration_timeout = executor_registration_timeout
        self.executor_reregistration_timeout = executor_reregistration_timeout
        self.zk_session_timeout = zk_session_timeout
        self._zk_port = zk_port
        self.link_secret = link_secret or new_secret()
        self._flags = MasterFlags(
            ip=ip,
            port=port,
            allocation_interval=allocation_interval,
            agent_timeout=agent_timeout,
            agent_reregister_timeout=agent_reregister_timeout,
            credentials=credentials,
            work_dir=str(self.work_dir),
            zk_session_timeout=zk_session_timeout,
            link_secret=self.link_secret,
            offer_timeout=offer_timeout,
        )
        self._zookeeper: ZooKeeper | None = None
        self._masters: list[Master] = []
        self._agents: list[Agent] = []
        self._partitions: dict[int, Partition] = {}  # by id() of the agent
        # The links that masters hold to each agent (by id() of the agent), kept across a
        # restart: a restarted agent has the same pid, and the same link answers for it.
        self._links_to_agents: dict[int, Any] = {}
        self._launcher: Launcher | None = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> LocalCluster:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._launcher = Launcher()
        try:
            if self._join is not None:
                if self._join.startswith("zk://"):
                    self._flags.zk = self._join
            elif self.ha:
                self._zookeeper = ZooKeeper(self.work_dir / "zookeeper", self._zk_port)
                self._zookeeper.start(timeout)
                self._flags.zk = self._zookeeper.url()
            for index in range(self._master_count):
                self.add_master(self.port + index if self.port else 0)
            if self._join is None:
                # Masters that join others may well be standbys: no leader to wait for here.
                self.wait_for_leader(timeout)
            for _ in range(self._agent_count):
                self.add_agent(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every task and stop every component, ZooKeeper last; nothing that the cluster
        started lives on."""
        for agent in self._agents:
            agent.stop()
        # Standbys first: a leader withdrawn before them would hand its place to one of them.
        for master in sorted(self._masters, key=lambda m: m.serving):
            if master.alive:
                master.stop()
        if self._zookeeper is not None:
            self._zookeeper.stop()
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
        """The master as pymesos takes it: "127.0.0.1:PORT", or with ZooKeeper the
        "zk://127.0.0.1:PORT/mesos" URL where the masters elect their leader."""
        if self._flags.zk is not None:
            return self._flags.zk
        if self._join is not None:
            return self._join
        return self._running_master().address

    @property
    def zk(self) -> str | None:
        return self._flags.zk

    @property
    def leader(self) -> str:
        """The leading master's "ip:port"; NoLeader during an election."""
        return self._leader().address

    @property
    def masters(self) -> list[str]:
        """The "ip:port" of every master that is up, leading or not."""
        return [m.address for m in self._masters if m.alive]

    @property
    def url(self) -> str:
        """The leading master's URL."""
        return f"http://{self.leader}"

    @property
    def agents(self) -> list[str]:
        """The IDs of the agents that are up (killed ones are left out)."""
        return [a.id for a in self._agents if a.alive and a.id]

    def agent_url(self, agent_id: str) -> str:
        agent = self._agent(agent_id)
        return f"http://{agent.ip}:{agent.port}"

    def _running_master(self) -> Master:
        if not self._masters:
            raise RuntimeError(
                "the cluster is not started: use `with LocalCluster() as c:` or call start()"
            )
        return self._masters[0]

    def _leader(self) -> Master:
        self._running_master()
        for master in self._masters:
            if master.alive and master.serving:
                return master
        raise NoLeader("no master leads at the moment")

    def _agent(self, agent_id: str) -> Agent:
        for agent in self._agents:
            if agent.id == agent_id and agent.alive:
                return agent
        known = ", ".join(self.agents) or "none"
        raise KeyError(f"no running agent {agent_id!r} (running: {known})")

    def _link_to_master(self, master_info: dict, partition: Partition) -> Any:
        """How an agent reaches the master that ZooKeeper names: over HTTP, or within this
        process by its port."""
        address = master_info.get("address", {})
        ip = address.get("ip", self.ip)
        port = address.get("port", master_info.get("port"))
        if self.links == "http":
            return HttpLink.to(master_link_url(f"{ip}:{port}"), self.link_secret)
        for master in self._masters:
            if master.server.port == port and master.ip == ip:
                return LocalLink(master, partition=partition)
        raise LookupError(f"master {master_info.get('pid')} is not in this process")

    # -- masters --------------------------------------------------------------------------------

    def add_master(self, port: int = 0) -> str:
        """Start one more master (under ZooKeeper, a standby unless nobody leads)."""
        if self._masters and not self.ha:
            raise RuntimeError("a second master needs ZooKeeper: LocalCluster(masters=2, ...)")
        master = Master(dataclasses.replace(self._flags, port=port))
        self._masters.append(master)
        master.start()
        return master.address

    def wait_for_leader(self, timeout: float = 30, interval: float = 0.02) -> str:
        """Wait until a master leads; returns its "ip:port"."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.leader
            except NoLeader:
                if time.monotonic() > deadline:
                    raise NoLeader(f"no master was elected within {timeout} s") from None
            time.sleep(interval)

    def kill_master(self) -> str:
        """The leading master dies as a SIGKILLed process does: its event streams break, and
        its znode lasts until ZooKeeper expires its session (`zk_session_timeout`). Another
        master is then elected, and agents and frameworks find it. Returns its address."""
        if not self.ha:
            raise RuntimeError("kill_master needs standby masters: LocalCluster(masters=3, ...)")
        leader = self._leader()
        leader.crash()
        return leader.address

    # -- fault injection ------------------------------------------------------------------------

    def add_agent(self, resources: str | Resources | None = None, timeout: float = 10) -> str:
        """Start one more agent and wait until the master has registered it; returns its ID."""
        assert self._launcher is not None, "the cluster is not started"
        if isinstance(resources, str):
            resources = Resources.parse(resources)
        agent = self._start_agent(
            resources or self.resources, f"agent-{len(self._agents) + 1}", Partition(), None
        )
        if not agent.registered.wait(timeout):
            raise TimeoutError(f"agent on port {agent.port} did not register within {timeout} s")
        assert agent.id is not None
        return agent.id

    def _start_agent(
        self,
        resources: Resources,
        name: str,
        partition: Partition,
        link_to_agent: Any,
        port: int = 0,
        agent_id: str | None = None,
        replaces: Agent | None = None,
    ) -> Agent:
        """A new agent, or (``agent_id``) the same agent again, recovering from the work
        directory on the same port, behind the same link (``link_to_agent``)."""
        options: dict[str, Any] = {}
        master_link: Any = None
        if self._flags.zk is not None:
            options = {
                "zk": self._flags.zk,
                "link_to_master": lambda info: self._link_to_master(info, partition),
                "zk_session_timeout": self.zk_session_timeout,
            }
        elif self.links == "http":
            master_link = HttpLink.to(master_link_url(self.master), self.link_secret)
        else:
            master_link = LocalLink(self._running_master(), partition=partition)
        agent = Agent(
            master_link,
            ip=self.ip,
            port=port,
            resources=resources,
            work_dir=self.work_dir,
            launcher=self._launcher,
            status_update_retry=self.status_update_retry,
            executor_registration_timeout=self.executor_registration_timeout,
            executor_reregistration_timeout=self.executor_reregistration_timeout,
            name=name,
            registration_backoff_factor=REGISTRATION_BACKOFF_FACTOR,
            registration_retry_max=REGISTRATION_RETRY_MAX,
            agent_id=agent_id,
            link_secret=self.link_secret,
            credentials=self._flags.credentials,
            **self._gc_options,
            **options,
        )
        if replaces is None:
            self._agents.append(agent)
        else:
            self._agents[self._agents.index(replaces)] = agent
        self._partitions[id(agent)] = partition
        if self.links == "http":
            link_to_agent = HttpLink.to(agent.link_url, self.link_secret)
        elif link_to_agent is None:
            link_to_agent = LocalLink(agent, prefix="on_", partition=partition)
        else:
            link_to_agent.target = agent
        self._links_to_agents[id(agent)] = link_to_agent
        agent.start(link_to_agent)
        return agent

    def kill_agent(self, agent_id: str) -> None:
        """The agent's process dies (SIGKILL, a crash, an upgrade), as Mesos's
        `Master::exited` sees it: its connections close, and the master hears of it at once.
        The agent is disconnected and offered no more (its offers are rescinded); the tasks
        of frameworks that do not checkpoint become TASK_LOST, REASON_AGENT_DISCONNECTED,
        and their executors end; frameworks that checkpoint keep their tasks and executors
        until `restart_agent` brings the agent back, or until the health checks
        (`agent_timeout`) mark it unreachable."""
        self._agent(agent_id).exit()

    def kill_host(self, agent_id: str) -> None:
        """The agent's machine dies (a power cut): the agent and every process it ran die at
        once, and nothing closes toward the master, which finds out when its health checks
        time out (`agent_timeout`) and marks the agent unreachable."""
        agent = self._agent(agent_id)
        if self.links == "http":
            # Its sockets die without a word: the masters' watch on it must not hear an exit.
            HttpLink.to(agent.link_url, self.link_secret).sever()
        agent.crash()

    def restart_agent(self, agent_id: str, timeout: float = 30) -> str:
        """Kill the agent's process if it still runs (`kill_agent`), then start it again on the
        same port with the same work directory: it recovers as Mesos's agent does
        (agent/recovery.py), the executors of frameworks that checkpoint subscribe to it
        again and carry on, and it reregisters with the master as the same agent. Waits
        until it has, which takes `executor_reregistration_timeout` when a framework
        checkpoints; returns its ID."""
        old = self._latest_agent(agent_id)
        if old.alive:
            old.exit()
        elif old.death != "process":
            raise ValueError(
                f"agent {agent_id} died with its host (kill_host): a new agent replaces it "
                "(add_agent), it does not restart"
            )
        partition = self._partitions.pop(id(old))
        link = self._links_to_agents.pop(id(old), None)
        # Between the old agent's exit and this bind, the kernel may hand the freed port to an
        # outgoing connection of any process on the machine as its local port; it is free
        # again once that connection closes. A Mesos agent would just fail to start; a test
        # harness waits a little instead of failing for a neighbour's connection.
        deadline = time.monotonic() + min(timeout, 5.0)
        while True:
            try:
                agent = self._start_agent(
                    old.resources,
                    old.name,
                    partition,
                    link,
                    port=old.port,
                    agent_id=agent_id,
                    replaces=old,
                )
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if not agent.registered.wait(timeout):
            raise TimeoutError(f"agent {agent_id} did not reregister within {timeout} s")
        return agent_id

    def _latest_agent(self, agent_id: str) -> Agent:
        for agent in self._agents:
            if agent.id == agent_id:
                return agent
        known = ", ".join(a.id for a in self._agents if a.id) or "none"
        raise KeyError(f"no agent {agent_id!r} (agents: {known})")

    def partition_agent(self, agent_id: str, seconds: float) -> None:
        """Cut the network between the agent and the masters for ``seconds``: every message
        either way is lost, pings included. Longer than agent_timeout, the master marks the
        agent unreachable; when the cut heals, the agent, missing pings, reregisters."""
        agent = self._agent(agent_id)
        if self.links != "local":
            raise RuntimeError("partitions cut local links only; this cluster's go over HTTP")
        self._partitions[id(agent)].until = time.monotonic() + seconds

    def heal_partition(self, agent_id: str) -> None:
        """End a partition now."""
        self._partitions[id(self._agent(agent_id))].until = 0.0

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
        """The same dict as GET /master/state on the leading master (NoLeader if none)."""
        master = self._leader()
        try:
            state = master.call(readonly.state_json, master)
        except RuntimeError:
            if master.alive:
                raise
            raise NoLeader("the leading master went away") from None
        return json.loads(json.dumps(state))

    def wait_for(self, predicate: Any, timeout: float = 10, interval: float = 0.02) -> Any:
        """Poll ``predicate(state)`` until it returns something true; returns that value.
        While no master leads (a failover), it waits for one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = predicate(self.state())
            except NoLeader:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not reach the expected state in {timeout} s")
            time.sleep(interval)
