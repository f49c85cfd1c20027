"""Step 1's behaviours, as checks: offers become command tasks and what is left is declined
with a filter; status updates are followed (finished, failed and retried, duplicates ignored);
and the whole job runs. See taller/checker.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from jobs import bikeshare
from taller import fakes, whole
from taller.checker import Package, check, expect

SMALL = bikeshare.SIZES["small"]
DEMO_WEEKS = bikeshare.SIZES["demo"].weeks


def new_scheduler(package: Package, size: str = "small", **settings: Any) -> tuple[Any, list]:
    """A registered scheduler of the package, and the list that its progress callback fills."""
    progress: list[int] = []
    module = package.scheduler
    scheduler = module.JobScheduler(
        module.Settings(size=size, **settings),
        on_progress=lambda done, total: progress.append(done),
    )
    scheduler.registered(fakes.Driver(), {"value": "F0"}, {"hostname": "master"})
    return scheduler, progress


def calls(driver: fakes.Driver) -> list[str]:
    return driver.names()


# -- offers -------------------------------------------------------------------------------------

# cpus and mem of the offer, of each task, and how many tasks fit.
FITS = [
    (2.0, 300.0, 0.5, 128.0, 2),  # mem is the limit
    (2.0, 4096.0, 0.5, 128.0, 4),  # cpus are the limit
    (1.0, 128.0, 0.5, 128.0, 1),  # exactly one task's mem
    (1.0, 4096.0, 0.1, 1.0, 10),
    (0.3, 4096.0, 0.1, 1.0, 3),  # without rounding, 0.3 - 0.1 - 0.1 leaves 0.0999...
    (2.0, 4096.0, 0.1, 1.0, 20),
]


@check(1, "offer-fills", "offers")
def offer_fills(package: Package) -> None:
    for cpus, mem, task_cpus, task_mem, expected in FITS:
        scheduler, _ = new_scheduler(package, "demo", task_cpus=task_cpus, task_mem=task_mem)
        driver = fakes.Driver()
        made = fakes.offer(cpus, mem)
        scheduler.resourceOffers(driver, [made])
        sizes = {"cpus": cpus, "mem": mem, "task_cpus": task_cpus, "task_mem": task_mem}
        launched = driver.launched()
        expect(len(launched) == expected, "count", expected=expected, got=len(launched), **sizes)
        launches = driver.of("launchTasks")
        expect(
            len(launches) == 1 and launches[0]["offer"] == made["id"],
            "calls",
            calls=calls(driver),
        )
        wanted = [f"chunk-{chunk}-attempt-1" for chunk in range(expected)]
        expect(launched == wanted, "order", got=launched, expected=wanted)
        left = list(scheduler.pending)
        expect(
            left == list(range(expected, DEMO_WEEKS)),
            "pending",
            launched=expected,
            left=len(left),
            expected=DEMO_WEEKS - expected,
        )
        offers = scheduler.timeline.offers
        expect(
            len(offers) == 1 and offers[0]["tasks"] == expected and offers[0]["cpus"] == cpus,
            "timeline",
            timeline=offers,
        )


@check(1, "offer-declines", "offers")
def offer_declines(package: Package) -> None:
    decline_filter = package.scheduler.DECLINE_FILTER
    for cpus, mem in [(0.3, 4096.0), (4.0, 100.0)]:
        scheduler, _ = new_scheduler(package)
        driver = fakes.Driver()
        made = fakes.offer(cpus, mem)
        scheduler.resourceOffers(driver, [made])
        declines = [d for d in driver.of("declineOffer") if d["offer"] == made["id"]]
        sizes = {"cpus": cpus, "mem": mem, "task_cpus": 0.5, "task_mem": 128.0}
        expect(declines and not driver.launched(), "not-declined", calls=calls(driver), **sizes)
        filters = declines[0]["filters"]
        expect(
            filters == decline_filter, "decline-filter", filters=filters, expected=decline_filter
        )
    scheduler, _ = new_scheduler(package)
    driver = fakes.Driver()
    scheduler.resourceOffers(driver, [fakes.offer(1.0, 4096.0)])
    (launch,) = driver.of("launchTasks") or [{"filters": "(no launchTasks)"}]
    filters = launch["filters"]
    expect(filters == decline_filter, "launch-filter", filters=filters, expected=decline_filter)


@check(1, "offer-suppress", "offers")
def offer_suppress(package: Package) -> None:
    scheduler, _ = new_scheduler(package)  # 4 weeks of 0.5 cpus
    driver = fakes.Driver()
    scheduler.resourceOffers(driver, [fakes.offer(1.0, 4096.0, "S0")])
    expect(calls(driver) == ["launchTasks"], "calls", got=calls(driver), expected=["launchTasks"])
    expect(not scheduler.suppressed, "flag", got=True, when="2 of 4 weeks launched")

    scheduler.resourceOffers(driver, [fakes.offer(1.0, 4096.0, "S1"), fakes.offer(2.0, 4096.0)])
    wanted = ["launchTasks", "launchTasks", "declineOffer", "suppressOffers"]
    expect(calls(driver) == wanted, "calls", got=calls(driver), expected=wanted)
    expect(scheduler.suppressed, "flag", got=False, when="suppressOffers()")

    # An offer that was already on its way is declined; no second SUPPRESS.
    scheduler.resourceOffers(driver, [fakes.offer(2.0, 4096.0, "S1")])
    wanted = [*wanted, "declineOffer"]
    expect(calls(driver) == wanted, "calls", got=calls(driver), expected=wanted)


# -- status updates -----------------------------------------------------------------------------


def update(task_id: str, state: str, **fields: Any) -> dict:
    return fakes.update(task_id, state, **fields)


class Sandbox:
    """Stands for sandbox.read_task_output: a chunk's counts, as its task prints them."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def __call__(
        self,
        agent: str,
        framework_id: str,
        task_id: str,
        name: str = "stdout",
        credential: object = None,
    ) -> str:
        self.reads.append(task_id)
        if name == "stderr":
            return ""
        return json.dumps(bikeshare.count_chunk(int(task_id.split("-")[1]), SMALL))


