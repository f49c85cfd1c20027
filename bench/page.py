"""The live page's delay: from a task update going out on the master's operator stream to the
page showing it, in headless Chromium.

One LocalCluster of 3 agents (`allocation_interval=0.1` s) runs in this process, with the page
(its master's `/`) open in Chromium. Two scenarios, alternating, RUNS times each, on the same
page:

- **quiet**: one framework (bench/client.py's `Batch`, raw HTTP) runs TASKS `true` tasks, one
  per offer, so updates come a few at a time;
- **room**: 30 frameworks subscribe at once and each runs 3 `true` tasks, as a workshop room
  would (bench/room.py), so the page also draws 30 frameworks and polls a larger state.

For each task update (TASK_STARTING, TASK_RUNNING, TASK_FINISHED), the time it went out is
stamped in the master, as it hands TASK_UPDATED to its operator streams (`sends()` wraps
`Subscribers.task_updated` for the run, as bench/recovery.py wraps the master's methods). The
page's moment is its event log's new line's `data-shown-at` (`Date.now()`, set in the same call
that renders the task's row), collected by a MutationObserver that the benchmark adds, so that
no update is missed when several come together. Both are the machine's wall clock in ms
(`time.time()` here, `Date.now()` there): good to about 1 ms. Updates are matched by task and
order (the n-th update of a task is the same everywhere), not by state: the page labels an
update with the task's latest state, which may already be a later one.

The floor is a raw operator subscriber in a process of its own, as the browser is: its delay
for the same updates. A raw subscriber in this process is shown too; it shares the GIL with the
cluster. The page does not poll for tasks (it polls /master/state each second, for the
allocation only), so its delay is the stream's delivery plus the browser's reading, parsing and
drawing. A benchmark reports; it never fails on a figure.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from bench.client import Batch, TaskSpec
from bench.common import Result
from bench.operator_stream import OperatorReader
from localmesos.cluster import LocalCluster
from localmesos.master.operator import Subscribers
from tools import ROOT
from tools.browser import BrowserMissing, browser_paths, open_browser

TASKS = 40  # quiet: 3 updates each, 120 in all
ROOM = 30
ROOM_TASKS = 3
RUNS = 3  # of each scenario, alternating, on the same page
GOAL_MS = 100.0  # a person watching a projector sees it as at once
WAIT = 60.0
STATES = ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED")

# Every TASK_UPDATED line that the page adds to its event log, as it is added.
OBSERVE = """
window.__benchShown = [];
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.dataset?.kind !== "TASK_UPDATED") continue;
      window.__benchShown.push([node.entry.values.task, Number(node.dataset.shownAt)]);
    }
  }
}).observe(document.getElementById("event-log"), { childList: true });
return true;
"""


def missing_tools() -> str | None:
    try:
        browser_paths()
    except BrowserMissing as error:
        return str(error)
    return None


def until(predicate: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def by_task(updates: list[tuple[str, float]]) -> dict[tuple[str, int], float]:
    """Each task's n-th update, with its time: the page and the raw subscribers read the same
    stream in the same order, so the n-th of a task is the same update everywhere. (The page
    labels an update with the task's latest state, which may be later than the update's own:
    the key is the order, not the state.)"""
    seen: dict[str, int] = {}
    out = {}
    for task, at in updates:
        n = seen[task] = seen.get(task, -1) + 1
        out[(task, n)] = at
    return out


@contextlib.contextmanager
def sends() -> Iterator[list[tuple[str, float]]]:
    """Every TASK_UPDATED that the masters of this process hand to their operator streams, with
    the time (ms), for as long as the block runs: the moment the event goes out."""
    sent: list[tuple[str, float]] = []
    original = Subscribers.task_updated

    def stamped(self: Subscribers, task: Any, status: dict) -> None:
        sent.append((status["task_id"]["value"], time.time() * 1000))
        original(self, task, status)

    Subscribers.task_updated = stamped  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Subscribers.task_updated = original  # type: ignore[method-assign]


@dataclass
class Measured:
    """Delays in ms behind the master's send, of each update matched."""

    page: list[float]
    here: list[float]  # a raw subscriber in this process
    elsewhere: list[float]  # a raw subscriber in another process
    sent: int


