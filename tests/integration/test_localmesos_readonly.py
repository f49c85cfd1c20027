"""The read-only surface that tools read (CONFORMANCE.md: Read-only and operator endpoints):
JSONP, /master/roles, maintenance, `/master/tasks` with a negative limit, the endpoints Mesos
1.8 removed, and the agent's /monitor/statistics, /metrics/snapshot, /files/download and
`completed_frameworks`. Raw sockets (tests/integration/raw_http.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from localmesos.cluster import LocalCluster
from tests.integration import raw_http as rh
from tests.integration.pymesos_harness import only

pytestmark = pytest.mark.integration

MB = 1024 * 1024
CALLBACK = "angular.callbacks._0"  # what the Mesos web UI's Angular sends


@dataclass
class Running:
    """A framework with one finished command task and one that runs until the module ends."""

    sub: rh.Subscription
    agent: str  # "127.0.0.1:PORT"
    agent_id: str
    finished_task: str
    running_task: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # The offer timeout: an offer that came while a test followed a task is skipped, not
    # answered, and would hold its resources for good (see launch()).
    with LocalCluster(agents=1, allocation_interval=0.3, agent_timeout=5.0, offer_timeout=1.0) as c:
        yield c


def launch(sub: rh.Subscription, task: dict) -> None:
    """Launch ``task`` on the first offer that holds it and its command executor (0.1 cpus,
    32 MB), declining the others. On a loaded machine the first offer may be only what an
    ending task gave back, the rest being in an offer skipped while a task was followed: the
    cluster's offer timeout rescinds that one, and its resources are offered again."""
    need = {
        name: value
        for name, value in ((r["name"], r["scalar"]["value"]) for r in task["resources"])
    }
    while True:
        offers = sub.stream.wait_for(lambda e: e["type"] == "OFFERS")["offers"]["offers"]
        fitting = [
            o
            for o in offers
            if rh.offered(o, "cpus") >= need["cpus"] + 0.1 - 1e-9
            and rh.offered(o, "mem") >= need["mem"] + 32
        ]
        for offer in offers:
            if fitting and offer is fitting[0]:
                task["agent_id"] = offer["agent_id"]
                rh.accept_launch(sub, offer, task)
            else:
                rh.decline(sub, offer)
        if fitting:
            return


@pytest.fixture(scope="module")
def running(cluster: LocalCluster) -> Iterator[Running]:
    sub = rh.subscribe(cluster.master, rh.framework_info(name="readonly"))
    try:
        offer, statuses = rh.run_command_task(sub, "done", "printf 'done\\n' > out.txt")
        assert statuses[-1]["state"] == "TASK_FINISHED"
        # Busy on the CPU for a moment, so that it has CPU time for /monitor/statistics to
        # see, then asleep: a loop for the module's whole run took a core of a 2-core machine
        # from every other test beside it.
        burn = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 600"
        task = rh.command_task("busy", "", burn)
        task["resources"] = [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 10}},
        ]
        launch(sub, task)
        rh.follow_task(sub, "busy", {"TASK_RUNNING"})
        agent_id = offer["agent_id"]["value"]
        agent = cluster.agent_url(agent_id).removeprefix("http://")
        yield Running(sub, agent, agent_id, "done", "busy")
    finally:
        sub.close()


def unwrap(reply: rh.Reply, callback: str = CALLBACK) -> object:
    """The JSON inside a JSONP answer, which must be exactly `callback(<json>)`."""
    assert reply.status == 200, reply.body
    assert reply.header("Content-Type") == "text/javascript"
    text = reply.text
    assert text.startswith(callback + "(") and text.endswith(")"), text[:80]
    return json.loads(text[len(callback) + 1 : -1])


# -- JSONP ---------------------------------------------------------------------------------------


MASTER_JSONP = [
    "/master/state",
    "/state",
    "/master/frameworks",
    "/master/slaves",
    "/master/tasks",
    "/master/roles",
    "/master/flags",
    "/master/maintenance/schedule",
    "/master/maintenance/status",
    "/metrics/snapshot",
    "/version",
]


