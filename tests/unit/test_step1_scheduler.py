"""Step 1's scheduler (`step1_scheduler`) without a cluster: its callbacks are called directly
with hand-made offers and status updates, and a fake driver records what it asks of Mesos.
Also its command line's validation and error reporting.

What the workshop asks attendees to write (sizing tasks from an offer, declining with a filter,
suppressing; following finished, failed and repeated updates) is defined once, as the checks of
taller/checks1.py; tests/integration/test_taller.py runs them against this package."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

import step1_scheduler.__main__ as step1_main
from jobs import bikeshare
from step1_scheduler import sandbox
from step1_scheduler.scheduler import DECLINE_FILTER, JobScheduler, Settings

SMALL = bikeshare.SIZES["small"]


class FakeDriver:
    """Records the driver calls that the scheduler makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def launchTasks(self, offer_ids: Any, tasks: list[dict], filters: Any = None) -> None:
        self.calls.append(("launchTasks", {"offer": offer_ids, "tasks": tasks, "filters": filters}))

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("declineOffer", {"offer": offer_ids, "filters": filters}))

    def suppressOffers(self) -> None:
        self.calls.append(("suppressOffers", {}))

    def reviveOffers(self) -> None:
        self.calls.append(("reviveOffers", {}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def launched(self) -> list[str]:
        return [
            task["task_id"]["value"]
            for name, call in self.calls
            if name == "launchTasks"
            for task in call["tasks"]
        ]


_offers = iter(range(1, 1_000_000))


def offer(cpus: float, mem: float, agent: str = "S0") -> dict:
    """An offer as pymesos hands it to the scheduler (v1 JSON)."""
    return {
        "id": {"value": f"O{next(_offers)}"},
        "framework_id": {"value": "F0"},
        "agent_id": {"value": agent},
        "hostname": f"{agent.lower()}.example",
        "url": {
            "scheme": "http",
            "address": {"hostname": f"{agent.lower()}.example", "ip": "10.0.0.1", "port": 5051},
            "path": "/slave(1)",
        },
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*"},
        ],
    }


def update(task_id: str, state: str, agent: str = "S0", **fields: Any) -> dict:
    return {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": agent}, **fields}


def chunk_of(task_id: str) -> int:
    return int(task_id.split("-")[1])


class FakeSandbox:
    """Stands in for `sandbox.read_task_output`: a chunk's JSON on stdout, `stderr` on stderr."""

    def __init__(self, stderr: str = "") -> None:
        self.stderr = stderr
        self.reads: list[tuple[str, str, str, str]] = []
        self.credentials: list[sandbox.Credential | None] = []

    def __call__(
        self,
        agent: str,
        framework_id: str,
        task_id: str,
        name: str = "stdout",
        credential: sandbox.Credential | None = None,
    ) -> str:
        self.reads.append((agent, framework_id, task_id, name))
        self.credentials.append(credential)
        if name == "stderr":
            return self.stderr
        return json.dumps(bikeshare.count_chunk(chunk_of(task_id), SMALL))


@pytest.fixture
def fake_sandbox(monkeypatch: pytest.MonkeyPatch) -> FakeSandbox:
    fake = FakeSandbox()
    monkeypatch.setattr(sandbox, "read_task_output", fake)
    return fake


def scheduler(size: str = "small", **settings: Any) -> tuple[JobScheduler, list[int]]:
    """A registered scheduler, and the list that its progress callback fills."""
    progress: list[int] = []
    job = JobScheduler(
        Settings(size=size, **settings), on_progress=lambda done, total: progress.append(done)
    )
    job.registered(FakeDriver(), {"value": "F0"}, {"hostname": "master"})
    return job, progress


# -- offers ---------------------------------------------------------------------------------------


def test_a_task_runs_its_chunk_with_the_chosen_interpreter_and_pythonpath() -> None:
    job, _ = scheduler(
        task_cpus=0.25, task_mem=64.0, task_python="/opt/py", task_pythonpath="/taller"
    )
    driver = FakeDriver()
    made = offer(0.5, 4096.0, agent="S3")
    job.resourceOffers(driver, [made])

    tasks = driver.calls[0][1]["tasks"]
    assert tasks[1] == {
        "task_id": {"value": "chunk-1-attempt-1"},
        "agent_id": {"value": "S3"},
        "name": "week 2 (attempt 1)",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}},
        ],
        "command": {
            "shell": False,
            "value": "/opt/py",
            "arguments": ["/opt/py", "-m", "jobs.bikeshare", "chunk", "1", "--size", "small"],
            "environment": {"variables": [{"name": "PYTHONPATH", "value": "/taller"}]},
        },
    }
    # The scheduler reads each task's output from the agent the offer came from.
    assert job.running["chunk-1-attempt-1"].agent == "http://s3.example:5051"
    assert job.running["chunk-1-attempt-1"].agent_id == "S3"


