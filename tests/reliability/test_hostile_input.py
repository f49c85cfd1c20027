"""Hostile input: what one client may send must not cost the cluster more than what it keeps, nor
break it for the others. Deep or malformed JSON is a 400 on every endpoint (the endpoints come
from the routing tables, so a new one is covered without touching this file); unknown fields
are dropped as Mesos's protobuf parsing drops them; completed frameworks keep a bounded
summary; /link takes only the cluster's own components, with the arguments its messages
declare, and holds no thread per URL that a message names.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest

from localmesos import link
from localmesos.agent import http as agent_http
from localmesos.cluster import LocalCluster
from localmesos.master import http as master_http
from localmesos.master.models import COMPLETED_FRAMEWORK_INFO_BYTES
from localmesos.web import MAX_BODY
from tests.integration import raw_http as rh

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 1000 + b"]" * 1000
# Within Python's own recursion limit, past stout's 200 levels: Mesos answers 400.
DEEP_IN_A_CALL = b'{"type": "GET_HEALTH", "x": ' + b"[" * 300 + b"]" * 300 + b"}"
HOSTILE_BODIES = {
    "deep": DEEP,
    "deep_in_a_call": DEEP_IN_A_CALL,
    "malformed": b'{"message": [1,, 2]',
    "not_utf8": b'{"type": "\xff"}',
}
# The endpoints that read a JSON body, each side: these must refuse the bodies above with 400.
READS_JSON = {"/api/v1/scheduler", "/api/v1", "/api/v1/operator", "/api/v1/executor", "/link"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(agents=1) as cluster:
        yield cluster


def secret_of(cluster: LocalCluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.link_secret}"}


def agent_address(cluster: LocalCluster) -> str:
    return cluster.agent_url(cluster.agents[0]).removeprefix("http://")


def operator(address: str, kind: str) -> rh.Reply:
    return rh.post_json(address, "/api/v1", {"type": kind})


def endpoints(cluster: LocalCluster) -> list[tuple[str, str, str]]:
    """(address, request path, endpoint) for every endpoint of the master and the agent."""
    agent = agent_address(cluster)
    return [
        *((cluster.leader, "/master" + path, path) for path in sorted(master_http.ENDPOINTS)),
        *((agent, "/slave(1)" + path, path) for path in sorted(agent_http.ENDPOINTS)),
    ]


def assert_healthy(cluster: LocalCluster) -> None:
    for address in (cluster.leader, agent_address(cluster)):
        assert rh.get(address, "/health").status == 200
    for kind in ("GET_STATE", "GET_FRAMEWORKS"):
        reply = operator(cluster.leader, kind)
        assert reply.status == 200, reply.text[:300]
        json.loads(reply.body)


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_every_endpoint_answers_hostile_json_with_a_clear_error(
    cluster: LocalCluster, name: str
) -> None:
    body = HOSTILE_BODIES[name]
    headers = {**JSON, **secret_of(cluster)}
    seen = []
    for address, target, path in endpoints(cluster):
        reply = rh.request(address, "POST", target, body, headers)
        seen.append((target, reply.status))
        # 501: POST /maintenance/schedule, which localmesos does not keep.
        assert reply.status < 500 or reply.status == 501, (target, reply.status, reply.text[:300])
        assert b"Traceback" not in reply.body
        if path in READS_JSON:
            assert reply.status == 400, (target, reply.status, reply.text[:300])
            assert reply.text.startswith("Failed to parse body into JSON: "), reply.text[:300]
    assert len(seen) == len(master_http.ENDPOINTS) + len(agent_http.ENDPOINTS)
    assert_healthy(cluster)


def test_every_endpoint_refuses_a_body_over_the_limit(cluster: LocalCluster) -> None:
    for address, target, _ in endpoints(cluster):
        with rh.Connection(address) as conn:
            # Only the head: the answer must come without the body ever being read.
            head = {**JSON, **secret_of(cluster), "Content-Length": str(MAX_BODY + 1)}
            conn.send(rh.encode_request("POST", target, b"", head))
            reply = rh.read_reply(conn, "POST")
        assert reply.status == 413, (target, reply.status, reply.text[:300])
    assert_healthy(cluster)


def test_unknown_keys_are_dropped_and_the_operator_api_keeps_working(
    cluster: LocalCluster,
) -> None:
    nest: list = []
    for _ in range(150):
        nest = [nest]
    labels = {"labels": [{"key": "team", "value": "data", "colour": "blue"}]}
    info = rh.framework_info(name="unknown-keys", zzz=nest, labels=labels)
    with rh.subscribe(cluster.leader, info) as sub:
        reply = operator(cluster.leader, "GET_FRAMEWORKS")
        assert reply.status == 200, reply.text[:300]
        (kept,) = [
            f["framework_info"]
            for f in reply.json()["get_frameworks"]["frameworks"]
            if f["framework_info"]["id"]["value"] == sub.framework_id
        ]
        # Dropped at every level, as stout's parse drops what FindFieldByName does not find.
        assert "zzz" not in kept
        assert kept["labels"] == {"labels": [{"key": "team", "value": "data"}]}
    # 980 levels under an unknown key once made GET_STATE and GET_FRAMEWORKS a 500 for all.
    deep = b'{"user": "u", "name": "deep", "zzz": ' + b"[" * 980 + b"]" * 980 + b"}"
    body = b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": ' + deep + b"}}"
    reply = rh.request(cluster.leader, "POST", "/api/v1/scheduler", body, JSON)
    assert reply.status == 400, reply.text[:300]
    assert reply.text.startswith("Failed to parse body into JSON: syntax error at line 1 near: ")
    assert_healthy(cluster)
    assert rh.get(cluster.leader, "/master/state").status == 200


def test_completed_frameworks_keep_a_bounded_summary(cluster: LocalCluster) -> None:
    big = {"labels": [{"key": f"k{i:06d}", "value": "v" * 40} for i in range(40_000)]}
    small = {"labels": [{"key": "team", "value": "data"}]}
    ids = []
    for labels in (big, big, big, small):
        with rh.subscribe(cluster.leader, rh.framework_info(labels=labels)) as sub:
            ids.append(sub.framework_id)
            # Mesos keeps the labels of a live framework whole, and so does localmesos.
            if labels is big:
                assert len(operator(cluster.leader, "GET_FRAMEWORKS").body) > 2_000_000
            assert sub.call({"type": "TEARDOWN"}).status == 202
    reply = operator(cluster.leader, "GET_FRAMEWORKS")
    completed = {
        f["framework_info"]["id"]["value"]: f["framework_info"]
        for f in reply.json()["get_frameworks"]["completed_frameworks"]
    }
    assert set(ids) <= set(completed)
    for framework_id in ids[:3]:
        summary = completed[framework_id]
        assert (summary["name"], summary["user"]) == ("raw-http", "tester")
        assert len(json.dumps(summary)) <= COMPLETED_FRAMEWORK_INFO_BYTES
    assert completed[ids[3]]["labels"] == small  # a framework of any usual size: kept whole
    # Three 2 MB SUBSCRIBEs once stayed in every answer about completed frameworks.
    for size in (
        len(reply.body),
        len(operator(cluster.leader, "GET_STATE").body),
        len(rh.get(cluster.leader, "/master/state").body),
        len(rh.get(cluster.leader, "/master/frameworks").body),
    ):
        assert size < 4 * COMPLETED_FRAMEWORK_INFO_BYTES + 64 * 1024, size


# -- /link ------------------------------------------------------------------------------------


def link_targets(cluster: LocalCluster) -> list[tuple[str, str]]:
    return [(cluster.leader, "/master/link"), (agent_address(cluster), "/slave(1)/link")]


def test_link_requires_the_cluster_secret(cluster: LocalCluster) -> None:
    info = {"hostname": "h", "ip": "127.0.0.1", "port": 1, "resources": [], "attributes": []}
    message = {"message": "register_agent", "args": [info, {"$link": "http://127.0.0.1:1/link"}]}
    before = rh.get(cluster.leader, "/master/slaves").json()["slaves"]
    for address, path in link_targets(cluster):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
            for method in ("POST", "GET"):
                reply = rh.request(address, method, path, json.dumps(message), {**JSON, **headers})
                assert reply.status == 401, (path, method, headers, reply.status)
                assert reply.header("WWW-Authenticate") == 'Bearer realm="localmesos-link"'
    # Nothing reached the master: no agent at port 1 registered.
    assert rh.get(cluster.leader, "/master/slaves").json()["slaves"] == before


@pytest.mark.parametrize(
    ("side", "message", "expected"),
    [
        ("master", {"message": "pong", "args": []}, "missing a required argument: 'agent_id'"),
        ("master", {"message": "pong", "args": [7]}, "'agent_id' must be str, not 7"),
        ("master", {"message": "pong", "args": ["a", "b"]}, "too many positional arguments"),
        ("master", {"message": "pong", "args": [{"$link": "http://127.0.0.1:1/"}]}, "must be str"),
        (
            "master",
            {"message": "register_agent", "args": [{}, {"$link": "ftp://127.0.0.1:1/link"}]},
            "a link URL is http://HOST:PORT/PATH, not 'ftp://127.0.0.1:1/link'",
        ),
        (
            "master",
            {"message": "register_agent", "args": [{}, "http://127.0.0.1:1/link"]},
            "'link' must be {\"$link\": URL}",
        ),
        ("master", {"message": ["pong"], "args": []}, 'Expecting {"message"'),
        ("master", {"message": "pong", "args": {"agent_id": "a"}}, 'Expecting {"message"'),
        ("master", {"message": "__init__", "args": []}, "Unknown link message '__init__'"),
        ("agent", {"message": "ping", "args": ["yes"]}, "'connected' must be bool"),
        ("agent", {"message": "kill_task", "args": ["f", "t", 5]}, "'kill_policy' must be"),
        ("agent", {"message": "shutdown_framework", "args": [None]}, "'framework_id' must be"),
    ],
)
def test_link_answers_wrong_arguments_with_a_400(
    cluster: LocalCluster,
    caplog: pytest.LogCaptureFixture,
    side: str,
    message: dict,
    expected: str,
) -> None:
    address, path = link_targets(cluster)[0 if side == "master" else 1]
    with caplog.at_level(logging.ERROR, logger="localmesos"):
        reply = rh.post_json(address, path, message, secret_of(cluster))
        assert reply.status == 400, (reply.status, reply.text)
        assert expected in reply.text, reply.text
        assert_healthy(cluster)
    # Refused at the door: nothing reached the master's or the agent's thread to fail there.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_distinct_link_urls_hold_no_threads(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link, "MAX_HTTP_LINKS", 100)
    monkeypatch.setattr(link, "LINK_IDLE", 0.2)
    threads = threading.active_count()
    # Links where no link belongs: refused before any is made.
    statuses = set()
    for i in range(1000):
        message = {"message": "pong", "args": [{"$link": f"http://127.0.0.1:1/link/{i}"}]}
        statuses.add(
            rh.post_json(cluster.leader, "/master/link", message, secret_of(cluster)).status
        )
    assert threading.active_count() <= threads + 5, f"{threading.active_count() - threads} more"
    assert statuses == {400}
    # Registrations from 300 agents that are not there: the master answers each over a new
    # link, whose thread ends once it has nothing left to send, and keeps at most 100 links.
    for i in range(300):
        info = {
            "hostname": f"ghost-{i}",
            "ip": "127.0.0.1",
            "port": 1,
            "resources": [],
            "attributes": [],
        }
        message = {
            "message": "register_agent",
            "args": [info, {"$link": f"http://127.0.0.1:1/{i}"}],
        }
        reply = rh.post_json(cluster.leader, "/master/link", message, secret_of(cluster))
        assert reply.status == 202, reply.text
    rh.wait_until(
        lambda: threading.active_count() <= threads + 5,
        60,
        f"the threads to come back to {threads} (now {threading.active_count()})",
    )
    assert len(link._HTTP_LINKS) <= 100
    assert_healthy(cluster)
