"""The live page every master serves at `/` (localmesos/ui/static), in a real browser:
headless Chromium driven by Selenium, against a LocalCluster and pymesos frameworks.

One cluster per test, so that the file stays short under xdist: the first follows an agent
that joins, a task from launch to end with its sandbox, and the page's two toggles; the
second watches two frameworks' dominant shares converge as DRF predicts, then an agent die;
the third opens the page on a standby master.
Each state of the page is screenshotted (light and dark, desktop and phone) and checked not
blank, into build/ui-screenshots/.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import Scheduler

from localmesos import LocalCluster
from tests.integration import raw_http as rh
from tests.integration import ui_support as ui
from tests.integration.pymesos_harness import (
    Harness,
    command_task,
    framework_info,
    harness_fixture,
    resources_by_name,
    wait_state,
)

pytestmark = pytest.mark.integration

AGENT = "cpus:2;mem:1024"
TASK_CPUS, TASK_MEM = 0.5, 256.0  # an eighth of two such agents, in both resources


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


@pytest.fixture
def browser() -> Iterator[Any]:
    ui.browser_paths()  # fail (CI) or skip first, before any cluster starts
    with ui.open_browser() as driver:
        yield driver


class Greedy(Scheduler):
    """Launches tasks of a known size into every offer while it has tasks to launch; each
    task runs until the test creates the file named after it in ``flags``."""

    def __init__(self, name: str, flags: Path, tasks: int, first_line: str = "") -> None:
        self.name = name
        self.flags = flags
        self.left = tasks
        self.first_line = first_line
        self.launched: list[str] = []
        self.lock = threading.Lock()

    def command(self, task_id: str) -> str:
        line = self.first_line
        echo = f"echo {line}; echo {line}-err >&2; " if line else ""
        return f"{echo}while [ ! -e {self.flags / task_id} ]; do sleep 0.1; done"

    def resourceOffers(self, driver: Any, offers: list[dict]) -> None:
        for offer in offers:
            have = resources_by_name(offer["resources"])
            fit = int(min(have.get("cpus", 0) // TASK_CPUS, have.get("mem", 0) // TASK_MEM))
            tasks = []
            with self.lock:
                for _ in range(min(fit, self.left)):
                    task_id = f"{self.name}-{len(self.launched)}"
                    self.launched.append(task_id)
                    self.left -= 1
                    tasks.append(
                        command_task(
                            task_id, offer, self.command(task_id), cpus=TASK_CPUS, mem=TASK_MEM
                        )
                    )
            # A short filter: what is declined comes back soon, so DRF decides who gets it.
            if tasks:
                driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 0.1})
            else:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": 0.1})

    def release(self, task_id: str) -> None:
        (self.flags / task_id).touch()


def framework_of(state: dict, name: str) -> dict | None:
    return next((f for f in state["frameworks"] if f["name"] == name), None)


def used_cpus(state: dict, name: str) -> float:
    framework = framework_of(state, name)
    return framework["used_resources"]["cpus"] if framework else 0.0


def dominant_share(state: dict, framework: dict) -> float:
    """DRF's dominant share of one framework in /master/state: allocated = used + offered."""
    total = {
        name: sum(agent["resources"][name] for agent in state["slaves"]) for name in ("cpus", "mem")
    }
    return max(
        (framework["used_resources"][name] + framework["offered_resources"][name]) / total[name]
        for name in ("cpus", "mem")
    )


def page_share(driver: Any, framework_id: str) -> float | None:
    value = ui.attr(driver, f'#frameworks [data-framework-id="{framework_id}"]', "data-share")
    return None if value is None else float(value)


def task_state(driver: Any, task_id: str) -> str | None:
    return ui.attr(driver, f'#tasks [data-task-id="{task_id}"]', "data-state")


def log_kinds(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#event-log li')].map(li => li.dataset.kind);"
    )


