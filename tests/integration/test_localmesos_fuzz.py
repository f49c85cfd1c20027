"""Fuzzing the local cluster's HTTP surface with hypothesis.

Whatever arrives (binary or JSON bodies shaped after the real Call messages, any Content-Type,
method, header or path, any /files query), the answer must be one well-formed HTTP/1.1
response: a status line, header lines, a body framed by Content-Length (or a chunked RecordIO
stream for a successful SUBSCRIBE) and nothing after it. It is never a 5xx, except 501 for the
UNKNOWN call, operator calls localmesos does not implement, and HTTP methods the server does not
know. Afterwards the cluster must still be healthy and serve strict JSON.

One cluster serves the whole module; the examples are derandomized, so CI sees the same ones.
"""

from __future__ import annotations

import base64
import json
import mmap
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from localmesos import link, protocol
from localmesos.cluster import LocalCluster
from localmesos.master import BODY_OF
from tests.integration import raw_http as rh

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
READ_CAP = 16 * mmap.PAGESIZE
BIG_SIZE = READ_CAP + 100
SANDBOX_COMMAND = (
    "printf 'hello fuzz\\n'; "
    f"head -c {BIG_SIZE} /dev/zero | tr '\\0' a > big.txt; printf '\\377\\376bin' > binary; "
    "ln -s /etc/passwd leak; ln -s loop_b loop_a; ln -s loop_a loop_b; ln -s missing dangling; "
    "mkdir sub; echo inner > sub/inner.txt; ln -s .. up"
)
# The methods http.server dispatches; any other one gets its own 501 "Unsupported method".
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
OPERATOR_DONE = {
    "GET_HEALTH",
    "GET_VERSION",
    "GET_STATE",
    "GET_AGENTS",
    "GET_FRAMEWORKS",
    "GET_EXECUTORS",
    "GET_TASKS",
    "GET_ROLES",
    "GET_FLAGS",
    "GET_MASTER",
}
# Calls with a body (400 without it; the master has no file: 404), and the event stream.
OPERATOR_OTHER = {"GET_METRICS", "LIST_FILES", "READ_FILE", "SUBSCRIBE"}
OPERATOR_501 = protocol.ENUMS["master.Call.Type"] - OPERATOR_DONE - OPERATOR_OTHER
# The fields of master.Call (Mesos's, all described in protocol.py): a value of the wrong shape
# in one is a 400 for any call, as stout's conversion fails before the call is looked at.
OPERATOR_BODIES = set(protocol.MESSAGES["master.Call"]) - {"type"}
SCHEDULER_PATHS = ["/api/v1/scheduler", "/master/api/v1/scheduler", "/api/v1/scheduler/"]
OPERATOR_PATHS = ["/api/v1", "/api/v1/operator", "/master/api/v1", "/master/api/v1/operator"]
MASTER_PATHS = [
    *SCHEDULER_PATHS,
    *OPERATOR_PATHS,
    "/version",
    "/health",
    "/master/health",
    "/master/state",
    "/state.json",
    "/master/frameworks",
    "/master/slaves",
    "/master/tasks",
    "/metrics/snapshot",
    "/master/redirect",
    "/master/link",
    "/nope",
]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "application/x-protobuf",
    "text/plain",
    "APPLICATION/JSON",
    "",
]
FIELD_NAMES = sorted(
    {name for fields in protocol.MESSAGES.values() for name in fields}
    | {"type", "framework_id", "value", "offer_ids", "refuse_seconds"}
)
EDGE_INTS = [0, -1, -2, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400]
HTTP_OK_TO_END = (200, 202, 204, 307, 400, 401, 403, 404, 405, 406, 413, 415)


# -- the cluster under test -----------------------------------------------------------------------


@dataclass
class Target:
    cluster: LocalCluster
    master: str
    agent: str
    agent_id: str
    framework_id: str
    stream_id: str
    sandbox: str
    virtual: str
    stream_errors: list[BaseException] = field(default_factory=list)
    stream_records: list[bytes] = field(default_factory=list)


