"""The live page under a workshop room's load, in headless Chromium: 30 frameworks subscribe at
once to a LocalCluster of 3 agents (raw v1 clients, bench/client.py's `Batch`, one thread each,
as bench/room.py's room), each runs three `true` tasks and one task that holds its resources
until the test lets it end. The page must show every framework and every task's end, its
dominant shares must match /master/state, the console must stay clean, and the master must keep
answering /health and /master/state meanwhile.

Why 30: the size of a room, and of bench/room.py. 120 tasks stay under the 150 rows the page
lists (app.js `TASKS_MAX`), so that every task can be found on it. Holders poll their flag every
0.5 s, not faster, to keep 30 shells light on a 2-core machine.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.client import Batch, TaskSpec
from localmesos import LocalCluster
from tests.integration import ui_support as ui

pytestmark = pytest.mark.integration

FRAMEWORKS = 30
QUICK_TASKS = 3  # `true`, per framework
ANSWER_WITHIN = 20.0  # s: "the master answers at all", never a timing assertion


@pytest.fixture
def browser() -> Iterator[Any]:
    ui.browser_paths()  # fail (CI) or skip first, before any cluster starts
    with ui.open_browser() as driver:
        yield driver


class Pinger(threading.Thread):
    """Asks /health and /master/state over and over until stopped; notes every failure."""

    def __init__(self, master: str) -> None:
        super().__init__(name="ui-load-pinger", daemon=True)
        self.master = master
        self.answers = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for path in ("/health", "/master/state"):
                try:
                    url = f"http://{self.master}{path}"
                    with urllib.request.urlopen(url, timeout=ANSWER_WITHIN) as reply:
                        reply.read()
                        self.answers += 1
                except OSError as error:  # urllib's HTTPError and timeouts included
                    self.failures.append(f"{path}: {error!r}")
            self.stop.wait(0.2)


def master_state(master: str) -> dict:
    with urllib.request.urlopen(f"http://{master}/master/state", timeout=ANSWER_WITHIN) as r:
        return json.load(r)


def dominant_shares(state: dict) -> dict[str, float]:
    """DRF's dominant share of each framework in /master/state: allocated = used + offered."""
    total = {n: sum(a["resources"][n] for a in state["slaves"]) for n in ("cpus", "mem")}
    return {
        f["id"]: max(
            (f["used_resources"][n] + f["offered_resources"][n]) / total[n] for n in ("cpus", "mem")
        )
        for f in state["frameworks"]
    }


def page_shares(driver: Any) -> dict[str, float]:
    return driver.execute_script(
        "const out = {}; for (const e of document.querySelectorAll("
        "'#frameworks [data-framework-id]')) out[e.dataset.frameworkId] = Number(e.dataset.share);"
        " return out;"
    )


def page_tasks(driver: Any) -> dict[str, str]:
    return driver.execute_script(
        "const out = {}; for (const e of document.querySelectorAll('#tasks [data-task-id]'))"
        " out[e.dataset.taskId] = e.dataset.state; return out;"
    )


def test_a_room_of_30_frameworks_on_the_page(browser: Any, tmp_path: Path) -> None:
    release = tmp_path / "release"
    with LocalCluster(agents=3, allocation_interval=0.1) as cluster:
        ui.load(browser, f"http://{cluster.leader}/")
        pinger = Pinger(cluster.leader)
        together = threading.Barrier(FRAMEWORKS)
        batches = []
        for i in range(FRAMEWORKS):
            # Holders of different sizes, so that the shares differ from one another and
            # from 0 while they run; half of them hold more memory than CPU, in share.
            cpus, mem = (0.02 * (1 + i % 10), 16.0) if i % 2 else (0.01, 32.0 * (1 + i % 5))
            hold = TaskSpec(
                f"f{i:02d}-hold",
                f"while [ ! -e {release} ]; do sleep 0.5; done",
                cpus=cpus,
                mem=mem,
            )
            quick = [TaskSpec(f"f{i:02d}-t{j}", "true") for j in range(QUICK_TASKS)]
            batches.append(
                Batch(cluster.leader, f"room-{i:02d}", [*quick, hold], start_together=together)
            )
        try:
            pinger.start()
            for batch in batches:
                batch.start()
            for batch in batches:
                assert batch.subscribed.wait(ui.WAIT), f"{batch.framework_name} did not subscribe"
                assert batch.error is None, f"{batch.framework_name}: {batch.error!r}"
            ids = {batch.framework_id for batch in batches}

            # Every framework on the page.
            ui.wait_for(
                lambda: ids <= set(page_shares(browser)),
                what=f"the {FRAMEWORKS} frameworks on the page",
            )

            # Every quick task ended, every holder running, as the page shows them.
            expected = {
                spec.task_id: "TASK_RUNNING" if spec.task_id.endswith("hold") else "TASK_FINISHED"
                for batch in batches
                for spec in batch.tasks
            }

            def shown(want: dict[str, str]) -> bool:
                tasks = page_tasks(browser)
                return all(tasks.get(task_id) == state for task_id, state in want.items())

            try:
                ui.wait_for(lambda: shown(expected), timeout=60, what="the room's tasks")
            finally:
                errors = [f"{b.framework_name}: {b.error!r}" for b in batches if b.error]
                assert not errors, errors

            # The shares the page shows are those of /master/state (3 decimals on the page).
            def shares_match() -> dict[str, float] | None:
                want = dominant_shares(master_state(cluster.leader))
                have = page_shares(browser)
                ok = all(abs(have.get(fid, -1) - want.get(fid, -2)) < 0.001 for fid in ids)
                return want if ok else None

            matched = ui.wait_for(shares_match, what="the page's shares to match /master/state")
            assert all(matched[fid] > 0 for fid in ids), matched  # the holders hold something
            assert len({round(matched[fid], 3) for fid in ids}) > 1, matched

            # The holders end: every task finished on the page.
            release.touch()
            for batch in batches:
                assert batch.done.wait(60), f"{batch.framework_name}: tasks still running"
                assert batch.error is None, f"{batch.framework_name}: {batch.error!r}"
            finished = dict.fromkeys(expected, "TASK_FINISHED")
            ui.wait_for(lambda: shown(finished), what="every task TASK_FINISHED on the page")
            # And at the end, with nothing running, the shares still match.
            ui.wait_for(shares_match, what="the page's shares to match /master/state at the end")
        finally:
            pinger.stop.set()
            pinger.join(ANSWER_WITHIN * 2 + 5)
            for batch in batches:
                batch.close()
        assert pinger.failures == [], pinger.failures[:5]
        assert pinger.answers >= 2, "the master was never asked while the room ran"
        assert ui.console_errors(browser) == []