@pytest.mark.parametrize("path", MASTER_JSONP)
def test_master_endpoints_answer_jsonp(cluster: LocalCluster, running: Running, path: str) -> None:
    plain = rh.get(cluster.master, path)
    assert plain.header("Content-Type") == "application/json"
    wrapped = unwrap(rh.get(cluster.master, f"{path}?jsonp={CALLBACK}"))
    assert isinstance(wrapped, type(plain.json()))
    if isinstance(wrapped, dict):
        assert wrapped.keys() == plain.json().keys()


@pytest.mark.parametrize(
    "path",
    ["/state", "/slave(1)/state", "/flags", "/monitor/statistics", "/metrics/snapshot", "/version"],
)
def test_agent_endpoints_answer_jsonp(running: Running, path: str) -> None:
    plain = rh.get(running.agent, path)
    assert plain.header("Content-Type") == "application/json"
    assert isinstance(unwrap(rh.get(running.agent, f"{path}?jsonp={CALLBACK}")), type(plain.json()))


def test_files_answer_jsonp(running: Running) -> None:
    sandbox = f"/frameworks/{running.sub.framework_id}/executors/done/runs/latest"
    listing = unwrap(rh.get(running.agent, f"/files/browse?path={sandbox}&jsonp=cb"), "cb")
    assert f"{sandbox}/out.txt" in [entry["path"] for entry in listing]
    read = rh.get(running.agent, f"/files/read?path={sandbox}/out.txt&offset=0&jsonp=cb")
    assert unwrap(read, "cb") == {"data": "done\n", "offset": 0}
    assert unwrap(rh.get(running.agent, f"/files/read?path={sandbox}/out.txt&jsonp=cb"), "cb") == {
        "data": "",
        "offset": 5,
    }


def test_errors_and_empty_answers_are_never_wrapped(cluster: LocalCluster) -> None:
    reply = rh.get(cluster.master, "/master/tasks?limit=x&jsonp=cb")
    assert reply.status == 400 and not reply.text.startswith("cb(")
    reply = rh.get(cluster.master, "/nope?jsonp=cb")
    assert (reply.status, reply.body) == (404, b"")
    reply = rh.get(cluster.master, "/health?jsonp=cb")
    assert (reply.status, reply.body) == (200, b"")


# -- /master/roles and maintenance ----------------------------------------------------------------


def test_roles(cluster: LocalCluster, running: Running) -> None:
    roles = rh.get(cluster.master, "/master/roles").json()["roles"]
    [star] = [r for r in roles if r["name"] == "*"]
    assert set(star) == {
        "name",
        "weight",
        "quota",
        "resources",
        "allocated",
        "offered",
        "reserved",
        "frameworks",
    }
    assert star["weight"] == 1.0
    assert running.sub.framework_id in star["frameworks"]
    # The busy task's resources are allocated to the role; quantities go by name, none zero.
    assert star["allocated"]["cpus"] >= 0.5
    assert star["allocated"]["mem"] >= 64
    assert list(star["allocated"]) == sorted(star["allocated"])
    assert all(value > 0 for value in star["allocated"].values())
    assert star["quota"] == {
        "role": "*",
        "guarantee": {},
        "limit": {},
        "consumed": star["allocated"],
    }
    assert star["reserved"] == {}


def test_no_roles_without_frameworks() -> None:
    with LocalCluster(agents=1) as cluster:
        assert rh.get(cluster.master, "/master/roles").json() == {"roles": []}


def test_maintenance_is_empty_and_read_only(cluster: LocalCluster) -> None:
    for path in ("/master/maintenance/schedule", "/master/maintenance/status"):
        reply = rh.get(cluster.master, path)
        assert (reply.status, reply.json()) == (200, {})
    reply = rh.request(cluster.master, "POST", "/master/maintenance/schedule", "{}")
    assert reply.status == 501
    reply = rh.request(cluster.master, "PUT", "/master/maintenance/schedule")
    assert reply.status == 405
    assert reply.header("Allow") == "GET, POST"
    reply = rh.request(cluster.master, "POST", "/master/maintenance/status")
    assert (reply.status, reply.header("Allow")) == (405, "GET")


# -- /master/tasks with a negative limit -----------------------------------------------------------


