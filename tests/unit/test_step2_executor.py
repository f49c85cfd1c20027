"""Step 2 (`step2_executor`) without a cluster.

The scheduler's callbacks are called directly with hand-made offers, status updates and
framework messages, and a fake driver records what it asks of Mesos. The executor's callbacks
are called the same way, with a fake executor driver that records its status updates and
messages while the chunks run on their threads. At the end, both are wired together in one
process to run `run()` and the command line from end to end.

What the workshop asks attendees to write (the executor's launch on a thread and the result in
TaskStatus.data; progress as a framework message, and its handling in the scheduler) is defined
once, as the checks of taller/checks2.py; tests/integration/test_taller.py runs them against
this package."""

from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import step2_executor.__main__ as step2_main
from jobs import bikeshare
from step2_executor import archive, messages
from step2_executor import executor as executor_module
from step2_executor.executor import JobExecutor
from step2_executor.scheduler import (
    DECLINE_FILTER,
    EXECUTOR_ID,
    FAILED_STATES,
    JobScheduler,
    Settings,
    describe_exit,
    executor_info,
)

SMALL = bikeshare.SIZES["small"]
DAYS = bikeshare.WEEKDAYS


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


# == the scheduler ================================================================================


class FakeDriver:
    """Records the driver calls that the scheduler makes, in order."""

    def __init__(self, unreachable: set[str] | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.unreachable = unreachable or set()  # agents whose messages fail to send

    def launchTasks(self, offer_ids: Any, tasks: list[dict], filters: Any = None) -> None:
        self.calls.append(("launchTasks", {"offer": offer_ids, "tasks": tasks, "filters": filters}))

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("declineOffer", {"offer": offer_ids, "filters": filters}))

    def suppressOffers(self) -> None:
        self.calls.append(("suppressOffers", {}))

    def reviveOffers(self) -> None:
        self.calls.append(("reviveOffers", {}))

    def sendFrameworkMessage(self, executor_id: dict, agent_id: dict, data: str) -> None:
        if agent_id["value"] in self.unreachable:
            raise RuntimeError("Failed to send request 503")
        self.calls.append(
            (
                "sendFrameworkMessage",
                {"executor": executor_id, "agent": agent_id, "message": messages.decode(data)},
            )
        )

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def tasks(self) -> list[dict]:
        return [
            task for name, call in self.calls if name == "launchTasks" for task in call["tasks"]
        ]

    def launched(self) -> list[str]:
        return [task["task_id"]["value"] for task in self.tasks()]

    def sent(self) -> list[tuple[str, str, dict]]:
        """The framework messages sent: (executor ID, agent ID, message)."""
        return [
            (call["executor"]["value"], call["agent"]["value"], call["message"])
            for name, call in self.calls
            if name == "sendFrameworkMessage"
        ]


_offers = iter(range(1, 1_000_000))


def offer(cpus: float, mem: float, agent: str = "S0", executors: list[str] = ()) -> dict:
    """An offer as pymesos hands it to the scheduler (v1 JSON). `executors` are the IDs of the
    framework's executors that already run on the agent."""
    made = {
        "id": {"value": f"O{next(_offers)}"},
        "framework_id": {"value": "F0"},
        "agent_id": {"value": agent},
        "hostname": f"{agent.lower()}.example",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*"},
        ],
    }
    if executors:
        made["executor_ids"] = [{"value": e} for e in executors]
    return made


def update(task_id: str, state: str, agent: str = "S0", **fields: Any) -> dict:
    return {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": agent}, **fields}


def chunk_of(task_id: str) -> int:
    return int(task_id.split("-")[1])


def finished(task_id: str, agent: str = "S0") -> dict:
    """A TASK_FINISHED as the executor sends it: the chunk's counts in `data`."""
    counts = bikeshare.count_chunk(chunk_of(task_id), SMALL)
    return update(task_id, "TASK_FINISHED", agent, data=messages.encode(counts))


def message(job: JobScheduler, agent: str, **fields: Any) -> None:
    """A framework message from our executor on `agent`."""
    data = messages.encode(fields)
    job.frameworkMessage(FakeDriver(), {"value": EXECUTOR_ID}, {"value": agent}, data)


def scheduler(size: str = "small", **settings: Any) -> tuple[JobScheduler, list[int]]:
    """A registered scheduler, and the list that its progress callback fills (days done)."""
    progress: list[int] = []
    job = JobScheduler(
        Settings(size=size, **settings), on_progress=lambda done, total: progress.append(done)
    )
    job.registered(FakeDriver(), {"value": "F0"}, {"hostname": "master"})
    return job, progress


# -- offers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "mem", "executor_running", "tasks"),
    [
        # Our executor runs there already: the whole offer is for tasks (0.1 cpus, 32 MB).
        (1.0, 4096.0, True, 10),
        (0.2, 4096.0, True, 2),
        (0.1, 4096.0, True, 1),
        (4.0, 160.0, True, 5),
        # It does not: the first task also starts it (0.1 cpus, 64 MB).
        (1.0, 4096.0, False, 9),
        (0.2, 4096.0, False, 1),
        (0.1, 4096.0, False, 0),
        (4.0, 160.0, False, 3),
        (4.0, 64.0, False, 0),
        (4.0, 96.0, False, 1),  # exactly the executor and one task
        # Without rounding, 0.4 - 0.1 - 0.1 - 0.1 leaves 0.0999...: one task short.
        (0.4, 4096.0, False, 3),
    ],
)
def test_an_offer_holds_the_executor_if_it_must_and_as_many_tasks_as_fit(
    cpus: float, mem: float, executor_running: bool, tasks: int
) -> None:
    job, _ = scheduler("demo")
    driver = FakeDriver()
    made = offer(cpus, mem, executors=[EXECUTOR_ID] if executor_running else [])
    job.resourceOffers(driver, [made])

    assert driver.launched() == [f"chunk-{chunk}-attempt-1" for chunk in range(tasks)]
    expected = ("launchTasks" if tasks else "declineOffer", made["id"], DECLINE_FILTER)
    ((name, call),) = driver.calls
    assert (name, call["offer"], call["filters"]) == expected
    assert list(job.pending) == list(range(tasks, 52))
    assert job.timeline.offers == [
        {"time": job.timeline.offers[0]["time"], "agent": "S0", "cpus": cpus, "mem": mem,
         "tasks": tasks, "starts_executor": tasks > 0 and not executor_running}
    ]  # fmt: skip


def test_another_executor_on_the_agent_is_not_ours() -> None:
    job, _ = scheduler("demo")
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(1.0, 4096.0, executors=["someone-elses"])])
    assert len(driver.launched()) == 9
    assert job.timeline.offers[0]["starts_executor"]


