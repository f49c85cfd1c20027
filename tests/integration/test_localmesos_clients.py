"""Acceptance by the tools themselves: clients that operators use against Mesos, installed
from PyPI or from the machine, run unmodified against localmesos (issue 15, item 9).

- the `mesos` CLI of avmesos-cli (its command is `mesos-cli`): agent, framework and task
  listings, active and all;
- pymesos's operator drivers: `MesosOperatorMasterDriver` subscribed to the master's event
  stream while a pymesos scheduler launches a task, its GET_* calls, and
  `MesosOperatorAgentDriver` on an agent;
- a headless Chromium that loads a page reading the master and an agent through JSONP, as the
  Mesos web UI does.

What each one prints or receives is in localmesos/CONFORMANCE.md ("Clients").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosOperatorAgentDriver, MesosOperatorMasterDriver, OperatorMaster

from localmesos.cluster import LocalCluster
from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    command_task,
    framework_info,
    harness_fixture,
    stop_driver,
)
from tools import in_ci, site

pytestmark = pytest.mark.integration

WAIT = 15.0


def missing(what: str, how: str) -> None:
    """Fail in CI, which must run every test; skip elsewhere, saying why in one line."""
    message = f"{what} not found ({how})"
    if in_ci():
        pytest.fail(f"CI must run every test: {message}")
    pytest.skip(message)


@dataclass
class Workload:
    """What pymesos schedulers left on the cluster: a framework still running a task, one
    that failed over (disconnected, still registered), and one torn down."""

    cluster: LocalCluster
    running_id: str
    disconnected_id: str
    removed_id: str


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


@pytest.fixture(scope="module")
def workload(harness: Harness) -> Workload:
    cluster = harness.cluster(agents=2, allocation_interval=0.3)

    def run(name: str, tasks: dict[str, str], wait_for: str) -> tuple[Any, str]:
        scheduler, driver, framework_id = harness.subscribe(
            cluster, framework_info(name, failover_timeout=3600.0)
        )
        offer = scheduler.wait_offers(timeout=WAIT)[0]
        infos = [command_task(task_id, offer, command) for task_id, command in tasks.items()]
        driver.launchTasks(offer["id"], infos, filters={"refuse_seconds": 0})
        for task_id in tasks:
            state = "TASK_RUNNING" if task_id == wait_for else "TASK_FINISHED"
            scheduler.wait_update(task_id, state, timeout=WAIT)
        driver.suppressOffers()
        return driver, framework_id

    _, running_id = run("cli-running", {"long": "sleep 300", "quick": "true"}, "long")
    driver, disconnected_id = run("cli-disconnected", {"brief": "true"}, "")
    stop_driver(driver, failover=True)  # disconnected: inactive, its failover timer runs
    driver, removed_id = run("cli-removed", {"once": "echo once"}, "")
    stop_driver(driver)  # TEARDOWN: a completed framework
    cluster.wait_for(
        lambda s: (
            any(f["id"] == removed_id for f in s["completed_frameworks"])
            and any(f["id"] == disconnected_id and not f["active"] for f in s["frameworks"])
        ),
        timeout=WAIT,
    )
    return Workload(cluster, running_id, disconnected_id, removed_id)


# -- the `mesos` CLI (avmesos-cli) ----------------------------------------------------------------


def mesos_cli(cluster: LocalCluster, *args: str) -> str:
    """Run `mesos-cli ARGS` with a config file naming the cluster's master; its stdout."""
    bin_dir = Path(sys.executable).parent
    command = shutil.which("mesos-cli", path=str(bin_dir))
    if command is None:
        missing("mesos-cli", "make setup installs avmesos-cli")
    with tempfile.TemporaryDirectory() as home:
        config = Path(home, "config.toml")
        config.write_text(f'[master]\naddress = "{cluster.leader}"\n')
        # Its script runs `python -m avmesos.cli.mesos-cli`: the venv's python must come first.
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": home,
            "MESOS_CLI_CONFIG": str(config),
        }
        result = subprocess.run(
            [str(command), *args], capture_output=True, text=True, env=env, timeout=120
        )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def table(output: str) -> list[list[str]]:
    """The CLI's table: a header, then rows, each column padded to its widest entry plus two
    spaces, so it starts where its header does (an entry may be empty)."""
    lines = output.rstrip("\n").splitlines()
    starts = [match.start() for match in re.finditer(r"\S+(?: \S+)*", lines[0])]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [[line[begin:end].strip() for begin, end in bounds] for line in lines]


