"""The operator API on both sides, byte by byte (CONFORMANCE.md: Read-only and operator
endpoints): the master's SUBSCRIBE stream and its events, its GET_* calls, and each agent's
`POST /api/v1`. Raw sockets (tests/integration/raw_http.py), so that every status, header and
body is the one sent.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator

import pytest

from localmesos.cluster import LocalCluster
from tests.conftest import ROOT
from tests.integration import raw_http as rh

pytestmark = pytest.mark.integration

NANOSECONDS = 1_000_000_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(agents=1, allocation_interval=0.3, agent_timeout=2.0) as c:
        yield c


def post(address: str, value: object, path: str = "/api/v1", **headers: str) -> rh.Reply:
    return rh.post_json(address, path, value, headers)


def call(address: str, kind: str, **body: object) -> dict:
    reply = post(address, {"type": kind, **body})
    assert reply.status == 200, (kind, reply.status, reply.body)
    assert reply.header("Content-Type") == "application/json"
    answer = reply.json()
    assert set(answer) == {"type", kind.lower()}, answer
    assert answer["type"] == kind
    return answer[kind.lower()]


def operator_stream(cluster: LocalCluster) -> rh.EventStream:
    stream = rh.open_stream(cluster.master, {"type": "SUBSCRIBE"}, path="/api/v1")
    assert isinstance(stream, rh.EventStream), stream
    return stream


def agent_address(cluster: LocalCluster, agent_id: str | None = None) -> str:
    return cluster.agent_url(agent_id or cluster.agents[0]).removeprefix("http://")


def scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def echo_executor_task(task_id: str, agent_id: str, executor_id: str = "echo") -> dict:
    """A task of tests/integration/echo_executor.py that runs until it is killed."""
    env = {"PYTHONPATH": str(ROOT)}
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
        "data": base64.b64encode(json.dumps({"do": "hold"}).encode()).decode(),
        "executor": {
            "executor_id": {"value": executor_id},
            "name": "echo executor",
            "command": {
                "shell": False,
                "value": sys.executable,
                "arguments": [sys.executable, "-m", "tests.integration.echo_executor"],
                "environment": {"variables": [{"name": k, "value": v} for k, v in env.items()]},
            },
            "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
        },
    }


# -- the master's SUBSCRIBE -------------------------------------------------------------------


def test_subscribe_is_a_stream_of_the_state_then_a_heartbeat(cluster: LocalCluster) -> None:
    stream = operator_stream(cluster)
    try:
        head = stream.head
        assert head.all("Content-Type") == ["application/json"]
        assert head.all("Transfer-Encoding") == ["chunked"]
        # Unlike a scheduler's subscription, the operator's has no stream ID.
        assert head.all("Mesos-Stream-Id") == []
        subscribed = stream.next_event()
        assert subscribed is not None
        assert subscribed["type"] == "SUBSCRIBED"
        assert set(subscribed["subscribed"]) == {"get_state", "heartbeat_interval_seconds"}
        assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 15.0
        state = subscribed["subscribed"]["get_state"]
        assert set(state) == {"get_tasks", "get_executors", "get_frameworks", "get_agents"}
        assert state["get_frameworks"] == call(cluster.master, "GET_FRAMEWORKS")
        agents = {a["agent_info"]["id"]["value"] for a in state["get_agents"]["agents"]}
        assert agents == set(cluster.agents)
        assert stream.next_event() == {"type": "HEARTBEAT"}
        # Each record is the length, a newline and the JSON, nothing after it (pymesos stalls
        # on a newline after a record).
        assert all(not r.endswith(b"\n") for r in stream.records)
        metrics = rh.get(cluster.master, "/metrics/snapshot").json()
        assert metrics["master/operator_event_stream_subscribers"] >= 1
    finally:
        stream.close()


def test_events_follow_a_framework_and_its_task(cluster: LocalCluster) -> None:
    stream = operator_stream(cluster)
    try:
        stream.wait_for(lambda e: e["type"] == "HEARTBEAT")
        with rh.subscribe(cluster.master, rh.framework_info(name="watched")) as sub:
            added = stream.wait_for(lambda e: e["type"] == "FRAMEWORK_ADDED")
            framework = added["framework_added"]["framework"]
            assert framework["framework_info"]["id"]["value"] == sub.framework_id
            assert framework["framework_info"]["name"] == "watched"
            assert (framework["active"], framework["connected"], framework["recovered"]) == (
                True,
                True,
                False,
            )
            assert framework["reregistered_time"] == framework["registered_time"]
            assert framework["unregistered_time"] == {"nanoseconds": 0}

            rh.run_command_task(sub, "watched-task", "echo watched")
            task_added = stream.wait_for(lambda e: e["type"] == "TASK_ADDED")
            task = task_added["task_added"]["task"]
            assert task["task_id"] == {"value": "watched-task"}
            assert task["framework_id"] == {"value": sub.framework_id}
            assert task["state"] == "TASK_STAGING"
            assert "statuses" not in task  # none yet, and protobuf leaves out an empty list
            # One event per new status; `state` is the task's latest state, which is ahead of
            # the status when the agent already had a later one (`Master::updateTask` sets it
            # from the update's `latest_state`).
            order = ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
            states = []
            while not states or states[-1] != "TASK_FINISHED":
                event = stream.wait_for(lambda e: e["type"] == "TASK_UPDATED")
                updated = event["task_updated"]
                assert updated["framework_id"] == {"value": sub.framework_id}
                assert updated["status"]["task_id"] == {"value": "watched-task"}
                assert updated["status"]["agent_id"]["value"] in cluster.agents
                assert rh.valid_uuid_bytes(updated["status"]["uuid"])
                status_state = updated["status"]["state"]
                assert order.index(updated["state"]) >= order.index(status_state), updated
                states.append(status_state)
            assert states == order

            # The same framework subscribing again is an update, not a new framework.
            info = rh.framework_info(name="watched", id={"value": sub.framework_id})
            with rh.subscribe(cluster.master, info) as again:
                updated = stream.wait_for(lambda e: e["type"] == "FRAMEWORK_UPDATED")
                framework = updated["framework_updated"]["framework"]
                assert framework["framework_info"]["id"]["value"] == again.framework_id
                assert framework["connected"] is True
                assert again.call({"type": "TEARDOWN"}).status == 202
                removed = stream.wait_for(lambda e: e["type"] == "FRAMEWORK_REMOVED")
                assert removed["framework_removed"]["framework_info"]["id"] == {
                    "value": sub.framework_id
                }
                assert "framework" not in removed["framework_removed"]
    finally:
        stream.close()


def test_agent_added_and_an_unreachable_agent_is_not_removed() -> None:
    with LocalCluster(agents=1, allocation_interval=0.3, agent_timeout=1.0) as cluster:
        stream = operator_stream(cluster)
        try:
            new = cluster.add_agent()
            added = stream.wait_for(lambda e: e["type"] == "AGENT_ADDED")
            agent = added["agent_added"]["agent"]
            assert agent["agent_info"]["id"] == {"value": new}
            assert agent["pid"].startswith("slave(1)@127.0.0.1:")
            assert agent["active"] is True
            assert {r["name"] for r in agent["total_resources"]} >= {"cpus", "mem", "disk"}
            # Marked unreachable (a machine that vanished) is not AGENT_REMOVED in Mesos: only
            # `_removeSlave` sends it. Another agent's arrival bounds the wait.
            cluster.kill_agent(new)
            cluster.wait_for(lambda s: new not in {a["id"] for a in s["slaves"]})
            third = cluster.add_agent()
            seen = []
            while True:
                event = stream.next_event()
                assert event is not None
                seen.append(event["type"])
                if event["type"] == "AGENT_ADDED":
                    assert event["agent_added"]["agent"]["agent_info"]["id"] == {"value": third}
                    break
            assert "AGENT_REMOVED" not in seen, seen
        finally:
            stream.close()


def test_the_oldest_subscribers_still_get_events(cluster: LocalCluster) -> None:
    first, second = operator_stream(cluster), operator_stream(cluster)
    try:
        with rh.subscribe(cluster.master, rh.framework_info(name="seen-twice")) as sub:
            for stream in (first, second):
                event = stream.wait_for(lambda e: e["type"] == "FRAMEWORK_ADDED")
                info = event["framework_added"]["framework"]["framework_info"]
                assert info["id"]["value"] == sub.framework_id
    finally:
        first.close()
        second.close()


def test_subscribe_refuses_a_protobuf_only_client(cluster: LocalCluster) -> None:
    reply = rh.open_stream(
        cluster.master,
        {"type": "SUBSCRIBE"},
        path="/api/v1",
        headers={"Accept": "application/x-protobuf"},
    )
    assert isinstance(reply, rh.Reply)
    assert reply.status == 406
    reply = rh.open_stream(
        cluster.master, {"type": "SUBSCRIBE"}, path="/api/v1", headers={"Accept": "text/html"}
    )
    assert isinstance(reply, rh.Reply)
    assert (reply.status, reply.text) == (
        406,
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
    )


# -- the master's other calls -----------------------------------------------------------------


def test_get_roles_is_empty_without_frameworks() -> None:
    with LocalCluster(agents=1) as cluster:
        reply = post(cluster.master, {"type": "GET_ROLES"})
        assert reply.status == 200
        assert reply.body == b'{"type":"GET_ROLES","get_roles":{}}'


def test_get_roles_with_a_framework(cluster: LocalCluster) -> None:
    with rh.subscribe(cluster.master, rh.framework_info(name="roled")) as sub:
        sub.stream.wait_for(lambda e: e["type"] == "OFFERS")
        roles = call(cluster.master, "GET_ROLES")["roles"]
        [star] = [r for r in roles if r["name"] == "*"]
        assert star["weight"] == 1.0
        assert {"value": sub.framework_id} in star["frameworks"]
        names = [r["name"] for r in star["resources"]]
        assert names == sorted(names) and set(names) <= {"cpus", "mem", "disk", "gpus"}
        for resource in star["resources"]:
            assert resource["type"] == "SCALAR" and resource["scalar"]["value"] > 0


def test_get_flags_metrics_and_master(cluster: LocalCluster) -> None:
    flags = call(cluster.master, "GET_FLAGS")["flags"]
    names = [f["name"] for f in flags]
    assert names == sorted(names)
    assert all(isinstance(f["value"], str) for f in flags)
    by_name = {f["name"]: f["value"] for f in flags}
    assert by_name["port"] == cluster.master.rpartition(":")[2]
    assert by_name == rh.get(cluster.master, "/master/flags").json()["flags"]

    metrics = call(cluster.master, "GET_METRICS", get_metrics={"timeout": {"nanoseconds": 10**9}})
    names = [m["name"] for m in metrics["metrics"]]
    assert names == sorted(names)
    values = {m["name"]: m["value"] for m in metrics["metrics"]}
    assert values["master/elected"] == 1.0
    assert all(isinstance(v, float) for v in values.values())
    # pymesos's getMetrics always sends a timeout; without one the call is good as well.
    assert call(cluster.master, "GET_METRICS", get_metrics={})["metrics"]

    master = call(cluster.master, "GET_MASTER")
    assert set(master) == {"master_info", "start_time", "elected_time"}
    assert master["master_info"]["pid"] == f"master@{cluster.master}"
    assert master["elected_time"] >= master["start_time"]


def test_get_executors(cluster: LocalCluster) -> None:
    agent_id = cluster.agents[0]
    with rh.subscribe(cluster.master, rh.framework_info(name="executors")) as sub:
        offer = sub.stream.wait_for(lambda e: e["type"] == "OFFERS")["offers"]["offers"][0]
        rh.accept_launch(sub, offer, echo_executor_task("held", offer["agent_id"]["value"]))
        rh.follow_task(sub, "held", {"TASK_RUNNING"})
        executors = call(cluster.master, "GET_EXECUTORS")["executors"]
        [echo] = [
            e for e in executors if e["executor_info"]["framework_id"]["value"] == sub.framework_id
        ]
        assert echo["agent_id"] == {"value": agent_id}
        assert echo["executor_info"]["executor_id"] == {"value": "echo"}
        # The agent's GET_EXECUTORS has it too, with the command executors the master never
        # hears of.
        agent = call(agent_address(cluster), "GET_EXECUTORS")
        assert {"executors", "completed_executors"} == set(agent)
        ids = [e["executor_info"]["executor_id"]["value"] for e in agent["executors"]]
        assert "echo" in ids
        tasks = call(agent_address(cluster), "GET_TASKS")
        [held] = [t for t in tasks["launched_tasks"] if t["task_id"]["value"] == "held"]
        assert held["executor_id"] == {"value": "echo"}
        assert held["state"] == "TASK_RUNNING"
        assert sub.call({"type": "TEARDOWN"}).status == 202


def test_call_errors(cluster: LocalCluster) -> None:
    for kind, body in (
        ("GET_METRICS", "get_metrics"),
        ("LIST_FILES", "list_files"),
        ("READ_FILE", "read_file"),
    ):
        reply = post(cluster.master, {"type": kind})
        assert (reply.status, reply.text) == (
            400,
            f"Failed to validate master::Call: Expecting '{body}' to be present",
        )
    reply = post(cluster.master, {"type": "READ_FILE", "read_file": {"path": "/master/log"}})
    assert reply.status == 400
    assert "read_file.offset" in reply.text
    # A master without --log_dir has no file to serve.
    reply = post(cluster.master, {"type": "LIST_FILES", "list_files": {"path": "/master/log"}})
    assert (reply.status, reply.body) == (404, b"")
    reply = post(cluster.master, {"type": "UNKNOWN"})
    assert (reply.status, reply.body) == (501, b"")
    # The operator API ignores ?jsonp= (a TODO in Mesos's http.cpp).
    reply = post(cluster.master, {"type": "GET_HEALTH"}, path="/api/v1?jsonp=cb")
    assert reply.header("Content-Type") == "application/json"
    assert reply.json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}


# -- the agent's POST /api/v1 -------------------------------------------------------------------


def test_agent_health_version_flags_metrics(cluster: LocalCluster) -> None:
    agent = agent_address(cluster)
    assert call(agent, "GET_HEALTH") == {"healthy": True}
    assert call(agent, "GET_VERSION")["version_info"]["version"] == "1.11.0"
    flags = call(agent, "GET_FLAGS")["flags"]
    assert [f["name"] for f in flags] == sorted(f["name"] for f in flags)
    assert {f["name"]: f["value"] for f in flags}["port"] == agent.rpartition(":")[2]
    metrics = {m["name"]: m["value"] for m in call(agent, "GET_METRICS", get_metrics={})["metrics"]}
    assert metrics["slave/registered"] == 1.0
    assert metrics["slave/cpus_total"] == 2.0
    for path in ("/slave(1)/api/v1", "/api/v1/operator"):
        assert post(agent, {"type": "GET_HEALTH"}, path=path).status == 200


def test_agent_state_frameworks_tasks_and_files(cluster: LocalCluster) -> None:
    agent = agent_address(cluster)
    with rh.subscribe(cluster.master, rh.framework_info(name="agent-api")) as sub:
        rh.run_command_task(sub, "printed", "printf 'from the sandbox\\n'")
        framework_id = sub.framework_id
        state = call(agent, "GET_STATE")
        assert set(state) == {"get_tasks", "get_executors", "get_frameworks"}
        tasks = state["get_tasks"]
        assert set(tasks) == {
            "pending_tasks",
            "queued_tasks",
            "launched_tasks",
            "terminated_tasks",
            "completed_tasks",
        }
        [done] = [t for t in tasks["completed_tasks"] if t["task_id"]["value"] == "printed"]
        assert done["state"] == "TASK_FINISHED"
        assert done["framework_id"] == {"value": framework_id}
        assert "executor_id" not in done  # a command task
        executors = state["get_executors"]["completed_executors"]
        [command] = [
            # Custom executors of other tests on this cluster may have no `source`.
            e["executor_info"]
            for e in executors
            if e["executor_info"].get("source") == "printed"
        ]
        # slave.cpp `getExecutorInfo`: the name cuts commands longer than 15 characters.
        assert (
            command["name"] == "Command Executor (Task: printed) (Command: sh -c 'printf 'from...')"
        )
        assert command["executor_id"] == {"value": "printed"}
        frameworks = state["get_frameworks"]
        # Nothing of it runs on the agent any more: completed there, though still registered
        # with the master.
        completed = [f["framework_info"]["id"]["value"] for f in frameworks["completed_frameworks"]]
        assert framework_id in completed
        assert framework_id not in [
            f["framework_info"]["id"]["value"] for f in frameworks["frameworks"]
        ]

        sandbox = f"/frameworks/{framework_id}/executors/printed/runs/latest"
        listing = call(agent, "LIST_FILES", list_files={"path": sandbox})
        stdout = [f for f in listing["file_infos"] if f["path"] == f"{sandbox}/stdout"]
        assert len(stdout) == 1
        assert isinstance(stdout[0]["mode"], int)  # a number; /files/browse has a string
        assert isinstance(stdout[0]["mtime"]["nanoseconds"], int)
        read = call(agent, "READ_FILE", read_file={"path": f"{sandbox}/stdout", "offset": 0})
        assert read["size"] == 17
        assert base64.b64decode(read["data"]) == b"from the sandbox\n"
        read = call(
            agent, "READ_FILE", read_file={"path": f"{sandbox}/stdout", "offset": 5, "length": 3}
        )
        assert (read["size"], base64.b64decode(read["data"])) == (17, b"the")
        read = call(agent, "READ_FILE", read_file={"path": f"{sandbox}/stdout", "offset": 99})
        assert read == {"size": 17, "data": ""}
        missing = post(
            agent, {"type": "READ_FILE", "read_file": {"path": f"{sandbox}/x", "offset": 0}}
        )
        assert (missing.status, missing.body) == (404, b"")
        directory = post(agent, {"type": "READ_FILE", "read_file": {"path": sandbox, "offset": 0}})
        assert (directory.status, directory.text) == (400, "Cannot read a directory.\n")


def test_agent_call_errors(cluster: LocalCluster) -> None:
    agent = agent_address(cluster)
    reply = rh.request(agent, "GET", "/api/v1")
    assert reply.status == 405
    reply = post(agent, {"type": "LIST_FILES"})
    assert (reply.status, reply.text) == (
        400,
        "Failed to validate agent::Call: Expecting 'list_files' to be present",
    )
    reply = rh.request(agent, "POST", "/api/v1", b"{}", {"Content-Type": "text/plain"})
    assert (reply.status, reply.text) == (
        415,
        "Expecting 'Content-Type' of application/json or application/x-protobuf or "
        "application/recordio",
    )
    assert post(agent, {"type": "UNKNOWN"}).status == 501
    # The agent checks `Accept` before the body, so even a call without its body gets 406.
    reply = post(agent, {"type": "LIST_FILES"}, Accept="text/html")
    assert (reply.status, reply.text) == (
        406,
        "Expecting 'Accept' to allow application/json or application/x-protobuf or "
        "application/recordio",
    )
    reply = post(agent, {"type": "GET_CONTAINERS"})
    assert (reply.status, reply.text) == (
        501,
        "localmesos does not implement the agent call GET_CONTAINERS",
    )