def test_two_offers_for_one_agent_in_one_event_start_one_executor() -> None:
    job, _ = scheduler("demo")
    driver = FakeDriver()
    job.resourceOffers(
        driver,
        [
            offer(0.15, 4096.0, "S0"),  # too small for the executor and a task: declined
            offer(0.3, 4096.0, "S0"),  # the executor and 2 tasks
            offer(0.3, 4096.0, "S0"),  # the executor is on its way: 3 tasks
            offer(0.3, 4096.0, "S1"),  # another agent, another executor: 2 tasks
        ],
    )
    assert driver.names() == ["declineOffer", "launchTasks", "launchTasks", "launchTasks"]
    assert [len(call["tasks"]) for name, call in driver.calls[1:]] == [2, 3, 2]
    assert [(o["agent"], o["tasks"], o["starts_executor"]) for o in job.timeline.offers] == [
        ("S0", 0, False),
        ("S0", 2, True),
        ("S0", 3, False),
        ("S1", 2, True),
    ]

    # A later event lists the executor in the agent's offers (the master knows it now).
    job.resourceOffers(driver, [offer(0.3, 4096.0, "S0", executors=[EXECUTOR_ID])])
    assert len(driver.calls[-1][1]["tasks"]) == 3


def test_the_executor_info_starts_our_executor_module() -> None:
    info = executor_info(
        Settings(executor_python="/opt/py", executor_uri="http://s:80/c.tgz", executor_mem=80.0)
    )
    assert info == {
        "executor_id": {"value": "bikeshare-executor"},
        "name": "step2: bike-share executor",
        "command": {
            "shell": False,
            "value": "/opt/py",
            "arguments": ["/opt/py", "-m", "step2_executor.executor"],
            "uris": [{"value": "http://s:80/c.tgz", "extract": True, "cache": False}],
        },
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 80.0}},
        ],
    }


def test_a_task_names_the_executor_and_carries_its_chunk_in_data() -> None:
    job, _ = scheduler(task_cpus=0.25, task_mem=64.0, executor_uri="file:///c.tgz")
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(0.7, 4096.0, agent="S3")])
    tasks = driver.tasks()
    assert len(tasks) == 2
    data = tasks[1].pop("data")
    assert tasks[1] == {
        "task_id": {"value": "chunk-1-attempt-1"},
        "agent_id": {"value": "S3"},
        "name": "week 2 (attempt 1)",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}},
        ],
        "executor": job.executor,
    }
    assert messages.decode(data) == {"week": 1, "size": "small", "fail": False, "progress": True}
    # Every task carries the very same ExecutorInfo, or Mesos would refuse it.
    assert tasks[0]["executor"] == tasks[1]["executor"] == executor_info(job.settings)
    assert job.running["chunk-1-attempt-1"].agent_id == "S3"


def test_only_the_chosen_chunk_is_made_to_fail() -> None:
    job, _ = scheduler(fail_chunk=2)
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(4.0, 4096.0)])
    failing = [
        task["task_id"]["value"] for task in driver.tasks() if messages.decode(task["data"])["fail"]
    ]
    assert failing == ["chunk-2-attempt-1"]


def test_offers_are_suppressed_once_every_chunk_is_launched() -> None:
    job, _ = scheduler()  # 4 chunks of 0.1 cpus
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(0.3, 4096.0, "S0")])
    assert driver.names() == ["launchTasks"]
    assert not job.suppressed

    job.resourceOffers(driver, [offer(0.3, 4096.0, "S1"), offer(1.0, 4096.0, "S2")])
    assert driver.names() == ["launchTasks", "launchTasks", "declineOffer", "suppressOffers"]
    assert driver.calls[2][1]["filters"] == DECLINE_FILTER
    assert job.suppressed

    # An offer that was already on its way is declined; no second SUPPRESS.
    job.resourceOffers(driver, [offer(2.0, 4096.0, "S1", executors=[EXECUTOR_ID])])
    assert driver.names()[4:] == ["declineOffer"]
    assert len(driver.launched()) == 4


def test_an_offer_too_small_for_a_task_is_declined_and_the_warning_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job, _ = scheduler(task_cpus=1.0, task_mem=256.0)
    driver = FakeDriver()
    with caplog.at_level(logging.WARNING, logger="step2_executor"):
        job.resourceOffers(driver, [offer(1.0, 4096.0, "S0"), offer(4.0, 300.0, "S1")])
        job.resourceOffers(driver, [offer(0.5, 4096.0, "S0")])

    assert driver.names() == ["declineOffer"] * 3
    assert [c["filters"] for _, c in driver.calls] == [DECLINE_FILTER] * 3
    (record,) = caplog.records
    assert record.getMessage() == (
        "declined an offer of cpus 1, mem 4096 from agent S0: one task needs cpus 1, mem 256, "
        "and the executor that it starts cpus 0.1, mem 64; waiting for a larger offer"
    )
    assert not job.suppressed
    assert list(job.pending) == bikeshare.chunks(SMALL)


# -- status updates -------------------------------------------------------------------------------


def launch_everything(job: JobScheduler) -> FakeDriver:
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(8.0, 8192.0)])
    assert job.suppressed
    return driver


def test_finished_tasks_bring_their_result_in_data() -> None:
    job, progress = scheduler()
    driver = launch_everything(job)
    for task in ["chunk-2-attempt-1", "chunk-0-attempt-1", "chunk-3-attempt-1"]:
        job.statusUpdate(driver, update(task, "TASK_RUNNING"))
        job.statusUpdate(driver, finished(task))
    assert not job.finished.is_set()
    job.statusUpdate(driver, finished("chunk-1-attempt-1"))

    assert job.finished.is_set()
    assert job.failure is None
    assert job.result() == bikeshare.run_sequential(SMALL)
    # Without progress messages, each finished chunk moves the bar by its seven days.
    assert progress == [7, 14, 21, 28]
    assert (job.days_done, job.total_days) == (28, 28)
    assert job.running == {}
    assert driver.names() == ["launchTasks", "suppressOffers"]  # nothing more was asked