def test_only_the_chosen_chunk_is_made_to_fail() -> None:
    job, _ = scheduler(fail_chunk=2)
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(4.0, 4096.0)])
    arguments = {
        t["task_id"]["value"]: t["command"]["arguments"] for t in driver.calls[0][1]["tasks"]
    }
    assert [task for task, args in arguments.items() if "--fail" in args] == ["chunk-2-attempt-1"]
    assert arguments["chunk-2-attempt-1"][-1] == "--fail"


def test_an_offer_too_small_for_a_task_is_declined_and_the_warning_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job, _ = scheduler(task_cpus=1.0, task_mem=256.0)
    driver = FakeDriver()
    with caplog.at_level(logging.WARNING, logger="step1_scheduler"):
        job.resourceOffers(driver, [offer(0.5, 4096.0, "S0"), offer(4.0, 128.0, "S1")])
        job.resourceOffers(driver, [offer(0.5, 4096.0, "S0")])

    assert driver.names() == ["declineOffer"] * 3
    assert [c["filters"] for _, c in driver.calls] == [DECLINE_FILTER] * 3
    (record,) = caplog.records
    assert record.getMessage() == (
        "declined an offer of cpus 0.5, mem 4096 from agent S0: one task needs cpus 1, "
        "mem 256; waiting for a larger offer"
    )
    assert not job.suppressed
    assert list(job.pending) == bikeshare.chunks(SMALL)


def test_no_warning_for_a_small_offer_while_tasks_run(caplog: pytest.LogCaptureFixture) -> None:
    job, _ = scheduler(task_cpus=1.0)
    driver = FakeDriver()
    with caplog.at_level(logging.WARNING, logger="step1_scheduler"):
        job.resourceOffers(driver, [offer(1.0, 4096.0, "S0"), offer(0.5, 4096.0, "S1")])
    assert driver.names() == ["launchTasks", "declineOffer"]
    assert caplog.records == []


# -- status updates -------------------------------------------------------------------------------


def launch_everything(job: JobScheduler) -> FakeDriver:
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(8.0, 8192.0)])
    assert job.suppressed
    return driver


def test_a_finished_task_is_read_from_the_sandbox_on_its_agent(fake_sandbox: FakeSandbox) -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-2-attempt-1", "TASK_FINISHED"))
    assert fake_sandbox.reads == [("http://s0.example:5051", "F0", "chunk-2-attempt-1", "stdout")]
    assert "chunk-2-attempt-1" not in job.running
    assert fake_sandbox.credentials == [None]


def test_in_a_room_the_sandbox_reads_carry_the_credential(fake_sandbox: FakeSandbox) -> None:
    ana = sandbox.Credential("ana", "s3cret")
    job, _ = scheduler(credential=ana, max_attempts=1)
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-2-attempt-1", "TASK_FINISHED"))
    job.statusUpdate(driver, update("chunk-3-attempt-1", "TASK_FAILED"))  # its stderr is read
    assert [read[3] for read in fake_sandbox.reads] == ["stdout", "stderr"]
    assert fake_sandbox.credentials == [ana, ana]


def test_two_failures_before_an_offer_revive_once(fake_sandbox: FakeSandbox) -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-1-attempt-1", "TASK_LOST"))
    job.statusUpdate(driver, update("chunk-3-attempt-1", "TASK_LOST"))
    assert list(job.pending) == [1, 3]
    assert driver.names().count("reviveOffers") == 1