def test_the_page_follows_an_agent_a_task_its_sandbox_and_its_toggles(
    harness: Harness, browser: Any, tmp_path: Path
) -> None:
    cluster = harness.cluster(agents=1, resources=AGENT, allocation_interval=0.1)
    page = f"http://{cluster.leader}/"

    # 1. It loads, with no console error, and says when it is live.
    ui.load(browser, page)
    assert ui.console_errors(browser) == []
    assert browser.execute_script("return document.documentElement.lang;") == "es"
    (first,) = cluster.agents
    assert ui.attr(browser, f'[data-agent-id="{first}"]', "data-status") == "active"
    ui.screenshots(browser, "empty")

    # 2. An agent that joins appears, and the event log says so.
    second = cluster.add_agent()
    ui.wait_js(
        browser,
        "return document.querySelector(`[data-agent-id='${arguments[0]}']`)?.dataset.status"
        " === 'active';",
        second,
        what="the new agent's box",
    )
    assert "AGENT_ADDED" in log_kinds(browser)

    # 7. The language and theme toggles.
    before = browser.find_element("id", "h-agents").text
    browser.find_element("id", "lang-toggle").click()
    ui.wait_js(browser, "return document.documentElement.lang === 'en';", what="lang=en")
    after = browser.find_element("id", "h-agents").text
    assert (before, after) == ("Agentes", "Agents")
    added = browser.find_element("css selector", '#event-log li[data-kind="AGENT_ADDED"] .text')
    assert "joined" in added.text, added.text  # the log is written again in the new language
    theme = browser.execute_script("return document.documentElement.dataset.theme;")
    browser.find_element("id", "theme-toggle").click()
    other = {"light": "dark", "dark": "light"}[theme]
    ui.wait_js(browser, "return document.documentElement.dataset.theme === arguments[0];", other)
    browser.find_element("id", "lang-toggle").click()
    ui.wait_js(browser, "return document.documentElement.lang === 'es';", what="lang=es")

    # 3. A pymesos framework's task appears, runs, and (6.) its sandbox shows its output.
    line = f"ui-line-{uuid.uuid4().hex[:8]}"
    scheduler = Greedy("echo", tmp_path, tasks=1, first_line=line)
    harness.driver(scheduler, cluster, framework=framework_info("echo"))
    ui.wait_js(
        browser,
        "return document.querySelector(`#tasks [data-task-id='echo-0']`)?.dataset.state"
        " === 'TASK_RUNNING';",
        what="echo-0 TASK_RUNNING on the page",
    )
    row = browser.find_element("css selector", '#tasks [data-task-id="echo-0"]')
    framework_id = row.get_attribute("data-framework-id")
    assert framework_id and int(row.get_attribute("data-shown-at")) > 0
    row.find_element("css selector", "a.sandbox-link").click()
    ui.wait_js(
        browser,
        "return document.getElementById('sandbox-stdout').textContent.includes(arguments[0]);",
        line,
        what="the task's stdout in the sandbox view",
    )
    ui.wait_js(
        browser,
        "return document.getElementById('sandbox-stderr').textContent.includes(arguments[0]);",
        f"{line}-err",
        what="the task's stderr in the sandbox view",
    )
    ui.screenshots(browser, "sandbox")

    scheduler.release("echo-0")
    ui.wait_js(
        browser,
        "return document.querySelector(`#tasks [data-task-id='echo-0']`)?.dataset.state"
        " === 'TASK_FINISHED';",
        what="echo-0 TASK_FINISHED on the page",
    )
    kinds = log_kinds(browser)
    assert {"TASK_ADDED", "TASK_UPDATED", "FRAMEWORK_ADDED"} <= set(kinds), kinds
    # One log line per update, each with the state that its update carried (newest first).
    said = browser.execute_script(
        "return [...document.querySelectorAll('#event-log li')].map(li => li.entry)"
        ".filter(e => e.kind === 'TASK_UPDATED' && e.values.task === 'echo-0')"
        ".map(e => e.values.state);"
    )
    assert said == ["TASK_FINISHED", "TASK_RUNNING", "TASK_STARTING"], said
    assert ui.console_errors(browser) == []


