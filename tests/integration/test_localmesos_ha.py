"""Master high availability and partitions in localmesos, driven by unmodified pymesos given the
cluster's zk:// URL: finding the leader, standbys that redirect, a leader that crashes and is
succeeded, agents that reregister, frameworks that come back to a master that never saw them,
and an agent cut off from the masters for a while.

What Mesos does in each case is summarised, with the sources, in localmesos/CONFORMANCE.md
("Agent loss and partitions", "Master election and failover"). The tests wait by polling, with
timeouts; none asserts how long anything took.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymesos import MesosSchedulerDriver

from localmesos.cluster import LocalCluster, NoLeader
from tests.integration import raw_http
from tests.integration.localmesos_procs import (
    LOCALMESOS,
    Cli,
    Proc,
    cmdline,
    descendants,
    describe,
    in_sessions,
    need_zookeeper,
    proc,
    start_localmesos,
    survivors,
)
from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    alive,
    command_task,
    framework_info,
    harness_fixture,
    only,
    stop_driver,
    wait_state,
)

pytestmark = pytest.mark.integration

WAIT = 30.0  # generous: a failover waits for a ZooKeeper session to expire, then for backoffs
PA = [{"type": "PARTITION_AWARE"}]


@pytest.fixture(autouse=True)
def zookeeper_installed() -> None:
    need_zookeeper()


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def find(frameworks: list[dict], framework_id: str) -> dict | None:
    return next((f for f in frameworks if f["id"] == framework_id), None)


def tasks_of(state: dict, framework_id: str) -> list[tuple[str, str]]:
    framework = find(state["frameworks"], framework_id)
    return [] if framework is None else [(t["id"], t["state"]) for t in framework["tasks"]]


def standby(cluster: LocalCluster) -> str:
    return next(m for m in cluster.masters if m != cluster.leader)


class Recorder(RecordingScheduler):
    """A recording scheduler that remembers the offers it has used."""

    def __init__(self) -> None:
        super().__init__()
        self.used: set[str] = set()


def subscribe(
    harness: Harness, cluster: LocalCluster, framework: dict | None = None
) -> tuple[Recorder, MesosSchedulerDriver, str]:
    scheduler = Recorder()
    driver = harness.driver(scheduler, cluster, framework=framework)
    return scheduler, driver, scheduler.wait_registered(WAIT)


def launch(
    scheduler: Recorder,
    driver: MesosSchedulerDriver,
    task_id: str,
    command: str,
    agent_id: str | None = None,
) -> dict:
    """Run a command task on an offer not used yet; returns its TASK_RUNNING update."""

    def fresh() -> dict | None:
        offers = scheduler.offers(agent_id=agent_id)
        return next((o for o in offers if o["id"]["value"] not in scheduler.used), None)

    offer = scheduler.wait(fresh, WAIT, "an offer not used yet")
    scheduler.used.add(offer["id"]["value"])
    driver.launchTasks(offer["id"], [command_task(task_id, offer, command)])
    return scheduler.wait_update(task_id, "TASK_RUNNING", timeout=WAIT)


# -- 1. Finding the leader; what standbys answer ---------------------------------------------------


def test_pymesos_given_the_zk_url_subscribes_to_the_leader(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, masters=3)
    assert cluster.master.startswith("zk://127.0.0.1:") and cluster.master.endswith("/mesos")
    assert len(cluster.masters) == 3 and cluster.leader in cluster.masters

    scheduler, driver, framework_id = subscribe(harness, cluster)
    (_, master_info) = only(scheduler.calls("registered")).args
    # pymesos describes the master it dialled: the one ZooKeeper names as the leader.
    assert str(master_info["port"]) == cluster.leader.rsplit(":", 1)[1]
    state = cluster.state()
    assert find(state["frameworks"], framework_id)["connected"] is True
    assert state["flags"]["zk"] == cluster.master
    assert state["leader_info"]["port"] == int(cluster.leader.rsplit(":", 1)[1])
    launch(scheduler, driver, "t", "sleep 100")


def test_a_standby_redirects_to_the_leader(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, masters=2)
    other = standby(cluster)
    leader_port = cluster.leader.rsplit(":", 1)[1]
    hostname = socket.gethostbyaddr("127.0.0.1")[0]

    subscribe = raw_http.post_json(other, "/api/v1/scheduler", raw_http.subscribe_call())
    assert subscribe.status == 307
    # http.cpp `redirect`: protocol-relative, the leader's hostname, the request's path.
    assert subscribe.header("Location") == f"//{hostname}:{leader_port}/api/v1/scheduler"
    for path in (
        "/master/state?jsonp=f",
        "/state",
        "/master/slaves",
        "/master/tasks",
        "/master/frameworks",
    ):
        reply = raw_http.get(other, path)
        assert reply.status == 307, path
        assert reply.header("Location") == f"//{hostname}:{leader_port}{path}"
    operator = raw_http.post_json(other, "/api/v1", {"type": "GET_STATE"})
    assert operator.status == 307
    assert raw_http.get(other, "/master/redirect").header("Location") == (
        f"//{hostname}:{leader_port}"
    )
    assert raw_http.get(cluster.leader, "/redirect").header("Location") == (
        f"//{hostname}:{leader_port}"
    )
    assert raw_http.get(other, "/health").status == 200
    assert raw_http.get(other, "/version").status == 200
    assert raw_http.get(other, "/metrics/snapshot").json()["master/elected"] == 0
    assert raw_http.get(cluster.leader, "/metrics/snapshot").json()["master/elected"] == 1
    assert raw_http.get(cluster.leader, "/master/state").status == 200


def test_without_zookeeper_the_leader_stands_down_and_standbys_answer_503(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1, masters=2)
    old_leader = cluster.leader
    other = standby(cluster)
    assert cluster._zookeeper is not None

    cluster._zookeeper.stop()
    # The leader cannot tell whether its session lives: after a session timeout it stops, as a
    # Mesos master exits; the standby then knows no leader.
    raw_http.wait_until(lambda: old_leader not in cluster.masters, WAIT, "the leader to stop")
    raw_http.wait_until(
        lambda: (
            raw_http.post_json(other, "/api/v1/scheduler", raw_http.subscribe_call()).status == 503
        ),
        WAIT,
        "503 from the standby",
    )
    reply = raw_http.get(other, "/master/state")
    assert (reply.status, reply.text) == (503, "No leader elected")
    assert raw_http.get(other, "/health").status == 200
    with pytest.raises(NoLeader):
        cluster.state()

    cluster._zookeeper.start()  # the same port and data
    assert cluster.wait_for_leader(WAIT) == other
    # The agent finds the new leader and reregisters with its ID.
    agent_id = only(cluster.agents)
    cluster.wait_for(lambda s: [a["id"] for a in s["slaves"]] == [agent_id], WAIT)


def test_agent_messages_to_a_standby_are_dropped() -> None:
    info = {"hostname": "h", "ip": "127.0.0.1", "port": 1, "resources": [], "attributes": []}
    with LocalCluster(agents=0, masters=2) as cluster:
        other = next(m for m in cluster._masters if not m.serving)
        leader = next(m for m in cluster._masters if m.serving)
        # Over a link of this process, and over HTTP as from an agent of another process.
        other.register_agent(info, None)  # the link is never used: no reply is made
        for master in (other, leader):
            message = {
                "message": "register_agent",
                "args": [info, {"$link": "http://127.0.0.1:1/link"}],
            }
            secret = {"Authorization": f"Bearer {cluster.link_secret}"}
            reply = raw_http.post_json(master.address, "/master/link", message, secret)
            assert reply.status == 202
        assert other.call(lambda: other.agents) == {}
        # The same message reaches the leader, which registers the agent (its reply is lost).
        raw_http.wait_until(lambda: leader.call(lambda: list(leader.agents)), WAIT)


# -- 2. Master failover ----------------------------------------------------------------------------


@pytest.mark.parametrize("links", ["local", "http"])
def test_kill_master_a_framework_and_its_tasks_carry_on_with_the_next_leader(
    harness: Harness, tmp_path: Path, links: str
) -> None:
    cluster = harness.cluster(agents=2, masters=3, status_update_retry=1.0, links=links)
    scheduler, driver, framework_id = subscribe(
        harness, cluster, framework_info(failover_timeout=3600)
    )
    running = launch(scheduler, driver, "t", "sleep 300")
    pid = running["container_status"]["executor_pid"]
    flag = tmp_path / "finish"
    launch(scheduler, driver, "short", f"while [ ! -e {flag} ]; do sleep 0.02; done")
    agents = sorted(cluster.agents)
    mark = scheduler.mark()

    old = cluster.kill_master()
    # The task ends while the leader is dead: its update waits on the agent and reaches the
    # framework through the next leader.
    flag.touch()
    new = cluster.wait_for_leader(WAIT)
    assert new != old and old not in cluster.masters

    # Agents reregister with their IDs and what they run.
    state = wait_state(cluster, lambda s: len(s["slaves"]) == 2, WAIT)
    assert sorted(a["id"] for a in state["slaves"]) == agents
    # The framework resubscribes with its ID, and pymesos says so.
    scheduler.wait(lambda: scheduler.calls("reregistered", mark), WAIT, "reregistered()")
    assert scheduler.calls("registered", mark) == []
    state = wait_state(
        cluster, lambda s: (find(s["frameworks"], framework_id) or {}).get("connected"), WAIT
    )
    framework = find(state["frameworks"], framework_id)
    assert framework is not None and framework["active"] is True
    assert framework["recovered"] is False
    assert ("t", "TASK_RUNNING") in tasks_of(state, framework_id)
    assert alive(pid)

    # The update made while no master led arrives, from the agent, with its uuid. (If the
    # framework came back before the agent, the master told it first: TASK_FINISHED,
    # SOURCE_MASTER, "Unknown agent reregistered".)
    # A TASK_RUNNING may come first: its acknowledgement, sent as the leader died, was lost,
    # and the agent sends it again through the next one.
    def from_the_agent() -> dict | None:
        updates = scheduler.updates("short", since=mark)
        return next(
            (
                u
                for u in updates
                if u["source"] == "SOURCE_EXECUTOR" and u["state"] == "TASK_FINISHED"
            ),
            None,
        )

    finished = scheduler.wait(from_the_agent, WAIT, "the agent's update of task short")
    assert finished["state"] == "TASK_FINISHED" and "uuid" in finished
    for update in scheduler.updates("short", since=mark):
        if update["state"] == "TASK_RUNNING":  # the retried one, above
            assert update["source"] == "SOURCE_EXECUTOR"
            continue
        assert update["state"] == "TASK_FINISHED"
        if update["source"] == "SOURCE_MASTER":
            assert update["reason"] == "REASON_AGENT_REREGISTERED"
            assert update["message"] == "Unknown agent reregistered"

    # Reconciliation on the new master: the known task, explicitly and implicitly.
    mark = scheduler.mark()
    driver.reconcileTasks([{"task_id": {"value": "t"}}])
    answer = scheduler.wait_update("t", "TASK_RUNNING", since=mark, timeout=WAIT)
    assert answer["reason"] == "REASON_RECONCILIATION"
    assert answer["message"] == "Reconciliation: Latest task state"
    assert answer["source"] == "SOURCE_MASTER" and "uuid" not in answer
    mark = scheduler.mark()
    driver.reconcileTasks([])
    assert scheduler.wait_update("t", "TASK_RUNNING", since=mark, timeout=WAIT)["reason"] == (
        "REASON_RECONCILIATION"
    )
    # A task nobody knows: no registry, so no silence; TASK_LOST for a non-PA framework.
    driver.reconcileTasks([{"task_id": {"value": "nobody"}}])
    unknown = scheduler.wait_update("nobody", "TASK_LOST", since=mark, timeout=WAIT)
    assert unknown["message"] == "Reconciliation: Task is unknown"

    # New updates flow through the new leader; offers come from it too.
    mark = scheduler.mark()
    driver.killTask({"value": "t"})
    scheduler.wait_update("t", "TASK_KILLED", since=mark, timeout=WAIT)
    assert scheduler.wait_offers(1, since=mark, timeout=WAIT)


def test_a_new_scheduler_with_a_saved_id_subscribes_to_a_master_that_never_saw_it(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1, masters=2)
    first, old_driver, framework_id = subscribe(
        harness, cluster, framework_info(failover_timeout=3600)
    )
    pid = launch(first, old_driver, "t", "sleep 300")["container_status"]["executor_pid"]
    stop_driver(old_driver, failover=True)  # the process goes away; no TEARDOWN

    cluster.kill_master()
    cluster.wait_for_leader(WAIT)
    # The agent reregisters and the new master learns of the framework from it: RECOVERED,
    # neither connected nor active, with its task.
    state = wait_state(cluster, lambda s: find(s["frameworks"], framework_id), WAIT)
    framework = find(state["frameworks"], framework_id)
    assert framework is not None
    assert (framework["recovered"], framework["connected"], framework["active"]) == (
        True,
        False,
        False,
    )
    assert tasks_of(state, framework_id) == [("t", "TASK_RUNNING")]
    assert framework["offers"] == []

    new = RecordingScheduler()
    harness.driver(new, cluster, framework=framework_info(id={"value": framework_id}))
    new.wait(lambda: new.calls("reregistered"), WAIT, "reregistered()")
    assert new.calls("registered") == []
    state = wait_state(cluster, lambda s: find(s["frameworks"], framework_id)["connected"], WAIT)
    framework = find(state["frameworks"], framework_id)
    assert framework is not None and framework["recovered"] is False
    assert tasks_of(state, framework_id) == [("t", "TASK_RUNNING")]
    assert alive(pid)
    assert new.wait_offers(1, timeout=WAIT)


def test_subscribe_with_an_id_no_master_has_seen_is_accepted() -> None:
    """`Master::_subscribe`: the master rebuilds the framework from its FrameworkInfo."""
    with LocalCluster(agents=1) as cluster:
        info = raw_http.framework_info(id={"value": "made-up-0000"})
        with raw_http.subscribe(cluster.leader, info) as subscription:
            subscribed = subscription.subscribed["subscribed"]
            assert subscribed["framework_id"] == {"value": "made-up-0000"}
            framework = find(cluster.state()["frameworks"], "made-up-0000")
            assert framework is not None and framework["connected"] is True


# -- 3. Agent partitions --------------------------------------------------------------------------


def test_a_partitioned_agent_is_unreachable_then_comes_back_with_its_tasks(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=2, agent_timeout=1.0)
    aware, aware_driver, aware_id = subscribe(
        harness, cluster, framework_info("aware", capabilities=PA)
    )
    plain, plain_driver, plain_id = subscribe(harness, cluster, framework_info("plain"))
    agent_id = cluster.agents[0]
    pids = [
        launch(scheduler, driver, "t", "sleep 300", agent_id)["container_status"]["executor_pid"]
        for scheduler, driver in ((aware, aware_driver), (plain, plain_driver))
    ]
    aware_mark, plain_mark = aware.mark(), plain.mark()

    # Long enough for the master's health checks to give up (agent_timeout), and for the agent
    # to miss the pings it expects.
    cluster.partition_agent(agent_id, 4.0)

    lost = {
        "aware": aware.wait_update("t", "TASK_UNREACHABLE", since=aware_mark, timeout=WAIT),
        "plain": plain.wait_update("t", "TASK_LOST", since=plain_mark, timeout=WAIT),
    }
    for status in lost.values():
        assert status["reason"] == "REASON_AGENT_REMOVED"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"] == "health check timed out"
        assert status["agent_id"] == {"value": agent_id}
        assert "unreachable_time" in status and "uuid" not in status
    for scheduler in (aware, plain):
        scheduler.wait(lambda s=scheduler: s.calls("slaveLost"), WAIT, "slaveLost()")
        assert only(scheduler.calls("slaveLost")).args[0] == {"value": agent_id}
    state = cluster.state()
    assert state["unreachable_slaves"] == 1
    assert [
        (t["id"], t["state"]) for t in find(state["frameworks"], aware_id)["unreachable_tasks"]
    ] == [("t", "TASK_UNREACHABLE")]

    # Reconciliation while unreachable (`Master::reconcile`): implicit reconciliation leaves
    # the unreachable task out. The explicit question that follows is answered after it.
    mark = aware.mark()
    aware_driver.reconcileTasks([])
    aware_driver.reconcileTasks([{"task_id": {"value": "marker"}}])
    aware.wait_update("marker", "TASK_UNKNOWN", since=mark, timeout=WAIT)
    assert aware.updates("t", since=mark) == []
    # Without its agent ID (pymesos never sends one) the task is simply unknown.
    aware_driver.reconcileTasks([{"task_id": {"value": "t"}}])
    unknown = aware.wait_update("t", "TASK_UNKNOWN", since=mark, timeout=WAIT)
    assert unknown["message"] == "Reconciliation: Task is unknown"

    # The partition heals: the agent reregisters, nothing is killed, and both frameworks hear
    # the tasks' current state.
    back = {
        "aware": aware.wait_update("t", "TASK_RUNNING", since=aware_mark, timeout=WAIT),
        "plain": plain.wait_update("t", "TASK_RUNNING", since=plain_mark, timeout=WAIT),
    }
    for status in back.values():
        assert status["reason"] == "REASON_AGENT_REREGISTERED"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"] == "Unreachable agent re-reregistered"
        assert status["agent_id"] == {"value": agent_id}
    assert all(alive(pid) for pid in pids)
    state = wait_state(cluster, lambda s: len(s["slaves"]) == 2, WAIT)
    assert state["unreachable_slaves"] == 0
    for framework_id in (aware_id, plain_id):
        framework = find(state["frameworks"], framework_id)
        assert framework is not None and framework["unreachable_tasks"] == []
        assert tasks_of(state, framework_id) == [("t", "TASK_RUNNING")]
    # The agent is offered again, and the tasks' resources are still charged.
    slave = next(a for a in state["slaves"] if a["id"] == agent_id)
    assert slave["used_resources"]["cpus"] == pytest.approx(0.2)


def test_an_explicit_question_with_the_agent_id_of_an_unreachable_task() -> None:
    with LocalCluster(agents=1, agent_timeout=1.0) as cluster:
        agent_id = only(cluster.agents)
        with raw_http.subscribe(
            cluster.leader, raw_http.framework_info(capabilities=PA)
        ) as subscription:
            offer = subscription.stream.wait_for(lambda e: e["type"] == "OFFERS")
            task = raw_http.command_task("t", agent_id, "sleep 300")
            operation = {"type": "LAUNCH", "launch": {"task_infos": [task]}}
            accept = {"offer_ids": [offer["offers"]["offers"][0]["id"]], "operations": [operation]}
            assert subscription.call({"type": "ACCEPT", "accept": accept}).status == 202
            while True:  # only the oldest unacknowledged update is in flight
                event = subscription.stream.wait_for(lambda e: e["type"] == "UPDATE")
                subscription.acknowledge(event["update"]["status"])
                if event["update"]["status"]["state"] == "TASK_RUNNING":
                    break
            cluster.partition_agent(agent_id, 30.0)
            subscription.stream.wait_for(
                lambda e: (
                    e["type"] == "UPDATE" and e["update"]["status"]["state"] == "TASK_UNREACHABLE"
                )
            )
            reply = subscription.call(
                {
                    "type": "RECONCILE",
                    "reconcile": {
                        "tasks": [{"task_id": {"value": "t"}, "agent_id": {"value": agent_id}}]
                    },
                }
            )
            assert reply.status == 202
            status = subscription.stream.wait_for(
                lambda e: (
                    e["type"] == "UPDATE"
                    and e["update"]["status"].get("reason") == "REASON_RECONCILIATION"
                )
            )["update"]["status"]
            assert status["state"] == "TASK_UNREACHABLE"
            assert status["message"] == "Reconciliation: Task is unreachable"
            assert "unreachable_time" in status
            cluster.heal_partition(agent_id)


def test_a_launch_lost_on_the_way_is_reconciled_when_the_agent_reregisters(
    harness: Harness,
) -> None:
    """`reconcileKnownSlave`: an agent reregisters with a master that still has it, and the
    master hands back the tasks it knows and the agent does not; the agent ends them."""
    # Health checks patient enough to outlast the cut below.
    cluster = harness.cluster(agents=1, zookeeper=True, agent_timeout=15.0)
    aware, aware_driver, _ = subscribe(harness, cluster, framework_info("aware", capabilities=PA))
    plain, plain_driver, _ = subscribe(harness, cluster, framework_info("plain"))
    agent_id = only(cluster.agents)
    agent = next(a for a in cluster._agents if a.id == agent_id)
    offer = aware.wait_offers(1, timeout=WAIT)[0]
    # The RunTask messages are lost on the way.
    cluster.partition_agent(agent_id, 60.0)
    aware_driver.launchTasks(offer["id"], [command_task("t", offer, "sleep 300")])
    offer = plain.wait_offers(1, timeout=WAIT)[0]  # what the first launch left
    plain_driver.launchTasks(offer["id"], [command_task("t", offer, "sleep 300")])
    state = wait_state(cluster, lambda s: all(tasks_of(s, f["id"]) for f in s["frameworks"]))
    assert {tasks_of(state, f["id"])[0] for f in state["frameworks"]} == {("t", "TASK_STAGING")}
    cluster.heal_partition(agent_id)
    assert cluster.state()["unreachable_slaves"] == 0

    # A ZooKeeper session of the agent's expires: it detects the same master again and
    # reregisters with what it runs, which is nothing.
    assert agent._detector is not None
    agent._detector.expire_session()

    dropped = aware.wait_update("t", "TASK_DROPPED", timeout=WAIT)
    lost = plain.wait_update("t", "TASK_LOST", timeout=WAIT)
    for status in (dropped, lost):
        assert status["source"] == "SOURCE_AGENT"
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["message"] == "Reconciliation: task unknown to the agent"
        assert "uuid" in status  # from the agent, so acknowledged and retried
    state = wait_state(cluster, lambda s: not any(f["tasks"] for f in s["frameworks"]), WAIT)
    assert [a["id"] for a in state["slaves"]] == [agent_id]


# -- 4. Nothing left behind ------------------------------------------------------------------------


def test_stop_leaves_no_zookeeper_executor_or_task(harness: Harness) -> None:
    cluster = harness.cluster(agents=2, masters=3)
    assert cluster._zookeeper is not None and cluster._zookeeper.pid is not None
    jvm = proc(cluster._zookeeper.pid)
    scheduler, driver, _ = subscribe(harness, cluster, framework_info(failover_timeout=3600))
    pid = launch(scheduler, driver, "t", "sleep 300 & sleep 300; wait")["container_status"][
        "executor_pid"
    ]

    # The shell and its two sleeps (the shell may not have started them at TASK_RUNNING).
    def family() -> set[Proc] | None:
        found = in_sessions({pid})
        return found if len(found) >= 3 else None

    tasks = raw_http.wait_until(family, WAIT, "the task's three processes")
    cluster.kill_master()  # a crashed master leaves nothing either
    cluster.wait_for_leader(WAIT)
    stop_driver(driver, failover=True)
    cluster.stop()
    left = survivors(tasks | {jvm}, timeout=10)
    assert not left, left
    assert cluster.masters == [] and cluster.agents == []


def test_the_command_starts_three_masters_and_stops_them_all() -> None:
    cli = Cli("--port", "0", "--masters", "3", "--agents", "2", timeout=60)
    try:
        line = cli.ready_line
        assert "zk://127.0.0.1:" in line and "/mesos" in line, line
        state = cli.state()  # the first URL printed is the leader's
        assert len(state["slaves"]) == 2
        assert state["flags"]["zk"].startswith("zk://127.0.0.1:")
        jvms = {p for p in descendants(cli.process.pid) if "java" in " ".join(cmdline(p.pid))}
        assert len(jvms) == 1, describe(descendants(cli.process.pid))
        assert cli.signal(15, timeout=30) == 0
        assert not survivors(jvms, timeout=10)
    finally:
        cli.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--masters", "0"], "argument --masters: must be 1 or more, not 0"),
        (["--masters", "3", "--port", "65534"], "3 masters do not fit above 65534"),
    ],
)
def test_bad_master_counts_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run([str(LOCALMESOS), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


class Process:
    """`localmesos ARGS` in the background, up once it has printed its ready line."""

    def __init__(self, *args: str, timeout: float = 60.0) -> None:
        self.process, self.line = start_localmesos(args, timeout)
        if not self.line.startswith("localmesos: "):
            self.process.kill()
            raise AssertionError(f"localmesos {' '.join(args)} is not ready: {self.line!r}")

    def find(self, pattern: str) -> str:
        match = re.search(pattern, self.line)
        assert match, f"{pattern!r} not in {self.line!r}"
        return match.group(1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(30)


def elected(address: str) -> bool:
    try:
        return raw_http.get(address, "/metrics/snapshot").json()["master/elected"] == 1
    except OSError:
        return False


def test_masters_and_agents_in_processes_of_their_own() -> None:
    """`localmesos zookeeper`, `master` and `agents`: the links go over HTTP."""
    started: list[Process] = []
    family: set[Proc] = set()
    driver: MesosSchedulerDriver | None = None
    try:
        zk = Process("zookeeper", "--zk-port", "0")
        started.append(zk)
        url = zk.find(r"(zk://127\.0\.0\.1:\d+/mesos)")
        masters = [Process("master", "--zk", url, "--port", "0") for _ in range(2)]
        started += masters
        addresses = [m.find(r"http://(127\.0\.0\.1:\d+)") for m in masters]
        agents = Process("agents", "--zk", url, "--agents", "1")
        started.append(agents)
        for process in started:
            family |= descendants(process.process.pid) | {proc(process.process.pid)}

        scheduler = Recorder()
        driver = MesosSchedulerDriver(scheduler, framework_info(failover_timeout=60), url)
        driver.start()
        scheduler.wait_registered(WAIT)
        running = launch(scheduler, driver, "t", "sleep 300")
        family |= in_sessions({running["container_status"]["executor_pid"]})
        leader = raw_http.wait_until(lambda: next(filter(elected, addresses), None), WAIT)
        other = next(a for a in addresses if a != leader)
        mark = scheduler.mark()

        masters[addresses.index(leader)].stop(signal.SIGKILL)
        raw_http.wait_until(lambda: elected(other), WAIT, "the standby to lead")
        # The agent reregisters with the new leader over its HTTP link.
        raw_http.wait_until(lambda: raw_http.get(other, "/master/state").json()["slaves"], WAIT)
        scheduler.wait(lambda: scheduler.calls("reregistered", mark), WAIT, "reregistered()")
        state = raw_http.wait_until(
            lambda: (s := raw_http.get(other, "/master/state").json())["frameworks"] and s, WAIT
        )
        assert tasks_of(state, scheduler.framework_id() or "") == [("t", "TASK_RUNNING")]
        mark = scheduler.mark()
        driver.killTask({"value": "t"})
        scheduler.wait_update("t", "TASK_KILLED", since=mark, timeout=WAIT)
    finally:
        if driver is not None:
            stop_driver(driver)
        for process in reversed(started):
            process.stop()
    left = survivors(family, timeout=10)
    assert not left, describe(left)


def test_links_take_only_the_messages_of_the_protocol() -> None:
    """A link is how agents and masters talk, not a way to call any method."""
    with LocalCluster(agents=1) as cluster:
        secret = {"Authorization": f"Bearer {cluster.link_secret}"}
        for address, path in (
            (cluster.leader, "/master/link"),
            (cluster.agent_url(only(cluster.agents)).removeprefix("http://"), "/slave(1)/link"),
        ):
            message = {"message": "stop", "args": []}
            reply = raw_http.post_json(address, path, message, secret)
            assert (reply.status, reply.text) == (400, "Unknown link message 'stop'")
            assert raw_http.post_json(address, path, {"args": []}, secret).status == 400
            assert raw_http.request(address, "PUT", path, b"", secret).status == 405
        # A GET links to an agent (masters watch their agents so): an open stream that says
        # nothing while the agent lives. A master is watched by nobody.
        assert raw_http.request(cluster.leader, "GET", "/master/link", b"", secret).status == 405
        agent = cluster.agent_url(only(cluster.agents)).removeprefix("http://")
        with raw_http.Connection(agent) as conn:
            conn.send(raw_http.encode_request("GET", "/slave(1)/link", b"", secret))
            head = raw_http.read_head(conn)
            assert (head.status, head.chunked) == (200, True)
        assert cluster.state()["slaves"]  # all still up


# -- 5. Timings (informational: printed with -s, never asserted) -----------------------------------


def test_failover_timeline_is_in_order(harness: Harness) -> None:
    cluster = harness.cluster(agents=2, masters=3)
    scheduler, driver, _ = subscribe(harness, cluster, framework_info(failover_timeout=3600))
    launch(scheduler, driver, "t", "sleep 300")
    mark = scheduler.mark()
    start = time.monotonic()
    cluster.kill_master()
    cluster.wait_for_leader(WAIT, interval=0.01)
    elected = time.monotonic()
    wait_state(cluster, lambda s: len(s["slaves"]) == 2, WAIT)
    agents = time.monotonic()
    call = scheduler.wait(lambda: scheduler.calls("reregistered", mark), WAIT, "reregistered()")
    resubscribed = call[0].time
    print(
        f"\nkill_master -> elected {elected - start:.2f}s -> agents reregistered "
        f"{agents - start:.2f}s; framework resubscribed {resubscribed - start:.2f}s"
    )
    assert start < elected <= agents