def drain(stream: rh.EventStream, target: Target) -> None:
    """Read the fixture framework's stream to its end, checking every record's framing."""
    try:
        while (record := stream.next_record()) is not None:
            target.stream_records.append(record)
            json.loads(record)
    except (OSError, AssertionError, ValueError) as error:
        target.stream_errors.append(error)  # a broken record, or the end at teardown


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with LocalCluster(agents=1, allocation_interval=0.5, agent_timeout=5.0) as cluster:
        sub = rh.subscribe(
            cluster.master, rh.framework_info(name="fuzz-target", failover_timeout=3600.0)
        )
        try:
            offer, statuses = rh.run_command_task(sub, "sandbox", SANDBOX_COMMAND)
            assert statuses[-1]["state"] == "TASK_FINISHED", statuses
            assert sub.call({"type": "SUPPRESS"}).status == 202
            agent_id = offer["agent_id"]["value"]
            agent = cluster.agent_url(agent_id).removeprefix("http://")

            def directory() -> str | None:
                state = rh.get(agent, "/state").json()
                for framework in state["frameworks"] + state["completed_frameworks"]:
                    for executor in framework["completed_executors"]:
                        return executor["directory"]
                return None

            sub.stream.conn.sock.settimeout(None)
            t = Target(
                cluster,
                cluster.master,
                agent,
                agent_id,
                sub.framework_id,
                sub.stream_id,
                rh.wait_until(directory),
                f"/frameworks/{sub.framework_id}/executors/sandbox/runs/latest",
            )
            reader = threading.Thread(target=drain, args=(sub.stream, t), daemon=True)
            reader.start()
            yield t
        finally:
            sub.close()


# -- one exchange, checked strictly ----------------------------------------------------------------


@dataclass
class Answer:
    reply: rh.Reply
    records: list[bytes]
    complete: bool  # False for a stream the server ended because we went away


def exchange(address: str, data: bytes, method: str) -> Answer:
    """Send ``data`` and half-close; exactly one well-formed response must come back."""
    with rh.Connection(address) as conn:
        conn.send(data)
        conn.sock.shutdown(socket.SHUT_WR)
        head = rh.read_head(conn)
        records: list[bytes] = []
        complete = True
        if method == "HEAD" or head.status in (204, 304):
            body = b""
        elif head.chunked:
            assert head.all("Content-Length") == [], head.headers
            parser = rh.RecordIOParser()
            body = b""
            while True:
                if conn.at_eof():
                    complete = False  # a stream cut at a chunk boundary when we left
                    break
                chunk = rh.read_chunk(conn)
                if chunk is None:
                    break
                body += chunk
                records += parser.feed(chunk)
            assert not parser.buffer or not complete, parser.buffer
        else:
            lengths = head.all("Content-Length")
            assert len(lengths) == 1 and lengths[0].isdigit(), head.headers
            body = conn.read_exact(int(lengths[0]))
        rest = conn.read_to_end()
        assert rest == b"", f"bytes after the response: {rest[:100]!r}"
    return Answer(rh.Reply(head.status, head.reason, head.headers, body), records, complete)


def request_bytes(
    method: str,
    path: str,
    body: bytes,
    headers: list[tuple[str, str]],
    chunks: list[int] | None = None,
) -> bytes:
    if chunks is None:
        pairs = [*headers, ("Content-Length", str(len(body)))] if body else headers
        return rh.encode_request(method, path, body, pairs)
    encoded = b""
    position = 0
    for size in [*chunks, len(body)]:
        piece = body[position : position + size]
        position += len(piece)
        if piece:
            encoded += b"%x\r\n%s\r\n" % (len(piece), piece)
    encoded += b"0\r\n\r\n"
    return rh.encode_request(method, path, encoded, [*headers, ("Transfer-Encoding", "chunked")])


def call_type(body: bytes) -> Any:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value.get("type") if isinstance(value, dict) else None