def task_ids(cluster: LocalCluster, query: str) -> list[str]:
    reply = rh.get(cluster.master, f"/master/tasks?{query}")
    assert reply.status == 200, reply.body
    return [task["id"] for task in reply.json()["tasks"]]


def test_a_negative_limit_wraps_around_as_a_size_t(cluster: LocalCluster, running: Running) -> None:
    mine = f"framework_id={running.sub.framework_id}&order=asc"
    assert task_ids(cluster, f"{mine}&limit=-1") == ["done", "busy"]  # every task
    # offset + limit wraps: 1 + (2^64 - 1) is 0, so nothing; 1 + (2^64 - 2) is not past the end.
    assert task_ids(cluster, f"{mine}&limit=-1&offset=1") == []
    assert task_ids(cluster, f"{mine}&limit=-2&offset=1") == ["busy"]
    assert task_ids(cluster, f"{mine}&offset=-1") == []
    # What the `mesos` CLI asks for.
    assert {"done", "busy"} <= set(task_ids(cluster, "order=asc&limit=-1"))


# -- the endpoints Mesos 1.8 removed --------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/state.json", "/master/state.json", "/master/tasks.json", "/master/frameworks.json"]
)
def test_removed_master_endpoints_are_404(cluster: LocalCluster, path: str) -> None:
    reply = rh.get(cluster.master, path)
    assert (reply.status, reply.body, reply.header("Content-Type")) == (404, b"", None)


@pytest.mark.parametrize(
    "path",
    ["/state.json", "/slave(1)/state.json", "/monitor/statistics.json", "/files/browse.json"],
)
def test_removed_agent_endpoints_are_404(running: Running, path: str) -> None:
    reply = rh.get(running.agent, path)
    assert (reply.status, reply.body, reply.header("Content-Type")) == (404, b"", None)


# -- the agent: /monitor/statistics, /metrics/snapshot, /files/download, /state -------------------


def test_monitor_statistics_of_a_running_command_task(running: Running) -> None:
    def busy_entry() -> dict | None:
        entries = rh.get(running.agent, "/monitor/statistics").json()
        for entry in entries:
            # Its CPU time comes from its process tree, and grows as it spins.
            busy = entry["executor_id"] == running.running_task
            if busy and entry["statistics"]["cpus_user_time_secs"] > 0:
                return entry
        return None

    entry = rh.wait_until(busy_entry, what="the busy task's CPU time in /monitor/statistics")
    assert entry["framework_id"] == running.sub.framework_id
    assert entry["source"] == running.running_task
    assert entry["executor_name"].startswith("Command Executor (Task: busy)")
    stats = entry["statistics"]
    assert stats["mem_rss_bytes"] > 0
    assert stats["cpus_system_time_secs"] >= 0
    assert stats["cpus_soft_limit"] == stats["cpus_limit"] == 0.5
    assert stats["mem_soft_limit_bytes"] == stats["mem_limit_bytes"] == 64 * MB
    assert stats["disk_limit_bytes"] == 10 * MB
    assert stats["disk_used_bytes"] >= 0
    assert isinstance(stats["timestamp"], float)
    # The finished task's executor is gone: only running executors are listed.
    entries = rh.get(running.agent, "/monitor/statistics").json()
    assert running.finished_task not in [e["executor_id"] for e in entries]


def test_agent_metrics_snapshot(running: Running) -> None:
    metrics = rh.get(running.agent, "/metrics/snapshot").json()
    assert list(metrics) == sorted(metrics)
    for key in (
        "slave/uptime_secs",
        "slave/registered",
        "slave/frameworks_active",
        "slave/tasks_staging",
        "slave/tasks_starting",
        "slave/tasks_running",
        "slave/tasks_killing",
        "slave/tasks_finished",
        "slave/tasks_failed",
        "slave/tasks_killed",
        "slave/tasks_lost",
        "slave/executors_running",
        "slave/executors_terminated",
        "slave/valid_status_updates",
        "slave/cpus_total",
        "slave/mem_used",
        "slave/disk_percent",
        "system/load_1min",
        "system/mem_total_bytes",
    ):
        assert key in metrics, key
    assert metrics["slave/registered"] == 1.0
    assert metrics["slave/tasks_running"] >= 1
    assert metrics["slave/tasks_finished"] >= 1
    assert metrics["slave/executors_terminated"] >= 1
    assert metrics["slave/cpus_used"] >= 0.5
    assert metrics["slave/frameworks_active"] >= 1


