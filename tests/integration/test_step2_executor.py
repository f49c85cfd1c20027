"""Step 2 (`step2_executor`) end to end on localmesos, with real executor processes: the
result on one executor per agent, framework messages both ways, a killed executor, duplicate
status updates, no executor left after the job, and the executor command's options.

Every job is the small one (4 chunks). Where a test needs chunks to stay running, or to take
long enough for a progress message, they wait at gates that the test opens (`Gates`, in
step2_support); no test sleeps for a guessed time or measures how long something took.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs import bikeshare
from localmesos.agent import SHUTDOWN_GRACE
from localmesos.cluster import LocalCluster
from step2_executor import messages
from step2_executor.__main__ import JobError
from step2_executor.scheduler import EXECUTOR_ID, JobScheduler
from tests.integration.pymesos_harness import alive, only, wait_until
from tests.integration.step1_support import Wiretap, agent_state, running_executors, task_ids
from tests.integration.step2_support import (
    ExecutorExits,
    RecordedScheduler,
    Runner,
    executor_pid,
    hellos,
    messages_in,
    messages_out,
    runner_fixture,
    settings,
    wait_gone,
)
from tools import ROOT

pytestmark = pytest.mark.integration

SMALL = bikeshare.SIZES["small"]
CHUNKS = bikeshare.chunks(SMALL)
REFERENCE = bikeshare.run_sequential(SMALL)
FIRST_ATTEMPTS = [f"chunk-{chunk}-attempt-1" for chunk in CHUNKS]
SECOND_ATTEMPTS = [f"chunk-{chunk}-attempt-2" for chunk in CHUNKS]
DAYS = SMALL.weeks * bikeshare.WEEKDAYS
# Room for our executor (0.1 cpus) and two tasks (0.1 each) per agent, so that the four chunks
# run two by two on two agents, whatever order the offers come in.
TWO_TASKS_EACH = "cpus:0.3;mem:256;disk:1024"
KILLED = 9  # the raw wait(2) status of a process killed by SIGKILL


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Runner]:
    yield from runner_fixture(monkeypatch, tmp_path)


@dataclass(frozen=True)
class Elsewhere:
    """An interpreter that notes where each executor started (see the `elsewhere` fixture)."""

    python: Path  # runs this interpreter, after a line in `started` for each process
    started: Path  # "WORKING-DIRECTORY ARGUMENTS" of each process that `python` started

    def processes(self) -> list[tuple[Path, str]]:
        lines = self.started.read_text().splitlines()
        return [(Path(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in lines]

    def not_imported_from_the_sandbox(self, sandbox: Path) -> list[str]:
        """The modules an executor needs that it did not compile, so did not import, from the
        copy that the agent fetched into its sandbox."""
        modules = [
            ("step2_executor", "executor"),
            ("step2_executor", "messages"),
            ("jobs", "bikeshare"),
        ]
        return [
            f"{package}.{module}"
            for package, module in modules
            if not list((sandbox / package / "__pycache__").glob(f"{module}.*.pyc"))
        ]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Elsewhere:
    """An interpreter that notes its working directory and arguments. The bytecode cache in
    the sandbox then shows where the executor imported its code from: the checkout is also
    importable everywhere in this venv (an editable install)."""
    # The agents pass the environment on to the executors, which must write their bytecode.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    python, started = tmp_path / "agent-python", tmp_path / "agent-python.log"
    python.write_text(
        "#!/bin/sh\n"
        f'echo "$PWD $*" >> {shlex.quote(str(started))}\n'
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    python.chmod(0o755)
    return Elsewhere(python, started)


def in_sandboxes(cluster: LocalCluster, elsewhere: Elsewhere) -> list[str]:
    """How each executor started, with its working directory checked to be a sandbox of the
    cluster's that holds the fetched code, which it imported."""
    found = []
    for directory, arguments in elsewhere.processes():
        assert directory.resolve().is_relative_to(cluster.work_dir.resolve()), directory
        assert elsewhere.not_imported_from_the_sandbox(directory) == []
        found.append(arguments)
    return found


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m step2_executor ARGS` from the repository, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "step2_executor", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def running(scheduler: JobScheduler) -> set[str]:
    return set(task_ids(scheduler.timeline.updates, "TASK_RUNNING"))


def statuses(scheduler: RecordedScheduler, state: str) -> list[dict]:
    """The status updates in ``state``, as pymesos delivered them, in order."""
    return [s for s in scheduler.statuses if s["state"] == state]


def acks(scheduler: JobScheduler, of: str) -> list[dict]:
    return [m for m in messages_in(scheduler, messages.ACK) if m["of"] == of]


def climbs_to_the_end(progress: list[tuple[int, int]]) -> bool:
    """The bar only moved forward, and ended with every day of the job done."""
    done = [d for d, _ in progress]
    return done == sorted(set(done)) and progress[-1] == (DAYS, DAYS)


def our_executors(cluster: LocalCluster, agent_id: str, framework_id: str) -> list[dict]:
    """The agent's /state entries for the framework's executors, running or completed."""
    # Once its last executor has ended, the agent lists the framework as completed
    # (Slave::removeFramework), which may happen as the job ends.
    state = agent_state(cluster, agent_id)
    frameworks = state["frameworks"] + state["completed_frameworks"]
    framework = only([f for f in frameworks if f["id"] == framework_id])
    return framework["executors"] + framework["completed_executors"]


def executor_logs(cluster: LocalCluster, framework_id: str) -> str:
    """What our executors wrote to stderr in their sandboxes, on every agent."""
    return "".join(
        Path(executor["directory"], "stderr").read_text()
        for agent in cluster.agents
        for executor in our_executors(cluster, agent, framework_id)
    )


def assert_no_executor_left(
    cluster: LocalCluster,
    tap: Wiretap,
    exits: ExecutorExits,
    scheduler: JobScheduler,
    executors: int,
) -> None:
    """run() tore the framework down, and every executor process it had exited by itself."""
    framework_id = scheduler.framework_id
    assert framework_id is not None
    assert tap.calls(framework_id)[-1].type == "TEARDOWN"
    pids = [pid for _, pid in hellos(scheduler)]
    assert len(pids) == executors
    # The agent sends each executor SHUTDOWN, and kills what is left after the grace period.
    # Ours exit by themselves, with status 0, well before: none of them had to be killed.
    wait_gone(pids, SHUTDOWN_GRACE)
    assert exits.wait(pids, SHUTDOWN_GRACE) == dict.fromkeys(pids, 0)
    wait_until(lambda: running_executors(cluster) == [], what="the agents to list no executor")
    state = cluster.state()
    assert state["frameworks"] == []
    assert [f["id"] for f in state["completed_frameworks"]] == [framework_id]


# -- 1. The result, on one executor per agent ---------------------------------------------------


def test_run_gives_the_sequential_result_on_one_executor_per_agent(runner: Runner) -> None:
    cluster = runner.cluster(resources=TWO_TASKS_EACH)
    scheduler = runner.run(cluster.master, settings())

    assert scheduler.failure is None
    assert scheduler.result() == REFERENCE
    assert scheduler.results == {chunk: bikeshare.count_chunk(chunk, SMALL) for chunk in CHUNKS}
    assert sorted(task_ids(scheduler.timeline.updates, "TASK_FINISHED")) == FIRST_ATTEMPTS
    assert scheduler.attempts == dict.fromkeys(CHUNKS, 1)

    # One executor process per agent: each said hello once, and ran both of its agent's tasks.
    pid_of = dict(hellos(scheduler))
    assert len(hellos(scheduler)) == 2
    assert sorted(pid_of) == sorted(cluster.agents)
    assert len(set(pid_of.values())) == 2
    finished = Counter(
        (s["agent_id"]["value"], executor_pid(s)) for s in statuses(scheduler, "TASK_FINISHED")
    )
    assert finished == {(agent, pid): 2 for agent, pid in pid_of.items()}
    assert scheduler.timeline.executors_lost == []
    launching = [offer for offer in scheduler.timeline.offers if offer["tasks"]]
    assert [(o["tasks"], o["starts_executor"]) for o in launching] == [(2, True), (2, True)]
    # The agents agree: one executor of ours each, which ran two tasks to the end.
    framework_id = scheduler.framework_id
    assert framework_id is not None
    for agent in cluster.agents:
        executor = only(our_executors(cluster, agent, framework_id))
        assert executor["id"] == EXECUTOR_ID
        assert executor["type"] == "CUSTOM"
        assert [t["state"] for t in executor["completed_tasks"]] == ["TASK_FINISHED"] * 2
    assert climbs_to_the_end(scheduler.progress)


def test_cli_prints_the_summary_with_one_executor_per_agent(
    runner: Runner, tmp_path: Path, elsewhere: Elsewhere
) -> None:
    cluster = runner.cluster(resources=TWO_TASKS_EACH)
    chart = tmp_path / "step2.png"
    done = cli(
        *("--master", cluster.master, "--size", "small", "--quiet", "--chart", str(chart)),
        *("--executor-python", str(elsewhere.python)),
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"4 chunks on 2 agents \(2 executors\) in \d+\.\d s", lines[0])
    assert lines[1] == bikeshare.summary(REFERENCE)
    assert lines[2] == f"chart: {chart}"
    assert "Traceback" not in done.stderr
    state = cluster.state()
    assert state["frameworks"] == []
    assert len(state["completed_frameworks"]) == 1
    wait_until(lambda: running_executors(cluster) == [], what="the agents to list no executor")
    # Both executors ran that interpreter, on the code that the scheduler served over HTTP
    # and the agents fetched into their sandboxes.
    assert in_sandboxes(cluster, elsewhere) == ["-m step2_executor.executor"] * 2


# -- 2. Messages both ways ----------------------------------------------------------------------


def test_messages_go_both_ways_and_progress_turns_off_and_on_mid_run(runner: Runner) -> None:
    cluster = runner.cluster(resources=TWO_TASKS_EACH)
    gates = runner.gates()
    job = runner.start(cluster.master, settings(executor_python=gates.python))
    job.wait(lambda s: len(running(s)) == 4 and len(hellos(s)) == 2, "two executors, 4 chunks")
    scheduler, driver = job.scheduler, job.driver
    agents = sorted(cluster.agents)
    for agent, pid in hellos(scheduler):
        assert agent in agents
        assert alive(pid)
    agent_of = {u["chunk"]: u["agent"] for u in scheduler.timeline.updates}
    # One chunk per agent is watched; the other two wait at their first day until the end.
    watched = [min(c for c in CHUNKS if agent_of[c] == agent) for agent in agents]
    others = [c for c in CHUNKS if c not in watched]

    # Progress is on: each day that takes PROGRESS_EVERY brings a progress message.
    for chunk in watched:
        gates.open_days(chunk, 1, 2)
    job.wait(lambda s: all(s.days.get(c) == 2 for c in watched), "two days of the watched chunks")
    progress = messages_in(scheduler, messages.PROGRESS)
    assert sorted((m["agent"], m["task_id"], m["week"], m["days"]) for m in progress) == sorted(
        (agent_of[c], f"chunk-{c}-attempt-1", c, day) for c in watched for day in (1, 2)
    )
    assert scheduler.progress == [(1, DAYS), (2, DAYS), (3, DAYS), (4, DAYS)]

    # Off, from this thread: a message to each executor, and each acknowledges it.
    assert scheduler.set_progress(driver, False) == 2
    assert [(m["agent"], m["progress"]) for m in messages_out(scheduler, messages.SET)] == [
        (agent, False) for agent in agents
    ]
    job.wait(lambda s: len(acks(s, messages.SET)) == 2, "both executors to apply it")
    assert sorted((m["agent"], m["progress"]) for m in acks(scheduler, messages.SET)) == [
        (agent, False) for agent in agents
    ]
    # The watched chunks count their other five days, each as slow as before: no message.
    for chunk in watched:
        gates.open_days(chunk, 3, 4, 5, 6, 7)
    job.wait(lambda s: all(c in s.results for c in watched), "the watched chunks to finish")
    timeline = list(scheduler.timeline.messages)
    for agent in agents:
        ack = next(
            i for i, m in enumerate(timeline) if m["type"] == messages.ACK and m["agent"] == agent
        )
        after = [m for m in timeline[ack:] if m["agent"] == agent]
        assert [m for m in after if m["type"] == messages.PROGRESS] == [], agent
    assert [scheduler.days[c] for c in watched] == [7, 7]  # from their TASK_FINISHED

    # On again: the chunks still waiting report their next paced day.
    assert scheduler.set_progress(driver, True) == 2
    job.wait(lambda s: [m["progress"] for m in acks(s, messages.SET)].count(True) == 2, "acks")
    for chunk in others:
        gates.open_days(chunk, 1)
    job.wait(lambda s: all(s.days.get(c) == 1 for c in others), "a day of the other chunks")
    late = messages_in(scheduler, messages.PROGRESS)[len(progress) :]
    assert sorted((m["week"], m["days"]) for m in late) == [(c, 1) for c in others]

    gates.open_all()
    scheduler = job.result()
    assert scheduler.result() == REFERENCE
    assert len(hellos(scheduler)) == 2  # the same two executors all along
    assert climbs_to_the_end(scheduler.progress)


# -- 3. A killed executor -----------------------------------------------------------------------


def test_a_killed_executor_fails_its_tasks_which_run_again_on_a_new_one(runner: Runner) -> None:
    cluster = runner.cluster(agents=1)  # one agent: the retries need a new executor there
    tap = runner.wiretap(cluster)
    gates = runner.gates()
    job = runner.start(cluster.master, settings(executor_python=gates.python))
    job.wait(lambda s: running(s) == set(FIRST_ATTEMPTS) and hellos(s), "4 chunks on 1 executor")
    scheduler = job.scheduler
    ((agent, first_pid),) = hellos(scheduler)
    framework_id = scheduler.framework_id
    assert framework_id is not None

    cluster.kill_executor(framework_id, EXECUTOR_ID)  # SIGKILL while it holds all four
    job.wait(
        lambda s: running(s) == {*FIRST_ATTEMPTS, *SECOND_ATTEMPTS} and len(hellos(s)) == 2,
        "the chunks to run again on a new executor",
    )
    assert not alive(first_pid)
    gates.open_all()
    scheduler = job.result()

    assert scheduler.result() == REFERENCE
    failed = statuses(scheduler, "TASK_FAILED")
    assert sorted(s["task_id"]["value"] for s in failed) == FIRST_ATTEMPTS
    for status in failed:
        assert status["reason"] == "REASON_EXECUTOR_TERMINATED"
        assert status["message"] == "Executor terminated"
        assert status["source"] == "SOURCE_AGENT"
    lost = only(scheduler.timeline.executors_lost)
    assert (lost["executor"], lost["agent"], lost["status"]) == (EXECUTOR_ID, agent, KILLED)
    assert lost["how"] == "signal SIGKILL (wait status 9)"

    # Attempt 2 of every chunk ran on the new executor, which said hello with a new PID.
    (again, second_pid) = hellos(scheduler)[1]
    assert again == agent
    assert second_pid != first_pid
    ran_on = {s["task_id"]["value"]: executor_pid(s) for s in statuses(scheduler, "TASK_RUNNING")}
    assert ran_on == {
        **dict.fromkeys(FIRST_ATTEMPTS, first_pid),
        **dict.fromkeys(SECOND_ATTEMPTS, second_pid),
    }
    finished = statuses(scheduler, "TASK_FINISHED")
    assert sorted(s["task_id"]["value"] for s in finished) == SECOND_ATTEMPTS
    assert {executor_pid(s) for s in finished} == {second_pid}
    assert scheduler.attempts == dict.fromkeys(CHUNKS, 2)
    assert sorted(tap.launched(framework_id)) == sorted(FIRST_ATTEMPTS + SECOND_ATTEMPTS)
    # The scheduler saw from the offers that the agent had no executor of ours any more: the
    # first offer used after the kill starts one (the retries may span more than one offer).
    starts = [o["starts_executor"] for o in scheduler.timeline.offers if o["tasks"]]
    assert starts[:2] == [True, True]
    assert not any(starts[2:])
    assert climbs_to_the_end(scheduler.progress)


# -- 4. Duplicate status updates ----------------------------------------------------------------


def test_duplicate_task_finished_updates_change_nothing(runner: Runner) -> None:
    # The master drops the first acknowledgement of each TASK_FINISHED, so the agent sends the
    # update again after 0.1 s: the scheduler gets the very same update twice (or more, if
    # its second acknowledgement is slower than the agent's next retry).
    cluster = runner.cluster(agents=1, status_update_retry=0.1)
    tap = runner.wiretap(cluster)
    dropper = runner.ack_dropper(cluster)
    gates = runner.gates()
    job = runner.start(cluster.master, settings(executor_python=gates.python))
    job.wait(lambda s: running(s) == set(FIRST_ATTEMPTS), "four chunks running")

    def finished(scheduler: JobScheduler, task: str) -> list[dict]:
        updates = scheduler.timeline.updates
        return [u for u in updates if u["task"] == task and u["state"] == "TASK_FINISHED"]

    # Three chunks finish; the last one waits, so the job is still running when their
    # duplicates arrive.
    for chunk in CHUNKS[:3]:
        gates.open(chunk)
    job.wait(
        lambda s: all(len(finished(s, task)) >= 2 for task in FIRST_ATTEMPTS[:3]),
        "each of the three TASK_FINISHED twice",
    )
    scheduler = job.scheduler
    with scheduler.lock:
        assert sorted(scheduler.results) == CHUNKS[:3]
        assert scheduler.days_done == 3 * bikeshare.WEEKDAYS
        assert scheduler.progress[-1] == (3 * bikeshare.WEEKDAYS, DAYS)
        assert list(scheduler.running) == FIRST_ATTEMPTS[3:]
        assert not scheduler.pending
        assert not scheduler.finished.is_set()
    gates.open(CHUNKS[3])
    scheduler = job.result()

    assert sorted(dropper.dropped[:3]) == FIRST_ATTEMPTS[:3]
    for chunk, task in zip(CHUNKS[:3], FIRST_ATTEMPTS[:3], strict=True):
        # Every copy after the first was recognised as a task no longer running.
        copies = [u["chunk"] for u in finished(scheduler, task)]
        assert copies == [chunk] + [None] * (len(copies) - 1)
        same_task = statuses(scheduler, "TASK_FINISHED")
        first, *again = [s for s in same_task if s["task_id"]["value"] == task]
        assert again == [first] * len(again)  # the same update, uuid and result included
    assert scheduler.failure is None
    assert scheduler.result() == REFERENCE
    assert scheduler.results == {chunk: bikeshare.count_chunk(chunk, SMALL) for chunk in CHUNKS}
    assert scheduler.days == dict.fromkeys(CHUNKS, bikeshare.WEEKDAYS)
    assert scheduler.days_done == DAYS
    assert climbs_to_the_end(scheduler.progress)
    assert scheduler.attempts == dict.fromkeys(CHUNKS, 1)
    framework_id = scheduler.framework_id
    assert framework_id is not None
    assert sorted(tap.launched(framework_id)) == FIRST_ATTEMPTS
    assert tap.calls(framework_id, "REVIVE") == []


# -- 5. No executor outlives the job ------------------------------------------------------------


def test_no_executor_is_left_after_the_job_finishes(runner: Runner) -> None:
    cluster = runner.cluster(resources=TWO_TASKS_EACH)
    tap, exits = runner.wiretap(cluster), runner.executor_exits()
    scheduler = runner.run(cluster.master, settings())
    assert scheduler.result() == REFERENCE
    assert_no_executor_left(cluster, tap, exits, scheduler, executors=2)


def test_no_executor_is_left_after_the_job_fails(runner: Runner) -> None:
    cluster = runner.cluster(agents=1)  # every chunk on one executor, launched at once
    tap, exits = runner.wiretap(cluster), runner.executor_exits()
    gates = runner.gates()  # the chunks that do not fail are held: running at the teardown
    job = runner.start(
        cluster.master, settings(executor_python=gates.python, fail_chunk=1, max_attempts=1)
    )
    with pytest.raises(JobError, match=r"^chunk 1 failed 1 time; .*TASK_FAILED: RuntimeError"):
        job.result()
    scheduler = job.scheduler
    assert scheduler.results == {}
    assert scheduler.framework_id is not None
    # The other three were still held when the agent told the executor to shut down.
    wait_until(
        lambda: (
            "shutting down: stopping 3 running tasks"
            in executor_logs(cluster, scheduler.framework_id)
        ),
        what="the executor to stop its three chunks",
    )
    assert_no_executor_left(cluster, tap, exits, scheduler, executors=1)


def test_a_cancel_stops_the_chunks_and_leaves_no_executor(runner: Runner) -> None:
    cluster = runner.cluster(resources=TWO_TASKS_EACH)
    tap, exits = runner.wiretap(cluster), runner.executor_exits()
    gates = runner.gates()
    job = runner.start(cluster.master, settings(executor_python=gates.python))
    job.wait(lambda s: len(running(s)) == 4 and len(hellos(s)) == 2, "two executors, 4 chunks")
    gates.open(0)
    job.wait(lambda s: 0 in s.results, "chunk 0 to finish")
    scheduler = job.scheduler
    agent_of = {u["chunk"]: u["agent"] for u in scheduler.timeline.updates}

    assert scheduler.cancel(job.driver) == 2  # from this thread, as a notebook does
    assert [m["agent"] for m in messages_out(scheduler, messages.CANCEL)] == sorted(cluster.agents)
    # Each executor says how many chunks it stops: what still runs there. They stop at their
    # next day, which their gates hold until both answers are in.
    job.wait(lambda s: len(acks(s, messages.CANCEL)) == 2, "both executors to apply the cancel")
    stopped = {m["agent"]: m["tasks"] for m in acks(scheduler, messages.CANCEL)}
    assert stopped == Counter(agent_of[c] for c in CHUNKS[1:])
    gates.open_all()
    with pytest.raises(JobError, match=r"^the job was cancelled after 1 of 4 chunks$"):
        job.result()
    killed = statuses(scheduler, "TASK_KILLED")
    assert sorted(s["task_id"]["value"] for s in killed) == FIRST_ATTEMPTS[1:]
    assert {s["message"] for s in killed} == {"cancelled by the scheduler"}
    assert sorted(scheduler.results) == [0]
    assert_no_executor_left(cluster, tap, exits, scheduler, executors=2)


# -- 6. The executor's command ------------------------------------------------------------------


def test_the_executor_runs_with_the_python_of_the_settings_on_the_fetched_code(
    runner: Runner, elsewhere: Elsewhere
) -> None:
    cluster = runner.cluster(agents=1)
    tap = runner.wiretap(cluster)
    scheduler = runner.run(
        cluster.master,
        settings(executor_python=str(elsewhere.python)),
    )

    assert scheduler.result() == REFERENCE
    framework_id = scheduler.framework_id
    assert framework_id is not None
    executors = [
        task["executor"]
        for call in tap.calls(framework_id, "ACCEPT")
        for operation in call.body["accept"]["operations"]
        for task in operation["launch"]["task_infos"]
    ]
    assert len(executors) == 4
    assert all(executor == executors[0] for executor in executors)
    assert executors[0]["command"] == {
        "shell": False,
        "value": str(elsewhere.python),
        "arguments": [str(elsewhere.python), "-m", "step2_executor.executor"],
        "uris": [{"value": settings().executor_uri, "extract": True, "cache": False}],
    }
    assert in_sandboxes(cluster, elsewhere) == ["-m step2_executor.executor"]