def check(answer: Answer, method: str, path: str, body: bytes) -> None:
    """The properties every answer has, whatever was asked."""
    reply = answer.reply
    status = reply.status
    if status == 501:
        allowed = method not in METHODS or call_type(body) in {"UNKNOWN", *OPERATOR_501}
        assert allowed, (method, path, body[:200], reply.body)
    else:
        assert status < 500, (method, path, body[:200], reply.body)
    assert status in (*HTTP_OK_TO_END, 501), status
    if reply.chunked:
        # Only a SUBSCRIBE is answered with a stream: SUBSCRIBED first, or a lone ERROR.
        assert status == 200 and call_type(body) == "SUBSCRIBE", (path, body[:200])
        assert reply.header("Content-Type") == "application/json"
        events = [json.loads(r) for r in answer.records]
        for record in answer.records:
            assert record.isascii() and b"\n" not in record
            assert not rh.whitespace_outside_strings(record)
        assert events, "an empty event stream"
        if events[0]["type"] == "ERROR":
            assert answer.complete and len(events) == 1, events
            assert set(events[0]) == {"type", "error"} and events[0]["error"]["message"]
        else:
            assert events[0]["type"] == "SUBSCRIBED", events
    elif method == "HEAD":
        assert reply.body == b""
    elif status in (200, 202) and reply.header("Content-Type") == "application/json":
        json.loads(reply.body, parse_constant=_no_constant)
    if status == 202:
        assert reply.body == b"" and reply.all("Content-Length") == ["0"]


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


# -- strategies -----------------------------------------------------------------------------------

keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from([*sorted(protocol.ENUMS["Call.Type"]), "FOO", "", "AAAA", "5secs"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=20,
)
ids = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["sandbox", "", ".", "..", "a/b", "\x00", "\ud800", "x\udfff"]),
)


@cache
def typed(kind: str, depth: int, clean: bool) -> st.SearchStrategy[Any]:
    """A value of a protobuf field's kind: always well formed if ``clean``, else mostly."""
    if kind.startswith("enum:"):
        names = sorted(protocol.ENUMS[kind[5:]])
        return st.sampled_from(names if clean else [*names, "BOGUS", ""])
    if kind in protocol.MESSAGES:
        return message(kind, depth + 1, clean) if depth < 8 else st.just({})
    if kind == "object":  # a message of Mesos's that protocol.py keeps as sent
        return st.dictionaries(keys, json_values, max_size=3) if clean else json_values
    if clean:
        return {
            "string": ids,
            "bytes": st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()),
            "double": st.one_of(st.integers(0, 10**6), st.floats(-10.0, 1e6)),
            "int": st.integers(-(2**63), 2**63 - 1),
            "bool": st.booleans(),
        }[kind]
    return {
        "string": ids,
        "bytes": st.one_of(
            st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()),
            st.sampled_from(["!!", "AAAA", "AAAAAAAAAAAAAAAAAAAAAA==", " QUJD\n", "\ud800"]),
        ),
        "double": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(EDGE_INTS),
            st.sampled_from(["1.5", "nan", "inf", "-1", "1e999", "x", "", "\ud800"]),
        ),
        "int": st.one_of(st.integers(), st.sampled_from(EDGE_INTS), st.sampled_from(["7", "7.5"])),
        "bool": st.booleans(),
    }[kind]


def field_value(kind: str, repeated: bool, depth: int, clean: bool) -> st.SearchStrategy[Any]:
    if clean:
        one = typed(kind, depth, True)
        return st.lists(one, max_size=3) if repeated else one
    one = st.one_of(typed(kind, depth, False), typed(kind, depth, False), json_values)
    return st.one_of(st.lists(one, max_size=3), json_values) if repeated else one


@cache
def message(name: str, depth: int = 0, clean: bool = False) -> st.SearchStrategy[dict]:
    """A JSON object shaped after a message of protocol.MESSAGES. Clean: its required fields
    and some optional ones, all well typed. Otherwise: a random subset of its fields, each well
    typed or not, plus now and then a key it does not have."""

    def value(spec: tuple[str, bool, bool]) -> st.SearchStrategy[Any]:
        return st.deferred(lambda: field_value(spec[0], spec[2], depth, clean))

    fields = protocol.MESSAGES[name]
    required = {k: value(s) for k, s in fields.items() if clean and s[1]}
    optional = {k: value(s) for k, s in fields.items() if k not in required}
    base = st.fixed_dictionaries(required, optional=optional)
    if clean:
        return base
    return base.flatmap(
        lambda d: st.dictionaries(keys, json_values, max_size=2).map(lambda extra: {**extra, **d})
    )


