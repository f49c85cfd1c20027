"""Step 3's executor without an agent: a status update that cannot be sent is kept and sent
again until it goes through, and is dropped only once the agent has acknowledged it.

The driver is a stand-in for pymesos's `MesosExecutorDriver`: its `updates` are the ones that
pymesos sends again with its next SUBSCRIBE, and an ACKNOWLEDGED event goes through pymesos's own
`on_acknowledged`. The resend timers are recorded and fired by the tests, one at a time, so
nothing here waits for a clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pymesos import MesosExecutorDriver

import step3_failover.executor as executor_module
from jobs import bikeshare
from step3_failover import messages
from step3_failover.executor import RESEND_FIRST, RESEND_MAX, JobExecutor
from step3_failover.scheduler import Settings, executor_info

SMALL = bikeshare.SIZES["small"]


class FlakyAgent:
    """What the executor uses of pymesos's driver. While `down`, every send fails as pymesos
    fails when the agent is restarting (connection refused) or recovering (503)."""

    def __init__(self, down: bool = True) -> None:
        self.updates: dict = {}  # pymesos: the unacknowledged updates, by uuid
        self.tasks: dict = {}  # pymesos: the unacknowledged tasks, by ID
        self.down = down
        self.tried: list[dict] = []  # every status that the executor tried to send
        self.sent: list[dict] = []  # the ones that went through
        self.lock = threading.Lock()

    def sendStatusUpdate(self, status: dict) -> None:
        with self.lock:
            self.tried.append(status)
            if self.down:
                raise ConnectionRefusedError(111, "Connection refused")
            self.sent.append(status)

    def sendFrameworkMessage(self, data: str) -> None:
        pass  # progress messages are best effort; not what these tests are about

    def acknowledged(self, status: dict) -> None:
        """The agent's ACKNOWLEDGED event, handled by pymesos's own code."""
        event = {"task_id": status["task_id"], "uuid": status["uuid"]}
        MesosExecutorDriver.on_acknowledged(self, event)  # type: ignore[arg-type]

    def states(self, collection: list[dict]) -> list[str]:
        with self.lock:
            return [status["state"] for status in collection]


class Timers:
    """Stands for threading.Timer in the executor: each resend that the executor starts is
    recorded, and fired by the test."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []
        self.delays: list[float] = []
        self.lock = threading.Lock()

    def new(self, delay: float, function: Callable[..., None], args: tuple[Any, ...]) -> Timer:
        return Timer(self, delay, lambda: function(*args))

    def fire(self) -> None:
        with self.lock:
            function = self.pending.pop(0)
        function()


class Timer:
    def __init__(self, timers: Timers, delay: float, function: Callable[[], None]) -> None:
        self.timers, self.delay, self.function = timers, delay, function
        self.daemon = False

    def start(self) -> None:
        with self.timers.lock:
            self.timers.pending.append(self.function)
            self.timers.delays.append(self.delay)


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> Timers:
    timers = Timers()
    monkeypatch.setattr(executor_module.threading, "Timer", timers.new)
    return timers


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_an_update_that_cannot_be_sent_is_kept_and_sent_again_until_it_goes_through(
    timers: Timers,
) -> None:
    job, agent = JobExecutor(), FlakyAgent(down=True)
    job.send_update(agent, "chunk-3-attempt-1", "TASK_FINISHED", data="the counts")
    # Kept with its result, where pymesos sends it again with its next SUBSCRIBE.
    ((kept),) = agent.updates.values()
    assert kept["status"]["state"] == "TASK_FINISHED"
    assert kept["status"]["data"] == "the counts"
    assert agent.sent == []

    timers.fire()  # the agent is still down: another failure, another timer
    assert len(agent.tried) == 2 and agent.sent == []
    agent.down = False
    timers.fire()
    # The same update each time (one uuid): an agent that had it already drops the copy.
    assert agent.tried == [kept["status"]] * 3
    assert agent.sent == [kept["status"]]
    assert timers.pending == []  # once it went through, nothing more is scheduled
    # Sent is not acknowledged: pymesos keeps it until the agent says ACKNOWLEDGED.
    assert list(agent.updates.values()) == [kept]
    agent.acknowledged(kept["status"])
    assert agent.updates == {}


def test_the_pause_between_resends_doubles_up_to_its_maximum(timers: Timers) -> None:
    job, agent = JobExecutor(), FlakyAgent(down=True)
    job.send_update(agent, "chunk-3-attempt-1", "TASK_FAILED", message="it broke")
    while timers.delays[-1] < RESEND_MAX:
        timers.fire()
    timers.fire()
    timers.fire()
    doubling = [RESEND_FIRST * 2**n for n in range(len(timers.delays))]
    expected = [min(delay, RESEND_MAX) for delay in doubling]
    assert timers.delays == expected
    assert timers.delays[-3:] == [RESEND_MAX] * 3
    assert len(agent.tried) == len(timers.delays)  # one more try behind each timer


def test_an_update_acknowledged_meanwhile_is_not_sent_again(timers: Timers) -> None:
    """The agent came back, pymesos subscribed with the update among its unacknowledged ones,
    and the agent acknowledged it before our timer fired: the timer sends nothing."""
    job, agent = JobExecutor(), FlakyAgent(down=True)
    job.send_update(agent, "chunk-3-attempt-1", "TASK_FINISHED", data="the counts")
    ((kept),) = agent.updates.values()
    agent.down = False
    agent.acknowledged(kept["status"])
    timers.fire()
    assert agent.sent == []
    assert len(agent.tried) == 1
    assert timers.pending == []


def test_a_chunk_that_ends_while_the_agent_is_away_delivers_its_result_when_it_is_back(
    timers: Timers,
) -> None:
    """A whole task, with the agent away from its start (an agent restart): the executor goes
    on counting, and its TASK_RUNNING and TASK_FINISHED reach the agent once it is back, the
    result in the last one."""
    job, agent = JobExecutor(), FlakyAgent(down=True)
    task = {
        "task_id": {"value": "chunk-2-attempt-1"},
        "agent_id": {"value": "S0"},
        "name": "week 3 (attempt 1)",
        "executor": executor_info(Settings(size="small")),
        "data": messages.encode({"week": 2, "size": "small", "fail": False, "progress": False}),
    }
    job.launchTask(agent, task)
    wait_for(lambda: agent.states(agent.tried) == ["TASK_RUNNING", "TASK_FINISHED"])
    wait_for(lambda: len(timers.pending) == 2)
    assert agent.sent == []
    assert job.running == {}  # the chunk is done; only its updates wait
    agent.down = False
    timers.fire()
    timers.fire()
    assert sorted(agent.states(agent.sent)) == ["TASK_FINISHED", "TASK_RUNNING"]
    (finished,) = [status for status in agent.sent if status["state"] == "TASK_FINISHED"]
    assert messages.decode(finished["data"]) == bikeshare.count_chunk(2, SMALL)
    for status in list(agent.sent):
        agent.acknowledged(status)
    assert agent.updates == {}