def test_drf_shares_converge_and_a_killed_agent_shows(
    harness: Harness, browser: Any, tmp_path: Path
) -> None:
    cluster = harness.cluster(agents=2, resources=AGENT, allocation_interval=0.1)
    ui.load(browser, f"http://{cluster.leader}/")

    # 4. "first" alone takes the whole cluster: 8 tasks of an eighth each.
    first = Greedy("first", tmp_path, tasks=8)
    harness.driver(first, cluster, framework=framework_info("first"))
    state = wait_state(cluster, lambda s: used_cpus(s, "first") == 4, timeout=ui.WAIT)
    first_id = framework_of(state, "first")["id"]
    ui.wait_for(lambda: page_share(browser, first_id) == 1.0, what="first's share 1.000")

    # "second" arrives with nothing; as "first" gives back half its tasks, DRF offers each
    # freed eighth to the lower share, "second", which holds it.
    second = Greedy("second", tmp_path, tasks=8)
    harness.driver(second, cluster, framework=framework_info("second"))
    state = wait_state(cluster, lambda s: framework_of(s, "second"), timeout=ui.WAIT)
    second_id = framework_of(state, "second")["id"]
    ui.wait_for(lambda: page_share(browser, second_id) == 0.0, what="second's share 0.000")
    for task_id in first.launched[:4]:
        first.release(task_id)
    state = wait_state(
        cluster,
        lambda s: used_cpus(s, "first") == 2 and used_cpus(s, "second") == 2,
        timeout=ui.WAIT,
    )
    expected = {
        framework_id: dominant_share(state, framework_of(state, name))
        for framework_id, name in ((first_id, "first"), (second_id, "second"))
    }
    assert expected == {first_id: 0.5, second_id: 0.5}

    def shown_as_expected() -> bool:
        return all(
            (shown := page_share(browser, framework_id)) is not None and abs(shown - share) < 0.01
            for framework_id, share in expected.items()
        )

    ui.wait_for(shown_as_expected, what=f"the page's shares to match {expected}")
    # Each agent's box is filled by both frameworks' colours, from the same allocation.
    assert browser.execute_script("return document.querySelectorAll('#agents rect.u0').length") > 0
    assert browser.execute_script("return document.querySelectorAll('#agents rect.u1').length") > 0
    ui.screenshots(browser, "drf")

    # 5. An agent's process dies: the page shows it gone and tells the log.
    victim = cluster.agents[0]
    cluster.kill_agent(victim)
    ui.wait_js(
        browser,
        "return document.querySelector(`[data-agent-id='${arguments[0]}']`)?.dataset.status"
        " === 'gone';",
        victim,
        what="the killed agent shown gone",
    )
    lost = ui.wait_js(
        browser,
        "return [...document.querySelectorAll('#event-log li')].map(li => li.entry)"
        ".find(e => ['AGENT_DISCONNECTED', 'AGENT_UNREACHABLE', 'AGENT_REMOVED'].includes(e.kind)"
        " && e.values.name === arguments[0]);",
        victim.rsplit("-", 1)[1],
        what="a log line about the lost agent",
    )
    # Both frameworks held tasks on every agent: the line counts what the agent took along.
    assert lost["values"]["tasks"] >= 2, lost
    ui.screenshots(browser, "agent-lost")
    assert ui.console_errors(browser) == []


def test_a_standby_sends_the_browser_to_the_leader() -> None:
    # Every master serves the page; a standby's API calls would be redirected to the leader,
    # another origin, so the page follows /master/redirect before it asks for anything.
    ui.browser_paths()
    with (
        LocalCluster(agents=1, masters=2) as cluster,
        ui.open_browser(accept_language="en-GB,en") as browser,
    ):
        standby = next(m for m in cluster.masters if m != cluster.leader)
        ui.load(browser, f"http://{standby}/")
        port = cluster.leader.rpartition(":")[2]
        assert browser.current_url.rstrip("/").endswith(f":{port}"), browser.current_url
        assert ui.console_errors(browser) == []
        # A browser that prefers English gets the page in English.
        assert browser.execute_script("return document.documentElement.lang;") == "en"
        assert browser.find_element("id", "h-agents").text == "Agents"


def test_two_frameworks_with_one_name_are_told_apart(browser: Any) -> None:
    """The same program run twice: the legend adds the end of each framework's ID."""
    with (
        LocalCluster(agents=1, allocation_interval=0.1) as cluster,
        rh.subscribe(cluster.master, rh.framework_info(name="twin")) as a,
        rh.subscribe(cluster.master, rh.framework_info(name="twin")) as b,
    ):
        ui.load(browser, f"http://{cluster.leader}/")
        labels = ui.wait_js(
            browser,
            "const items = [...document.querySelectorAll('#frameworks [data-framework-id]')];"
            "return items.length === 2 && Object.fromEntries("
            "items.map(i => [i.dataset.frameworkId, i.textContent]));",
            what="both frameworks in the legend",
        )
        for sub in (a, b):
            suffix = sub.framework_id.rsplit("-", 1)[1]
            assert labels[sub.framework_id].startswith(f"twin ({suffix}) "), labels
        assert ui.console_errors(browser) == []
