"""The master's side of agents' lives: registration, reregistration (after a partition, a
missed ping, a master failover or an agent restart), an agent process that exits, health
checks, and removal once an agent is unreachable (src/master/master.cpp:
`Master::registerSlave`, `reregisterSlave` and its continuations, `Master::exited`,
`disconnect`, `deactivate`, `agentReregisterTimeout`, `SlaveObserver`, `markUnreachable`,
`__removeSlave`).

Two ways an agent goes away, as in Mesos. Its process dies (`kill_agent`, a crash, an
upgrade): the master's link to it closes, and at once (`agent_exited`) the agent is
disconnected and deactivated, its offers are rescinded, and every framework that does not
checkpoint loses its tasks there (TASK_LOST, REASON_AGENT_DISCONNECTED); checkpointing
frameworks keep theirs, waiting for the agent to come back. Or it goes silent (its machine
died, the network is cut): nothing closes, and only the health checks notice. Either way the
health checks go on, and an agent that answers no ping for `agent_timeout` is marked
unreachable; so is a disconnected one that answers pings (it is restarting) but has not
reregistered within `agent_reregister_timeout`.

They are the master's own code, in a file of its own so that master.py stays readable: plain
functions of the master that run on its thread, as its methods do, and use its helpers. The
messages themselves still arrive at `Master` methods (`register_agent`, `reregister_agent`,
`mark_unreachable`), which the links call by name and which call these.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from localmesos import protocol
from localmesos.master.models import AgentRecord, Executor, Framework, Task
from localmesos.protocol import is_terminal, task_status
from localmesos.resources import Resources

if TYPE_CHECKING:
    from localmesos.master.master import Master

log = logging.getLogger("localmesos.master")

# -- registration and reregistration -----------------------------------------------------------


def register_agent(master: Master, info: dict, link: Any) -> None:
    pid = protocol.pid_string("slave(1)", info["ip"], info["port"])
    for known in master.agents.values():
        if known.pid == pid:
            # A retry whose first attempt got through: Mesos answers again with the same ID
            # ("Agent ... already registered, resending acknowledgement").
            known.link = link
            watch(master, known)
            link.send("registered", known.id, master.master_info(), master.flags.agent_timeout)
            return
    agent_id = f"{master.id}-S{master._next_agent}"
    master._next_agent += 1
    now = time.time()
    total = Resources.from_json(info["resources"])
    master.agents[agent_id] = AgentRecord(agent_id, info, link, total, now, time.monotonic())
    master.allocator.add_agent(agent_id, total)
    watch(master, master.agents[agent_id])
    master.count("master/slave_registrations")
    master.subscribers.agent_added(master, master.agents[agent_id])
    # MasterSlaveConnection.total_ping_timeout_seconds: how long the agent waits for a ping
    # before it looks for the master again and reregisters.
    link.send("registered", agent_id, master.master_info(), master.flags.agent_timeout)
    master._request_allocation()


def reregister_agent(master: Master, agent_id: str, info: dict, link: Any, report: dict) -> None:
    """ReregisterSlaveMessage: an agent that has an ID comes back, after a master failover
    (this master has never seen it), after a partition (this master marked it
    unreachable), or after it missed pings from a master that still knows it.

    ``report`` holds what the agent runs: `tasks` (each with its TaskInfo, framework ID,
    latest `state`, and the state and uuid of its oldest unacknowledged update),
    `executors` (custom ExecutorInfos, framework_id set) and `frameworks` (FrameworkInfos).
    """
    master.count("master/messages_reregister_slave")
    # Frameworks first: a task here lives in its framework. (Mesos keeps tasks in the
    # Slave and attaches them to a framework recovered afterwards, in
    # `updateSlaveFrameworks`; its updates for such a framework are dropped, just as
    # they are not sent here to a framework that is not connected.)
    recover_frameworks(master, agent_id, report["frameworks"])
    known = master.agents.get(agent_id)
    if known is not None:
        reregister_known_agent(master, known, info, link, report)
    else:
        readmit_agent(master, agent_id, info, link, report)
    master._request_allocation()


def reregister_known_agent(
    master: Master, agent: AgentRecord, info: dict, link: Any, report: dict
) -> None:
    """`___reregisterSlave` and `reconcileKnownSlave`: the agent is still registered here.
    Tasks that the master has and the agent does not (a RunTask lost on the way) go back
    to the agent for reconciliation; executors the agent no longer has are removed. An
    agent that had disconnected (it restarted and recovered) is active again; frameworks
    hear nothing of it, since their tasks there never changed state."""
    agent.link = link
    agent.info = info
    agent.last_pong = time.monotonic()
    watch(master, agent)
    if not agent.connected:
        if agent.reregistration_timer is not None:
            agent.reregistration_timer.cancel()
            agent.reregistration_timer = None
        log.info("reactivating re-registered agent %s (%s)", agent.id, agent.hostname)
        agent.connected = agent.active = True
        master.allocator.activate_agent(agent.id)
    reported = {(t["framework_id"], t["task"]["task_id"]["value"]) for t in report["tasks"]}
    reconciliations: list[dict] = []
    for framework in master.frameworks.values():
        for task in framework.tasks.values():
            if task.agent_id == agent.id and (framework.id, task.id) not in reported:
                log.warning(
                    "task %s of framework %s unknown to agent %s during re-registration: "
                    "reconciling with the agent",
                    task.id,
                    framework.id,
                    agent.id,
                )
                reconciliations.append(
                    {
                        "framework_id": framework.id,
                        "framework": framework.info,
                        "task_id": task.id,
                    }
                )
    executors = {
        (e["framework_id"]["value"], e["executor_id"]["value"]) for e in report["executors"]
    }
    for key in [k for k in agent.executors if k not in executors]:
        executor = agent.executors.pop(key)
        master.allocator.recover(executor.framework_id, agent.id, executor.resources)
    master.count("master/slave_reregistrations")
    link.send(
        "reregistered", agent.id, master.master_info(), master.flags.agent_timeout, reconciliations
    )
    # Frameworks removed while the agent could not hear it (it was down, or cut off): "Agent
    # reregistered with completed framework. Shutting down the framework on the agent".
    for framework_id in {t["framework_id"] for t in report["tasks"]}:
        if framework_id in master.removed_framework_ids:
            link.send("shutdown_framework", framework_id)


def readmit_agent(master: Master, agent_id: str, info: dict, link: Any, report: dict) -> None:
    """`__reregisterSlave` for an agent that is not registered here: one this master marked
    unreachable ("Unreachable agent re-reregistered"), or one it has never seen, as after
    a master failover with no persistent registry ("Unknown agent reregistered"). Its
    tasks and executors are the master's again, and connected frameworks hear each task's
    current state. Nothing is killed, PARTITION_AWARE or not (Mesos >= 1.5, MESOS-7215)."""
    unreachable = agent_id in master.unreachable_agents
    message = "Unreachable agent re-reregistered" if unreachable else "Unknown agent reregistered"
    log.info("agent %s (%s): %s", agent_id, info["hostname"], message)
    total = Resources.from_json(info["resources"])
    agent = AgentRecord(agent_id, info, link, total, time.time(), time.monotonic())
    master.agents[agent_id] = agent
    master.allocator.add_agent(agent_id, total)
    watch(master, agent)
    master.unreachable_agents.pop(agent_id, None)
    for executor_info in report["executors"]:
        framework_id = executor_info["framework_id"]["value"]
        if framework_id not in master.frameworks:
            continue  # a framework removed here: it is shut down on the agent below
        executor = Executor(
            executor_info,
            framework_id,
            agent_id,
            Resources.from_json(executor_info.get("resources", [])),
        )
        agent.executors[(framework_id, executor.id)] = executor
        master.allocator.add_used(framework_id, agent_id, executor.resources)
    for reported in report["tasks"]:
        framework = master.frameworks.get(reported["framework_id"])
        if framework is None:
            continue
        task = readmit_task(master, framework, agent_id, reported)
        extra: dict[str, Any] = {}
        if task.executor_id:
            extra["executor_id"] = task.executor_id  # task_status wraps it
        status = task_status(
            task.id,
            task.state,
            "SOURCE_MASTER",
            agent_id=agent_id,
            reason="REASON_AGENT_REREGISTERED",
            message=message,
            **extra,
        )
        if framework.connected:
            master._send_update(framework, master._as_seen_by(framework, status))
    # `Master::addSlave`: TASK_ADDED for each task above, then AGENT_ADDED.
    master.subscribers.agent_added(master, agent)
    master.count("master/slave_reregistrations")
    link.send("reregistered", agent_id, master.master_info(), master.flags.agent_timeout, [])
    for framework_info in report["frameworks"]:
        framework_id = framework_info["id"]["value"]
        if framework_id in master.removed_framework_ids:
            # Removed while the agent was away: "Shutting down framework ... because the
            # framework has been shutdown at the master".
            link.send("shutdown_framework", framework_id)


def readmit_task(master: Master, framework: Framework, agent_id: str, reported: dict) -> Task:
    info = reported["task"]
    task_id = info["task_id"]["value"]
    old = framework.unreachable_tasks.pop(task_id, None)
    # MESOS-9940: a task the master had declared terminal may come back alive.
    for done in [t for t in framework.completed_tasks if t.id == task_id]:
        framework.completed_tasks.remove(done)
    state = reported["state"]
    task = Task(
        info,
        framework.id,
        agent_id,
        Resources.from_json(info.get("resources", [])),
        executor_id=(info.get("executor") or {}).get("executor_id", {}).get("value", ""),
        state=state,
        statuses=old.statuses if old is not None else [],
        status_update_state=reported.get("status_update_state"),
        status_update_uuid=reported.get("status_update_uuid"),
    )
    if not task.statuses or task.statuses[-1]["state"] != state:
        task.statuses.append({"state": state, "timestamp": time.time()})
    framework.tasks[task_id] = task
    master.subscribers.task_added(task)
    if is_terminal(state):
        task.resources_recovered = True  # it waits only for its update's acknowledgement
    else:
        master.allocator.add_used(framework.id, agent_id, task.resources)
    return task


def recover_frameworks(master: Master, agent_id: str, infos: list[dict]) -> None:
    """`updateSlaveFrameworks`: a framework that the agent runs and this master does not
    know is recovered from its FrameworkInfo, in state RECOVERED ("Recovering framework X
    from reregistering agent"); removed ones are not."""
    for info in infos:
        framework_id = info["id"]["value"]
        if framework_id in master.frameworks or framework_id in master.removed_framework_ids:
            continue
        log.info("recovering framework %s from reregistering agent %s", framework_id, agent_id)
        framework = Framework(
            framework_id, dict(info), info.get("principal"), time.time(), recovered=True
        )
        master.frameworks[framework_id] = framework
        master.allocator.add_framework(framework_id, role=framework.role, active=False)
        master.subscribers.framework_added(framework)


# -- an agent's process exits (`Master::exited`) -------------------------------------------------


def watch(master: Master, agent: AgentRecord) -> None:
    """libprocess `link()` to the agent's pid: the master hears at once when its process
    exits, by the pid, which stays the same when the agent restarts (MESOS-675)."""
    pid = agent.pid
    monitor = getattr(agent.link, "monitor", None)
    if monitor is not None:
        monitor(master, lambda: master.dispatch(master.exited, pid))


def agent_exited(master: Master, pid: str) -> None:
    """`Master::exited` for an agent: disconnect and deactivate it, then remove from it every
    framework that does not checkpoint. The health checks go on; an agent that does not
    reregister within `agent_reregister_timeout` is marked unreachable."""
    agent = next((a for a in master.agents.values() if a.pid == pid), None)
    if agent is None:
        return
    log.info("agent %s (%s) disconnected", agent.id, agent.hostname)
    if not agent.connected:
        log.warning("ignoring duplicate exited() notification for agent %s", agent.id)
        return
    disconnect(master, agent)
    present = {
        t.framework_id
        for f in master.frameworks.values()
        for t in f.tasks.values()
        if t.agent_id == agent.id
    } | {key[0] for key in agent.executors}
    for framework_id in present:
        framework = master.frameworks.get(framework_id)
        if framework is not None and not framework.info.get("checkpoint", False):
            log.info(
                "removing framework %s from disconnected agent %s because the framework is "
                "not checkpointing",
                framework.id,
                agent.id,
            )
            remove_framework_from_agent(master, agent, framework)
    agent.reregistration_timer = master.after(
        master.flags.agent_reregister_timeout, reregister_timeout, master, agent.id
    )


def disconnect(master: Master, agent: AgentRecord) -> None:
    """`Master::disconnect`, then `deactivate`: no offers from it any more, and those it
    had are rescinded (RESCIND), their resources back unfiltered."""
    agent.connected = False
    agent.active = False
    master.allocator.deactivate_agent(agent.id)
    for offer in [o for o in master.offers.values() if o.agent_id == agent.id]:
        master._remove_offer(offer, rescind=True)
        master.allocator.recover(offer.framework_id, agent.id, offer.resources)


def remove_framework_from_agent(master: Master, agent: AgentRecord, framework: Framework) -> None:
    """`Master::removeFramework(Slave*, Framework*)`: each of the framework's tasks there is
    TASK_LOST, SOURCE_MASTER, REASON_AGENT_DISCONNECTED, "Agent <hostname> disconnected"
    (whatever PARTITION_AWARE says), and done; its executors there are forgotten, with no
    FAILURE."""
    for task in [t for t in framework.tasks.values() if t.agent_id == agent.id]:
        extra: dict[str, Any] = {}
        if task.executor_id:
            extra["executor_id"] = task.executor_id  # task_status wraps it
        status = task_status(
            task.id,
            "TASK_LOST",
            "SOURCE_MASTER",
            agent_id=agent.id,
            reason="REASON_AGENT_DISCONNECTED",
            message=f"Agent {agent.hostname} disconnected",
            **extra,
        )
        # `updateTask` leaves a task that is already terminal as it is, but the update goes
        # out all the same.
        if not is_terminal(task.state):
            task.status_update_state = "TASK_LOST"
            task.status_update_uuid = None
            master._set_state(task, "TASK_LOST", status=status)
        master._retire_task(framework, task)
        if framework.connected:
            master._send_update(framework, status)
    for key in [k for k in agent.executors if k[0] == framework.id]:
        executor = agent.executors.pop(key)
        master.allocator.recover(framework.id, agent.id, executor.resources)


def reregister_timeout(master: Master, agent_id: str) -> None:
    """`Master::agentReregisterTimeout`: still disconnected (it answers pings, or the health
    checks would have removed it: it restarted and has not finished recovering)."""
    agent = master.agents.get(agent_id)
    if agent is None or agent.connected:
        return
    waited = protocol.format_duration(master.flags.agent_reregister_timeout)
    master.mark_unreachable(agent, f"agent did not reregister within {waited} after disconnecting")


# -- health checks and removal ----------------------------------------------------------------


def ping_agents(master: Master) -> None:
    """The `SlaveObserver`s: every agent is pinged, disconnected ones too (PingSlaveMessage
    says which: an agent that the master thinks disconnected but that thinks itself
    registered reregisters)."""
    now = time.monotonic()
    for agent in list(master.agents.values()):
        if now - agent.last_pong > master.flags.agent_timeout:
            master.mark_unreachable(agent, "health check timed out")
        else:
            agent.link.send("ping", agent.connected)
    master.after(master.flags.agent_timeout / 5, ping_agents, master)


def mark_unreachable(master: Master, agent: AgentRecord, why: str) -> None:
    """`Master::_markUnreachable`, `__removeSlave`: the agent is gone. In Mesos's order: the
    tasks' updates, RESCIND for its offers, then FAILURE to every connected framework."""
    log.info("agent %s (%s) is unreachable: %s", agent.id, agent.hostname, why)
    if agent.reregistration_timer is not None:
        agent.reregistration_timer.cancel()
    master.count("master/slave_unreachable_scheduled")
    for framework in master.frameworks.values():
        state = "TASK_UNREACHABLE" if framework.capable("PARTITION_AWARE") else "TASK_LOST"
        for task in [t for t in framework.tasks.values() if t.agent_id == agent.id]:
            extra: dict[str, Any] = {}
            if task.executor_id:
                extra["executor_id"] = task.executor_id  # task_status wraps it
            status = task_status(
                task.id,
                state,
                "SOURCE_MASTER",
                agent_id=agent.id,
                reason="REASON_AGENT_REMOVED",
                message=why,
                unreachable_time={"nanoseconds": int(time.time() * 1e9)},
                **extra,
            )
            task.status_update_state = state
            task.status_update_uuid = None
            master._set_state(task, state, status=status)
            del framework.tasks[task.id]
            framework.unreachable_tasks[task.id] = task
            master._send_update(framework, status)
    for offer in [o for o in master.offers.values() if o.agent_id == agent.id]:
        master._remove_offer(offer, rescind=True)
    master.allocator.remove_agent(agent.id)
    del master.agents[agent.id]
    master.unreachable_agents[agent.id] = time.time()
    master.count("master/slave_unreachable_completed")
    master.count("master/slave_removals")
    master.count("master/slave_removals/reason_unhealthy")
    for framework in master.frameworks.values():
        framework.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent.id}}})
