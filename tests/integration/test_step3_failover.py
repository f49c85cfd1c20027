"""Step 3 (`step3_failover`) end to end on localmesos: schedulers as processes of their own,
killed with SIGKILL mid-job and started again, or replaced by a standby elected in ZooKeeper;
executors and agents killed under running chunks. Every job must end with the sequential
result, each chunk recorded exactly once, and no executor left behind.

Chunks that must stay running wait at gates that the test opens (`Gates`, in step3_support);
tests wait for what they need to see, never for a guessed time, and assert no duration.
The ZooKeeper backend of the checkpoint passes the same contract as the directory
(`StoreContract`, from the unit tests), on a private ZooKeeper server.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from jobs import bikeshare
from localmesos.cluster import LocalCluster
from localmesos.zookeeper import ZooKeeper
from step3_failover.checkpoint import Checkpoint, DirectoryStore, ZooKeeperStore
from step3_failover.scheduler import EXECUTOR_ID
from tests.integration.pymesos_harness import alive, only
from tests.integration.step1_support import Wiretap, running_executors
from tests.integration.step2_support import ExecutorExits, wait_gone
from tests.integration.step3_support import (
    Gates,
    Scheduler,
    Schedulers,
    crashing_python,
    failing_python,
    schedulers_fixture,
    wait_for,
    zookeeper_fixture,
)
from tests.unit.test_step3_failover import StoreContract

pytestmark = pytest.mark.integration

SMALL = bikeshare.SIZES["small"]
CHUNKS = bikeshare.chunks(SMALL)
REFERENCE = bikeshare.run_sequential(SMALL)
RESULTS = {chunk: bikeshare.count_chunk(chunk, SMALL) for chunk in CHUNKS}
FIRST_ATTEMPTS = [f"chunk-{chunk}-attempt-1" for chunk in CHUNKS]
# Room for our executor (0.1 cpus) and two tasks (0.1 each) per agent: two chunks per agent.
TWO_TASKS_EACH = "cpus:0.3;mem:256;disk:1024"
SESSION = "1"  # seconds: how soon ZooKeeper gives a dead leader's place to a standby
GRACE = 10.0  # seconds for executors to go once the job is over


@pytest.fixture
def schedulers(tmp_path: Path) -> Iterator[Schedulers]:
    yield from schedulers_fixture(tmp_path)


@pytest.fixture
def clusters() -> Iterator[Callable[..., LocalCluster]]:
    made: list[LocalCluster] = []

    def make(**options: object) -> LocalCluster:
        options.setdefault("resources", TWO_TASKS_EACH)
        cluster = LocalCluster(2, allocation_interval=0.1, **options)  # type: ignore[arg-type]
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.stop()


@pytest.fixture
def gates(tmp_path: Path) -> Gates:
    return Gates(tmp_path)


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeper]:
    yield from zookeeper_fixture(tmp_path_factory.mktemp("zookeeper"))


def zk_path(zookeeper: ZooKeeper, request: pytest.FixtureRequest) -> str:
    """A ZooKeeper path of this test's own."""
    return zookeeper.url("/" + re.sub(r"[^A-Za-z0-9]", "_", request.node.name) + "/bikeshare")


def argv(cluster: LocalCluster, state: str | Path, gates: Gates | None, *extra: str) -> list[str]:
    options = ["--master", cluster.master, "--state", str(state), "--size", "small"]
    options += ["--quiet", "--verbose", "--session-timeout", SESSION]
    if gates is not None:
        options += ["--executor-python", gates.python]
    return [*options, *extra]


def tasks_in(cluster: LocalCluster, state: str) -> dict[str, str]:
    """Task ID -> agent ID of the tasks in ``state``, as the master knows them."""
    return {
        task["id"]: task["slave_id"]
        for framework in cluster.state()["frameworks"]
        for task in framework["tasks"]
        if task["state"] == state
    }


def chunk_of(task_id: str) -> int:
    return int(task_id.split("-")[1])


def all_running(cluster: LocalCluster, tasks: list[str]) -> dict[str, str] | None:
    running = tasks_in(cluster, "TASK_RUNNING")
    return running if set(tasks) <= set(running) else None


