"""Step 1 (`step1_scheduler`) end to end on localmesos: the result, the offers it declines and
suppresses, retries, teardown, an unreachable master, two frameworks sharing a cluster, and a
lost agent.

Every job is the small one (4 chunks). Where a test needs tasks to stay running, their
interpreter waits at a gate (`Gates`) that the test opens; no test sleeps for a guessed time or
measures how long something took.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs import bikeshare
from step1_scheduler.__main__ import JobError
from step1_scheduler.scheduler import DECLINE_FILTER, JobScheduler
from tests.integration.pymesos_harness import only, wait_until
from tests.integration.step1_support import (
    Runner,
    absolute,
    runner_fixture,
    running_executors,
    settings,
    task_ids,
)
from tools import ROOT

pytestmark = pytest.mark.integration

SMALL = bikeshare.SIZES["small"]
CHUNKS = bikeshare.chunks(SMALL)
REFERENCE = bikeshare.run_sequential(SMALL)
FIRST_ATTEMPTS = [f"chunk-{chunk}-attempt-1" for chunk in CHUNKS]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Runner]:
    yield from runner_fixture(monkeypatch, tmp_path)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m step1_scheduler ARGS` from the repository, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "step1_scheduler", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def closed_port() -> int:
    """A port that nothing listens on (the kernel just handed it out and it was closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running(scheduler: JobScheduler) -> list[str]:
    return task_ids(scheduler.timeline.updates, "TASK_RUNNING")


def offers_while_running(receiver: JobScheduler, other: JobScheduler) -> list[float]:
    """The times of the offers that ``receiver`` got between ``other``'s first TASK_RUNNING
    and its last TASK_FINISHED."""
    updates = other.timeline.updates
    start = min(absolute(other, [u for u in updates if u["state"] == "TASK_RUNNING"]))
    end = max(absolute(other, [u for u in updates if u["state"] == "TASK_FINISHED"]))
    return [t for t in absolute(receiver, receiver.timeline.offers) if start < t < end]


def completed_framework(state: dict, framework_id: str) -> dict:
    assert framework_id not in [f["id"] for f in state["frameworks"]]
    return only([f for f in state["completed_frameworks"] if f["id"] == framework_id])


# -- 1. The result, in-process and from the command line ----------------------------------------


def test_run_gives_the_same_result_as_the_sequential_reference(runner: Runner) -> None:
    cluster = runner.cluster()
    scheduler = runner.run(cluster.master, settings())

    assert scheduler.failure is None
    assert scheduler.result() == REFERENCE
    assert sorted(task_ids(scheduler.timeline.updates, "TASK_FINISHED")) == FIRST_ATTEMPTS
    assert scheduler.attempts == dict.fromkeys(CHUNKS, 1)


def test_cli_prints_the_summary_and_draws_the_chart(runner: Runner, tmp_path: Path) -> None:
    cluster = runner.cluster()
    chart = tmp_path / "charts" / "step1.png"
    done = cli("--master", cluster.master, "--size", "small", "--quiet", "--chart", str(chart))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"4 chunks on (1 agent|2 agents) in \d+\.\d s", lines[0])
    assert lines[1] == bikeshare.summary(REFERENCE)
    assert lines[2] == f"chart: {chart}"
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
    assert "Traceback" not in done.stderr
    # The CLI tore its framework down before it exited.
    state = cluster.state()
    assert state["frameworks"] == []
    assert len(state["completed_frameworks"]) == 1


# -- 2. Declines carry a filter; offers are suppressed once every chunk is launched -------------


def test_declines_carry_the_filter_and_offers_stop_once_every_chunk_is_launched(
    runner: Runner,
) -> None:
    # Two agents of 2 cpus, tasks of 0.5: the first offer takes all four chunks and the other
    # agent's offer, in the same OFFERS event, is declined.
    cluster = runner.cluster()
    tap = runner.wiretap(cluster)
    gates = runner.gates()
    job = runner.start(cluster.master, settings(task_python=gates.python))
    job.wait(lambda s: len(running(s)) == 4, "all four chunks running")

    # Three chunks end, which frees resources on their agent; the last one is held while the
    # allocator runs twice with them. A scheduler that had not suppressed would get them.
    for chunk in CHUNKS[:-1]:
        gates.open(chunk)
    job.wait(lambda s: len(s.results) == 3, "three chunks done")
    mark = tap.mark()
    wait_until(lambda: tap.passes(mark) >= 2, what="two allocation passes")
    gates.open(CHUNKS[-1])
    scheduler = job.result()
    assert scheduler.result() == REFERENCE
    framework_id = scheduler.framework_id
    assert framework_id is not None

    declines = tap.calls(framework_id, "DECLINE")
    assert declines, "the offer that held nothing was not declined"
    assert [d.body["decline"]["filters"] for d in declines] == [DECLINE_FILTER] * len(declines)
    accepts = tap.calls(framework_id, "ACCEPT")
    assert [a.body["accept"]["filters"] for a in accepts] == [DECLINE_FILTER] * len(accepts)
    assert sorted(tap.launched(framework_id)) == FIRST_ATTEMPTS

    suppress = only(tap.calls(framework_id, "SUPPRESS"))
    assert suppress.seq > accepts[-1].seq
    assert tap.calls(framework_id, "REVIVE") == []
    offers = tap.events(framework_id, "OFFERS")
    assert [e.seq for e in offers if e.seq > suppress.seq] == []
    assert tap.offers_while_suppressed(framework_id) == []
    # What the master sent is what the scheduler saw.
    assert len(scheduler.timeline.offers) == sum(len(e.body["offers"]["offers"]) for e in offers)