def test_a_duplicate_task_finished_changes_nothing() -> None:
    job, progress = scheduler()
    driver = launch_everything(job)
    job.statusUpdate(driver, finished("chunk-0-attempt-1"))
    before = (job.result(), dict(job.attempts), list(job.pending), sorted(job.running))

    # Status updates arrive at least once: the same update again, a late failure, and a late
    # progress message for the same task.
    job.statusUpdate(driver, finished("chunk-0-attempt-1"))
    job.statusUpdate(driver, update("chunk-0-attempt-1", "TASK_FAILED", message="late"))
    message(job, "S0", type="progress", task_id="chunk-0-attempt-1", week=0, days=3)

    assert (job.result(), dict(job.attempts), list(job.pending), sorted(job.running)) == before
    assert progress == [7]
    assert driver.names() == ["launchTasks", "suppressOffers"]
    assert [u["chunk"] for u in job.timeline.updates] == [0, None, None]

    # The job still ends once, with the right result, and a duplicate after that is harmless.
    for chunk in (1, 2, 3):
        job.statusUpdate(driver, finished(f"chunk-{chunk}-attempt-1"))
    job.statusUpdate(driver, finished("chunk-3-attempt-1"))
    assert job.result() == bikeshare.run_sequential(SMALL)
    assert progress == [7, 14, 21, 28]


@pytest.mark.parametrize(
    "data",
    [
        None,  # no data at all
        "%%% not base64",
        "YQ",  # broken padding
        "bm90IGpzb24=",  # base64 of "not json"
        messages.encode({"week": 1, "trips": 5}),  # another week's result
    ],
)
def test_a_result_that_cannot_be_read_is_retried(data: str | None) -> None:
    job, progress = scheduler()
    driver = launch_everything(job)
    fields = {} if data is None else {"data": data}
    job.statusUpdate(driver, update("chunk-3-attempt-1", "TASK_FINISHED", **fields))
    assert progress == []
    assert 3 not in job.results
    assert list(job.pending) == [3]
    assert driver.names()[-1] == "reviveOffers"


@pytest.mark.parametrize("state", sorted(FAILED_STATES))
def test_a_failed_task_is_retried_and_offers_are_revived(state: str) -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-1-attempt-1", state, message="it broke"))

    assert list(job.pending) == [1]
    assert "chunk-1-attempt-1" not in job.running
    assert driver.names() == ["launchTasks", "suppressOffers", "reviveOffers"]
    assert not job.suppressed
    assert not job.finished.is_set()

    # The same update again does not retry the chunk twice.
    job.statusUpdate(driver, update("chunk-1-attempt-1", state, message="it broke"))
    assert list(job.pending) == [1]
    assert driver.names().count("reviveOffers") == 1

    # The next offer runs attempt 2 (on the executor that runs there) and suppresses again.
    job.resourceOffers(driver, [offer(0.1, 4096.0, "S1", executors=[EXECUTOR_ID])])
    assert driver.launched()[-1] == "chunk-1-attempt-2"
    assert job.running["chunk-1-attempt-2"].agent_id == "S1"
    assert driver.names()[-1] == "suppressOffers"
    assert job.suppressed


@pytest.mark.parametrize("state", sorted(FAILED_STATES))
def test_after_max_attempts_the_job_fails_with_the_last_message(state: str) -> None:
    job, _ = scheduler(max_attempts=2)
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-2-attempt-1", state, message="first"))
    job.resourceOffers(driver, [offer(1.0, 4096.0, "S1")])
    assert not job.finished.is_set()
    job.statusUpdate(driver, update("chunk-2-attempt-2", state, agent="S1", message="boom"))

    assert job.finished.is_set()
    assert job.failure == (
        "chunk 2 failed 2 times; the last attempt, chunk-2-attempt-2 on agent S1, ended with "
        f"{state}: boom"
    )
    assert driver.names().count("reviveOffers") == 1  # after the first failure only


def test_with_max_attempts_1_there_is_no_retry() -> None:
    job, _ = scheduler(max_attempts=1)
    driver = launch_everything(job)
    job.statusUpdate(
        driver, update("chunk-0-attempt-1", "TASK_LOST", reason="REASON_AGENT_REMOVED")
    )
    assert job.finished.is_set()
    assert job.failure == (
        "chunk 0 failed 1 time; the last attempt, chunk-0-attempt-1 on agent S0, ended with "
        "TASK_LOST: REASON_AGENT_REMOVED"
    )
    assert "reviveOffers" not in driver.names()


def test_an_error_from_the_master_ends_the_job() -> None:
    job, _ = scheduler()
    job.error(FakeDriver(), "Framework has been removed")
    assert job.finished.is_set()
    assert job.failure == "the master reported an error: Framework has been removed"


# -- messages from the executors ------------------------------------------------------------------


def test_a_retry_moves_the_bar_only_past_the_days_already_shown() -> None:
    job, progress = scheduler()
    driver = launch_everything(job)
    for days in (1, 2, 3):
        message(job, "S0", type="progress", task_id="chunk-0-attempt-1", week=0, days=days)
    # A retry starts its chunk again: the bar waits until it passes the days already shown.
    job.statusUpdate(driver, update("chunk-0-attempt-1", "TASK_FAILED", message="x"))
    job.resourceOffers(driver, [offer(1.0, 4096.0, executors=[EXECUTOR_ID])])
    for days in (1, 2, 3, 4):
        message(job, "S0", type="progress", task_id="chunk-0-attempt-2", week=0, days=days)
    assert progress == [1, 2, 3, 4]
    # The finished update completes the chunk even when its messages were lost.
    job.statusUpdate(driver, finished("chunk-0-attempt-2"))
    assert progress == [1, 2, 3, 4, 7]


def test_task_running_makes_the_executor_known() -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    job.statusUpdate(driver, update("chunk-0-attempt-1", "TASK_STAGING", agent="S0"))
    assert job.executors == {}
    job.statusUpdate(driver, update("chunk-0-attempt-1", "TASK_RUNNING", agent="S0"))
    assert job.executors == {"S0": EXECUTOR_ID}


def test_an_unknown_message_type_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    job, progress = scheduler()
    with caplog.at_level(logging.WARNING, logger="step2_executor"):
        message(job, "S0", type="gossip")
    assert "ignoring an unknown message from agent S0" in caplog.text
    assert progress == []
    assert [m["type"] for m in job.timeline.messages] == ["gossip"]