CALL_BODY = {**BODY_OF, "REVIVE": "revive", "SUPPRESS": "suppress"}
# True nine times in ten (hypothesis draws small integers far more often than uniformly).
MOSTLY = st.sampled_from([True] * 9 + [False])
CALL_TYPES = [*sorted(protocol.ENUMS["Call.Type"]), "FOO"]


def calls(framework_id: str) -> st.SearchStrategy[dict]:
    """Scheduler calls: a type, the body the type names, often the real framework id."""

    @st.composite
    def build(draw: st.DrawFn) -> dict:
        clean = draw(st.booleans())
        call = draw(message("Call", 0, clean)) if draw(st.booleans()) else {}
        call.pop("framework_id", None)
        kind = draw(st.sampled_from(CALL_TYPES))
        if draw(MOSTLY):
            call["type"] = kind
        else:
            call.pop("type", None)
        body_key = CALL_BODY.get(kind)
        if body_key and draw(MOSTLY):
            call[body_key] = draw(message(protocol.MESSAGES["Call"][body_key][0], 0, clean))
        # Never the fixture's own id on TEARDOWN or SUBSCRIBE, which would end its stream.
        own = ["own"] * 3 if kind not in ("TEARDOWN", "SUBSCRIBE") else []
        choice = draw(st.sampled_from([*own, "none", "random"]))
        if choice == "own":
            call["framework_id"] = {"value": framework_id}
        elif choice == "random":
            call["framework_id"] = draw(st.one_of(message("ID"), json_values))
        return call

    return build()


header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=40,
).map(str.strip)


@st.composite
def headers(
    draw: st.DrawFn, stream_id: str, content_types: list[str | None] = CONTENT_TYPES
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    content_type = draw(st.sampled_from(content_types))
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    choice = draw(st.sampled_from(["none", "own", "none", "own", "text"]))
    if choice == "own":
        pairs.append(("Mesos-Stream-Id", stream_id))
    elif choice == "text":
        pairs.append(("Mesos-Stream-Id", draw(header_text)))
    for name in ("Accept", "Authorization", "Connection", "Expect", "X-Fuzz"):
        if not draw(MOSTLY):
            value = draw(
                st.one_of(
                    header_text,
                    st.sampled_from(
                        [
                            "application/json",
                            "text/html",
                            "*/*",
                            "Basic Zm9vOmJhcg==",
                            "Basic !!!",
                            "close",
                            "keep-alive",
                            "100-continue",
                        ]
                    ),
                )
            )
            pairs.append((name, value))
    return pairs


JSON = [("Content-Type", "application/json")]
# Bodies that once crashed the master, or would slip NaN or Infinity into its JSON.
SUBSCRIBE_HEAD = b'{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n",'
NAN_INFO = SUBSCRIBE_HEAD + b'"labels":NaN}}}'
HUGE_INFO = SUBSCRIBE_HEAD + b'"labels":-1e999}}}'
BIG_INT = SUBSCRIBE_HEAD + b'"failover_timeout":1' + b"0" * 400 + b"}}}"
LONG_NUMBER = (
    b'{"type":"DECLINE","framework_id":{"value":"f"},"decline":{"filters":{"refuse_seconds":'
    + b"9" * 5000
    + b"}}}"
)
SURROGATE_DATA = (
    b'{"type":"MESSAGE","framework_id":{"value":"f"},"message":{"agent_id":{"value":"a"},'
    b'"executor_id":{"value":"e"},"data":"\\ud800"}}'
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"",
            b"{",
            b"[" * 50000,
            NAN_INFO,
            HUGE_INFO,
            BIG_INT,
            LONG_NUMBER,
            SURROGATE_DATA,
            b'{"type":"\xed\xa0\x80',
            b'\xef\xbb\xbf{"type":"SUBSCRIBE"}',
            '{"type":"SUBSCRIBE"}'.encode("utf-16"),
        ]
    ),
)


# -- properties -----------------------------------------------------------------------------------