def measure(driver: Any, master: str, batches: list[Batch]) -> Measured:
    """Run ``batches`` while the page and two raw operator subscribers watch."""
    expected = len(STATES) * sum(len(batch.tasks) for batch in batches)
    here = OperatorReader(master, expected, clock=time.time)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.page", "--read", master, str(expected)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        here.start()
        assert child.stdout is not None
        if child.stdout.readline().strip() != "subscribed":
            raise RuntimeError("the operator subscriber in another process did not subscribe")
        if not here.subscribed.wait(WAIT) or here.error:
            raise RuntimeError(f"the operator subscriber did not subscribe: {here.error!r}")
        driver.execute_script("window.__benchShown = [];")
        with sends() as sent_list:
            for batch in batches:
                batch.start()
            for batch in batches:
                if not batch.done.wait(WAIT) or batch.error:
                    why = batch.error or f"tasks unfinished: {batch.states or 'none launched'}"
                    raise RuntimeError(f"{batch.framework_name}: {why}")
            here.done.wait(WAIT)
        sent = by_task(sent_list)

        def page_updates() -> dict[tuple[str, int], float]:
            return by_task(driver.execute_script("return window.__benchShown;"))

        with contextlib.suppress(TimeoutError):  # what the page missed is reported below
            until(lambda: sent.keys() <= page_updates().keys(), "the page", timeout=15)
        shown = page_updates()
        out, _ = child.communicate(timeout=WAIT)
        elsewhere = by_task([(task, at * 1000) for task, at in json.loads(out or "[]")])
    finally:
        here.close()
        if child.poll() is None:
            child.kill()
            child.wait()
        for batch in batches:
            batch.close()
    read_here = by_task([(task, at * 1000) for task, _, at in here.in_order])

    def behind(arrivals: dict[tuple[str, int], float]) -> list[float]:
        return [arrivals[key] - at for key, at in sent.items() if key in arrivals]

    return Measured(behind(shown), behind(read_here), behind(elsewhere), len(sent))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} ms, 95th percentile {p95(values):.2f} ms"


def result(name: str, runs: list[Measured]) -> Result:
    page = [delay for run in runs for delay in run.page]
    here = [delay for run in runs for delay in run.here]
    elsewhere = [delay for run in runs for delay in run.elsewhere]
    sent = sum(run.sent for run in runs)
    value = statistics.median(page)
    return Result(
        name=name,
        value=value,
        unit="ms",
        goal=f"median < {GOAL_MS:g} ms",
        met=value < GOAL_MS,
        floor_name="a raw operator subscriber in another process",
        floor=statistics.median(elsewhere),
        details=[
            f"page: {spread(page)}, max {max(page):.1f} ms; {len(page)} of {sent} updates "
            "shown; median of each run: "
            + ", ".join(f"{statistics.median(run.page):.1f} ms" for run in runs),
            f"raw subscriber in another process: {spread(elsewhere)}",
            f"raw subscriber in this process (shares the cluster's GIL): {spread(here)}",
        ],
    )


def run() -> list[Result]:
    why = missing_tools()
    if why is not None:
        print(f"page: skipped ({why})", flush=True)
        return []
    alone: list[Measured] = []
    loaded: list[Measured] = []
    with ExitStack() as stack:
        cluster = stack.enter_context(LocalCluster(agents=3, allocation_interval=0.1))
        driver = stack.enter_context(open_browser())
        driver.get(f"http://{cluster.master}/")
        until(
            lambda: (
                driver.execute_script("return document.documentElement.dataset.ready;") == "true"
            ),
            "the page to be ready",
        )
        driver.execute_script(OBSERVE)
        for n in range(RUNS):
            quiet = [
                Batch(
                    cluster.master,
                    f"bench-page-{n}",
                    [TaskSpec(f"q{n}-{i}", "true") for i in range(TASKS)],
                    per_offer=1,
                )
            ]
            alone.append(measure(driver, cluster.master, quiet))
            together = threading.Barrier(ROOM)
            room = [
                Batch(
                    cluster.master,
                    f"bench-room-{n}-{i:02d}",
                    [TaskSpec(f"r{n}-{i:02d}-{j}", "true") for j in range(ROOM_TASKS)],
                    start_together=together,
                )
                for i in range(ROOM)
            ]
            loaded.append(measure(driver, cluster.master, room))
    return [
        result(f"page: a task update, from the master's operator stream to the page ({TASKS} "
               f"tasks one per offer, {RUNS} runs)", alone),
        result(f"page: the same with {ROOM} frameworks at once ({ROOM_TASKS} tasks each, "
               f"{RUNS} runs)", loaded),
    ]  # fmt: skip


def read_elsewhere(master: str, expected: int) -> None:
    """The floor's subscriber, in a process of its own as the browser is: says when it has
    subscribed, then prints every TASK_UPDATED's task and arrival (JSON) once it has them all."""
    reader = OperatorReader(master, expected, clock=time.time)
    reader.start()
    reader.subscribed.wait(WAIT)
    print("subscribed" if reader.error is None else f"error {reader.error!r}", flush=True)
    reader.done.wait(WAIT)
    print(json.dumps([[task, at] for task, _, at in reader.in_order]), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--read"]:
        read_elsewhere(sys.argv[2], int(sys.argv[3]))
    else:
        for line in run():
            print(line.line())