@contextlib.contextmanager
def sandbox(package: Package) -> Iterator[Sandbox]:
    module = package.sandbox
    fake, original = Sandbox(), module.read_task_output
    module.read_task_output = fake
    try:
        yield fake
    finally:
        module.read_task_output = original


def launch_everything(scheduler: Any) -> fakes.Driver:
    driver = fakes.Driver()
    scheduler.resourceOffers(driver, [fakes.offer(8.0, 8192.0)])
    driver.clear()
    return driver


@check(1, "update-finished", "updates")
def update_finished(package: Package) -> None:
    scheduler, progress = new_scheduler(package)
    with sandbox(package):
        driver = launch_everything(scheduler)
        for task in ["chunk-2-attempt-1", "chunk-0-attempt-1", "chunk-3-attempt-1"]:
            scheduler.statusUpdate(driver, update(task, "TASK_STAGING"))
            scheduler.statusUpdate(driver, update(task, "TASK_RUNNING"))
            scheduler.statusUpdate(driver, update(task, "TASK_FINISHED"))
            chunk = int(task.split("-")[1])
            expect(chunk in scheduler.results, "not-collected", task=task, chunk=chunk)
        done = len(scheduler.results)
        expect(not scheduler.finished.is_set(), "early", done=done, total=4)
        scheduler.statusUpdate(driver, update("chunk-1-attempt-1", "TASK_FINISHED"))
    expect(1 in scheduler.results, "not-collected", task="chunk-1-attempt-1", chunk=1)
    expect(progress == [1, 2, 3, 4], "progress", got=progress, expected=[1, 2, 3, 4])
    expect(scheduler.finished.is_set(), "not-finished", total=4)
    expect(
        scheduler.failure is None and scheduler.result() == bikeshare.run_sequential(SMALL),
        "result",
        failure=scheduler.failure,
    )
    expect(calls(driver) == [], "calls", calls=calls(driver))
    recorded = len(scheduler.timeline.updates)
    expect(recorded == 10, "timeline", got=recorded, expected=10)