def assert_healthy(t: Target) -> None:
    assert rh.get(t.master, "/health").status == 200
    assert rh.get(t.agent, "/health").status == 200
    # Everything the master serves is still strict JSON (no NaN or Infinity slipped in).
    for path in ("/master/state", "/master/tasks", "/metrics/snapshot"):
        reply = rh.get(t.master, path)
        assert reply.status == 200
        json.loads(reply.body, parse_constant=_no_constant)


def test_scheduler_calls(target: Target) -> None:
    """Calls shaped after the Call message, sent with random headers to the scheduler API."""

    @FUZZ
    @given(
        call=calls(target.framework_id),
        path=st.sampled_from(SCHEDULER_PATHS),
        pairs=headers(target.stream_id, ["application/json"] * 8 + CONTENT_TYPES),
        chunks=st.none() | st.lists(st.integers(1, 64), max_size=4),
    )
    def run(call: dict, path: str, pairs: list[tuple[str, str]], chunks: list[int] | None) -> None:
        body = json.dumps(call).encode()
        answer = exchange(target.master, request_bytes("POST", path, body, pairs, chunks), "POST")
        check(answer, "POST", path, body)
        content_type = dict(pairs).get("Content-Type")
        if content_type is None:
            assert answer.reply.status == 400
        elif content_type != "application/json":
            assert answer.reply.status == 415

    run()
    assert_healthy(target)


def test_scheduler_bodies(target: Target) -> None:
    """Any bytes at all, as the body of a scheduler or operator call."""

    @FUZZ
    @given(
        body=bodies,
        path=st.sampled_from([*SCHEDULER_PATHS, *OPERATOR_PATHS]),
        pairs=headers(target.stream_id),
    )
    @example(body=b"[" * 100000, path="/api/v1/scheduler", pairs=JSON)
    @example(body=b"[" * 100000, path="/api/v1", pairs=JSON)
    @example(body=b'{"type":"\xed\xa0\x80', path="/api/v1/scheduler", pairs=JSON)
    @example(body=SURROGATE_DATA, path="/api/v1/scheduler", pairs=JSON)
    @example(body=NAN_INFO, path="/api/v1/scheduler", pairs=JSON)
    @example(body=HUGE_INFO, path="/api/v1/scheduler", pairs=JSON)
    @example(body=LONG_NUMBER, path="/api/v1/scheduler", pairs=JSON)
    @example(body=BIG_INT, path="/api/v1/scheduler", pairs=JSON)
    def run(body: bytes, path: str, pairs: list[tuple[str, str]]) -> None:
        answer = exchange(target.master, request_bytes("POST", path, body, pairs), "POST")
        check(answer, "POST", path, body)

    run()
    assert_healthy(target)


def test_operator_calls(target: Target) -> None:
    """Operator calls of every type, with random bodies around them."""

    @FUZZ
    @given(
        kind=st.sampled_from([*sorted(protocol.ENUMS["master.Call.Type"]), "FOO", 7, None]),
        extra=st.dictionaries(keys, json_values, max_size=3),
        path=st.sampled_from(OPERATOR_PATHS),
    )
    def run(kind: Any, extra: dict, path: str) -> None:
        call = {**extra, "type": kind}
        body = json.dumps(call).encode()
        headers = [("Content-Type", "application/json")]
        answer = exchange(target.master, request_bytes("POST", path, body, headers), "POST")
        check(answer, "POST", path, body)
        reply = answer.reply
        if extra.keys() & OPERATOR_BODIES and reply.status == 400:
            return  # a body of the wrong shape, whatever the call
        if kind in OPERATOR_DONE:
            assert reply.status == 200, reply.body
            assert set(reply.json()) == {"type", kind.lower()}
        elif kind in OPERATOR_OTHER:
            assert reply.status in (200, 400, 404), reply.body
        elif kind in OPERATOR_501:
            assert reply.status == 501, reply.body
        else:
            assert reply.status == 400, reply.body

    run()
    assert_healthy(target)