def test_after_max_attempts_the_job_fails_with_the_stderr_tail(
    fake_sandbox: FakeSandbox,
) -> None:
    fake_sandbox.stderr = "".join(f"line {n}\n" for n in range(1, 9))
    job, _ = scheduler(max_attempts=2)
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-2-attempt-1", "TASK_FAILED", message="exit 1"))
    job.resourceOffers(driver, [offer(1.0, 4096.0, "S1")])
    job.statusUpdate(
        driver, update("chunk-2-attempt-2", "TASK_FAILED", agent="S1", message="exit 1")
    )

    assert job.finished.is_set()
    assert job.failure == (
        "chunk 2 failed 2 times; the last attempt, chunk-2-attempt-2 on agent S1, ended with "
        "TASK_FAILED: exit 1\nits stderr ends with:\nline 4\nline 5\nline 6\nline 7\nline 8"
    )
    assert fake_sandbox.reads[-1] == ("http://s1.example:5051", "F0", "chunk-2-attempt-2", "stderr")
    assert driver.names().count("reviveOffers") == 1  # after the first failure only


def test_the_stderr_tail_leaves_out_the_lines_of_mesos_own_log() -> None:
    # The fetcher and the command executor log into the task's stderr (glog lines).
    stderr = (
        "I1207 13:31:36.525881 13459 executor.cpp:722] Starting task chunk-2-attempt-2\n"
        "I1207 13:31:36.565059   459 executor.cpp:740] Forked command at 13465\n"
        "Traceback (most recent call last):\n"
        "RuntimeError: chunk 2: failing on purpose\n"
        "I1207 13:31:36.622807 13459 executor.cpp:1041] Command exited with status 1 (pid: 1)\n"
    )
    assert sandbox.tail(stderr) == (
        "Traceback (most recent call last):\nRuntimeError: chunk 2: failing on purpose"
    )
    assert sandbox.tail(stderr, lines=1) == "RuntimeError: chunk 2: failing on purpose"


def test_with_max_attempts_1_there_is_no_retry(fake_sandbox: FakeSandbox) -> None:
    job, _ = scheduler(max_attempts=1)
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-0-attempt-1", "TASK_FAILED", message="exit 1"))
    assert job.finished.is_set()
    assert job.failure is not None
    assert job.failure.startswith("chunk 0 failed 1 time")
    assert list(job.pending) == []
    assert "reviveOffers" not in driver.names()


def test_a_failure_without_stderr_or_message_is_still_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> str:
        raise sandbox.SandboxError("GET http://s0.example:5051/state failed")

    monkeypatch.setattr(sandbox, "read_task_output", unreachable)
    job, _ = scheduler(max_attempts=1)
    driver = launch_everything(job)
    job.statusUpdate(
        driver, update("chunk-0-attempt-1", "TASK_LOST", reason="REASON_AGENT_REMOVED")
    )
    assert job.failure is not None
    assert job.failure.startswith("chunk 0 failed 1 time")
    assert job.failure.endswith(
        "the last attempt, chunk-0-attempt-1 on agent S0, ended with "
        "TASK_LOST: REASON_AGENT_REMOVED"
    )  # no stderr to quote: the agent could not be read


@pytest.mark.parametrize("output", ["not json", sandbox.SandboxError("agent gone")])
def test_a_result_that_cannot_be_read_is_retried(
    monkeypatch: pytest.MonkeyPatch, output: str | Exception
) -> None:
    def read(*args: Any, **kwargs: Any) -> str:
        if isinstance(output, Exception):
            raise output
        return output

    monkeypatch.setattr(sandbox, "read_task_output", read)
    job, progress = scheduler()
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-3-attempt-1", "TASK_FINISHED"))
    assert progress == []
    assert 3 not in job.results
    assert list(job.pending) == [3]
    assert driver.names()[-1] == "reviveOffers"


def test_running_and_starting_updates_change_nothing() -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    for state in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
        job.statusUpdate(driver, update("chunk-0-attempt-1", state))
    assert "chunk-0-attempt-1" in job.running
    assert driver.names() == ["launchTasks", "suppressOffers"]
    assert [u["state"] for u in job.timeline.updates] == [
        "TASK_STAGING",
        "TASK_STARTING",
        "TASK_RUNNING",
    ]


