"""HTTP/1.1 and RecordIO read by hand, for tests that must see the bytes a server sends.

Nothing here trusts the server: a response is parsed strictly (status line, header lines, a body
framed by Content-Length or by chunks), and a RecordIO stream is split into records without
looking at where the HTTP chunks begin or end. Standard library only.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from localmesos.protocol import TERMINAL_STATES

TIMEOUT = 10.0
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) ([^\r\n]*)\r\n")
HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*\r\n")
CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]+)(?:;[^\r\n]*)?\r\n")
RECORD_LENGTH = re.compile(rb"[1-9][0-9]*\n")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
JSON_HEADERS = {"Content-Type": "application/json"}


class ProtocolError(AssertionError):
    """The server broke HTTP/1.1 or RecordIO framing."""


class Connection:
    """A socket with a read buffer; every read is bounded by the socket timeout."""

    def __init__(self, address: str, timeout: float = TIMEOUT) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buffer = b""
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def at_eof(self) -> bool:
        """True if nothing is buffered and the peer has closed (waits for data otherwise)."""
        return not self.buffer and not self._fill()

    def read_line(self, limit: int = 65536) -> bytes:
        """One line including its CRLF; b"" at a clean end of stream."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > limit:
                raise ProtocolError(f"line longer than {limit} bytes: {self.buffer[:80]!r}")
            if not self._fill():
                if self.buffer:
                    raise ProtocolError(f"stream ended inside a line: {self.buffer!r}")
                return b""
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ProtocolError(f"stream ended after {len(self.buffer)} of {n} bytes")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_to_end(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data


@dataclass
class Head:
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def chunked(self) -> bool:
        return (self.header("Transfer-Encoding") or "").lower() == "chunked"


@dataclass
class Reply(Head):
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def read_head(conn: Connection) -> Head:
    """The status line and headers of the next final (non-1xx) response."""
    while True:
        line = conn.read_line()
        if not line:
            raise ProtocolError("connection closed before a status line")
        match = STATUS_LINE.fullmatch(line)
        if match is None:
            raise ProtocolError(f"malformed status line {line!r}")
        headers: list[tuple[str, str]] = []
        while True:
            line = conn.read_line()
            if line == b"\r\n":
                break
            header = HEADER_LINE.fullmatch(line)
            if header is None:
                raise ProtocolError(f"malformed header line {line!r}")
            headers.append((header[1].decode("latin-1"), header[2].decode("latin-1")))
        status = int(match[1])
        if 100 <= status < 200:
            continue  # 100 Continue: the final answer follows
        return Head(status, match[2].decode("latin-1"), headers)


def read_chunk(conn: Connection) -> bytes | None:
    """The data of the next chunk; None after the last chunk (and its trailer)."""
    line = conn.read_line()
    match = CHUNK_SIZE.fullmatch(line)
    if match is None:
        raise ProtocolError(f"malformed chunk size line {line!r}")
    size = int(match[1], 16)
    if size == 0:
        while (trailer := conn.read_line()) != b"\r\n":
            if not trailer:
                raise ProtocolError("stream ended inside the chunked trailer")
        return None
    data = conn.read_exact(size)
    if conn.read_exact(2) != b"\r\n":
        raise ProtocolError("chunk data not followed by CRLF")
    return data


def read_reply(conn: Connection, method: str = "GET") -> Reply:
    """One complete response, framed by Content-Length or chunks (never by closing)."""
    head = read_head(conn)
    lengths = head.all("Content-Length")
    body = b""
    if method == "HEAD" or head.status in (204, 304):
        pass
    elif head.chunked:
        if lengths:
            raise ProtocolError("both Transfer-Encoding: chunked and Content-Length")
        while (chunk := read_chunk(conn)) is not None:
            body += chunk
    else:
        if len(lengths) != 1 or not lengths[0].isdigit():
            raise ProtocolError(f"no usable Content-Length: {head.headers}")
        body = conn.read_exact(int(lengths[0]))
    return Reply(head.status, head.reason, head.headers, body)


def encode_request(
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | Iterable[tuple[str, str]] = (),
    host: str = "localhost",
) -> bytes:
    """A request as bytes; Content-Length is added for a body unless a header sets framing."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {name.lower() for name, _ in pairs}
    if "host" not in names:
        pairs.insert(0, ("Host", host))
    if body and not names & {"content-length", "transfer-encoding"}:
        pairs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs)
    return head.encode("latin-1") + b"\r\n" + body


def request(
    address: str,
    method: str,
    target: str,
    body: bytes | str = b"",
    headers: dict[str, str] | Iterable[tuple[str, str]] = (),
    timeout: float = TIMEOUT,
) -> Reply:
    """One request on a fresh connection, answered by one complete response."""
    if isinstance(body, str):
        body = body.encode()
    with Connection(address, timeout) as conn:
        conn.send(encode_request(method, target, body, headers))
        return read_reply(conn, method)


def get(address: str, target: str) -> Reply:
    return request(address, "GET", target)


def post_json(
    address: str, target: str, value: Any, headers: dict[str, str] | None = None
) -> Reply:
    return request(address, "POST", target, json.dumps(value), {**JSON_HEADERS, **(headers or {})})


# -- RecordIO -------------------------------------------------------------------------------------


class RecordIOParser:
    """Splits `<decimal length>\\n<bytes>` records out of a byte stream fed in any pieces.

    Strict: a record must start with a non-zero length and a newline, so a stray newline or
    CRLF after a record is an error as soon as its first byte arrives."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        records = []
        while self.buffer:
            if not self.buffer[:1].isdigit() or self.buffer[:1] == b"0":
                raise ProtocolError(f"a record must start with its length: {self.buffer[:40]!r}")
            newline = self.buffer.find(b"\n")
            if newline < 0:
                if not self.buffer.isdigit() or len(self.buffer) > 20:
                    raise ProtocolError(f"malformed record length {self.buffer[:40]!r}")
                break
            prefix = self.buffer[: newline + 1]
            if RECORD_LENGTH.fullmatch(prefix) is None:
                raise ProtocolError(f"malformed record length {prefix!r}")
            end = newline + 1 + int(prefix)
            if len(self.buffer) < end:
                break
            records.append(self.buffer[newline + 1 : end])
            self.buffer = self.buffer[end:]
        return records


def split_records(data: bytes, pieces: Iterable[int]) -> list[bytes]:
    """Parse ``data`` fed in pieces of the given sizes (the rest in one piece)."""
    parser = RecordIOParser()
    records: list[bytes] = []
    position = 0
    for size in pieces:
        records += parser.feed(data[position : position + size])
        position += size
    records += parser.feed(data[position:])
    if parser.buffer:
        raise ProtocolError(f"incomplete record at the end: {parser.buffer[:40]!r}")
    return records


def whitespace_outside_strings(data: bytes) -> bool:
    """True if JSON text ``data`` has any whitespace between tokens (it is not compact)."""
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b" \t\r\n":
            return True
    return False


@dataclass
class EventStream:
    """A response read as a chunked RecordIO stream (the SUBSCRIBE answer)."""

    conn: Connection
    head: Head
    chunks: list[bytes] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)
    ended: bool = False
    parser: RecordIOParser = field(default_factory=RecordIOParser)
    _pending: list[bytes] = field(default_factory=list)

    @property
    def stream_id(self) -> str | None:
        return self.head.header("Mesos-Stream-Id")

    def next_record(self) -> bytes | None:
        """The next record; None once the server ended the stream with the last chunk."""
        while not self._pending:
            if self.ended:
                return None
            chunk = read_chunk(self.conn)
            if chunk is None:
                self.ended = True
                if self.parser.buffer:
                    raise ProtocolError(f"stream ended inside a record: {self.parser.buffer!r}")
                return None
            self.chunks.append(chunk)
            self._pending += self.parser.feed(chunk)
        record = self._pending.pop(0)
        self.records.append(record)
        return record

    def next_event(self) -> dict | None:
        record = self.next_record()
        return None if record is None else json.loads(record)

    def events(self) -> Iterator[dict]:
        while (event := self.next_event()) is not None:
            yield event

    def wait_for(self, predicate: Callable[[dict], bool], limit: int = 200) -> dict:
        """Read events until one matches; fails on the stream's end or after ``limit``."""
        for _ in range(limit):
            event = self.next_event()
            if event is None:
                raise AssertionError("the event stream ended before the expected event")
            if predicate(event):
                return event
        raise AssertionError(f"no matching event among {limit}")

    def close(self) -> None:
        self.conn.close()