def test_files_download(running: Running) -> None:
    sandbox = f"/frameworks/{running.sub.framework_id}/executors/done/runs/latest"
    reply = rh.get(running.agent, f"/files/download?path={sandbox}/out.txt&jsonp=cb")
    assert (reply.status, reply.body) == (200, b"done\n")
    assert reply.header("Content-Type") == "text/plain"
    assert reply.header("Content-Disposition") == "attachment; filename=out.txt"
    reply = rh.get(running.agent, f"/files/download?path={sandbox}/stdout")
    assert reply.header("Content-Type") == "application/octet-stream"
    reply = rh.get(running.agent, f"/files/download?path={sandbox}")
    assert (reply.status, reply.text) == (400, "Cannot download a directory.\n")
    reply = rh.get(running.agent, f"/files/download?path={sandbox}/nothing")
    assert (reply.status, reply.body) == (404, b"")
    reply = rh.get(running.agent, "/files/download")
    assert (reply.status, reply.text) == (400, "Expecting 'path=value' in query.\n")


def test_a_framework_with_nothing_left_on_an_agent_is_completed_there() -> None:
    with (
        LocalCluster(agents=1, allocation_interval=0.3) as cluster,
        rh.subscribe(cluster.master, rh.framework_info(name="comes-and-goes")) as sub,
    ):
        offer, _ = rh.run_command_task(sub, "once", "true")
        agent = cluster.agent_url(offer["agent_id"]["value"]).removeprefix("http://")

        def ids(key: str) -> list[str]:
            return [f["id"] for f in rh.get(agent, "/state").json()[key]]

        rh.wait_until(lambda: sub.framework_id in ids("completed_frameworks"))
        assert sub.framework_id not in ids("frameworks")
        [entry] = [
            f
            for f in rh.get(agent, "/state").json()["completed_frameworks"]
            if f["id"] == sub.framework_id
        ]
        assert entry["executors"] == []
        assert [e["id"] for e in entry["completed_executors"]] == ["once"]
        # A new task brings it back among the running ones.
        task = rh.command_task("twice", "", "sleep 30")
        launch(sub, task)
        rh.follow_task(sub, "twice", {"TASK_RUNNING"})
        assert sub.framework_id in ids("frameworks")
        assert sub.framework_id not in ids("completed_frameworks")
        assert sub.call({"type": "TEARDOWN"}).status == 202


def test_a_finished_task_waiting_for_its_acknowledgement_uses_nothing() -> None:
    """It is still in the framework's tasks, but its resources came back with the terminal
    update (`Master::updateTask`): the framework, the agent and the metrics agree."""
    with (
        LocalCluster(agents=1, allocation_interval=0.3) as cluster,
        rh.subscribe(cluster.master, rh.framework_info(name="never-acknowledges")) as sub,
    ):
        offers = sub.stream.wait_for(lambda e: e["type"] == "OFFERS")
        offer = offers["offers"]["offers"][0]
        rh.accept_launch(sub, offer, rh.command_task("done", offer["agent_id"]["value"], "true"))
        # The agent sends a task's next update only once the previous one is acknowledged:
        # every update but the last.
        while True:
            event = sub.stream.wait_for(lambda e: e["type"] == "UPDATE")
            status = event["update"]["status"]
            if status["state"] == "TASK_FINISHED":
                break
            assert sub.acknowledge(status).status == 202

        def framework() -> dict:
            state = rh.get(cluster.leader, "/master/state").json()
            return next(f for f in state["frameworks"] if f["id"] == sub.framework_id)

        listed = rh.wait_until(
            lambda: [t for t in framework()["tasks"] if t["state"] == "TASK_FINISHED"]
        )
        assert [t["id"] for t in listed] == ["done"]
        assert framework()["used_resources"]["cpus"] == 0
        assert framework()["used_resources"]["mem"] == 0
        state = rh.get(cluster.leader, "/master/state").json()
        assert only(state["slaves"])["used_resources"]["cpus"] == 0