def test_an_error_from_the_master_ends_the_job() -> None:
    job, _ = scheduler()
    job.error(FakeDriver(), "Framework has been removed")
    assert job.finished.is_set()
    assert job.failure == "the master reported an error: Framework has been removed"


# -- the command line -----------------------------------------------------------------------------


def test_framework_info_asks_for_no_failover() -> None:
    info = step1_main.framework_info()
    assert info["failover_timeout"] == 0.0
    assert info["name"] == "step1: bike-share trips"
    assert info["user"]


@pytest.mark.parametrize(
    "master", ["127.0.0.1:5050", "mesos-master:5050", "zk://127.0.0.1:2181/mesos"]
)
def test_the_command_line_takes_a_master_and_builds_the_settings(master: str) -> None:
    args, settings = step1_main.parse_args(
        ["--master", master, "--size", "small", "--task-cpus", "0.25", "--task-mem", "64",
         "--max-attempts", "1", "--fail-chunk", "3", "--task-python", "python3",
         "--task-pythonpath", "/taller"]
    )  # fmt: skip
    assert args.master == master
    assert settings == Settings(
        size="small",
        task_cpus=0.25,
        task_mem=64.0,
        max_attempts=1,
        task_python="python3",
        task_pythonpath="/taller",
        fail_chunk=3,
    )


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["--master", "http://x:5"], "--master"),
        (["--master", "localhost"], "--master"),
        (["--master", "zk://127.0.0.1:2181"], "--master"),
        (["--task-cpus", "0"], "--task-cpus"),
        (["--task-cpus", "-1"], "--task-cpus"),
        (["--task-cpus", "nan"], "--task-cpus"),
        (["--task-cpus", "lots"], "--task-cpus"),
        (["--task-mem", "0"], "--task-mem"),
        (["--task-mem", "NaN"], "--task-mem"),
        (["--connect-timeout", "0"], "--connect-timeout"),
        (["--max-attempts", "0"], "--max-attempts"),
        (["--fail-chunk", "4", "--size", "small"], "--fail-chunk"),
        (["--fail-chunk", "52"], "--fail-chunk"),
        (["--fail-chunk", "-1"], "--fail-chunk"),
        (["--size", "huge"], "--size"),
    ],
)
def test_a_bad_option_exits_2_naming_it(
    arguments: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--master" not in arguments:
        arguments = ["--master", "127.0.0.1:5050", *arguments]
    with pytest.raises(SystemExit) as exited:
        step1_main.main(arguments)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("python -m step1_scheduler: error: ")
    assert option in last


def test_main_prints_a_job_error_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_run(*args: Any, **kwargs: Any) -> JobScheduler:
        raise step1_main.JobError("could not register with a Mesos master at 127.0.0.1:1")

    monkeypatch.setattr(step1_main, "run", failing_run)
    assert step1_main.main(["--master", "127.0.0.1:1", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: could not register with a Mesos master at 127.0.0.1:1\n"


def test_main_prints_the_summary_and_draws_the_chart(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job, _ = scheduler()
    job.results = {chunk: bikeshare.count_chunk(chunk, SMALL) for chunk in range(4)}
    job.timeline.updates = [
        {"time": 0.1, "task": f"chunk-{c}-attempt-1", "chunk": c, "agent": f"S{c % 2}",
         "state": "TASK_FINISHED"}
        for c in range(4)
    ]  # fmt: skip
    seen: dict[str, Any] = {}

    def fake_run(master: str, settings: Settings, **kwargs: Any) -> JobScheduler:
        seen.update(master=master, settings=settings, **kwargs)
        return job

    monkeypatch.setattr(step1_main, "run", fake_run)
    chart = tmp_path / "step1.png"
    argv = ["--master", "m:5050", "--size", "small", "--quiet", "--chart", str(chart)]
    assert step1_main.main([*argv, "--chart-lang", "en"]) == 0

    assert seen["master"] == "m:5050"
    assert seen["progress"] is False
    assert seen["connect_timeout"] == 10.0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"4 chunks on 2 agents in \d+\.\d s", lines[0])
    assert lines[1:] == [bikeshare.summary(bikeshare.run_sequential(SMALL)), f"chart: {chart}"]
    assert chart.stat().st_size > 0