def test_methods_headers_and_paths(target: Target) -> None:
    """Any method on any master endpoint, with random headers, bodies and framing."""

    @FUZZ
    @given(
        method=st.one_of(st.sampled_from(METHODS), st.sampled_from(["FOO", "TRACE", "CONNECT"])),
        path=st.sampled_from(MASTER_PATHS),
        body=bodies,
        pairs=headers(target.stream_id),
        bad_length=st.none() | st.sampled_from(["abc", "-1", "1.5", "", "0x10"]),
    )
    def run(
        method: str, path: str, body: bytes, pairs: list[tuple[str, str]], bad_length: str | None
    ) -> None:
        if method not in METHODS:
            body = b""  # the server answers 501 without reading a body
        if bad_length is not None:
            data = rh.encode_request(method, path, b"", [*pairs, ("Content-Length", bad_length)])
            answer = exchange(target.master, data, method)
            assert answer.reply.status in (400, 501), answer.reply
            return
        answer = exchange(target.master, request_bytes(method, path, body, pairs), method)
        check(answer, method, path, body)

    run()
    assert_healthy(target)


segments = st.one_of(
    st.sampled_from(
        ["master", "api", "v1", "scheduler", "state", "state.json", "tasks", "metrics", "snapshot"]
    ),
    st.sampled_from(["files", "read", "browse", "slave(1)", "health", "version", "redirect"]),
    st.sampled_from(["", ".", "..", "%2e%2e", "%2F", "%00", "%zz", "~"]),
    st.text(max_size=8).map(lambda s: quote(s, safe="")),
)
query_keys = st.sampled_from(
    ["limit", "offset", "order", "framework_id", "task_id", "jsonp", "path", "length", "x"]
)
query_values = st.one_of(
    st.integers().map(str),
    st.sampled_from([str(n) for n in EDGE_INTS]),
    st.sampled_from(["asc", "des", "", "-1", "1.5", "1_000", " 5", "+5"]),
    st.text(max_size=10),
)
queries = st.lists(st.tuples(query_keys, query_values), max_size=4)


def target_of(parts: list[str], query: list[tuple[str, str]]) -> str:
    path = "/" + "/".join(parts)
    return path + ("?" + urlencode(query) if query else "")


def test_master_paths_and_queries(target: Target) -> None:
    @FUZZ
    @given(parts=st.lists(segments, max_size=5), query=queries)
    @example(parts=["master", "tasks"], query=[("limit", "1"), ("offset", str(10**30))])
    def run(parts: list[str], query: list[tuple[str, str]]) -> None:
        path = target_of(parts, query)
        answer = exchange(target.master, rh.encode_request("GET", path), "GET")
        check(answer, "GET", path, b"")

    run()
    assert_healthy(target)


def test_agent_files_and_paths(target: Target) -> None:
    """/files/read and /files/browse with paths in, around and out of the sandbox."""
    roots = [
        target.sandbox,
        target.virtual,
        target.sandbox.rsplit("/", 1)[0] + "/latest",
        target.sandbox,
        target.virtual,
        "/",
        "",
        "/frameworks",
        "/etc",
    ]
    names = st.sampled_from(
        ["stdout", "stderr", "big.txt", "binary", "leak", "loop_a", "dangling", "sub", "up"]
    )
    suffix = st.lists(
        st.one_of(
            names, st.sampled_from(["..", ".", "", "inner.txt", "\x00"]), st.text(max_size=6)
        ),
        max_size=4,
    )
    numbers = st.one_of(
        st.none(),
        st.integers(-3, BIG_SIZE + 10).map(str),
        st.sampled_from([str(n) for n in EDGE_INTS]),
        st.text(max_size=6),
    )

    @FUZZ
    @given(
        endpoint=st.sampled_from(["/files/read", "/files/browse", "/slave(1)/files/read"]),
        root=st.sampled_from(roots),
        rest=suffix,
        offset=numbers,
        length=numbers,
        other=st.none() | st.lists(segments, max_size=4),
    )
    @example(
        endpoint="/files/read", root=roots[0], rest=["big.txt"], offset="0", length=None, other=None
    )
    @example(
        endpoint="/files/read",
        root=roots[0],
        rest=["stdout"],
        offset=str(2**62),
        length="1",
        other=None,
    )
    @example(
        endpoint="/files/read",
        root=roots[1],
        rest=["stdout"],
        offset=str(10**30),
        length=None,
        other=None,
    )
    @example(
        endpoint="/files/browse",
        root=roots[0],
        rest=["loop_a"],
        offset=None,
        length=None,
        other=None,
    )
    @example(
        endpoint="/files/read", root=roots[1], rest=["\x00"], offset=None, length=None, other=None
    )
    def run(
        endpoint: str,
        root: str,
        rest: list[str],
        offset: str | None,
        length: str | None,
        other: list[str] | None,
    ) -> None:
        if other is not None:  # anything else on the agent
            path = target_of(other, [])
            answer = exchange(target.agent, rh.encode_request("GET", path), "GET")
            check(answer, "GET", path, b"")
            return
        query = [("path", "/".join([root, *rest]) if rest else root)]
        query += [(k, v) for k, v in (("offset", offset), ("length", length)) if v is not None]
        path = f"{endpoint}?{urlencode(query)}"
        answer = exchange(target.agent, rh.encode_request("GET", path), "GET")
        check(answer, "GET", path, b"")
        reply = answer.reply
        assert reply.status in (200, 400, 404), (path, reply)
        assert b"root:" not in reply.body, "a file outside the sandbox was served"
        if reply.status == 200:
            value = reply.json()
            if "read" in endpoint:
                assert set(value) == {"data", "offset"}, value
                assert len(value["data"]) <= READ_CAP
                assert isinstance(value["offset"], int) and value["offset"] >= 0
            else:
                assert isinstance(value, list)

    run()
    assert_healthy(target)