@check(1, "update-duplicate", "updates")
def update_duplicate(package: Package) -> None:
    scheduler, progress = new_scheduler(package)
    with sandbox(package) as fake:
        driver = launch_everything(scheduler)
        scheduler.statusUpdate(driver, update("chunk-0-attempt-1", "TASK_FINISHED"))
        expect(
            "chunk-0-attempt-1" not in scheduler.running,
            "still-running",
            task="chunk-0-attempt-1",
        )

        def state() -> dict:
            return {
                "self.results": sorted(scheduler.results),
                "self.attempts": dict(scheduler.attempts),
                "self.pending": list(scheduler.pending),
                "self.running": sorted(scheduler.running),
                "progress": list(progress),
                "sandbox reads": len(fake.reads),
                "driver calls": calls(driver),
            }

        for what, late in [
            ("a repeated TASK_FINISHED", update("chunk-0-attempt-1", "TASK_FINISHED")),
            ("a late TASK_FAILED", update("chunk-0-attempt-1", "TASK_FAILED", message="late")),
            ("the update of another framework's task", update("someone-else", "TASK_FINISHED")),
        ]:
            before = state()
            scheduler.statusUpdate(driver, late)
            after = state()
            for field in before:
                expect(
                    before[field] == after[field],
                    "changed",
                    what=what,
                    field=field,
                    before=before[field],
                    after=after[field],
                )
    chunks = [u["chunk"] for u in scheduler.timeline.updates]
    expect(chunks == [0, None, None, None], "timeline", got=chunks, expected=[0, None, None, None])


@check(1, "update-failed", "updates")
def update_failed(package: Package) -> None:
    failed_states = sorted(package.scheduler.FAILED_STATES)
    for state in failed_states:
        scheduler, _ = new_scheduler(package)
        with sandbox(package):
            driver = launch_everything(scheduler)
            failure = update("chunk-1-attempt-1", state, message="it broke")
            scheduler.statusUpdate(driver, failure)
            pending = list(scheduler.pending)
            expect(pending == [1], "not-retried", state=state, pending=pending)
            expect(
                "chunk-1-attempt-1" not in scheduler.running,
                "still-running",
                state=state,
                task="chunk-1-attempt-1",
            )
            wanted = ["reviveOffers"]
            expect(
                calls(driver) == wanted, "calls", state=state, got=calls(driver), expected=wanted
            )
            scheduler.statusUpdate(driver, dict(failure))  # the same update, again
            pending = list(scheduler.pending)
            expect(pending == [1], "not-retried", state=f"{state} (twice)", pending=pending)
            expect(
                calls(driver) == wanted, "calls", state=state, got=calls(driver), expected=wanted
            )
            scheduler.resourceOffers(driver, [fakes.offer(1.0, 4096.0, "S1")])
            launched = driver.launched()
            expect(launched == ["chunk-1-attempt-2"], "next-attempt", state=state, got=launched)

    scheduler, _ = new_scheduler(package, max_attempts=2)
    with sandbox(package):
        driver = launch_everything(scheduler)
        scheduler.statusUpdate(driver, update("chunk-2-attempt-1", "TASK_FAILED", message="x"))
        scheduler.resourceOffers(driver, [fakes.offer(1.0, 4096.0, "S1")])
        scheduler.statusUpdate(driver, update("chunk-2-attempt-2", "TASK_FAILED", message="x"))
    expect(
        scheduler.finished.is_set() and (scheduler.failure or "").startswith("chunk 2 failed 2"),
        "not-failed",
        finished=scheduler.finished.is_set(),
        failure=scheduler.failure,
    )


# -- the whole job ------------------------------------------------------------------------------


@check(1, "job", None)
def job(package: Package) -> str:
    return whole.run_main(package)