def open_stream(
    address: str,
    call: dict,
    path: str = "/api/v1/scheduler",
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> EventStream | Reply:
    """POST ``call``; a 200 chunked answer is returned unread as an EventStream."""
    conn = Connection(address, timeout)
    body = json.dumps(call).encode()
    conn.send(encode_request("POST", path, body, {**JSON_HEADERS, **(headers or {})}))
    head = read_head(conn)
    if head.status == 200 and head.chunked:
        return EventStream(conn, head)
    try:
        lengths = head.all("Content-Length")
        body = conn.read_exact(int(lengths[0])) if lengths else b""
        return Reply(head.status, head.reason, head.headers, body)
    finally:
        conn.close()


# -- the scheduler API ----------------------------------------------------------------------------


def framework_info(**fields: Any) -> dict:
    return {"user": "tester", "name": "raw-http", **fields}


def subscribe_call(info: dict | None = None, **extra: Any) -> dict:
    """A SUBSCRIBE; a FrameworkInfo with an ID names it in `framework_id` too, as Mesos wants
    both to be the same (and as pymesos sends them)."""
    info = framework_info() if info is None else info
    if "id" in info:
        extra.setdefault("framework_id", info["id"])
    return {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}, **extra}


@dataclass
class Subscription:
    """A framework subscribed by hand; calls go over one keep-alive connection."""

    address: str
    stream: EventStream
    framework_id: str
    subscribed: dict
    _calls: Connection | None = None

    @property
    def stream_id(self) -> str:
        stream_id = self.stream.stream_id
        assert stream_id is not None
        return stream_id

    def call(self, call: dict, stream_id: str | None = "") -> Reply:
        """Send a call with this framework's id and (unless None) the stream id."""
        call = {"framework_id": {"value": self.framework_id}, **call}
        headers = dict(JSON_HEADERS)
        if stream_id is not None:
            headers["Mesos-Stream-Id"] = stream_id or self.stream_id
        if self._calls is None:
            self._calls = Connection(self.address)
        body = json.dumps(call).encode()
        self._calls.send(encode_request("POST", "/api/v1/scheduler", body, headers))
        reply = read_reply(self._calls, "POST")
        if (reply.header("Connection") or "").lower() == "close":
            self._calls.close()
            self._calls = None
        return reply

    def acknowledge(self, status: dict) -> Reply:
        return self.call(
            {
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": status["uuid"],
                },
            }
        )

    def close(self) -> None:
        self.stream.close()
        if self._calls is not None:
            self._calls.close()
            self._calls = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(
    address: str, info: dict | None = None, path: str = "/api/v1/scheduler"
) -> Subscription:
    answer = open_stream(address, subscribe_call(info), path)
    if not isinstance(answer, EventStream):
        raise AssertionError(f"SUBSCRIBE answered {answer.status}: {answer.body!r}")
    event = answer.next_event()
    if event is None or event.get("type") != "SUBSCRIBED":
        answer.close()
        raise AssertionError(f"the stream did not start with SUBSCRIBED: {event}")
    framework_id = event["subscribed"]["framework_id"]["value"]
    return Subscription(address, answer, framework_id, event)


