"""The live page served by `localmesos ui` (localmesos/ui/proxy.py) in front of a LocalCluster,
in headless Chromium: it gets ready, shows a task, and follows the task's sandbox through the
proxy's `/agent/<id>/files/read` on its own origin, never the agent's address."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.client import Batch, TaskSpec
from localmesos import LocalCluster
from localmesos.ui.proxy import Proxy
from tests.integration import ui_support as ui

pytestmark = pytest.mark.integration


@pytest.fixture
def browser() -> Iterator[Any]:
    ui.browser_paths()  # fail (CI) or skip first, before any cluster starts
    with ui.open_browser() as driver:
        yield driver


def row_state(driver: Any, task_id: str) -> str | None:
    return ui.attr(driver, f'#tasks [data-task-id="{task_id}"]', "data-state")


def test_the_page_through_localmesos_ui_reads_the_sandbox_through_it(
    browser: Any, tmp_path: Path
) -> None:
    line = f"proxied-{uuid.uuid4().hex[:8]}"
    release = tmp_path / "release"
    command = f"echo {line}; echo {line}-err >&2; while [ ! -e {release} ]; do sleep 0.2; done"
    with (
        LocalCluster(agents=1, allocation_interval=0.1) as cluster,
        Proxy(cluster.leader, port=0) as proxy,
    ):
        ui.load(browser, f"{proxy.url}/")
        assert browser.execute_script("return window.MESOS_UI_MODE.agents;") == "proxy"
        (agent,) = cluster.agents
        assert ui.attr(browser, f'[data-agent-id="{agent}"]', "data-status") == "active"

        batch = Batch(cluster.leader, "proxied", [TaskSpec("proxied-0", command)])
        batch.start()
        try:
            ui.wait_for(
                lambda: row_state(browser, "proxied-0") == "TASK_RUNNING" or batch.error,
                what="proxied-0 TASK_RUNNING on the page",
            )
            assert batch.error is None, repr(batch.error)
            browser.find_element(
                "css selector", '#tasks [data-task-id="proxied-0"] a.sandbox-link'
            ).click()
            for pre, text in (("sandbox-stdout", line), ("sandbox-stderr", f"{line}-err")):
                ui.wait_js(
                    browser,
                    "return document.getElementById(arguments[0]).textContent"
                    ".includes(arguments[1]);",
                    pre,
                    text,
                    what=f"{text!r} in #{pre}",
                )
            # Every read of the sandbox went to the page's own origin, under /agent/<id>/.
            reads = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
                ".filter(n => n.includes('/files/read'));"
            )
            prefix = f"{proxy.url}/agent/{agent}/files/read?"
            assert reads, "the page read no sandbox file"
            assert all(read.startswith(prefix) for read in reads), reads

            release.touch()
            assert batch.done.wait(ui.WAIT), "proxied-0 did not end"
            assert batch.error is None, repr(batch.error)
            assert batch.states == {"proxied-0": "TASK_FINISHED"}
            ui.wait_for(
                lambda: row_state(browser, "proxied-0") == "TASK_FINISHED",
                what="proxied-0 TASK_FINISHED on the page",
            )
        finally:
            release.touch()
            batch.close()
        assert ui.console_errors(browser) == []