def test_mesos_cli_lists_the_agents(workload: Workload) -> None:
    rows = table(mesos_cli(workload.cluster, "agent", "list"))
    assert rows[0] == ["Agent ID", "Hostname", "Active"]
    assert sorted(rows[1:]) == sorted([a, "localhost", "True"] for a in workload.cluster.agents)


def test_mesos_cli_lists_the_frameworks(workload: Workload) -> None:
    rows = table(mesos_cli(workload.cluster, "framework", "list"))
    assert rows[0] == ["ID", "Active", "Hostname", "Name"]
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id[workload.running_id][1] == "True"
    assert by_id[workload.running_id][3] == "cli-running"
    # Only active frameworks by default.
    assert workload.disconnected_id not in by_id
    rows = table(mesos_cli(workload.cluster, "framework", "list", "-a"))
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id[workload.disconnected_id][1] == "False"
    assert by_id[workload.running_id][1] == "True"
    # The CLI reads only `frameworks` of /master/frameworks, never `completed_frameworks`:
    # a torn down framework is listed by neither command, against Mesos as here.
    assert workload.removed_id not in by_id


def test_mesos_cli_lists_the_tasks(workload: Workload) -> None:
    # `GET /tasks?order=asc&limit=-1`: every task, oldest first.
    rows = table(mesos_cli(workload.cluster, "task", "list"))
    assert rows[0] == ["ID", "State", "Framework ID", "Executor ID"]
    # Without -a, the tasks whose latest status is TASK_RUNNING.
    assert [row[:3] for row in rows[1:]] == [["long", "TASK_RUNNING", workload.running_id]]
    rows = table(mesos_cli(workload.cluster, "task", "list", "-a"))
    listed = {row[0]: row[1:3] for row in rows[1:]}
    assert listed == {
        "long": ["TASK_RUNNING", workload.running_id],
        "quick": ["TASK_FINISHED", workload.running_id],
        "brief": ["TASK_FINISHED", workload.disconnected_id],
        "once": ["TASK_FINISHED", workload.removed_id],
    }
    inspected = mesos_cli(workload.cluster, "task", "inspect", "long")
    assert '"id": "long"' in inspected and '"state": "TASK_RUNNING"' in inspected


# -- pymesos's operator drivers -------------------------------------------------------------------


