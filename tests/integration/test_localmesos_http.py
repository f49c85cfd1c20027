"""The local cluster's HTTP surface, byte by byte, against what Mesos answers.

Everything goes through raw sockets (tests/integration/raw_http.py): the SUBSCRIBE stream is
de-chunked and split into RecordIO records by hand, and every answer is checked for its exact
status, headers and body. What Mesos does, with its sources, is in localmesos/CONFORMANCE.md;
the section headers below name its parts.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from localmesos.cluster import LocalCluster
from localmesos.master import metrics
from localmesos.master.http import STATIC_DIR
from localmesos.web import MAX_BODY
from tests.integration import raw_http as rh

pytestmark = pytest.mark.integration

READ_CAP = 16 * mmap.PAGESIZE
BIG_SIZE = READ_CAP + 12345
SANDBOX_COMMAND = (
    "printf 'hello sandbox\\n'; "
    f"head -c {BIG_SIZE} /dev/zero | tr '\\0' a > big.txt; "
    "ln -s /etc/passwd leak; ln -s loop_b loop_a; ln -s loop_a loop_b; ln -s missing dangling; "
    "mkdir sub; echo inner > sub/inner.txt"
)
VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
STATE_KEYS = {
    "version",
    "start_time",
    "elected_time",
    "id",
    "pid",
    "hostname",
    "activated_slaves",
    "deactivated_slaves",
    "unreachable_slaves",
    "leader",
    "leader_info",
    "flags",
    "slaves",
    "frameworks",
    "completed_frameworks",
    "orphan_tasks",
    "unregistered_frameworks",
}
FRAMEWORK_KEYS = {
    "id",
    "name",
    "hostname",
    "webui_url",
    "active",
    "connected",
    "user",
    "failover_timeout",
    "checkpoint",
    "role",
    "resources",
    "used_resources",
    "offered_resources",
    "tasks",
    "completed_tasks",
    "offers",
    "executors",
}
TASK_KEYS = {
    "id",
    "name",
    "framework_id",
    "executor_id",
    "slave_id",
    "state",
    "resources",
    "statuses",
}
AGENT_KEYS = {
    "id",
    "hostname",
    "port",
    "attributes",
    "pid",
    "resources",
    "used_resources",
    "offered_resources",
    "active",
    "version",
}
METRIC_KEYS = [
    "master/elected",
    "master/uptime_secs",
    *(f"master/frameworks_{s}" for s in ("active", "connected", "disconnected", "inactive")),
    *(
        f"master/slaves_{s}"
        for s in ("active", "connected", "disconnected", "inactive", "unreachable")
    ),
    *(
        f"master/tasks_{s}"
        for s in (
            "staging",
            "starting",
            "running",
            "killing",
            "finished",
            "failed",
            "killed",
            "lost",
            "error",
            "dropped",
            "unreachable",
            "gone",
            "gone_by_operator",
        )
    ),
    *(
        f"master/{r}_{k}"
        for r in ("cpus", "mem", "disk", "gpus")
        for k in ("total", "used", "percent")
    ),
    "master/outstanding_offers",
]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(agents=2, allocation_interval=0.5, agent_timeout=5.0) as c:
        yield c


@dataclass
class Finished:
    """A framework that ran two command tasks to TASK_FINISHED and stays subscribed."""

    sub: rh.Subscription
    framework_id: str
    first_task: str
    task_id: str
    agent_id: str
    agent: str  # the agent's address, "127.0.0.1:PORT"
    directory: str
    statuses: list[dict]
    finished_before: float

    @property
    def virtual(self) -> str:
        return f"/frameworks/{self.framework_id}/executors/{self.task_id}/runs/latest"


@pytest.fixture(scope="module")
def finished(cluster: LocalCluster) -> Iterator[Finished]:
    before = rh.get(cluster.master, "/metrics/snapshot").json()["master/tasks_finished"]
    sub = rh.subscribe(cluster.master, rh.framework_info(name="sandbox", failover_timeout=3600.0))
    try:
        rh.run_command_task(sub, "first", "echo first")
        offer, statuses = rh.run_command_task(sub, "sandbox", SANDBOX_COMMAND)
        assert statuses[-1]["state"] == "TASK_FINISHED", statuses
        # Take no more offers and hand back the ones held, so other tests get offers.
        assert sub.call({"type": "SUPPRESS"}).status == 202
        held = [
            {"value": o["id"]}
            for f in cluster.state()["frameworks"]
            if f["id"] == sub.framework_id
            for o in f["offers"]
        ]
        if held:
            decline = {"type": "DECLINE", "decline": {"offer_ids": held, "filters": {}}}
            assert sub.call(decline).status == 202
        agent_id = offer["agent_id"]["value"]
        agent = cluster.agent_url(agent_id).removeprefix("http://")

        def sandbox_directory() -> str | None:
            # With nothing left running there, the framework is among the agent's completed
            # ones (`Slave::removeFramework`).
            state = rh.get(agent, "/state").json()
            for framework in state["frameworks"] + state["completed_frameworks"]:
                if framework["id"] == sub.framework_id:
                    for executor in framework["completed_executors"]:
                        if executor["id"] == "sandbox":
                            return executor["directory"]
            return None

        directory = rh.wait_until(sandbox_directory)
        yield Finished(
            sub, sub.framework_id, "first", "sandbox", agent_id, agent, directory, statuses, before
        )
    finally:
        sub.close()


@pytest.fixture
def sub(cluster: LocalCluster) -> Iterator[rh.Subscription]:
    with rh.subscribe(cluster.master, rh.framework_info(name="calls")) as subscription:
        yield subscription


def post(cluster: LocalCluster, path: str, value: object, **headers: str) -> rh.Reply:
    return rh.post_json(cluster.master, path, value, headers)


def call_of(sub: rh.Subscription, **call: object) -> dict:
    return {"framework_id": {"value": sub.framework_id}, **call}


# -- SUBSCRIBE: the chunked RecordIO stream (CONFORMANCE.md: Transport) ---------------------------


def test_subscribe_answer_is_a_chunked_json_stream(cluster: LocalCluster) -> None:
    stream = rh.open_stream(cluster.master, rh.subscribe_call())
    assert isinstance(stream, rh.EventStream)
    try:
        head = stream.head
        assert (head.status, head.reason) == (200, "OK")
        assert head.all("Transfer-Encoding") == ["chunked"]
        assert head.all("Content-Length") == []
        assert head.all("Content-Type") == ["application/json"]
        stream_id = head.header("Mesos-Stream-Id")
        assert stream_id is not None and rh.UUID.fullmatch(stream_id), head.headers
        assert len(stream_id.encode()) <= 128
    finally:
        stream.close()


def test_subscribe_stream_records(cluster: LocalCluster, finished: Finished) -> None:
    """SUBSCRIBED, HEARTBEAT, OFFERS, each exactly `<len>\\n<json>` with nothing after it."""
    stream = rh.open_stream(cluster.master, rh.subscribe_call(rh.framework_info(name="records")))
    assert isinstance(stream, rh.EventStream)
    try:
        events = [stream.next_event() for _ in range(3)]
    finally:
        stream.close()
    assert [e and e["type"] for e in events] == ["SUBSCRIBED", "HEARTBEAT", "OFFERS"]
    subscribed, _, offers = events
    assert subscribed is not None and offers is not None

    body = subscribed["subscribed"]
    assert body["heartbeat_interval_seconds"] == 15
    framework_id = body["framework_id"]["value"]
    info = body["master_info"]
    assert {"id", "ip", "port", "pid", "hostname", "version", "address"} <= info.keys()
    assert f"127.0.0.1:{info['port']}" == cluster.master
    assert info["address"] == {
        "hostname": info["hostname"],
        "ip": "127.0.0.1",
        "port": info["port"],
    }
    assert VERSION.fullmatch(info["version"])

    assert offers["offers"]["offers"], offers
    for offer in offers["offers"]["offers"]:
        assert offer["framework_id"] == {"value": framework_id}
        assert {"id", "agent_id", "hostname", "url", "resources", "attributes"} <= offer.keys()
        names = {r["name"] for r in offer["resources"]}
        assert {"cpus", "mem"} <= names

    # Each record is exactly its length, a newline and compact single-line ASCII JSON.
    data = b"".join(stream.chunks)
    position = 0
    for record in stream.records:
        prefix = b"%d\n" % len(record)
        assert data[position : position + len(prefix) + len(record)] == prefix + record
        position += len(prefix) + len(record)
        # The byte right after a record starts the next length, or the data read so far ends.
        assert position == len(data) or data[position : position + 1].isdigit(), data[position:]
        assert record.isascii(), record
        assert b"\n" not in record and b"\r" not in record
        assert not rh.whitespace_outside_strings(record), record
        assert isinstance(json.loads(record), dict)

    # Record boundaries do not depend on chunk boundaries: any split gives the same records.
    complete = data[:position]
    assert rh.split_records(complete, [1] * len(complete)) == stream.records
    rng = random.Random(20240601)
    for _ in range(20):
        pieces = [rng.randint(1, 40) for _ in range(len(complete) // 10)]
        assert rh.split_records(complete, pieces) == stream.records


def test_recordio_parser_rejects_a_newline_after_a_record() -> None:
    """The checks above can fail: a stray newline or CRLF after the JSON is caught."""
    good = b'20\n{"type":"HEARTBEAT"}'
    assert rh.split_records(good + good, [3, 7]) == [b'{"type":"HEARTBEAT"}'] * 2
    for bad in (good + b"\n" + good, good + b"\r\n" + good, b"020\n" + good[3:], b"0\n"):
        with pytest.raises(rh.ProtocolError):
            rh.split_records(bad, [5])
    assert rh.whitespace_outside_strings(b'{"type": "HEARTBEAT"}')
    assert not rh.whitespace_outside_strings(b'{"message":"a b\\" c"}')


def test_stream_stays_open_despite_connection_close(
    sub: rh.Subscription, cluster: LocalCluster
) -> None:
    """pymesos sends `Connection: close` on SUBSCRIBE; the stream must stay open."""
    stream = rh.open_stream(
        cluster.master,
        rh.subscribe_call(rh.framework_info(name="conn-close")),
        headers={"Connection": "close"},
    )
    assert isinstance(stream, rh.EventStream)
    try:
        subscribed = stream.next_event()
        assert subscribed is not None and subscribed["type"] == "SUBSCRIBED"
        assert stream.next_event() == {"type": "HEARTBEAT"}
        framework_id = subscribed["subscribed"]["framework_id"]["value"]
        reply = post(
            cluster,
            "/api/v1/scheduler",
            {"type": "REVIVE", "framework_id": {"value": framework_id}},
            **{"Mesos-Stream-Id": stream.stream_id or ""},
        )
        assert reply.status == 202, reply.body
    finally:
        stream.close()


def test_each_subscription_gets_a_new_stream_id(cluster: LocalCluster) -> None:
    with rh.subscribe(cluster.master) as first, rh.subscribe(cluster.master) as second:
        assert first.stream_id != second.stream_id
        assert first.framework_id != second.framework_id


# -- calls: 202 and the error codes (CONFORMANCE.md: Transport) -----------------------------------


def test_calls_get_202_on_one_keep_alive_connection(sub: rh.Subscription) -> None:
    first = sub.call({"type": "REVIVE"})
    connection = sub._calls
    second = sub.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
    assert sub._calls is connection is not None, "the server closed the call connection"
    for reply in (first, second):
        assert (reply.status, reply.reason) == (202, "Accepted"), reply.body
        assert reply.all("Content-Length") == ["0"]
        assert reply.body == b""
        assert reply.header("Connection") is None


def test_call_without_stream_id(sub: rh.Subscription) -> None:
    reply = sub.call({"type": "REVIVE"}, stream_id=None)
    assert reply.status == 400
    assert reply.text == "All non-subscribe calls should include the 'Mesos-Stream-Id' header"


def test_call_with_another_stream_id(sub: rh.Subscription) -> None:
    bogus = "00000000-0000-4000-8000-000000000000"
    reply = sub.call({"type": "REVIVE"}, stream_id=bogus)
    assert reply.status == 400
    assert reply.text == (
        f"The stream ID '{bogus}' included in this request didn't match the stream ID "
        f"currently associated with framework ID {sub.framework_id}"
    )


def test_subscribe_with_a_stream_id(cluster: LocalCluster) -> None:
    reply = post(
        cluster,
        "/api/v1/scheduler",
        rh.subscribe_call(),
        **{"Mesos-Stream-Id": "00000000-0000-4000-8000-000000000000"},
    )
    assert reply.status == 400
    assert reply.text == "Subscribe calls should not include the 'Mesos-Stream-Id' header"


def test_call_of_an_unknown_framework(cluster: LocalCluster) -> None:
    call = {"type": "REVIVE", "framework_id": {"value": "no-such-framework"}}
    reply = post(cluster, "/api/v1/scheduler", call, **{"Mesos-Stream-Id": "x"})
    assert (reply.status, reply.text) == (400, "Framework cannot be found")


def test_call_without_framework_id(cluster: LocalCluster) -> None:
    reply = post(cluster, "/api/v1/scheduler", {"type": "REVIVE"})
    assert reply.status == 400
    assert (
        reply.text == "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"
    )


def test_missing_required_fields_are_named_by_path(cluster: LocalCluster) -> None:
    reply = post(cluster, "/api/v1/scheduler", rh.subscribe_call({}))
    assert reply.status == 400
    assert reply.text == (
        "Failed to convert JSON into Call protobuf: Missing required fields: "
        "subscribe.framework_info.user, subscribe.framework_info.name"
    )
    task = rh.command_task("t", "a", "true")
    del task["name"]
    accept = {
        "type": "ACCEPT",
        "framework_id": {"value": "f"},
        "accept": {
            "offer_ids": [{"value": "o"}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
        },
    }
    reply = post(cluster, "/api/v1/scheduler", accept)
    assert reply.status == 400
    assert reply.text == (
        "Failed to convert JSON into Call protobuf: Missing required fields: "
        "accept.operations[0].launch.task_infos[0].name"
    )


def test_bad_base64_in_message_data(sub: rh.Subscription) -> None:
    message = {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "no*base64!"}
    reply = sub.call({"type": "MESSAGE", "message": message})
    assert reply.status == 400
    assert reply.text.startswith(
        "Failed to convert JSON into Call protobuf: Failed to base64 decode bytes field 'data'"
    ), reply.text


def test_acknowledge_with_a_bad_uuid(sub: rh.Subscription) -> None:
    ack = {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"}
    reply = sub.call({"type": "ACKNOWLEDGE", "acknowledge": ack})
    assert (reply.status, reply.text) == (
        400,
        "Failed to validate scheduler::Call: Not a valid UUID",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Failed to parse body into JSON: "),
        (b"[1, 2]", "Failed to convert JSON into Call protobuf: Expecting a JSON object"),
        (b'"SUBSCRIBE"', "Failed to convert JSON into Call protobuf: Expecting a JSON object"),
        (b'{"type":"FOO"}', "Failed to validate scheduler::Call: Expecting 'type' to be present"),
        (b"{}", "Failed to validate scheduler::Call: Expecting 'type' to be present"),
        (b'{"type":"SUBSCRIBE"}', "Failed to validate scheduler::Call: Expecting 'subscribe'"),
    ],
)
def test_malformed_calls(cluster: LocalCluster, body: bytes, message: str) -> None:
    reply = rh.request(cluster.master, "POST", "/api/v1/scheduler", body, rh.JSON_HEADERS)
    assert reply.status == 400
    assert reply.text.startswith(message), reply.text


def test_disconnected_framework_gets_403(cluster: LocalCluster) -> None:
    sub = rh.subscribe(cluster.master, rh.framework_info(name="gone", failover_timeout=600.0))
    stream_id = sub.stream_id
    sub.close()
    cluster.wait_for(
        lambda state: any(
            f["id"] == sub.framework_id and not f["connected"] for f in state["frameworks"]
        )
    )
    call = {"type": "REVIVE", "framework_id": {"value": sub.framework_id}}
    reply = post(cluster, "/api/v1/scheduler", call, **{"Mesos-Stream-Id": stream_id})
    assert (reply.status, reply.text) == (403, "Framework is not subscribed")


def test_unknown_call_type_is_501(sub: rh.Subscription) -> None:
    assert sub.call({"type": "UNKNOWN"}).status == 501


@pytest.mark.parametrize("path", ["/api/v1/scheduler", "/api/v1", "/api/v1/operator"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_methods_other_than_post_get_405(cluster: LocalCluster, path: str, method: str) -> None:
    reply = rh.request(cluster.master, method, path, b"{}", rh.JSON_HEADERS)
    assert reply.status == 405
    assert reply.all("Allow") == ["POST"]


@pytest.mark.parametrize("path", ["/api/v1/scheduler", "/api/v1"])
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/json; charset=utf-8", "application/x-protobuf", "Application/JSON"],
)
def test_other_content_types_get_415(cluster: LocalCluster, path: str, content_type: str) -> None:
    body = json.dumps(rh.subscribe_call())
    reply = rh.request(cluster.master, "POST", path, body, {"Content-Type": content_type})
    assert reply.status == 415, reply.body


@pytest.mark.parametrize("path", ["/api/v1/scheduler", "/api/v1"])
def test_missing_content_type(cluster: LocalCluster, path: str) -> None:
    reply = rh.request(cluster.master, "POST", path, json.dumps(rh.subscribe_call()))
    assert (reply.status, reply.text) == (400, "Expecting 'Content-Type' to be present")


def test_subscribe_accepting_neither_json_nor_protobuf_gets_406(cluster: LocalCluster) -> None:
    reply = post(cluster, "/api/v1/scheduler", rh.subscribe_call(), Accept="text/html")
    assert reply.status == 406
    # A list that includes JSON is fine.
    stream = rh.open_stream(
        cluster.master, rh.subscribe_call(), headers={"Accept": "text/html, application/json"}
    )
    assert isinstance(stream, rh.EventStream)
    stream.close()


@pytest.mark.parametrize(
    "framing",
    [
        [("Content-Length", str(MAX_BODY + 1))],
        [("Transfer-Encoding", "chunked")],
    ],
)
def test_oversized_bodies_get_413(cluster: LocalCluster, framing: list[tuple[str, str]]) -> None:
    with rh.Connection(cluster.master) as conn:
        head = rh.encode_request(
            "POST", "/api/v1/scheduler", b"", [("Content-Type", "application/json"), *framing]
        )
        if framing[0][0] == "Transfer-Encoding":
            head += b"%x\r\n" % (MAX_BODY + 1)
        conn.send(head)
        reply = rh.read_reply(conn, "POST")
        assert reply.status == 413
        assert reply.header("Connection") == "close"
        assert conn.read_to_end() == b""


def test_an_empty_framework_id_subscribes_a_new_framework_each_time(cluster: LocalCluster) -> None:
    """Mesos reads a FrameworkID of "" as none: `framework::validate` lets it through
    (`validateFrameworkId`), and `Master::_subscribe` gives the framework a new ID (`!has_id()
    || id() == ""`). Twice in a row, two frameworks."""
    streams: list[rh.EventStream] = []
    ids = []
    try:
        for _ in range(2):
            info = rh.framework_info(name="empty-id", id={"value": ""})
            call = rh.subscribe_call(info, framework_id={"value": ""})
            stream = rh.open_stream(cluster.master, call)
            assert isinstance(stream, rh.EventStream), stream
            streams.append(stream)
            event = stream.next_event()
            assert event is not None and event["type"] == "SUBSCRIBED", event
            ids.append(event["subscribed"]["framework_id"]["value"])
        assert "" not in ids and ids[0] != ids[1]
        names = {f["id"]: f["name"] for f in cluster.state()["frameworks"]}
        assert [names.get(framework_id) for framework_id in ids] == ["empty-id", "empty-id"]
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.parametrize(
    ("framework_id", "problem"),
    [
        ("..", "'..' is disallowed"),
        ("a/b", "'a/b' contains invalid characters"),
        ("x" * 256, "ID must not be greater than 255 characters"),
    ],
)
def test_an_invalid_framework_id_gets_one_error_event(
    cluster: LocalCluster, framework_id: str, problem: str
) -> None:
    """`framework::validate` checks a non-empty FrameworkID as every ID (`validateID`); the
    subscription is refused with an ERROR event, as any invalid FrameworkInfo is."""
    info = rh.framework_info(name="bad-id", id={"value": framework_id})
    stream = rh.open_stream(
        cluster.master, rh.subscribe_call(info, framework_id={"value": framework_id})
    )
    assert isinstance(stream, rh.EventStream), stream
    try:
        assert list(stream.events()) == [{"type": "ERROR", "error": {"message": problem}}]
    finally:
        stream.close()


def test_removed_framework_gets_one_error_event(cluster: LocalCluster) -> None:
    sub = rh.subscribe(cluster.master, rh.framework_info(name="torn-down"))
    assert sub.call({"type": "TEARDOWN"}).status == 202
    for _ in sub.stream.events():  # TEARDOWN ends the stream with its last chunk
        pass
    assert sub.stream.ended
    sub.close()
    info = rh.framework_info(name="torn-down", id={"value": sub.framework_id})
    call = rh.subscribe_call(info, framework_id={"value": sub.framework_id})
    stream = rh.open_stream(cluster.master, call)
    assert isinstance(stream, rh.EventStream), stream
    try:
        assert stream.head.status == 200
        assert list(stream.events()) == [
            {"type": "ERROR", "error": {"message": "Framework has been removed"}}
        ]
        assert stream.ended
        assert stream.conn.read_to_end() == b""  # and the connection is closed
    finally:
        stream.close()


# -- authentication (CONFORMANCE.md: Authentication) ----------------------------------------------


@pytest.fixture(scope="module")
def secured() -> Iterator[LocalCluster]:
    with LocalCluster(agents=0, credentials={"alice": "s3cret"}) as c:
        yield c


def basic(principal: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [None, basic("alice", "wrong"), basic("mallory", "s3cret"), "Basic !!!", "Bearer token"],
)
def test_missing_or_bad_credentials_get_401(
    secured: LocalCluster, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for call in (rh.subscribe_call(), {"type": "REVIVE", "framework_id": {"value": "f"}}):
        reply = post(secured, "/api/v1/scheduler", call, **headers)
        assert reply.status == 401
        assert reply.all("WWW-Authenticate") == ['Basic realm="mesos-master-scheduler"']


def test_good_credentials_subscribe(secured: LocalCluster) -> None:
    stream = rh.open_stream(
        secured.master,
        rh.subscribe_call(),
        headers={"Authorization": basic("alice", "s3cret")},
    )
    assert isinstance(stream, rh.EventStream), stream
    try:
        event = stream.next_event()
        assert event is not None and event["type"] == "SUBSCRIBED"
    finally:
        stream.close()


# -- routing aliases (CONFORMANCE.md: Transport) --------------------------------------------------


def test_scheduler_alias_with_master_prefix(cluster: LocalCluster) -> None:
    with rh.subscribe(cluster.master, path="/master/api/v1/scheduler") as alias:
        call = {"type": "REVIVE", "framework_id": {"value": alias.framework_id}}
        reply = post(
            cluster, "/master/api/v1/scheduler", call, **{"Mesos-Stream-Id": alias.stream_id}
        )
        assert reply.status == 202, reply.body


@pytest.mark.parametrize(
    "path", ["/api/v1", "/api/v1/operator", "/master/api/v1", "/master/api/v1/operator"]
)
def test_operator_aliases(cluster: LocalCluster, path: str) -> None:
    reply = post(cluster, path, {"type": "GET_HEALTH"})
    assert reply.status == 200, reply.body
    assert reply.json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}


# -- read-only endpoints (CONFORMANCE.md: Read-only and operator endpoints) -----------------------


@pytest.mark.parametrize("path", ["/version", "/master/version"])
def test_version_is_dotted_integers(cluster: LocalCluster, path: str) -> None:
    reply = rh.get(cluster.master, path)
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    body = reply.json()
    assert VERSION.fullmatch(body["version"]), body
    assert {"build_date", "build_time", "build_user"} <= body.keys()


@pytest.mark.parametrize("path", ["/health", "/master/health"])
def test_health(cluster: LocalCluster, path: str) -> None:
    reply = rh.get(cluster.master, path)
    assert (reply.status, reply.body) == (200, b"")
    assert reply.all("Content-Length") == ["0"]


def assert_flat(resources: object) -> None:
    assert isinstance(resources, dict), resources
    for name in ("cpus", "gpus", "mem", "disk"):
        value = resources[name]
        assert isinstance(value, int | float) and not isinstance(value, bool), resources
    if "ports" in resources:
        assert re.fullmatch(r"\[[0-9]+-[0-9]+(, [0-9]+-[0-9]+)*\]", resources["ports"])


# `/state.json` and `/master/state.json` are gone since Mesos 1.8: test_localmesos_readonly.py.
@pytest.mark.parametrize("path", ["/master/state", "/state"])
def test_state_keys(cluster: LocalCluster, finished: Finished, path: str) -> None:
    reply = rh.get(cluster.master, path)
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    state = reply.json()
    assert state.keys() >= STATE_KEYS, STATE_KEYS - state.keys()
    assert state["activated_slaves"] == 2
    assert VERSION.fullmatch(state["version"])
    assert state["leader"] == state["pid"] == f"master@{cluster.master}"
    assert isinstance(state["flags"], dict)
    assert state["leader_info"]["port"] == int(cluster.master.rpartition(":")[2])


def test_state_objects(cluster: LocalCluster, finished: Finished) -> None:
    state = rh.get(cluster.master, "/master/state").json()
    assert len(state["slaves"]) == 2
    for agent in state["slaves"]:
        assert agent.keys() >= AGENT_KEYS, AGENT_KEYS - agent.keys()
        assert re.fullmatch(r"slave\(1\)@127\.0\.0\.1:[0-9]+", agent["pid"])
        assert agent["active"] is True
        for key in ("resources", "used_resources", "offered_resources"):
            assert_flat(agent[key])
        assert agent["resources"]["ports"] == "[31000-31999]"

    [framework] = [f for f in state["frameworks"] if f["id"] == finished.framework_id]
    assert framework.keys() >= FRAMEWORK_KEYS, FRAMEWORK_KEYS - framework.keys()
    assert (framework["active"], framework["connected"]) == (True, True)
    assert (framework["name"], framework["user"], framework["role"]) == ("sandbox", "tester", "*")
    assert framework["failover_timeout"] == 3600
    for key in ("resources", "used_resources", "offered_resources"):
        assert_flat(framework[key])

    tasks = {t["id"]: t for t in framework["completed_tasks"]}
    assert {"first", "sandbox"} <= tasks.keys(), framework
    task = tasks["sandbox"]
    assert task.keys() >= TASK_KEYS, TASK_KEYS - task.keys()
    assert task["executor_id"] == ""  # a command task
    assert (task["framework_id"], task["slave_id"]) == (finished.framework_id, finished.agent_id)
    assert task["state"] == "TASK_FINISHED"
    assert_flat(task["resources"])
    assert task["resources"]["cpus"] == pytest.approx(0.1)
    states = [s["state"] for s in task["statuses"]]
    assert states == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"], task["statuses"]
    for status in task["statuses"]:
        assert isinstance(status["timestamp"], float)


def test_frameworks_endpoint(cluster: LocalCluster, finished: Finished) -> None:
    body = rh.get(cluster.master, "/master/frameworks").json()
    assert body.keys() >= {"frameworks", "completed_frameworks", "unregistered_frameworks"}
    assert finished.framework_id in {f["id"] for f in body["frameworks"]}


def test_slaves_endpoint(cluster: LocalCluster) -> None:
    body = rh.get(cluster.master, "/master/slaves").json()
    assert body.keys() >= {"slaves", "recovered_slaves"}
    assert {a["id"] for a in body["slaves"]} == set(cluster.agents)


def task_ids(cluster: LocalCluster, query: str) -> list[str]:
    reply = rh.get(cluster.master, "/master/tasks" + query)
    assert reply.status == 200, reply.body
    return [t["id"] for t in reply.json()["tasks"]]


def test_tasks_endpoint(cluster: LocalCluster, finished: Finished) -> None:
    mine = f"framework_id={finished.framework_id}"
    # Sorted by the first status's timestamp, newest first unless order=asc.
    assert task_ids(cluster, f"?{mine}") == ["sandbox", "first"]
    assert task_ids(cluster, f"?{mine}&order=des") == ["sandbox", "first"]
    assert task_ids(cluster, f"?{mine}&order=asc") == ["first", "sandbox"]
    assert task_ids(cluster, f"?{mine}&limit=1") == ["sandbox"]
    assert task_ids(cluster, f"?{mine}&limit=1&offset=1") == ["first"]
    assert task_ids(cluster, f"?{mine}&offset=2") == []
    assert task_ids(cluster, f"?{mine}&limit=0") == []
    assert task_ids(cluster, "?task_id=first") == ["first"]
    assert task_ids(cluster, "?framework_id=no-such-framework") == []
    assert {"first", "sandbox"} <= set(task_ids(cluster, ""))
    task = rh.get(cluster.master, "/master/tasks?task_id=sandbox").json()["tasks"][0]
    assert task.keys() >= TASK_KEYS


# A negative number is no error: it wraps around (test_localmesos_readonly.py).
@pytest.mark.parametrize("query", ["limit=abc", "limit=1.5", "offset=x", "limit=99999999999"])
def test_tasks_endpoint_rejects_bad_numbers(cluster: LocalCluster, query: str) -> None:
    # Stricter than Mesos, on purpose: readonly_handler.cpp `tasks` silently falls back to the
    # default limit/offset when numify fails; a tutorial reader is better served by a 400.
    reply = rh.get(cluster.master, f"/master/tasks?{query}")
    assert reply.status == 400, reply.body


def test_metrics_snapshot(cluster: LocalCluster, finished: Finished) -> None:
    reply = rh.get(cluster.master, "/metrics/snapshot")
    assert reply.status == 200
    metrics = reply.json()
    assert isinstance(metrics, dict)
    for key in METRIC_KEYS:
        assert key in metrics, key
    for key, value in metrics.items():
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    assert metrics["master/elected"] == 1
    assert metrics["master/slaves_active"] == 2
    # The fixture's two command tasks finished after it read the counter.
    assert metrics["master/tasks_finished"] >= finished.finished_before + 2


def test_per_framework_offer_counters(cluster: LocalCluster, finished: Finished) -> None:
    """FrameworkMetrics (src/master/metrics.cpp): every offer sent ends accepted, declined or
    rescinded, or is still outstanding."""
    snapshot = rh.get(cluster.master, "/metrics/snapshot").json()
    prefix = f"master/frameworks/sandbox/{finished.framework_id}/offers/"
    names = ("sent", "accepted", "declined", "rescinded")
    counts = {name: snapshot[prefix + name] for name in names}
    held = [f for f in cluster.state()["frameworks"] if f["id"] == finished.framework_id]
    outstanding = len(held[0]["offers"])
    assert counts["accepted"] == 2  # one offer for each of the fixture's two tasks
    assert counts["rescinded"] == 0
    assert counts["sent"] == counts["accepted"] + counts["declined"] + outstanding, counts


def test_metric_names_encode_the_framework_name_as_libprocess_does() -> None:
    # http::encode (3rdparty/libprocess/src/http.cpp) encodes a list of characters, so `!`,
    # `(` and `*` stay as they are.
    assert metrics.encode("bike share/2~(v1)!*") == "bike%20share%2F2%7E(v1)!*"
    assert metrics.encode("año") == "a%C3%B1o"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/master/", "text/html; charset=utf-8"),
        ("/ui/index.html", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/mode.js", "text/javascript; charset=utf-8"),
        ("/master/ui/style.css", "text/css; charset=utf-8"),
    ],
)
def test_the_live_page_is_served(cluster: LocalCluster, path: str, kind: str) -> None:
    reply = rh.get(cluster.master, path)
    assert reply.status == 200, reply.text[:200]
    assert reply.header("Content-Type") == kind
    name = "index.html" if path in ("/", "/master/") else path.rsplit("/", 1)[1]
    assert reply.body == (STATIC_DIR / name).read_bytes()


def test_any_method_gets_the_page_as_libprocess_serves_assets(cluster: LocalCluster) -> None:
    # `ProcessBase::consume(HttpEvent)` reads and drops the body of a request for an asset.
    reply = rh.request(cluster.master, "POST", "/", b"{not json", {"Content-Type": "text/plain"})
    assert (reply.status, reply.body) == (200, (STATIC_DIR / "index.html").read_bytes())


@pytest.mark.parametrize(
    "path",
    [
        "/ui",
        "/ui/",
        "/ui/nope.js",
        "/ui/.hidden",
        "/ui/../http.py",
        "/ui/%2e%2e/http.py",
        "/ui/..%2fhttp.py",
        "/master/ui/static/app.js",
        "/ui/app.js/x",
    ],
)
def test_nothing_outside_the_page_files_is_served(cluster: LocalCluster, path: str) -> None:
    reply = rh.get(cluster.master, path)
    assert (reply.status, reply.body) == (404, b""), path


def test_redirect_points_to_the_leader(cluster: LocalCluster) -> None:
    reply = rh.get(cluster.master, "/master/redirect")
    assert reply.status == 307
    hostname = rh.get(cluster.master, "/master/state").json()["hostname"]
    port = cluster.master.rpartition(":")[2]
    assert reply.all("Location") == [f"//{hostname}:{port}"]


@pytest.mark.parametrize("path", ["/nope", "/master/nope", "/api/v2", "/files/read"])
def test_unknown_path_is_404(cluster: LocalCluster, path: str) -> None:
    reply = rh.get(cluster.master, path)
    assert (reply.status, reply.body) == (404, b"")


# -- the operator API (CONFORMANCE.md: Read-only and operator endpoints) --------------------------


def operator(cluster: LocalCluster, kind: str) -> dict:
    reply = post(cluster, "/api/v1", {"type": kind})
    assert reply.status == 200, (kind, reply.body)
    assert reply.header("Content-Type") == "application/json"
    body = reply.json()
    assert body["type"] == kind
    assert set(body) == {"type", kind.lower()}
    return body[kind.lower()]


def assert_v1_resources(resources: list[dict]) -> None:
    assert isinstance(resources, list)
    for resource in resources:
        assert {"name", "type"} <= resource.keys(), resource
        assert resource["type"] in ("SCALAR", "RANGES", "SET")


def test_operator_health_and_version(cluster: LocalCluster) -> None:
    assert operator(cluster, "GET_HEALTH") == {"healthy": True}
    assert VERSION.fullmatch(operator(cluster, "GET_VERSION")["version_info"]["version"])


def check_get_tasks(body: dict, finished: Finished) -> None:
    assert {"tasks", "completed_tasks"} <= body.keys()
    done = {t["task_id"]["value"]: t for t in body["completed_tasks"]}
    task = done["sandbox"]
    assert task["framework_id"] == {"value": finished.framework_id}
    assert task["agent_id"] == {"value": finished.agent_id}
    assert task["state"] == "TASK_FINISHED"
    assert_v1_resources(task["resources"])


def check_get_frameworks(body: dict, finished: Finished) -> None:
    assert {"frameworks", "completed_frameworks"} <= body.keys()
    [framework] = [
        f for f in body["frameworks"] if f["framework_info"]["id"]["value"] == finished.framework_id
    ]
    assert (framework["active"], framework["connected"], framework["recovered"]) == (
        True,
        True,
        False,
    )
    assert isinstance(framework["registered_time"]["nanoseconds"], int)
    assert framework["framework_info"]["name"] == "sandbox"


def check_get_agents(body: dict, cluster: LocalCluster) -> None:
    assert {"agents", "recovered_agents"} <= body.keys()
    assert {a["agent_info"]["id"]["value"] for a in body["agents"]} == set(cluster.agents)
    for agent in body["agents"]:
        assert {"agent_info", "active", "version", "pid", "total_resources"} <= agent.keys()
        assert agent["active"] is True
        assert VERSION.fullmatch(agent["version"])
        assert_v1_resources(agent["total_resources"])
        # Left out when empty, as protobuf leaves out an empty repeated field.
        for key in ("allocated_resources", "offered_resources"):
            assert_v1_resources(agent.get(key, []))


def test_operator_get_state(cluster: LocalCluster, finished: Finished) -> None:
    state = operator(cluster, "GET_STATE")
    assert {"get_tasks", "get_executors", "get_frameworks", "get_agents"} <= state.keys()
    assert "executors" in state["get_executors"]
    check_get_tasks(state["get_tasks"], finished)
    check_get_frameworks(state["get_frameworks"], finished)
    check_get_agents(state["get_agents"], cluster)


def test_operator_get_agents_frameworks_tasks(cluster: LocalCluster, finished: Finished) -> None:
    check_get_agents(operator(cluster, "GET_AGENTS"), cluster)
    check_get_frameworks(operator(cluster, "GET_FRAMEWORKS"), finished)
    check_get_tasks(operator(cluster, "GET_TASKS"), finished)


def test_operator_call_errors(cluster: LocalCluster) -> None:
    reply = post(cluster, "/api/v1", {"type": "NOT_A_CALL"})
    assert reply.status == 400
    assert reply.text == "Failed to validate master::Call: Expecting 'type' to be present"
    assert post(cluster, "/api/v1", {"type": "UNKNOWN"}).status == 501
    assert post(cluster, "/api/v1", {"type": "GET_MAINTENANCE_STATUS"}).status == 501
    reply = rh.request(cluster.master, "POST", "/api/v1", b"[]", rh.JSON_HEADERS)
    assert reply.status == 400
    assert reply.text == "Failed to convert JSON into Call protobuf: Expecting a JSON object"


# -- the agent's sandbox files ---------------------------------------------------------------------


def files(finished: Finished, endpoint: str, **query: object) -> rh.Reply:
    target = f"/files/{endpoint}"
    if query:
        target += "?" + "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())
    return rh.get(finished.agent, target)


def read(finished: Finished, **query: object) -> dict:
    reply = files(finished, "read", **query)
    assert reply.status == 200, (query, reply.body)
    assert reply.header("Content-Type") == "application/json"
    return reply.json()


def test_read_offsets_and_lengths(finished: Finished) -> None:
    stdout = f"{finished.directory}/stdout"
    assert read(finished, path=stdout) == {"data": "", "offset": 14}
    assert read(finished, path=stdout, offset=-1) == {"data": "", "offset": 14}
    assert read(finished, path=stdout, offset=0) == {"data": "hello sandbox\n", "offset": 0}
    assert read(finished, path=stdout, offset=6, length=7) == {"data": "sandbox", "offset": 6}
    assert read(finished, path=stdout, offset=6, length=-1) == {"data": "sandbox\n", "offset": 6}
    assert read(finished, path=stdout, offset=3, length=0) == {"data": "", "offset": 3}
    assert read(finished, path=stdout, offset=14) == {"data": "", "offset": 14}
    assert read(finished, path=stdout, offset=100) == {"data": "", "offset": 100}
    assert read(finished, path=stdout, offset=2**62) == {"data": "", "offset": 2**62}


def test_read_is_capped_at_16_pages(finished: Finished) -> None:
    big = f"{finished.directory}/big.txt"
    assert read(finished, path=big) == {"data": "", "offset": BIG_SIZE}
    for query in ({"offset": 0}, {"offset": 0, "length": BIG_SIZE}, {"offset": 0, "length": -1}):
        assert read(finished, path=big, **query) == {"data": "a" * READ_CAP, "offset": 0}
    tail = read(finished, path=big, offset=BIG_SIZE - 5, length=100)
    assert tail == {"data": "aaaaa", "offset": BIG_SIZE - 5}


def test_read_through_every_attached_path(finished: Finished) -> None:
    latest = str(Path(finished.directory).parent / "latest")
    for root in (finished.directory, latest, finished.virtual, finished.virtual + "/"):
        assert read(finished, path=f"{root}/stdout", offset=0)["data"] == "hello sandbox\n"
        assert read(finished, path=f"{root}/sub/inner.txt", offset=0)["data"] == "inner\n"
    reply = rh.get(finished.agent, f"/slave(1)/files/read?path={finished.virtual}/stdout&offset=0")
    assert reply.json()["data"] == "hello sandbox\n"


def test_read_errors(finished: Finished) -> None:
    root = finished.directory
    stdout = f"{root}/stdout"
    cases: list[tuple[dict[str, object], int, bytes]] = [
        ({}, 400, b"Expecting 'path=value' in query.\n"),
        ({"path": ""}, 400, b"Expecting 'path=value' in query.\n"),
        ({"offset": 0}, 400, b"Expecting 'path=value' in query.\n"),
        ({"path": f"{root}/nothing-here"}, 404, b""),
        ({"path": f"{finished.virtual}/nothing-here"}, 404, b""),
        ({"path": "/etc/passwd"}, 404, b""),
        ({"path": "/frameworks/nope/executors/nope/runs/latest/stdout"}, 404, b""),
        ({"path": f"{root}/dangling"}, 404, b""),
        ({"path": root}, 400, b"Cannot read a directory.\n"),
        ({"path": f"{root}/sub"}, 400, b"Cannot read a directory.\n"),
        ({"path": finished.virtual}, 400, b"Cannot read a directory.\n"),
        (
            {"path": stdout, "offset": "abc"},
            400,
            b"Failed to parse offset: Failed to convert 'abc' to number.\n",
        ),
        (
            {"path": stdout, "length": "xyz"},
            400,
            b"Failed to parse length: Failed to convert 'xyz' to number.\n",
        ),
        (
            {"path": stdout, "offset": "99999999999999999999999"},
            400,
            b"Failed to parse offset: Failed to convert '99999999999999999999999' to number.\n",
        ),
        ({"path": stdout, "offset": -2}, 400, b"Negative offset provided: -2.\n"),
        ({"path": stdout, "offset": 0, "length": -2}, 400, b"Negative length provided: -2.\n"),
    ]
    for query, status, body in cases:
        reply = files(finished, "read", **query)
        assert (reply.status, reply.body) == (status, body), query


def test_paths_outside_the_sandbox_are_inaccessible(finished: Finished) -> None:
    # files.cpp `resolve` quotes the attached directory joined with the rest of the request
    # (`<sandbox>/leak`), not the real path it resolves to.
    root = finished.directory
    real_root = os.path.realpath(root)
    for endpoint in ("read", "browse"):
        for path, quoted in [
            (f"{root}/..", f"{real_root}/.."),
            (f"{root}/sub/../..", f"{real_root}/sub/../.."),
            (f"{finished.virtual}/..", f"{real_root}/.."),
            (f"{root}/leak", f"{real_root}/leak"),
            (f"{finished.virtual}/leak", f"{real_root}/leak"),
        ]:
            reply = files(finished, endpoint, path=path)
            assert (reply.status, reply.body) == (400, f"'{quoted}' is inaccessible.\n".encode()), (
                endpoint,
                path,
            )


def test_symlink_loop_is_a_bad_request(finished: Finished) -> None:
    for endpoint in ("read", "browse"):
        reply = files(finished, endpoint, path=f"{finished.directory}/loop_a")
        assert reply.status == 400, (endpoint, reply.body)
        assert reply.text.startswith("Failed to determine canonical path of"), reply.text


def test_browse(finished: Finished) -> None:
    for root in (finished.directory, finished.virtual):
        reply = files(finished, "browse", path=root)
        assert reply.status == 200, reply.body
        entries = {Path(e["path"]).name: e for e in reply.json()}
        # Symlinks that cannot be followed are left out, as stat(2) fails on them.
        assert set(entries) == {"stdout", "stderr", "big.txt", "sub", "leak"}, entries
        for name, entry in entries.items():
            assert entry["path"] == f"{root}/{name}"
            assert {"nlink", "size", "mtime", "mode", "uid", "gid"} <= entry.keys()
        assert entries["big.txt"]["size"] == BIG_SIZE
        assert entries["stdout"]["size"] == 14
        assert entries["sub"]["mode"].startswith("d")
        assert entries["stdout"]["mode"].startswith("-")
    inner = files(finished, "browse", path=f"{finished.virtual}/sub").json()
    assert [e["path"] for e in inner] == [f"{finished.virtual}/sub/inner.txt"]


def test_browse_errors(finished: Finished) -> None:
    root = finished.directory
    assert files(finished, "browse", path=f"{root}/stdout").json() == []  # a file lists nothing
    for query, status, body in [
        ({}, 400, b"Expecting 'path=value' in query.\n"),
        ({"path": f"{root}/nothing-here"}, 404, b""),
        ({"path": "/etc"}, 404, b""),
    ]:
        reply = files(finished, "browse", **query)
        assert (reply.status, reply.body) == (status, body), query


def test_agent_read_only_endpoints(finished: Finished) -> None:
    assert rh.get(finished.agent, "/health").status == 200
    assert VERSION.fullmatch(rh.get(finished.agent, "/version").json()["version"])
    state = rh.get(finished.agent, "/state").json()
    assert state["id"] == finished.agent_id
    assert rh.get(finished.agent, "/nope").status == 404


def test_keep_alive_survives_error_answers(cluster: LocalCluster) -> None:
    """After a 4xx on a keep-alive connection, the next request on it still works."""
    with rh.Connection(cluster.master) as conn:
        for path, status in (("/nope", 404), ("/master/tasks?limit=x", 400), ("/health", 200)):
            conn.send(rh.encode_request("GET", path))
            assert rh.read_reply(conn).status == status, path
    with rh.Connection(cluster.master) as conn:
        conn.send(rh.encode_request("POST", "/api/v1", b"{}", rh.JSON_HEADERS))
        assert rh.read_reply(conn, "POST").status == 400
        conn.send(rh.encode_request("GET", "/health"))
        assert rh.read_reply(conn).status == 200
