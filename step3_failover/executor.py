"""The executor: one long-lived process per agent that runs our chunks as threads.

Mesos starts it on an agent with the first task that carries our ExecutorInfo, as
`python -m step3_failover.executor`, and tells it who it is in environment variables
(MESOS_AGENT_ENDPOINT, MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID...). Every later task for the same
executor ID on that agent goes to this same process: no new Python, no imports, no process
per chunk.

pymesos calls the callbacks below on its single I/O thread, one at a time. A callback that
raises kills that thread, and pymesos tears the executor down with every task in it, so the
callbacks catch what can fail and report it as a task status instead. The chunks run on a
thread each, which sends its own status updates and messages: pymesos guards its connection
to the agent with a lock.

It is step 2's executor, but for one thing: a status update that cannot reach the agent is kept
and sent again until it does (`send_update`), so that a chunk's result survives a restart of the
agent. A scheduler that crashes and comes back, or a standby that takes its place, does not
concern the executors: while the framework is within its failover timeout, Mesos leaves them
and their tasks running, and their status updates wait at the agent until a scheduler
acknowledges them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.client import HTTPException

from pymesos import Executor, MesosExecutorDriver, encode_data

from jobs import bikeshare
from step3_failover import messages

log = logging.getLogger("step3_failover.executor")

# At most one progress message per task in this many seconds. A message is cheap but not free:
# an HTTP request to the agent, a hop to the master, and a callback on the scheduler's single
# thread. A chunk that takes a few milliseconds sends none; the bar moves when it finishes.
PROGRESS_EVERY = 0.2

# An update that could not be sent is sent again after this long, twice as long each time.
RESEND_FIRST = 0.5  # seconds
RESEND_MAX = 10.0

# What pymesos raises when a call to the agent fails: RuntimeError when it is not connected or
# the agent answers with an error, OSError or HTTPException when the connection breaks, and
# AttributeError when it breaks while pymesos's own thread is dropping it (its `_send` closes
# `self._conn`, which that thread may just have set to None).
SEND_ERRORS = (RuntimeError, OSError, HTTPException, AttributeError)


class Cancelled(Exception):
    """Raised inside a chunk, at a day boundary, to stop it."""


@dataclass
class Running:
    """One task of ours, running on its own thread."""

    week: int
    stop: threading.Event = field(default_factory=threading.Event)
    last_report: float = field(default_factory=time.monotonic)  # start, or last progress
    why: str = ""  # why it was stopped: the message of its TASK_KILLED

    def cancel(self, why: str) -> None:
        if not self.stop.is_set():
            self.why = why
            self.stop.set()


class JobExecutor(Executor):
    def __init__(self) -> None:
        self.agent_id: str | None = None
        self.running: dict[str, Running] = {}  # by task ID
        # `running` changes on pymesos's thread (launches) and on the tasks' threads (ends).
        self.lock = threading.Lock()
        # Set on pymesos's thread, read by the tasks' threads: a plain bool is enough, since
        # each read or assignment is atomic.
        self.progress = True  # send a progress message after each day of a chunk
        self.cancelled = False  # after a cancel, tasks that arrive are killed at once

    # -- registration -------------------------------------------------------------------------

    def registered(self, driver, executor_info, framework_info, agent_info) -> None:
        self.agent_id = agent_info["id"]["value"]
        log.info(
            "executor %s of framework %s registered on agent %s (%s)",
            executor_info["executor_id"]["value"],
            framework_info["id"]["value"],
            self.agent_id,
            agent_info.get("hostname"),
        )
        # The first message to the scheduler: executors can talk before any task finishes.
        self.send_message(
            driver, {"type": messages.HELLO, "pid": os.getpid(), "agent_id": self.agent_id}
        )

    def reregistered(self, driver, agent_info) -> None:
        log.info("re-registered with agent %s", agent_info["id"]["value"])

    def disconnected(self, driver) -> None:
        # The agent may only be restarting. Mesos always sets MESOS_CHECKPOINT ("1" or
        # "0"), and pymesos takes any value as "checkpointing on", so it reconnects
        # rather than shutting us down; the agent's SHUTDOWN is what ends this process.
        log.info("disconnected from the agent")

    def error(self, driver, message) -> None:
        log.error("the agent reported an error: %s", message)

    # ANCHOR: launch
    def launchTask(self, driver, task) -> None:
        task_id = task["task_id"]["value"]
        try:
            # The scheduler says in the task's `data` which chunk to count.
            chunk = messages.decode(task.get("data"))
            week, size = chunk["week"], bikeshare.SIZES[chunk["size"]]
        except (ValueError, KeyError, TypeError) as error:
            self.send_update(driver, task_id, "TASK_FAILED", message=f"bad task data: {error!r}")
            return
        if "progress" in chunk:
            # The scheduler's current setting travels with every task, so an executor that
            # starts after a `set` message, or that missed it, follows it too.
            self.progress = bool(chunk["progress"])
        if self.cancelled:
            self.send_update(driver, task_id, "TASK_KILLED", message="cancelled by the scheduler")
            return
        running = Running(week)
        with self.lock:
            self.running[task_id] = running
        # A thread, not a process: the chunks share this interpreter. Counting is pure Python,
        # so the chunks on one agent take turns on one core (the GIL) instead of running in
        # parallel; what they save is starting Python and importing the job for every chunk.
        thread = threading.Thread(
            target=self.run_chunk,
            args=(driver, task_id, running, size, bool(chunk.get("fail", False))),
            name=task_id,
            # After a SHUTDOWN the process exits without waiting for its chunks: their
            # updates would have no connection left to travel on.
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError as error:  # the system refused a new thread
            with self.lock:
                del self.running[task_id]
            self.send_update(driver, task_id, "TASK_FAILED", message=f"no thread: {error}")

    def run_chunk(
        self, driver, task_id: str, running: Running, size: bikeshare.Size, fail: bool
    ) -> None:
        """The body of a task's thread: count the chunk, and say how that ended."""
        self.send_update(driver, task_id, "TASK_RUNNING")
        try:
            if fail:
                raise RuntimeError(f"chunk {running.week}: failing on purpose (--fail-chunk)")
            counts = bikeshare.count_chunk(
                running.week,
                size,
                on_day=lambda days: self.day_done(driver, task_id, running, days),
            )
        except Cancelled:
            self.finish(driver, task_id, "TASK_KILLED", message=running.why)
        except Exception as error:  # whatever went wrong, the scheduler hears of it
            log.warning("%s failed: %r", task_id, error)
            self.finish(driver, task_id, "TASK_FAILED", message=f"{type(error).__name__}: {error}")
        else:
            # The result travels in the status update itself: the agent keeps it and forwards
            # it to the scheduler until the scheduler acknowledges it.
            self.finish(driver, task_id, "TASK_FINISHED", data=messages.encode(counts))

    def finish(self, driver, task_id: str, state: str, **fields: str) -> None:
        """A task's last update. The task leaves `running` before the update leaves us: once
        the scheduler has it, a kill or a shutdown must not find the task still here."""
        with self.lock:
            del self.running[task_id]
        self.send_update(driver, task_id, state, **fields)

    # ANCHOR_END: launch

    # ANCHOR: progress
    def day_done(self, driver, task_id: str, running: Running, days: int) -> None:
        """Called by count_chunk on the task's thread after each day of the week."""
        if running.stop.is_set():
            raise Cancelled  # a day boundary is where a chunk can stop cleanly
        if self.progress and time.monotonic() - running.last_report >= PROGRESS_EVERY:
            running.last_report = time.monotonic()
            # Best effort: a lost progress message only makes the scheduler's bar lag.
            self.send_message(
                driver,
                {"type": messages.PROGRESS, "task_id": task_id, "week": running.week, "days": days},
            )

    # ANCHOR_END: progress

    # ANCHOR: executor-messages
    def frameworkMessage(self, driver, data) -> None:
        try:
            message = messages.decode(data)
        except ValueError as error:
            log.warning("ignoring a message that is not ours: %s", error)
            return
        kind = message.get("type")
        if kind == messages.CANCEL:
            self.cancelled = True
            stopped = self.stop_all("cancelled by the scheduler")
            log.info("cancel: stopping %d running tasks", stopped)
            self.send_message(driver, {"type": messages.ACK, "of": kind, "tasks": stopped})
        elif kind == messages.SET and isinstance(message.get("progress"), bool):
            # A parameter changed mid-run: the running chunks follow it from their next day.
            self.progress = message["progress"]
            log.info("progress messages are now %s", "on" if self.progress else "off")
            self.send_message(driver, {"type": messages.ACK, "of": kind, "progress": self.progress})
        else:
            log.warning("ignoring an unknown message: %r", message)

    # ANCHOR_END: executor-messages

    # ANCHOR: kill
    def killTask(self, driver, task_id) -> None:
        with self.lock:
            running = self.running.get(task_id["value"])
        if running is None:
            # It has ended already, and its terminal update is on its way.
            log.info("kill for %s, which is not running here", task_id["value"])
            return
        running.cancel("killed on request")  # its thread reports TASK_KILLED at the next day

    def shutdown(self, driver) -> None:
        # The agent wants us gone: the framework was torn down, or the agent is stopping.
        # pymesos stops its thread when this returns (and may call it a second time), and
        # main() returns; the tasks' threads are daemons, so they do not hold the process up.
        self.cancelled = True
        stopped = self.stop_all("the executor is shutting down")
        log.info("shutting down: stopping %d running tasks", stopped)

    def stop_all(self, why: str) -> int:
        with self.lock:
            tasks = list(self.running.values())
        for running in tasks:
            running.cancel(why)
        return len(tasks)

    # ANCHOR_END: kill

    # -- talking to the agent, from any thread --------------------------------------------------

    # ANCHOR: send-update
    def send_update(
        self, driver, task_id: str, state: str, *, message: str = "", data: str | None = None
    ) -> None:
        """Send a status update, and keep it until the agent acknowledges it. An update that
        cannot be sent now (the agent is restarting, or recovering and answers 503) is sent
        again, a little later each time, until it goes through; the agent drops a second copy
        of an update it already has (same uuid). pymesos also sends the updates in
        `driver.updates` with its next SUBSCRIBE (`unacknowledged_updates`, as Mesos's own
        executor library does), and drops each from there when the agent's ACKNOWLEDGED
        arrives; it never fills it, so we do."""
        status: dict = {"task_id": {"value": task_id}, "state": state}
        if message:
            status["message"] = message
        if data is not None:
            status["data"] = data
        update_id = uuid.uuid4()
        status["uuid"] = encode_data(update_id.bytes)
        status["source"] = "SOURCE_EXECUTOR"
        driver.updates[update_id] = {"status": status}
        self.deliver(driver, update_id, status, RESEND_FIRST)

    def deliver(self, driver, update_id: uuid.UUID, status: dict, retry: float) -> None:
        if update_id not in driver.updates:
            return  # acknowledged meanwhile
        try:
            driver.sendStatusUpdate(status)
        except SEND_ERRORS as error:
            log.warning(
                "could not send %s for %s: %r; trying again in %g s",
                status["state"],
                status["task_id"]["value"],
                error,
                retry,
            )
            later = min(retry * 2, RESEND_MAX)
            timer = threading.Timer(retry, self.deliver, (driver, update_id, status, later))
            timer.daemon = True
            timer.start()

    # ANCHOR_END: send-update

    def send_message(self, driver, message: dict) -> None:
        try:
            driver.sendFrameworkMessage(messages.encode(message))
        except SEND_ERRORS as error:
            log.warning("could not send a %s message: %r", message["type"], error)


# ANCHOR: main
def main() -> int:
    if "MESOS_AGENT_ENDPOINT" not in os.environ:
        print(
            "python -m step3_failover.executor: error: a Mesos agent starts this program, "
            "and sets MESOS_AGENT_ENDPOINT and the other MESOS_* variables that it reads",
            file=sys.stderr,
        )
        return 2
    # stderr is a file in the executor's sandbox, on the agent: the place to look when an
    # executor misbehaves.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pymesos").propagate = False  # it has a stderr handler of its own
    driver = MesosExecutorDriver(JobExecutor(), use_addict=True)
    driver.run()  # until the agent shuts us down, or the connection to it is lost
    return 0


# ANCHOR_END: main


if __name__ == "__main__":
    sys.exit(main())