@pytest.mark.parametrize(
    ("status", "how"),
    [
        (256, "exit code 1 (wait status 256)"),
        (0, "exit code 0 (wait status 0)"),
        (9, "signal SIGKILL (wait status 9)"),
        (15, "signal SIGTERM (wait status 15)"),
        (None, "an unknown status (None)"),
    ],
)
def test_a_lost_executor_is_recorded_and_forgotten(
    status: int | None, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert describe_exit(status) == how
    job, _ = scheduler()
    message(job, "S0", type="hello", pid=1, agent_id="S0")
    message(job, "S1", type="hello", pid=2, agent_id="S1")
    with caplog.at_level(logging.WARNING, logger="step2_executor"):
        job.executorLost(FakeDriver(), {"value": EXECUTOR_ID}, {"value": "S1"}, status)
    assert job.executors == {"S0": EXECUTOR_ID}
    ((lost),) = job.timeline.executors_lost
    assert {k: v for k, v in lost.items() if k != "time"} == {
        "executor": EXECUTOR_ID,
        "agent": "S1",
        "status": status,
        "how": how,
    }
    assert f"executor bikeshare-executor on agent S1 exited with {how}" in caplog.text
    # Its tasks come as updates of their own: nothing else changes.
    assert not job.finished.is_set()


def test_a_lost_agent_forgets_its_executor() -> None:
    job, _ = scheduler()
    message(job, "S0", type="hello", pid=1, agent_id="S0")
    job.slaveLost(FakeDriver(), {"value": "S0"})
    assert job.executors == {}


# -- control: scheduler -> executors --------------------------------------------------------------


def test_cancel_tells_every_known_executor_and_ends_when_nothing_runs() -> None:
    job, _ = scheduler()
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(0.2, 4096.0, "S0"), offer(0.2, 4096.0, "S1")])
    assert list(job.pending) == [2, 3]
    message(job, "S0", type="hello", pid=1, agent_id="S0")
    message(job, "S1", type="hello", pid=2, agent_id="S1")
    job.statusUpdate(driver, finished("chunk-0-attempt-1"))

    assert job.cancel(driver) == 2
    assert driver.sent() == [
        (EXECUTOR_ID, "S0", {"type": "cancel"}),
        (EXECUTOR_ID, "S1", {"type": "cancel"}),
    ]
    outgoing = [(m["agent"], m["type"]) for m in job.timeline.messages if m["direction"] == "out"]
    assert outgoing == [("S0", "cancel"), ("S1", "cancel")]
    assert job.cancelled
    assert job.failure == "cancelled"
    assert list(job.pending) == []  # nothing more is launched
    assert not job.finished.is_set()  # chunk 1 still runs
    assert job.cancel(driver) == 0  # once is enough
    assert len(driver.sent()) == 2

    # Its executor stops it: the TASK_KILLED is not retried, and the job ends.
    message(job, "S1", type="ack", of="cancel", tasks=1)
    job.statusUpdate(driver, update("chunk-1-attempt-1", "TASK_KILLED", "S1", message="cancelled"))
    assert job.finished.is_set()
    assert list(job.pending) == []
    assert "reviveOffers" not in driver.names()
    assert sorted(job.results) == [0]

    # Offers that were on their way are declined, and offers are suppressed.
    job.resourceOffers(driver, [offer(1.0, 4096.0, "S2")])
    assert driver.names()[-2:] == ["declineOffer", "suppressOffers"]


def test_a_chunk_that_finishes_after_the_cancel_still_counts() -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    job.cancel(driver)  # no executor known yet: no message goes out
    assert driver.sent() == []
    for chunk in (0, 1, 2):
        job.statusUpdate(driver, finished(f"chunk-{chunk}-attempt-1"))
    assert not job.finished.is_set()
    job.statusUpdate(driver, update("chunk-3-attempt-1", "TASK_FAILED", message="x"))
    assert job.finished.is_set()
    assert sorted(job.results) == [0, 1, 2]
    assert job.failure == "cancelled"


def test_cancel_with_nothing_running_ends_the_job_at_once() -> None:
    job, _ = scheduler()
    assert job.cancel(FakeDriver()) == 0
    assert job.finished.is_set()


def test_cancel_after_the_job_is_done_changes_nothing() -> None:
    job, _ = scheduler()
    driver = launch_everything(job)
    for chunk in range(4):
        job.statusUpdate(driver, finished(f"chunk-{chunk}-attempt-1"))
    assert job.cancel(driver) == 0
    assert not job.cancelled
    assert job.failure is None


def test_set_progress_tells_every_known_executor_and_the_next_tasks() -> None:
    job, _ = scheduler()
    driver = FakeDriver()
    job.resourceOffers(driver, [offer(0.2, 4096.0, "S0")])
    message(job, "S0", type="hello", pid=1, agent_id="S0")
    message(job, "S3", type="hello", pid=2, agent_id="S3")

    assert job.set_progress(driver, False) == 2
    assert driver.sent() == [
        (EXECUTOR_ID, "S0", {"type": "set", "progress": False}),
        (EXECUTOR_ID, "S3", {"type": "set", "progress": False}),
    ]
    assert job.settings.progress is False
    job.resourceOffers(driver, [offer(1.0, 4096.0, "S1")])
    data = [messages.decode(task["data"]) for task in driver.tasks()]
    assert [(d["week"], d["progress"]) for d in data] == [
        (0, True),
        (1, False),
        (2, False),
        (3, False),
    ]
    outgoing = [m for m in job.timeline.messages if m["direction"] == "out"]
    assert [(m["agent"], m["type"], m["progress"]) for m in outgoing] == [
        ("S0", "set", False),
        ("S3", "set", False),
    ]


def test_a_message_that_cannot_be_sent_is_logged_and_the_rest_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job, _ = scheduler()
    for agent in ("S0", "S1", "S2"):
        message(job, agent, type="hello", pid=1, agent_id=agent)
    driver = FakeDriver(unreachable={"S1"})
    with caplog.at_level(logging.WARNING, logger="step2_executor"):
        assert job.set_progress(driver, True) == 2
    assert [agent for _, agent, _ in driver.sent()] == ["S0", "S2"]
    assert "could not send set to agent S1" in caplog.text
    assert [m["agent"] for m in job.timeline.messages if m["direction"] == "out"] == ["S0", "S2"]


def test_control_from_another_thread_waits_for_the_callbacks() -> None:
    job, _ = scheduler()
    driver = FakeDriver()
    done = threading.Event()

    def control() -> None:
        job.cancel(driver)
        done.set()

    with job.lock:  # as pymesos's thread does while a callback runs
        thread = threading.Thread(target=control)
        thread.start()
        assert not done.wait(0.2)
        assert not job.cancelled
    thread.join(5)
    assert done.is_set()
    assert job.cancelled


# == the executor =================================================================================