def assert_the_exact_result(scheduler: Scheduler, recovered: int) -> None:
    lines = scheduler.stdout().splitlines()
    assert re.fullmatch(
        rf"4 chunks in \d+\.\d s: {recovered} from the checkpoint, {4 - recovered} recorded "
        r"by this scheduler",
        lines[0],
    ), lines
    assert lines[1] == bikeshare.summary(REFERENCE)


def assert_counted_once(store: Checkpoint, *schedulers: Scheduler) -> None:
    """Each chunk's result was recorded by exactly one scheduler, and is the right one."""
    recorded = [chunk for scheduler in schedulers for chunk in scheduler.recorded()]
    assert sorted(recorded) == CHUNKS
    assert store.results() == RESULTS


def assert_torn_down(cluster: LocalCluster, store: Checkpoint, framework_id: str) -> None:
    state = cluster.state()
    assert state["frameworks"] == []
    assert [f["id"] for f in state["completed_frameworks"]] == [framework_id]
    assert store.framework_id() is None


def acknowledged_again(tap: Wiretap, framework_id: str, task_id: str, since: int) -> bool:
    """Whether a TASK_FINISHED of ``task_id`` arrived after ``since``, from the agent (with a
    uuid), and was acknowledged."""
    uuids = {
        event.body["update"]["status"]["uuid"]
        for event in tap.events(framework_id, "UPDATE")
        if event.seq >= since
        and event.body["update"]["status"]["task_id"]["value"] == task_id
        and event.body["update"]["status"]["state"] == "TASK_FINISHED"
        and "uuid" in event.body["update"]["status"]
    }
    return any(
        call.body["acknowledge"]["uuid"] in uuids
        for call in tap.calls(framework_id, "ACKNOWLEDGE")
        if call.seq >= since
    )


# -- 1. A scheduler that dies is started again ----------------------------------------------------


