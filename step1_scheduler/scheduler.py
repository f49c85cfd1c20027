"""The step 1 framework: a scheduler that turns resource offers into command tasks.

Mesos calls these methods from pymesos's single event thread, one event at a time: offers to
use, status updates to follow, and news of lost agents. `run()` in `__main__.py` waits on
`finished` from the main thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from pymesos import Scheduler

from jobs import bikeshare
from step1_scheduler import sandbox

log = logging.getLogger("step1_scheduler")

# A framework that declines an offer asks the master not to offer those resources back for a
# while. We have nothing to run with them, so the other frameworks may as well have them.
DECLINE_FILTER = {"refuse_seconds": 30.0}

# Terminal states that mean "this attempt did not produce a result; try the chunk again".
FAILED_STATES = {
    "TASK_FAILED",  # the command exited with a non-zero status
    "TASK_KILLED",  # someone (an operator, the agent) killed it
    "TASK_LOST",  # the agent was lost; a framework that is not partition-aware sees this
    "TASK_ERROR",  # the master refused the task as invalid
    "TASK_DROPPED",  # the task never reached the agent
    "TASK_GONE",  # the agent was removed, and the task with it
    "TASK_GONE_BY_OPERATOR",
}


@dataclass
class Settings:
    """What the user chose on the command line."""

    size: str = "demo"  # a key of bikeshare.SIZES
    task_cpus: float = 0.5
    task_mem: float = 128.0  # MB
    max_attempts: int = 3
    task_python: str = "python3"  # the interpreter on the agents
    task_pythonpath: str = ""  # where the agents find the `jobs` package
    fail_chunk: int | None = None  # make this chunk fail on purpose, to see retries
    credential: sandbox.Credential | None = None  # who we are, if the cluster asks (a room)


@dataclass
class Launch:
    """One attempt at one chunk: a task on an agent."""

    chunk: int
    attempt: int
    agent_id: str
    agent: str  # the agent's HTTP address, to read the task's output


@dataclass
class Timeline:
    """What happened, for the notebooks: the offers received and the status updates."""

    start: float = field(default_factory=time.monotonic)
    offers: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)

    def now(self) -> float:
        return round(time.monotonic() - self.start, 3)

    def offer(self, offer: dict, tasks: int) -> None:
        agent, cpus, mem = offer["agent_id"]["value"], scalar(offer, "cpus"), scalar(offer, "mem")
        self.offers.append(
            {"time": self.now(), "agent": agent, "cpus": cpus, "mem": mem, "tasks": tasks}
        )

    def update(self, update: dict, chunk: int | None) -> None:
        self.updates.append(
            {
                "time": self.now(),
                "task": update["task_id"]["value"],
                "chunk": chunk,
                "agent": update.get("agent_id", {}).get("value"),
                "state": update["state"],
            }
        )


def scalar(offer: dict, name: str) -> float:
    """The amount of one scalar resource (cpus, mem...) in an offer."""
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


class JobScheduler(Scheduler):
    def __init__(self, settings: Settings, on_progress=None) -> None:
        self.settings = settings
        self.size = bikeshare.SIZES[settings.size]
        self.pending: deque[int] = deque(bikeshare.chunks(self.size))
        self.running: dict[str, Launch] = {}  # by task ID
        self.attempts: dict[int, int] = {}  # by chunk
        self.results: dict[int, dict] = {}  # by chunk
        self.framework_id: str | None = None
        self.suppressed = False
        self.failure: str | None = None  # why the job failed, if it did
        self.registered_event = threading.Event()
        self.finished = threading.Event()
        self.timeline = Timeline()
        self.on_progress = on_progress or (lambda done, total: None)
        self._warned_small_offer = False

    @property
    def total(self) -> int:
        return self.size.weeks

    def result(self) -> dict:
        """The job's result: every chunk's counts, merged in chunk order."""
        result = bikeshare.empty_result(self.size)
        for chunk in sorted(self.results):
            bikeshare.merge(result, self.results[chunk])
        return result

    # -- registration -------------------------------------------------------------------------

    def registered(self, driver, framework_id, master_info) -> None:
        self.framework_id = framework_id["value"]
        log.info("registered with framework ID %s", self.framework_id)
        self.registered_event.set()

    def reregistered(self, driver, master_info) -> None:
        log.info("re-registered with the master")

    def disconnected(self, driver) -> None:
        # pymesos reconnects on its own; this also happens when we stop at the end.
        log.info("disconnected from the master")

    # ANCHOR: task
    def command_task(self, chunk: int, offer: dict) -> dict:
        """A command task that counts one chunk: the agent runs the command under Mesos's own
        command executor, and whatever it prints stays in the task's sandbox."""
        self.attempts[chunk] = self.attempts.get(chunk, 0) + 1
        attempt = self.attempts[chunk]
        task_id = f"chunk-{chunk}-attempt-{attempt}"
        arguments = [self.settings.task_python, "-m", "jobs.bikeshare", "chunk", str(chunk)]
        arguments += ["--size", self.settings.size]
        if chunk == self.settings.fail_chunk:
            arguments.append("--fail")
        self.running[task_id] = Launch(
            chunk, attempt, offer["agent_id"]["value"], sandbox.agent_url(offer)
        )
        return {
            "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "name": f"week {chunk + 1} (attempt {attempt})",
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.settings.task_cpus}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": self.settings.task_mem}},
            ],
            "command": {
                "shell": False,  # run the program itself, with no `sh -c` in between
                "value": self.settings.task_python,
                "arguments": arguments,
                "environment": {
                    "variables": [{"name": "PYTHONPATH", "value": self.settings.task_pythonpath}]
                },
            },
        }

    # ANCHOR_END: task

    # ANCHOR: offers
    # EXERCISE: offers
    def resourceOffers(self, driver, offers) -> None:
        for offer in offers:
            cpus, mem = scalar(offer, "cpus"), scalar(offer, "mem")
            tasks = []
            # Size the tasks from the offer: as many chunks as its cpus and mem can hold.
            while (
                self.pending and cpus >= self.settings.task_cpus and mem >= self.settings.task_mem
            ):
                tasks.append(self.command_task(self.pending.popleft(), offer))
                # Mesos keeps scalar resources to three decimals; so do we.
                cpus = round(cpus - self.settings.task_cpus, 3)
                mem = round(mem - self.settings.task_mem, 3)
            self.timeline.offer(offer, len(tasks))
            if tasks:
                # Whatever the tasks leave of the offer is declined, with the same filter.
                driver.launchTasks(offer["id"], tasks, filters=DECLINE_FILTER)
                log.info("offer %s: launched %d tasks", offer["id"]["value"], len(tasks))
            else:
                driver.declineOffer(offer["id"], filters=DECLINE_FILTER)
                self._explain_decline(offer)
        if not self.pending and not self.suppressed:
            # Every chunk is launched: stop the master from sending offers we would decline.
            driver.suppressOffers()
            self.suppressed = True
            log.info("every chunk is launched: offers suppressed")

    # EXERCISE_END: offers
    # ANCHOR_END: offers

    def _explain_decline(self, offer: dict) -> None:
        if not self.pending or self.running or self._warned_small_offer:
            return
        # Nothing of ours runs and this offer could not hold one task: say so once, since a
        # task larger than every agent would otherwise wait forever in silence.
        self._warned_small_offer = True
        log.warning(
            "declined an offer of cpus %g, mem %g from agent %s: one task needs cpus %g, "
            "mem %g; waiting for a larger offer",
            scalar(offer, "cpus"),
            scalar(offer, "mem"),
            offer["agent_id"]["value"],
            self.settings.task_cpus,
            self.settings.task_mem,
        )

    # ANCHOR: updates
    # EXERCISE: updates
    def statusUpdate(self, driver, update) -> None:
        task_id, state = update["task_id"]["value"], update["state"]
        launch = self.running.get(task_id)
        self.timeline.update(update, launch.chunk if launch else None)
        if launch is None:
            # Status updates arrive at least once: a repeated update for a task that is
            # already done must change nothing.
            log.debug("ignoring %s for %s, which is no longer running", state, task_id)
            return
        if state == "TASK_FINISHED":
            del self.running[task_id]
            self.collect(driver, task_id, launch)
        elif state in FAILED_STATES:
            del self.running[task_id]
            reason = update.get("message") or update.get("reason") or "no message"
            self.retry_or_fail(driver, task_id, launch, f"{state}: {reason}")
        # TASK_STAGING, TASK_STARTING and TASK_RUNNING need nothing from us.

    # EXERCISE_END: updates
    # ANCHOR_END: updates

    # ANCHOR: collect
    def collect(self, driver, task_id: str, launch: Launch) -> None:
        """Read the finished task's output from its sandbox, on the agent that ran it."""
        try:
            output = sandbox.read_task_output(
                launch.agent, self.framework_id, task_id, credential=self.settings.credential
            )
            counts = json.loads(output)
        except (sandbox.SandboxError, ValueError) as error:
            self.retry_or_fail(driver, task_id, launch, f"could not read its result: {error}")
            return
        self.results[launch.chunk] = counts
        self.on_progress(len(self.results), self.total)
        if len(self.results) == self.total:
            log.info("all %d chunks are done", self.total)
            self.finished.set()

    # ANCHOR_END: collect

    # ANCHOR: retry
    def retry_or_fail(self, driver, task_id: str, launch: Launch, why: str) -> None:
        if launch.chunk in self.results:
            return  # an earlier attempt already produced this chunk
        attempts = self.attempts[launch.chunk]
        if attempts >= self.settings.max_attempts:
            stderr = self.stderr_tail(task_id, launch)
            self.failure = (
                f"chunk {launch.chunk} failed {attempts} time{'s' if attempts > 1 else ''}; "
                f"the last attempt, {task_id} on agent {launch.agent_id}, ended with {why}"
                + (f"\nits stderr ends with:\n{stderr}" if stderr else "")
            )
            self.finished.set()
            return
        log.warning("%s: %s; trying chunk %d again", task_id, why, launch.chunk)
        self.pending.append(launch.chunk)
        if self.suppressed:
            # We asked for no more offers; now we need one again. Reviving also clears the
            # filters that our declines set.
            driver.reviveOffers()
            self.suppressed = False

    # ANCHOR_END: retry

    def stderr_tail(self, task_id: str, launch: Launch) -> str:
        try:
            return sandbox.tail(
                sandbox.read_task_output(
                    launch.agent,
                    self.framework_id,
                    task_id,
                    "stderr",
                    credential=self.settings.credential,
                )
            )
        except sandbox.SandboxError:
            return ""  # the agent may be the reason the task failed

    # -- the cases that real clusters produce ------------------------------------------------

    def offerRescinded(self, driver, offer_id) -> None:
        # We never hold offers, so a rescinded one is already launched on or declined.
        log.info("offer %s was rescinded", offer_id["value"])

    def slaveLost(self, driver, agent_id) -> None:
        # The master sends a TASK_LOST update for each of our tasks on the agent first; the
        # retries happen there.
        log.warning("agent %s was lost", agent_id["value"])

    def executorLost(self, driver, executor_id, agent_id, status) -> None:
        log.info(
            "executor %s on agent %s exited with status %s",
            executor_id["value"],
            agent_id["value"],
            status,
        )

    def error(self, driver, message) -> None:
        # The master removed the framework (for example, after a TEARDOWN by an operator).
        self.failure = f"the master reported an error: {message}"
        self.finished.set()