class FakeExecutorDriver:
    """Records what the executor sends its agent, from any thread. With `hold_at_day`, a task's
    thread waits after that day's progress message until the test calls `release()`."""

    def __init__(self, hold_at_day: int | None = None, broken: bool = False) -> None:
        self.lock = threading.Lock()
        self.updates: list[dict] = []
        self.messages: list[dict] = []
        self.hold_at_day = hold_at_day
        self.held = threading.Event()
        self._release = threading.Event()
        self.broken = broken  # every send fails, as when the agent is gone

    def sendStatusUpdate(self, status: dict) -> None:
        if self.broken:
            raise RuntimeError("Not connected yet")
        with self.lock:
            self.updates.append(dict(status))

    def sendFrameworkMessage(self, data: str) -> None:
        if self.broken:
            raise ConnectionRefusedError(111, "Connection refused")
        message = messages.decode(data)
        with self.lock:
            self.messages.append(message)
        if message["type"] == "progress" and message["days"] == self.hold_at_day:
            self.held.set()
            assert self._release.wait(10)

    def release(self) -> None:
        self._release.set()

    def states(self, task_id: str) -> list[str]:
        with self.lock:
            return [u["state"] for u in self.updates if u["task_id"]["value"] == task_id]

    def last(self, task_id: str) -> dict:
        with self.lock:
            return [u for u in self.updates if u["task_id"]["value"] == task_id][-1]

    def progress(self, task_id: str) -> list[int]:
        with self.lock:
            return [
                m["days"]
                for m in self.messages
                if m["type"] == "progress" and m["task_id"] == task_id
            ]

    def of_type(self, kind: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if m["type"] == kind]


TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"}


def task_info(task_id: str, **data: Any) -> dict:
    """A TaskInfo as the executor receives it; `data` goes into its `data` field."""
    return {
        "task_id": {"value": task_id},
        "agent_id": {"value": "S0"},
        "name": task_id,
        "executor": executor_info(Settings()),
        "data": messages.encode({"week": 1, "size": "small", "fail": False, **data}),
    }


def launch(job: JobExecutor, driver: FakeExecutorDriver, task_id: str, **data: Any) -> None:
    job.launchTask(driver, task_info(task_id, **data))


def ended(driver: FakeExecutorDriver, job: JobExecutor, task_id: str) -> dict:
    """Wait until the task's thread has sent its terminal update and gone; return the update."""
    wait_for(lambda: any(s in TERMINAL for s in driver.states(task_id)))
    wait_for(lambda: task_id not in job.running)
    return driver.last(task_id)


@pytest.fixture(autouse=True)
def progress_every_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small chunk takes milliseconds, far below the executor's progress throttle: the tests
    lift the throttle to see one message per day (one test puts it back)."""
    monkeypatch.setattr(executor_module, "PROGRESS_EVERY", 0.0)


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions that escape any thread (which would kill a task's thread without a word)."""
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def test_registering_says_hello_to_the_scheduler() -> None:
    job, driver = JobExecutor(), FakeExecutorDriver()
    job.registered(
        driver,
        {"executor_id": {"value": EXECUTOR_ID}},
        {"id": {"value": "F0"}},
        {"id": {"value": "S7"}, "hostname": "agent7"},
    )
    assert job.agent_id == "S7"
    ((hello),) = driver.messages
    assert hello == {"type": "hello", "pid": hello["pid"], "agent_id": "S7"}
    assert isinstance(hello["pid"], int)


def test_a_task_runs_on_its_thread_and_finishes_with_its_counts_in_data(
    thread_errors: list[BaseException],
) -> None:
    job, driver = JobExecutor(), FakeExecutorDriver()
    launch(job, driver, "chunk-1-attempt-1", week=1)
    last = ended(driver, job, "chunk-1-attempt-1")

    assert driver.states("chunk-1-attempt-1") == ["TASK_RUNNING", "TASK_FINISHED"]
    assert messages.decode(last["data"]) == bikeshare.count_chunk(1, SMALL)
    assert driver.progress("chunk-1-attempt-1") == [1, 2, 3, 4, 5, 6, 7]
    assert driver.of_type("progress")[0] == {
        "type": "progress",
        "task_id": "chunk-1-attempt-1",
        "week": 1,
        "days": 1,
    }
    assert thread_errors == []


def test_kill_task_stops_it_at_the_next_day() -> None:
    job, driver = JobExecutor(), FakeExecutorDriver(hold_at_day=2)
    launch(job, driver, "chunk-1-attempt-1")
    assert driver.held.wait(10)
    job.killTask(driver, {"value": "chunk-1-attempt-1"})
    job.killTask(driver, {"value": "no-such-task"})  # ignored
    driver.release()

    last = ended(driver, job, "chunk-1-attempt-1")
    assert driver.states("chunk-1-attempt-1") == ["TASK_RUNNING", "TASK_KILLED"]
    assert last["message"] == "killed on request"
    assert driver.progress("chunk-1-attempt-1") == [1, 2]


def test_a_cancel_message_kills_the_running_tasks_and_the_next_ones() -> None:
    job, driver = JobExecutor(), FakeExecutorDriver(hold_at_day=3)
    launch(job, driver, "chunk-1-attempt-1")
    assert driver.held.wait(10)
    job.frameworkMessage(driver, messages.encode({"type": "cancel"}))
    assert driver.of_type("ack") == [{"type": "ack", "of": "cancel", "tasks": 1}]
    driver.release()

    last = ended(driver, job, "chunk-1-attempt-1")
    assert last["state"] == "TASK_KILLED"
    assert last["message"] == "cancelled by the scheduler"
    assert driver.progress("chunk-1-attempt-1") == [1, 2, 3]

    # A task that arrives after the cancel is killed at once, without a thread.
    launch(job, driver, "chunk-2-attempt-1", week=2)
    assert driver.states("chunk-2-attempt-1") == ["TASK_KILLED"]
    assert driver.last("chunk-2-attempt-1")["message"] == "cancelled by the scheduler"
    assert job.running == {}


def test_set_progress_off_mid_run_stops_the_progress_messages() -> None:
    job, driver = JobExecutor(), FakeExecutorDriver(hold_at_day=2)
    launch(job, driver, "chunk-1-attempt-1")
    assert driver.held.wait(10)
    job.frameworkMessage(driver, messages.encode({"type": "set", "progress": False}))
    assert driver.of_type("ack") == [{"type": "ack", "of": "set", "progress": False}]
    driver.release()

    last = ended(driver, job, "chunk-1-attempt-1")
    assert driver.progress("chunk-1-attempt-1") == [1, 2]
    assert messages.decode(last["data"]) == bikeshare.count_chunk(1, SMALL)  # still all there

    # The next task carries the scheduler's setting in its data: on again.
    launch(job, driver, "chunk-2-attempt-1", week=2, progress=True)
    ended(driver, job, "chunk-2-attempt-1")
    assert driver.progress("chunk-2-attempt-1") == [1, 2, 3, 4, 5, 6, 7]