def test_a_scheduler_killed_mid_job_is_restarted_and_counts_each_chunk_once(
    clusters: Callable[..., LocalCluster],
    schedulers: Schedulers,
    gates: Gates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The agents send an unacknowledged update again after 0.2 s, then 0.4 s, and so on.
    cluster = clusters(status_update_retry=0.2)
    tap = Wiretap(cluster, monkeypatch)
    state = tmp_path / "state"
    # --crash-after 1: A dies right after recording its first result, before acknowledging it.
    a = schedulers.start("a", *argv(cluster, state, gates, "--crash-after", "1"))
    wait_for(lambda: all_running(cluster, FIRST_ATTEMPTS), "four chunks running")
    gates.open(0)
    assert a.wait() == -signal.SIGKILL
    store = DirectoryStore(state)
    framework_id = store.framework_id()
    assert framework_id is not None
    assert store.results() == {0: RESULTS[0]}
    assert a.recorded() == [0]
    # While no scheduler runs, chunk 1 finishes. Its TASK_FINISHED waits at the agent.
    gates.open(1)
    wait_for(lambda: "chunk-1-attempt-1" in tasks_in(cluster, "TASK_FINISHED"), "chunk 1 to end")

    since = tap.mark()
    b = schedulers.start("b", *argv(cluster, state, gates))
    b.wait_log(rf"re-registered with framework ID {framework_id}$")
    # The agent sends B the TASK_FINISHED that A recorded but never acknowledged: B
    # acknowledges it and changes nothing, since chunk 0 is in the checkpoint.
    wait_for(
        lambda: acknowledged_again(tap, framework_id, "chunk-0-attempt-1", since),
        "B to acknowledge chunk 0's TASK_FINISHED",
    )
    gates.open_all()
    assert b.wait() == 0, b.log()

    assert_the_exact_result(b, recovered=1)
    assert_counted_once(store, a, b)
    assert sorted(b.recorded()) == [1, 2, 3]
    # Chunks 2 and 3 were still running, and reconciliation said so; chunk 1's result came
    # from the agent. Nothing ran twice.
    assert sorted(tap.launched(framework_id)) == FIRST_ATTEMPTS
    assert "result of chunk-1-attempt-1 recorded" in b.log()
    assert "reconciling 3 tasks" in b.log()
    assert_torn_down(cluster, store, framework_id)


def test_an_agent_lost_while_no_scheduler_runs_is_found_by_reconciliation(
    clusters: Callable[..., LocalCluster],
    schedulers: Schedulers,
    gates: Gates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = clusters()
    tap = Wiretap(cluster, monkeypatch)
    state = tmp_path / "state"
    a = schedulers.start("a", *argv(cluster, state, gates))
    agent_of = wait_for(lambda: all_running(cluster, FIRST_ATTEMPTS), "four chunks running")
    a.kill()
    framework_id = DirectoryStore(state).framework_id()
    assert framework_id is not None

    # While no scheduler runs, an agent dies. The master marks it unreachable, with its tasks,
    # but tells nobody: the framework is disconnected.
    lost_agent = agent_of["chunk-0-attempt-1"]
    lost = sorted(chunk_of(task) for task, agent in agent_of.items() if agent == lost_agent)
    cluster.kill_host(lost_agent)
    wait_for(lambda: cluster.state()["unreachable_slaves"] == 1, "the agent to be unreachable")
    cluster.add_agent(TWO_TASKS_EACH)  # room for its chunks to run again

    b = schedulers.start("b", *argv(cluster, state, gates))
    b.wait_log(r"reconciling 4 tasks")
    # Only reconciliation can tell B that those tasks are gone.
    for chunk in lost:
        again_in = rf"launching chunk {chunk} again in [\d.]+ s$"
        b.wait_log(rf"chunk-{chunk}-attempt-1: TASK_\w+: .*; {again_in}")
    again = [f"chunk-{chunk}-attempt-2" for chunk in lost]
    wait_for(lambda: all_running(cluster, again), "the lost chunks to run again")
    gates.open_all()
    assert b.wait() == 0, b.log()

    store = DirectoryStore(state)
    assert_the_exact_result(b, recovered=0)
    assert_counted_once(store, b)
    assert sorted(tap.launched(framework_id)) == sorted(FIRST_ATTEMPTS + again)
    assert_torn_down(cluster, store, framework_id)


# -- 2. A standby takes over, through ZooKeeper --------------------------------------------------


def test_with_zookeeper_a_standby_takes_over_the_same_framework(
    clusters: Callable[..., LocalCluster],
    schedulers: Schedulers,
    gates: Gates,
    zookeeper: ZooKeeper,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = clusters()
    tap = Wiretap(cluster, monkeypatch)
    state = zk_path(zookeeper, request)
    a = schedulers.start("a", *argv(cluster, state, gates))
    framework_id = a.wait_log(r"registered with framework ID (\S+)$")[1]
    wait_for(lambda: all_running(cluster, FIRST_ATTEMPTS), "four chunks running")
    b = schedulers.start("b", *argv(cluster, state, gates))
    b.wait_log(rf"^standby: \S+ pid {a.pid} leads the job in --state {state}; waiting")

    gates.open(0)
    with ZooKeeperStore(state) as store:
        # A's log line, not the znode: A writes the znode first, and a kill in between would
        # hide from assert_counted_once which scheduler recorded chunk 0.
        a.wait_log(r"^INFO step3_failover: chunk 0: result .* recorded$")
        executors = sorted(a.executor_pids())
        a.kill()
        # ZooKeeper expires A's session; B is elected and subscribes with A's framework ID.
        b.wait_log(rf"re-registered with framework ID {framework_id}$")
        gates.open_all()
        assert b.wait() == 0, b.log()

        assert_the_exact_result(b, recovered=1)
        assert_counted_once(store, a, b)
        # B rebuilt A's running tasks from the checkpoint and reconciliation: it launched
        # nothing, and A's two executors ran every chunk to its end.
        assert sorted(tap.launched(framework_id)) == FIRST_ATTEMPTS
        assert len(executors) == 2
        finished = [
            event.body["update"]["status"]
            for event in tap.events(framework_id, "UPDATE")
            if event.body["update"]["status"]["state"] == "TASK_FINISHED"
            and "uuid" in event.body["update"]["status"]
        ]
        assert {s["container_status"]["executor_pid"] for s in finished} == set(executors)
        assert_torn_down(cluster, store, framework_id)

        # A third instance finds the job done in the checkpoint: it prints the result and
        # registers no framework.
        c = schedulers.start("c", *argv(cluster, state, gates))
        assert c.wait() == 0, c.log()
        assert_the_exact_result(c, recovered=4)
        assert [f["id"] for f in cluster.state()["completed_frameworks"]] == [framework_id]


def test_a_leader_whose_session_expires_is_told_it_no_longer_leads(
    zookeeper: ZooKeeper, request: pytest.FixtureRequest
) -> None:
    store = ZooKeeperStore(zk_path(zookeeper, request))
    with store, store.leadership("me", on_wait=lambda leader: None) as leadership:
        assert not leadership.lost.is_set()
        # ZooKeeper's own way to expire a session at once: another client joins it with its
        # ID and password, and closes it.
        thief = KazooClient(hosts=zookeeper.hosts, client_id=store.zk.client_id)
        thief.start()
        thief.stop()
        thief.close()
        wait_for(leadership.lost.is_set, "kazoo to report the session as lost")


# -- 3. Executors and agents die; chunks are lost, not failed -------------------------------------


def test_a_killed_executor_and_a_lost_agent_cost_attempts_but_never_the_job(
    clusters: Callable[..., LocalCluster],
    schedulers: Schedulers,
    gates: Gates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = clusters()
    tap = Wiretap(cluster, monkeypatch)
    state = tmp_path / "state"
    # --max-attempts 2: the executor's death costs each of its chunks one failed attempt (the
    # agent reports TASK_FAILED); the lost agent costs its chunks a loss each.
    a = schedulers.start("a", *argv(cluster, state, gates, "--max-attempts", "2"))
    agent_of = wait_for(lambda: all_running(cluster, FIRST_ATTEMPTS), "four chunks running")
    framework_id = DirectoryStore(state).framework_id()
    assert framework_id is not None

    # An executor dies: its tasks end in TASK_FAILED from the agent, and run again there.
    cluster.kill_executor(framework_id, EXECUTOR_ID)

    def failed_chunks() -> list[str]:
        return sorted(re.findall(r"chunk-(\d+)-attempt-1: TASK_FAILED", a.log()))

    # Each task's failure is its own update and its own log line: on a busy machine the second
    # may come a moment after the first, so wait for both rather than for the first.
    failed = wait_for(lambda: len(failed_chunks()) >= 2 and failed_chunks(), "both tasks to fail")
    assert len(failed) == 2
    first = [f"chunk-{chunk}-attempt-2" for chunk in failed]
    wait_for(lambda: all_running(cluster, first), "them to run again on a new executor")

    # An agent dies: its tasks become unreachable, and run on an agent that comes to help.
    other = next(agent for task, agent in agent_of.items() if str(chunk_of(task)) not in failed)
    lost = sorted(chunk_of(task) for task, agent in agent_of.items() if agent == other)
    cluster.kill_host(other)
    cluster.add_agent(TWO_TASKS_EACH)
    second = [f"chunk-{chunk}-attempt-2" for chunk in lost]
    wait_for(lambda: all_running(cluster, second), "the lost agent's chunks to run again")
    gates.open_all()
    assert a.wait() == 0, a.log()

    store = DirectoryStore(state)
    assert_the_exact_result(a, recovered=0)
    assert_counted_once(store, a)
    assert sorted(tap.launched(framework_id)) == sorted(FIRST_ATTEMPTS + first + second)
    log = a.log()
    for chunk in failed:
        assert f"chunk-{chunk}-attempt-1: TASK_FAILED: Executor terminated; launching" in log
    for chunk in lost:
        assert re.search(rf"chunk-{chunk}-attempt-1: TASK_UNREACHABLE: .*; launching", log)
    assert re.search(rf"executor {EXECUTOR_ID} on agent \S+ exited \(wait status 9\)", log)
    assert f"agent {other} was lost" in log
    assert_torn_down(cluster, store, framework_id)


# -- 4. No executor outlives the job --------------------------------------------------------------


def test_an_executor_that_cannot_start_ends_the_job_with_its_stderr(
    clusters: Callable[..., LocalCluster], schedulers: Schedulers, tmp_path: Path
) -> None:
    """Every attempt's executor exits 1 before it registers: the agent reports each task as
    TASK_FAILED (REASON_EXECUTOR_TERMINATED). Each counts, so the job ends after
    --max-attempts of one chunk, and says why, in the executor's own words."""
    cluster = clusters()
    state = tmp_path / "state"
    python = failing_python(tmp_path)
    a = schedulers.start("a", *argv(cluster, state, None, "--executor-python", python,
                                    "--max-attempts", "2"))  # fmt: skip
    assert a.wait() == 1, a.log()
    log = a.log()
    assert re.search(r"error: chunk \d failed 2 times; the last attempt, chunk-\d-attempt-\d+ "
                     r"on agent \S+, ended with TASK_FAILED", log), log  # fmt: skip
    assert "the executor ended before it ran the chunk" in log, log
    assert "failing-python: cannot run -m step3_failover.executor: no such module" in log, log
    # Bounded: at most --max-attempts tasks per chunk were ever launched.
    tasks = DirectoryStore(state).tasks()
    assert 2 <= len(tasks) <= 2 * SMALL.weeks, sorted(tasks)


def test_an_executor_that_crashes_on_one_chunk_ends_the_job_with_its_stderr(
    clusters: Callable[..., LocalCluster], schedulers: Schedulers, tmp_path: Path
) -> None:
    cluster = clusters()
    state = tmp_path / "state"
    python = crashing_python(tmp_path, week=2)
    a = schedulers.start("a", *argv(cluster, state, None, "--executor-python", python,
                                    "--max-attempts", "3"))  # fmt: skip
    assert a.wait() == 1, a.log()
    log = a.log()
    # Chunk 2 crashes its executor every time; a chunk that shares the executor dies with it,
    # and may be the one that runs out of attempts first.
    assert re.search(r"error: chunk \d failed 3 times", log), log
    # Which of the two depends on whether that chunk had started when the executor crashed.
    assert re.search(r"the executor (died while it ran|ended before it ran) the chunk", log), log
    assert "crashing on week 2, on purpose" in log, log
    assert len(DirectoryStore(state).tasks()) <= 3 * SMALL.weeks


def test_no_executor_is_left_after_the_job(
    clusters: Callable[..., LocalCluster],
    schedulers: Schedulers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = clusters()
    exits = ExecutorExits(monkeypatch)
    tap = Wiretap(cluster, monkeypatch)
    state = tmp_path / "state"
    a = schedulers.start("a", *argv(cluster, state, None))
    assert a.wait() == 0, a.log()
    framework_id = a.wait_log(r"registered with framework ID (\S+)$")[1]
    assert_the_exact_result(a, recovered=0)
    assert tap.calls(framework_id)[-1].type == "TEARDOWN"
    pids = a.executor_pids()
    assert len(pids) == 2
    # The agent sends each executor SHUTDOWN; ours exit by themselves, with status 0.
    wait_gone(pids, GRACE)
    assert exits.wait(pids, GRACE) == dict.fromkeys(pids, 0)
    wait_for(lambda: running_executors(cluster) == [], "the agents to list no executor")
    assert not any(alive(pid) for pid in pids)
    assert_torn_down(cluster, DirectoryStore(state), framework_id)
    assert only(cluster.state()["completed_frameworks"])["id"] == framework_id


# -- the checkpoint's contract, on ZooKeeper ------------------------------------------------------


class TestZooKeeperStore(StoreContract):
    @pytest.fixture
    def clients(self, zookeeper: ZooKeeper, request: pytest.FixtureRequest) -> Iterator[list]:
        made: list[ZooKeeperStore] = []
        yield made
        for client in made:
            client.close()

    @pytest.fixture
    def another(
        self, zookeeper: ZooKeeper, request: pytest.FixtureRequest, clients: list
    ) -> Callable[[], Checkpoint]:
        url = zk_path(zookeeper, request)

        def connect() -> Checkpoint:
            clients.append(ZooKeeperStore(url, session_timeout=2.0))
            return clients[-1]

        return connect

    @pytest.fixture
    def store(self, another: Callable[[], Checkpoint]) -> Checkpoint:
        return another()