# -- 3. Retries ---------------------------------------------------------------------------------


def test_a_failing_chunk_is_retried_then_reported_with_its_stderr(runner: Runner) -> None:
    cluster = runner.cluster()
    tap = runner.wiretap(cluster)
    job = runner.start(cluster.master, settings(fail_chunk=1, max_attempts=3))
    with pytest.raises(JobError) as raised:
        job.result()

    message = str(raised.value)
    assert message.startswith("chunk 1 failed 3 times; the last attempt, chunk-1-attempt-3 ")
    assert "TASK_FAILED" in message
    assert message.endswith("its stderr ends with:\nchunk 1: failing on purpose (--fail)")

    scheduler = job.scheduler
    framework_id = scheduler.framework_id
    assert framework_id is not None
    attempts = [f"chunk-1-attempt-{n}" for n in (1, 2, 3)]
    assert [t for t in tap.launched(framework_id) if t.startswith("chunk-1-")] == attempts
    assert task_ids(scheduler.timeline.updates, "TASK_FAILED") == attempts
    # Each retry needs offers again: REVIVE after the SUPPRESS that followed each launch.
    calls = [c.type for c in tap.calls(framework_id, "ACCEPT", "SUPPRESS", "REVIVE")]
    assert calls == ["ACCEPT", "SUPPRESS", "REVIVE"] * 2 + ["ACCEPT", "SUPPRESS"]
    assert tap.offers_while_suppressed(framework_id) == []
    assert tap.calls(framework_id)[-1].type == "TEARDOWN"


def test_with_max_attempts_1_a_failing_chunk_is_not_retried(runner: Runner) -> None:
    cluster = runner.cluster()
    tap = runner.wiretap(cluster)
    job = runner.start(cluster.master, settings(fail_chunk=2, max_attempts=1))
    with pytest.raises(JobError, match=r"^chunk 2 failed 1 time"):
        job.result()

    framework_id = job.scheduler.framework_id
    assert framework_id is not None
    assert [t for t in tap.launched(framework_id) if t.startswith("chunk-2-")] == [
        "chunk-2-attempt-1"
    ]
    assert tap.calls(framework_id, "REVIVE") == []