class ThrottleWatch(FakeExecutorDriver):
    """Notes, with each progress message, the moment from which the executor's throttle counts
    the next one (the task's `last_report`, set just before it sends)."""

    def __init__(self, job: JobExecutor) -> None:
        super().__init__()
        self.job = job
        self.reported: dict[str, list[float]] = {}

    def sendFrameworkMessage(self, data: str) -> None:
        message = messages.decode(data)
        if message["type"] == "progress":
            task_id = message["task_id"]
            moment = self.job.running[task_id].last_report  # on the task's own thread
            self.reported.setdefault(task_id, []).append(moment)
        super().sendFrameworkMessage(data)


def test_progress_messages_are_throttled_per_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor_module, "PROGRESS_EVERY", 0.05)
    slow_after_week_0(monkeypatch, seconds_per_day=0.03)
    job = JobExecutor()
    driver = ThrottleWatch(job)
    launch(job, driver, "fast", week=0)  # milliseconds in all: below the throttle
    launch(job, driver, "slow", week=1)  # 7 days of at least 30 ms: a message every other day
    ended(driver, job, "fast")
    ended(driver, job, "slow")
    assert driver.progress("fast") == []
    days = driver.progress("slow")
    # Days of 30 ms or more and a throttle of 50 ms: a message by day 2, 4 and 6 at the latest.
    # (On a loaded machine a day can take over 50 ms, and then the next day's message is due:
    # the throttle is in seconds, so that is what is checked, on the executor's own clock.)
    assert len(days) >= 3 and days == sorted(set(days)), days
    moments = driver.reported["slow"]
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(moments)), (days, moments)


@pytest.mark.parametrize(
    "data",
    [
        messages.encode({"type": "gossip"}),
        messages.encode({"type": "set", "progress": "yes"}),
        messages.encode({"no": "type"}),
        "%%% not base64",
    ],
)
def test_an_unknown_control_message_is_ignored(data: str, caplog: pytest.LogCaptureFixture) -> None:
    job, driver = JobExecutor(), FakeExecutorDriver()
    with caplog.at_level(logging.WARNING, logger="step2_executor.executor"):
        job.frameworkMessage(driver, data)
    assert driver.messages == []
    assert job.progress is True
    assert not job.cancelled
    assert "ignoring" in caplog.text


def test_shutdown_kills_every_running_task_and_may_come_twice() -> None:
    job, driver = JobExecutor(), FakeExecutorDriver(hold_at_day=1)
    launch(job, driver, "chunk-0-attempt-1", week=0)
    assert driver.held.wait(10)
    launch(job, driver, "chunk-1-attempt-1", week=1)
    job.shutdown(driver)
    job.shutdown(driver)  # pymesos calls it again as it closes the connection
    driver.release()
    for task_id in ("chunk-0-attempt-1", "chunk-1-attempt-1"):
        last = ended(driver, job, task_id)
        assert last["state"] == "TASK_KILLED"
        assert last["message"] == "the executor is shutting down"