class RecordingOperator(OperatorMaster):
    """Every event the operator driver hands over, in order (pymesos's IO thread)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._cond = threading.Condition()

    def _record(self, name: str, value: Any) -> None:
        with self._cond:
            self.events.append((name, value))
            self._cond.notify_all()

    def taskAdded(self, task_info: dict) -> None:
        self._record("taskAdded", task_info)

    def taskUpdated(self, task_info: dict) -> None:
        self._record("taskUpdated", task_info)

    def frameworkAdded(self, framework_info: dict) -> None:
        self._record("frameworkAdded", framework_info)

    def frameworkUpdated(self, framework_info: dict) -> None:
        self._record("frameworkUpdated", framework_info)

    def frameworkRemoved(self, framework_info: dict) -> None:
        self._record("frameworkRemoved", framework_info)

    def agentAdded(self, agent_info: dict) -> None:
        self._record("agentAdded", agent_info)

    def agentRemoved(self, agent_id: str) -> None:
        self._record("agentRemoved", agent_id)

    def wait(self, predicate: Any, what: str) -> Any:
        with self._cond:
            found = self._cond.wait_for(predicate, WAIT)
        assert found, f"no {what} among {[name for name, _ in self.events]}"
        return found


def test_pymesos_operator_driver_follows_a_task(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.3)
    operator = RecordingOperator()
    driver = MesosOperatorMasterDriver(cluster.master, operator)
    driver.start()
    try:
        scheduler = RecordingScheduler()
        framework = framework_info("watched-by-pymesos")
        scheduler_driver = harness.driver(scheduler, cluster, framework=framework)
        framework_id = scheduler.wait_registered(WAIT)
        added = operator.wait(
            lambda: [v for n, v in operator.events if n == "frameworkAdded"], "frameworkAdded"
        )
        assert added[0]["framework_info"]["id"]["value"] == framework_id
        offer = scheduler.wait_offers(timeout=WAIT)[0]
        task = command_task("observed", offer, "echo observed")
        scheduler_driver.launchTasks(offer["id"], [task])
        scheduler.wait_update("observed", "TASK_FINISHED", timeout=WAIT)

        # The status of each update, in order. TASK_UPDATED's `state` is the task's latest,
        # which may already be ahead of the status it carries (Master::updateTask).
        def states() -> list[str] | None:
            seen = [v["status"]["state"] for n, v in operator.events if n == "taskUpdated"]
            return seen if "TASK_FINISHED" in seen else None

        assert operator.wait(states, "TASK_FINISHED") == [
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_FINISHED",
        ]
        [task_added] = [v for n, v in operator.events if n == "taskAdded"]
        assert task_added["task_id"] == {"value": "observed"}
        assert task_added["state"] == "TASK_STAGING"
        names = [n for n, _ in operator.events]
        assert names.index("taskAdded") < names.index("taskUpdated")
        for name, value in operator.events:
            if name == "taskUpdated":
                assert value["framework_id"] == {"value": framework_id}
                assert value["status"]["task_id"] == {"value": "observed"}

        # Its one-shot calls, on the same master.
        assert driver.getHealth() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}
        assert driver.getVersion()["get_version"]["version_info"]["version"] == "1.11.0"
        flags = driver.getFlags()["get_flags"]["flags"]
        assert {"name": "port", "value": cluster.leader.rpartition(":")[2]} in flags
        metrics = driver.getMetrics(5 * 10**9)["get_metrics"]["metrics"]
        assert {"name": "master/tasks_finished", "value": 1.0} in metrics
        state = driver.getState()["get_state"]
        done = state["get_tasks"]["completed_tasks"]
        assert [t["task_id"]["value"] for t in done] == ["observed"]
        frameworks = driver.getFrameworks()["get_frameworks"]["frameworks"]
        assert [f["framework_info"]["id"]["value"] for f in frameworks] == [framework_id]
        executors = driver.getExecutors()
        assert executors == {"type": "GET_EXECUTORS", "get_executors": {"executors": []}}
        tasks = driver.getTasks()["get_tasks"]["completed_tasks"]
        assert [t["task_id"]["value"] for t in tasks] == ["observed"]
        agents = driver.getAgents()["get_agents"]["agents"]
        assert [a["agent_info"]["id"]["value"] for a in agents] == cluster.agents
        roles = driver.getRoles()["get_roles"]["roles"]
        assert [r["name"] for r in roles] == ["*"]
        assert driver.getMaster()["get_master"]["master_info"]["port"] == int(
            cluster.leader.rpartition(":")[2]
        )
        # A call localmesos does not implement reaches pymesos as Mesos's refusal would.
        with pytest.raises(RuntimeError, match="code=501"):
            driver.getWeights()

        stop_driver(scheduler_driver)
        removed = operator.wait(
            lambda: [v for n, v in operator.events if n == "frameworkRemoved"], "frameworkRemoved"
        )
        assert removed[0]["id"]["value"] == framework_id
    finally:
        driver.stop()
        driver.join()


def test_pymesos_agent_operator_driver(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.3)
    scheduler, driver, framework_id = harness.subscribe(cluster, framework_info("on-the-agent"))
    offer = scheduler.wait_offers(timeout=WAIT)[0]
    driver.launchTasks(offer["id"], [command_task("kept", offer, "sleep 300")])
    scheduler.wait_update("kept", "TASK_RUNNING", timeout=WAIT)
    agent = MesosOperatorAgentDriver(cluster.agent_url(cluster.agents[0]).removeprefix("http://"))
    assert agent.getHealth() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    tasks = agent.getTasks()["get_tasks"]
    assert [t["task_id"]["value"] for t in tasks["launched_tasks"]] == ["kept"]
    executors = agent.getExecutors()["get_executors"]["executors"]
    assert [e["executor_info"]["executor_id"]["value"] for e in executors] == ["kept"]
    frameworks = agent.getFrameworks()["get_frameworks"]["frameworks"]
    assert [f["framework_info"]["id"]["value"] for f in frameworks] == [framework_id]
    sandbox = f"/frameworks/{framework_id}/executors/kept/runs/latest"
    listing = agent.listFiles(sandbox)["list_files"]["file_infos"]
    assert {f"{sandbox}/stdout", f"{sandbox}/stderr"} <= {f["path"] for f in listing}
    assert agent.readFile(f"{sandbox}/stdout", 10, 0)["read_file"] == {"size": 0, "data": ""}
    # pymesos has no GET_CONTAINERS answer to expect from localmesos: it says so.
    with pytest.raises(RuntimeError, match="code=501"):
        agent.getContainers()


# -- a browser, through JSONP ---------------------------------------------------------------------


PAGE = """<!doctype html>
<html><body>
<pre id="master">no answer from the master</pre>
<pre id="roles">no answer from /master/roles</pre>
<pre id="agent">no answer from the agent</pre>
<pre id="monitor">no answer from /monitor/statistics</pre>
<script>
// Callbacks named as the web UI's Angular names them (angular.callbacks._N).
var angular = {callbacks: {
  _0: function (state) {
    document.getElementById("master").textContent = "master " + state.version +
      " agents " + state.slaves.length + " frameworks " +
      state.frameworks.map(function (f) { return f.name; }).join(",") +
      " tasks " + state.frameworks[0].tasks.map(function (t) {
        return t.id + ":" + t.state; }).join(",");
  },
  _1: function (roles) {
    document.getElementById("roles").textContent = "roles " +
      roles.roles.map(function (r) { return r.name + "=" + r.frameworks.length; }).join(",");
  },
  _2: function (state) {
    document.getElementById("agent").textContent = "agent " + state.id +
      " executors " + state.frameworks[0].executors.map(function (e) {
        return e.id; }).join(",");
  },
  _3: function (stats) {
    document.getElementById("monitor").textContent = "monitor " + stats.map(function (s) {
      return s.executor_id + " memory " + (s.statistics.mem_rss_bytes > 0); }).join(",");
  }
}};
</script>
<script src="MASTER/master/state?jsonp=angular.callbacks._0"></script>
<script src="MASTER/master/roles?jsonp=angular.callbacks._1"></script>
<script src="AGENT/slave(1)/state?jsonp=angular.callbacks._2"></script>
<script src="AGENT/slave(1)/monitor/statistics?jsonp=angular.callbacks._3"></script>
</body></html>
"""


def test_a_browser_reads_the_master_and_an_agent_through_jsonp(harness: Harness) -> None:
    browser = site.chromium()
    if browser is None:
        missing("chromium", "make setup installs Debian's chromium")
    cluster = harness.cluster(agents=1, allocation_interval=0.3)
    scheduler, driver, _ = harness.subscribe(cluster, framework_info("in-a-browser"))
    offer = scheduler.wait_offers(timeout=WAIT)[0]
    driver.launchTasks(offer["id"], [command_task("shown", offer, "sleep 300")])
    scheduler.wait_update("shown", "TASK_RUNNING", timeout=WAIT)
    agent_url = cluster.agent_url(cluster.agents[0])
    page = PAGE.replace("MASTER", cluster.url).replace("AGENT", agent_url)
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "index.html").write_text(page)
        with site.serve(Path(directory)) as base, tempfile.TemporaryDirectory() as profile:
            result = subprocess.run(
                [
                    browser,
                    *site.CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "--dump-dom",
                    f"{base}/index.html",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    texts = dict(re.findall(r'<pre id="(\w+)">([^<]*)</pre>', dom))
    master = "master 1.11.0 agents 1 frameworks in-a-browser tasks shown:TASK_RUNNING"
    assert texts["master"] == master
    assert texts["roles"] == "roles *=1"
    assert texts["agent"] == f"agent {cluster.agents[0]} executors shown"
    assert texts["monitor"] == "monitor shown memory true"