def command_task(task_id: str, agent_id: str, command: str) -> dict:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
        "command": {"value": command},
    }


def accept_launch(sub: Subscription, offer: dict, task: dict) -> None:
    """ACCEPT ``offer`` with one LAUNCH of ``task``; fails unless the master answers 202."""
    reply = sub.call(
        {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                "filters": {"refuse_seconds": 0},
            },
        }
    )
    if reply.status != 202:
        raise AssertionError(f"ACCEPT answered {reply.status}: {reply.body!r}")


def decline(sub: Subscription, offer: dict) -> None:
    """DECLINE ``offer`` with no filter: its resources may be offered again at once."""
    reply = sub.call(
        {
            "type": "DECLINE",
            "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}},
        }
    )
    if reply.status != 202:
        raise AssertionError(f"DECLINE answered {reply.status}: {reply.body!r}")


def offered(offer: dict, name: str) -> float:
    """How much of the scalar resource ``name`` an offer holds."""
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


def follow_task(sub: Subscription, task_id: str, until: set[str]) -> list[dict]:
    """The task's statuses, each acknowledged, up to the first whose state is in ``until``;
    a terminal state that is not fails at once, rather than as a read timeout later. Offers
    that come meanwhile are declined: one skipped unanswered would hold its resources for
    good, and the next launch would find only what this task gives back."""

    def its_update(event: dict) -> bool:
        if event["type"] == "OFFERS":
            for offer in event["offers"]["offers"]:
                decline(sub, offer)
        return (
            event["type"] == "UPDATE" and event["update"]["status"]["task_id"]["value"] == task_id
        )

    statuses = []
    while True:
        event = sub.stream.wait_for(its_update)
        status = event["update"]["status"]
        statuses.append(status)
        if "uuid" in status:
            ack = sub.acknowledge(status)
            if ack.status != 202:
                raise AssertionError(f"ACKNOWLEDGE answered {ack.status}: {ack.body!r}")
        if status["state"] in until:
            return statuses
        if status["state"] in TERMINAL_STATES:
            raise AssertionError(f"{task_id} ended before {sorted(until)}: {status}")


def run_command_task(sub: Subscription, task_id: str, command: str) -> tuple[dict, list[dict]]:
    """Accept the first offer that holds one command task and its command executor (0.2
    cpus, 64 MB in all), declining the others, and follow the task to a terminal state,
    acknowledging every update. Returns the offer used and the task's statuses."""
    while True:
        offers = sub.stream.wait_for(lambda e: e["type"] == "OFFERS")["offers"]["offers"]
        fitting = [
            o for o in offers if offered(o, "cpus") >= 0.2 - 1e-9 and offered(o, "mem") >= 64
        ]
        for offer in offers:
            if not fitting or offer is not fitting[0]:
                decline(sub, offer)
        if fitting:
            offer = fitting[0]
            accept_launch(sub, offer, command_task(task_id, offer["agent_id"]["value"], command))
            return offer, follow_task(sub, task_id, TERMINAL_STATES)


def valid_uuid_bytes(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except ValueError:
        return False


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    """Poll ``predicate()`` until it returns something true; returns that, or fails after
    ``timeout`` saying what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)