def test_a_send_that_fails_on_a_tasks_thread_is_logged(
    thread_errors: list[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    job, driver = JobExecutor(), FakeExecutorDriver(broken=True)
    with caplog.at_level(logging.WARNING, logger="step2_executor.executor"):
        job.registered(driver, {"executor_id": {"value": "E"}}, {"id": {"value": "F"}},
                       {"id": {"value": "S0"}})  # fmt: skip
        launch(job, driver, "chunk-1-attempt-1")
        wait_for(lambda: job.running == {})
    assert thread_errors == []
    assert "could not send TASK_FINISHED for chunk-1-attempt-1" in caplog.text
    assert "could not send a hello message" in caplog.text


def test_the_executor_refuses_to_start_outside_an_agent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MESOS_AGENT_ENDPOINT", raising=False)
    assert executor_module.main() == 2
    assert "a Mesos agent starts this program" in capsys.readouterr().err


# == both sides in one process ====================================================================


class Loopback:
    """A scheduler driver that stands for the whole cluster: two agents, each with a real
    JobExecutor that it starts with the first task, and messages and updates delivered
    directly between the two sides."""

    def __init__(self, scheduler: JobScheduler, framework: dict, master: str, **kwargs) -> None:
        self.scheduler = scheduler
        self.framework = framework
        self.executors: dict[str, tuple[JobExecutor, AgentSide]] = {}
        self.stopped = False

    def start(self) -> None:
        def cluster() -> None:
            self.scheduler.registered(self, {"value": "F0"}, {"hostname": "master"})
            self.scheduler.resourceOffers(self, [offer(0.3, 1024.0, "S0"), offer(4, 1024, "S1")])

        threading.Thread(target=cluster).start()

    def stop(self) -> None:
        # TEARDOWN: the framework is gone, and nothing more reaches the scheduler.
        self.stopped = True
        for executor, side in self.executors.values():
            executor.shutdown(side)

    def join(self) -> None:
        pass

    def launchTasks(self, offer_id: dict, tasks: list[dict], filters: Any = None) -> None:
        for task in tasks:
            agent = task["agent_id"]["value"]
            if agent not in self.executors:
                side = AgentSide(self, agent)
                self.executors[agent] = (JobExecutor(), side)
                self.executors[agent][0].registered(
                    side, task["executor"], {"id": {"value": "F0"}}, {"id": {"value": agent}}
                )
            executor, side = self.executors[agent]
            executor.launchTask(side, task)

    def declineOffer(self, offer_id: dict, filters: Any = None) -> None:
        pass

    def suppressOffers(self) -> None:
        pass

    def reviveOffers(self) -> None:
        if self.stopped:
            return
        offers = [offer(4, 1024, a, executors=[EXECUTOR_ID]) for a in self.executors]
        threading.Thread(target=self.scheduler.resourceOffers, args=(self, offers)).start()

    def sendFrameworkMessage(self, executor_id: dict, agent_id: dict, data: str) -> None:
        executor, side = self.executors[agent_id["value"]]
        executor.frameworkMessage(side, data)


class AgentSide:
    """The executor driver of one agent in a Loopback."""

    def __init__(self, loop: Loopback, agent: str) -> None:
        self.loop, self.agent = loop, agent

    def sendStatusUpdate(self, status: dict) -> None:
        if self.loop.stopped:
            raise RuntimeError("Not connected yet")
        status = {**status, "agent_id": {"value": self.agent}}
        self.loop.scheduler.statusUpdate(self.loop, status)

    def sendFrameworkMessage(self, data: str) -> None:
        if self.loop.stopped:
            raise RuntimeError("Not connected yet")
        executor = {"value": EXECUTOR_ID}
        self.loop.scheduler.frameworkMessage(self.loop, executor, {"value": self.agent}, data)


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> list[Loopback]:
    made: list[Loopback] = []

    def driver(*args: Any, **kwargs: Any) -> Loopback:
        made.append(Loopback(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(step2_main, "MesosSchedulerDriver", driver)
    return made


def slow_after_week_0(monkeypatch: pytest.MonkeyPatch, seconds_per_day: float) -> None:
    """Week 0 runs at full speed; every other week waits between its days."""
    count_chunk = bikeshare.count_chunk

    def slow(week: int, size: bikeshare.Size, on_day: Callable[[int], None] | None = None):
        def day(days: int) -> None:
            if week:
                time.sleep(seconds_per_day)
            if on_day is not None:
                on_day(days)

        return count_chunk(week, size, on_day=day)

    monkeypatch.setattr(executor_module.bikeshare, "count_chunk", slow)


def test_run_gives_the_sequential_result_through_a_real_executor(
    loopback: list[Loopback],
) -> None:
    job = step2_main.run("m:5050", Settings(size="small"), progress=False)
    assert job.result() == bikeshare.run_sequential(SMALL)
    assert job.attempts == {0: 1, 1: 1, 2: 1, 3: 1}
    assert (job.days_done, job.total_days) == (28, 28)
    # S0 could hold the executor and 2 tasks; S1 took the other 2.
    assert [o["tasks"] for o in job.timeline.offers] == [2, 2]
    assert sorted(job.executors) == ["S0", "S1"]
    hellos = [m["agent"] for m in job.timeline.messages if m["type"] == "hello"]
    assert sorted(hellos) == ["S0", "S1"]
    assert loopback[0].stopped
    assert loopback[0].framework["name"] == "step2: bike-share trips"


def test_run_retries_a_failing_chunk_and_then_fails(loopback: list[Loopback]) -> None:
    with pytest.raises(step2_main.JobError) as error:
        step2_main.run("m:5050", Settings(size="small", fail_chunk=3), progress=False)
    assert str(error.value) == (
        "chunk 3 failed 3 times; the last attempt, chunk-3-attempt-3 on agent S0, ended with "
        "TASK_FAILED: RuntimeError: chunk 3: failing on purpose (--fail-chunk)"
    )
    job = loopback[0].scheduler
    assert job.attempts[3] == 3


def test_run_with_cancel_after_stops_the_job(
    loopback: list[Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_after_week_0(monkeypatch, seconds_per_day=0.3)
    with pytest.raises(step2_main.JobError) as error:
        step2_main.run("m:5050", Settings(size="small"), progress=False, cancel_after=1)
    assert str(error.value) == "the job was cancelled after 1 of 4 chunks"
    job = loopback[0].scheduler
    states = [u["state"] for u in job.timeline.updates if u["state"] != "TASK_RUNNING"]
    assert sorted(states) == ["TASK_FINISHED"] + ["TASK_KILLED"] * 3
    outgoing = {m["agent"] for m in job.timeline.messages if m["direction"] == "out"}
    acks = [m for m in job.timeline.messages if m["type"] == "ack"]
    assert outgoing == {"S0", "S1"}
    assert sorted((m["agent"], m["of"], m["tasks"]) for m in acks) == [
        ("S0", "cancel", 1),
        ("S1", "cancel", 2),
    ]


def test_run_moves_the_bar_a_day_at_a_time(
    loopback: list[Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = JobScheduler.advance

    def advance(self: JobScheduler, chunk: int, days: int) -> None:
        real(self, chunk, days)
        seen.append(self.days_done)

    monkeypatch.setattr(JobScheduler, "advance", advance)
    step2_main.run("m:5050", Settings(size="small"), progress=False)
    assert seen[-1] == 28
    assert len(set(seen)) > 4  # more steps than finished chunks: the messages moved it
    assert seen == sorted(seen)


# -- the command line -----------------------------------------------------------------------------


def test_framework_info_asks_for_no_failover() -> None:
    info = step2_main.framework_info()
    assert info["failover_timeout"] == 0.0
    assert info["name"] == "step2: bike-share trips"
    assert info["user"]


def test_the_command_line_builds_the_settings() -> None:
    args, settings = step2_main.parse_args(
        ["--master", "zk://127.0.0.1:2181/mesos", "--size", "tiny", "--task-cpus", "0.25",
         "--task-mem", "16", "--executor-cpus", "0.5", "--executor-mem", "100",
         "--max-attempts", "1", "--fail-chunk", "3", "--executor-python", "python3",
         "--executor-uri", "file:///code/step2-executor.tar.gz", "--no-progress-messages",
         "--cancel-after", "10"]
    )  # fmt: skip
    assert args.master == "zk://127.0.0.1:2181/mesos"
    assert args.cancel_after == 10
    assert settings == Settings(
        size="tiny",
        task_cpus=0.25,
        task_mem=16.0,
        executor_cpus=0.5,
        executor_mem=100.0,
        max_attempts=1,
        executor_python="python3",
        executor_uri="file:///code/step2-executor.tar.gz",
        fail_chunk=3,
        progress=False,
    )


def test_the_command_line_defaults() -> None:
    args, settings = step2_main.parse_args(["--master", "127.0.0.1:5050"])
    assert args.cancel_after is None
    # No --executor-uri: main() serves the code, and fills it in (see test_served_...).
    assert settings == Settings(executor_python=step2_main.sys.executable, executor_uri="")
    assert args.code_host is None
    assert (settings.task_cpus, settings.task_mem) == (0.1, 32.0)
    assert (settings.executor_cpus, settings.executor_mem) == (0.1, 64.0)
    assert settings.progress is True


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["--master", "http://x:5"], "--master"),
        (["--master", "localhost"], "--master"),
        (["--task-cpus", "0"], "--task-cpus"),
        (["--task-cpus", "nan"], "--task-cpus"),
        (["--task-mem", "-1"], "--task-mem"),
        (["--executor-cpus", "0"], "--executor-cpus"),
        (["--executor-cpus", "lots"], "--executor-cpus"),
        (["--executor-mem", "NaN"], "--executor-mem"),
        (["--executor-mem", "0"], "--executor-mem"),
        (["--connect-timeout", "0"], "--connect-timeout"),
        (["--max-attempts", "0"], "--max-attempts"),
        (["--fail-chunk", "4", "--size", "small"], "--fail-chunk"),
        (["--fail-chunk", "52", "--size", "tiny"], "--fail-chunk"),
        (["--cancel-after", "0"], "--cancel-after"),
        (["--cancel-after", "4", "--size", "small"], "--cancel-after"),
        (["--cancel-after", "-3"], "--cancel-after"),
        (["--cancel-after", "half"], "--cancel-after"),
        (["--size", "huge"], "--size"),
        (["--executor-uri", "/code.tar.gz"], "--executor-uri"),
        (["--executor-uri", "ftp://h/code.tar.gz"], "--executor-uri"),
        (["--executor-uri", "file:///c.tgz", "--code-host", "h"], "--code-host"),
    ],
)
def test_a_bad_option_exits_2_naming_it(
    arguments: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--master" not in arguments:
        arguments = ["--master", "127.0.0.1:5050", *arguments]
    with pytest.raises(SystemExit) as exited:
        step2_main.main(arguments)
    assert exited.value.code == 2
    last = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert last.startswith("python -m step2_executor: error: ")
    assert option in last


def test_main_prints_a_job_error_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_run(*args: Any, **kwargs: Any) -> JobScheduler:
        raise step2_main.JobError("the job was cancelled after 3 of 52 chunks")

    monkeypatch.setattr(step2_main, "run", failing_run)
    assert step2_main.main(["--master", "127.0.0.1:1", "--quiet", "--cancel-after", "3"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: the job was cancelled after 3 of 52 chunks\n"


def test_main_with_cancel_after_exits_1(
    loopback: list[Loopback],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    slow_after_week_0(monkeypatch, seconds_per_day=0.3)
    chart = tmp_path / "step2.png"
    argv = ["--master", "m:5050", "--size", "small", "--quiet", "--cancel-after", "1"]
    argv += ["--executor-uri", "file:///code.tar.gz"]  # m:5050 has no address to serve it on
    assert step2_main.main([*argv, "--chart", str(chart)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == "error: the job was cancelled after 1 of 4 chunks"
    assert not chart.exists()


def test_main_prints_the_summary_and_draws_the_chart(
    loopback: list[Loopback], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    chart = tmp_path / "step2.png"
    argv = ["--master", "m:5050", "--size", "small", "--quiet", "--chart", str(chart)]
    argv += ["--executor-uri", "file:///code.tar.gz"]
    assert step2_main.main([*argv, "--chart-lang", "en"]) == 0

    settings = loopback[0].scheduler.settings
    assert (settings.size, settings.progress) == ("small", True)
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"4 chunks on 2 agents \(2 executors\) in \d+\.\d s", lines[0])
    assert lines[1:] == [bikeshare.summary(bikeshare.run_sequential(SMALL)), f"chart: {chart}"]
    assert chart.stat().st_size > 0


@pytest.mark.parametrize(
    ("data", "state"), [({}, "TASK_FINISHED"), ({"fail": True}, "TASK_FAILED")]
)
def test_a_task_has_left_running_when_its_last_update_is_sent(
    data: dict, state: str, thread_errors: list[BaseException]
) -> None:
    """Once the scheduler has the last update it may act on it (a kill, a TEARDOWN that shuts
    the executor down): by then the executor must no longer count the task as running."""
    job = JobExecutor()
    seen: dict[str, bool] = {}

    class Watching(FakeExecutorDriver):
        def sendStatusUpdate(self, status: dict) -> None:
            seen[status["state"]] = status["task_id"]["value"] in job.running
            super().sendStatusUpdate(status)

    driver = Watching()
    launch(job, driver, "chunk-1-attempt-1", **data)
    ended(driver, job, "chunk-1-attempt-1")
    assert seen == {"TASK_RUNNING": True, state: False}
    assert thread_errors == []


# -- the code that the agents fetch --------------------------------------------------------------


def test_the_archive_holds_the_executors_packages_and_is_the_same_every_time(
    tmp_path: Path,
) -> None:
    first = archive.build(tmp_path)
    again = archive.build(tmp_path / ".." / tmp_path.name)  # the same file, written again
    assert first.name == "step2-executor.tar.gz"
    assert first.read_bytes() == again.read_bytes()
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert all(member.mtime == 0 and member.uid == 0 for member in tar.getmembers())
    expected = [
        f"{package}/{path.name}"
        for package in ("step2_executor", "jobs")
        for path in sorted((archive.ROOT / package).glob("*.py"))
    ]
    assert names == expected
    assert {"step2_executor/executor.py", "step2_executor/messages.py", "jobs/bikeshare.py"} <= set(
        names
    )


def test_served_builds_and_serves_the_archive_while_the_job_runs(tmp_path: Path) -> None:
    args, settings = step2_main.parse_args(["--master", "127.0.0.1:5050"])
    with step2_main.served(args, settings):
        url = settings.executor_uri
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/step2-executor\.tar\.gz", url)
        with urllib.request.urlopen(url, timeout=10) as answer:
            served = answer.read()
    assert served == archive.build(tmp_path).read_bytes()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=10)  # no longer served once the job is over


def test_served_uses_the_code_host_and_leaves_an_executor_uri_alone() -> None:
    args, settings = step2_main.parse_args(["--master", "m:5050", "--code-host", "agent-gw"])
    with step2_main.served(args, settings):
        assert settings.executor_uri.startswith("http://agent-gw:")
    given = "file:///shared/step2-executor.tar.gz"
    args, settings = step2_main.parse_args(["--master", "m:5050", "--executor-uri", given])
    with step2_main.served(args, settings):
        assert settings.executor_uri == given


def test_served_says_to_name_the_host_when_it_cannot_tell_it() -> None:
    args, settings = step2_main.parse_args(["--master", "no-such-host.invalid:5050"])
    with pytest.raises(step2_main.JobError, match="--code-host"), step2_main.served(args, settings):
        pass


def test_the_archive_is_all_that_the_executor_needs_of_the_project(tmp_path: Path) -> None:
    """The executor, imported in a sandbox from the unpacked archive alone: the project's
    editable install is taken away, so a module that the archive lacks fails to import."""
    sandbox = tmp_path / "sandbox"
    with tarfile.open(archive.build(tmp_path)) as tar:
        tar.extractall(sandbox, filter="data")
    script = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "import step2_executor.executor\n"
        "ours = ('jobs', 'step1_scheduler', 'step2_executor', 'step3_failover', 'taller')\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] in ours:\n"
        "        print(module.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=sandbox, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded = [Path(line) for line in done.stdout.splitlines()]
    assert Path(sandbox, "step2_executor", "executor.py") in loaded
    assert Path(sandbox, "jobs", "bikeshare.py") in loaded
    assert [path for path in loaded if not path.is_relative_to(sandbox)] == []