def test_cli_reports_a_failing_chunk_and_exits_1(runner: Runner) -> None:
    cluster = runner.cluster()
    done = cli(
        "--master", cluster.master, "--size", "small", "--quiet", "--fail-chunk", "3",
        "--max-attempts", "2",
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert only(errors).startswith("error: chunk 3 failed 2 times; ")
    assert done.stderr.rstrip().endswith("chunk 3: failing on purpose (--fail)")
    assert "Traceback" not in done.stderr


# -- 4. Teardown --------------------------------------------------------------------------------


def test_run_tears_the_framework_down_when_it_finishes(runner: Runner) -> None:
    cluster = runner.cluster()
    tap = runner.wiretap(cluster)
    scheduler = runner.run(cluster.master, settings())
    framework_id = scheduler.framework_id
    assert framework_id is not None

    assert tap.calls(framework_id)[-1].type == "TEARDOWN"
    framework = completed_framework(cluster.state(), framework_id)
    assert framework["tasks"] == []
    finished = [(t["id"], t["state"]) for t in framework["completed_tasks"]]
    assert sorted(finished) == [(task, "TASK_FINISHED") for task in FIRST_ATTEMPTS]
    assert wait_until(lambda: running_executors(cluster) == [], what="no executors") is True


def test_teardown_after_a_failure_kills_the_chunks_still_running(runner: Runner) -> None:
    cluster = runner.cluster()
    tap = runner.wiretap(cluster)
    gates = runner.gates()
    gates.open(0)  # chunk 0 fails at once; the others are held, running
    job = runner.start(
        cluster.master, settings(task_python=gates.python, fail_chunk=0, max_attempts=1)
    )
    with pytest.raises(JobError, match=r"^chunk 0 failed 1 time"):
        job.result()
    framework_id = job.scheduler.framework_id
    assert framework_id is not None

    assert tap.calls(framework_id)[-1].type == "TEARDOWN"
    wait_until(lambda: running_executors(cluster) == [], what="every executor to end")
    framework = completed_framework(cluster.state(), framework_id)
    assert framework["tasks"] == []
    states = {t["id"]: t["state"] for t in framework["completed_tasks"]}
    assert states == {
        "chunk-0-attempt-1": "TASK_FAILED",
        **dict.fromkeys(FIRST_ATTEMPTS[1:], "TASK_KILLED"),
    }


# -- 5. An unreachable master -------------------------------------------------------------------


def test_run_against_a_closed_port_names_the_master(runner: Runner) -> None:
    master = f"127.0.0.1:{closed_port()}"
    with pytest.raises(JobError, match=re.escape(f"at {master} within 1 s")):
        runner.run(master, settings(), connect_timeout=1.0)


@pytest.mark.parametrize(
    ("master", "message"),
    [
        # pymesos retries the master forever; step 1 gives up after --connect-timeout.
        ("127.0.0.1:{port}", "could not register with a Mesos master at {master} "),
        # kazoo gives up inside driver.start() after its own timeout (about 15 s), whatever
        # --connect-timeout says; what matters is one clear line, not kazoo's retries.
        ("zk://127.0.0.1:{port}/mesos", "could not find the Mesos master through {master}: "),
    ],
    ids=["master", "zookeeper"],
)
def test_cli_with_nothing_to_reach_prints_one_line_and_exits_1(master: str, message: str) -> None:
    master = master.format(port=closed_port())
    done = cli("--master", master, "--size", "small", "--quiet", "--connect-timeout", "1")

    assert done.returncode == 1
    assert done.stdout == ""
    line = only(done.stderr.splitlines())
    assert line.startswith("error: " + message.format(master=master))


# -- 6. Two frameworks on one cluster -----------------------------------------------------------


def test_two_frameworks_each_get_offers_while_the_other_runs(runner: Runner) -> None:
    # Two agents with room for one task each, so the frameworks take turns; the allocator's
    # DRF decides whose turn it is. Chunks wait at gates, so the test decides when an agent
    # frees up, and the interleaving is the same on every run.
    cluster = runner.cluster(agents=2, resources="cpus:1;mem:128")
    first_gates, second_gates = runner.gates("first"), runner.gates("second")
    one_task_per_agent = {"task_cpus": 1.0, "task_mem": 128.0}
    first = runner.start(
        cluster.master, settings(task_python=first_gates.python, **one_task_per_agent)
    )
    # Alone, the first framework takes both agents: chunks 0 and 1 run, 2 and 3 wait.
    first.wait(lambda s: sorted(running(s)) == FIRST_ATTEMPTS[:2], "the first framework's tasks")
    second = runner.start(
        cluster.master, settings(task_python=second_gates.python, **one_task_per_agent)
    )
    second.wait(lambda s: s.registered_event.is_set(), "the second framework to register")

    # Chunk 0 of the first ends: the second (share 0) goes before the first (share 1/2).
    first_gates.open(0)
    second.wait(lambda s: running(s) == FIRST_ATTEMPTS[:1], "the second framework's chunk 0")
    # Chunk 1 of the first ends: now the first (share 0) goes before the second (1/2).
    first_gates.open(1)
    first.wait(lambda s: "chunk-2-attempt-1" in running(s), "the first framework's chunk 2")
    first_gates.open_all()
    second_gates.open_all()
    one, two = first.result(), second.result()

    assert one.framework_id != two.framework_id
    assert one.result() == REFERENCE
    assert two.result() == REFERENCE
    assert offers_while_running(two, one), "the second got no offer while the first ran"
    assert offers_while_running(one, two), "the first got no offer while the second ran"
    state = cluster.state()
    for scheduler in (one, two):
        assert scheduler.framework_id is not None
        completed_framework(state, scheduler.framework_id)


# -- 7. A lost agent ----------------------------------------------------------------------------


def test_tasks_of_a_lost_agent_come_back_as_task_lost_and_are_retried(runner: Runner) -> None:
    cluster = runner.cluster(agents=2)  # 2 cpus each, tasks of 1 cpu: two chunks per agent
    gates = runner.gates()
    job = runner.start(cluster.master, settings(task_python=gates.python, task_cpus=1.0))
    job.wait(lambda s: len(running(s)) == 4, "all four chunks running")
    on_agent = {u["task"]: u["agent"] for u in job.scheduler.timeline.updates}
    lost_agent = on_agent["chunk-0-attempt-1"]
    lost = sorted(task for task, agent in on_agent.items() if agent == lost_agent)
    assert len(lost) == 2

    # The machine dies with its tasks. The master notices when its health checks time out.
    cluster.kill_host(lost_agent)
    gates.open_all()
    scheduler = job.result()

    assert scheduler.result() == REFERENCE
    updates = scheduler.timeline.updates
    assert sorted(task_ids(updates, "TASK_LOST")) == lost
    lost_chunks = sorted(int(task.split("-")[1]) for task in lost)
    retried = [f"chunk-{chunk}-attempt-2" for chunk in lost_chunks]
    finished = task_ids(updates, "TASK_FINISHED")
    assert sorted(finished) == sorted(retried + [t for t in FIRST_ATTEMPTS if t not in lost])
    assert {u["agent"] for u in updates if u["state"] == "TASK_FINISHED"} == set(cluster.agents)