link_args = st.lists(
    st.one_of(
        json_values,
        st.builds(lambda url: {"$link": url}, st.one_of(st.text(max_size=12), st.just("ftp://x"))),
    ),
    max_size=5,
)


def test_link_messages(target: Target) -> None:
    """/link with the cluster's secret: any message, any arguments, any bytes. Never a 5xx."""
    secret = [("Authorization", f"Bearer {target.cluster.link_secret}"), *JSON]
    messages = sorted(link.MASTER_MESSAGES | link.AGENT_MESSAGES)

    @FUZZ
    @given(
        side=st.sampled_from(["master", "agent"]),
        message=st.one_of(st.sampled_from([*messages, "__init__", "stop"]), json_values),
        args=st.one_of(link_args, json_values),
        raw=st.none() | bodies,
    )
    @example(side="master", message="pong", args=[], raw=b"[" * 100000)
    @example(side="agent", message="ping", args=[], raw=b"[" * 300 + b"]" * 300)
    def run(side: str, message: Any, args: Any, raw: bytes | None) -> None:
        address, path = (target.master, "/master/link")
        if side == "agent":
            address, path = (target.agent, "/slave(1)/link")
        body = json.dumps({"message": message, "args": args}).encode() if raw is None else raw
        answer = exchange(address, request_bytes("POST", path, body, secret), "POST")
        check(answer, "POST", path, body)
        assert answer.reply.status in (202, 400), answer.reply

    run()
    assert_healthy(target)


def test_cluster_is_healthy_afterwards(target: Target) -> None:
    assert_healthy(target)
    # Everything the master serves is still strict JSON (no NaN or Infinity slipped in).
    for path in ("/master/state", "/master/frameworks", "/master/tasks", "/metrics/snapshot"):
        reply = rh.get(target.master, path)
        assert reply.status == 200
        json.loads(reply.body, parse_constant=_no_constant)
    reply = rh.post_json(target.master, "/api/v1", {"type": "GET_STATE"})
    assert reply.status == 200
    json.loads(reply.body, parse_constant=_no_constant)
    # A fresh SUBSCRIBE still works, and the fixture's framework was never cut off.
    with rh.subscribe(target.master) as sub:
        assert sub.stream.next_event() == {"type": "HEARTBEAT"}
        assert sub.call({"type": "REVIVE"}).status == 202
    frameworks = target.cluster.state()["frameworks"]
    [mine] = [f for f in frameworks if f["id"] == target.framework_id]
    assert mine["connected"], mine
    assert target.stream_errors == []
    assert all(record.isascii() for record in target.stream_records)
