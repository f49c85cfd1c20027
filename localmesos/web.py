"""The HTTP layer shared by the master and the agents: the standard library's threading server,
one-write responses, and RecordIO event streams.

Every response goes out in a single write with TCP_NODELAY: headers and body in separate
segments meet Nagle's algorithm and the client's delayed ACK, which costs ~40 ms per request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from localmesos.actors import Stopped

log = logging.getLogger("localmesos.http")

MAX_BODY = 16 * 1024 * 1024


def dumps(obj: Any) -> bytes:
    """Compact, single-line, ASCII JSON: what RecordIO readers that split on newlines need."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()


def recordio(obj: Any) -> bytes:
    """One RecordIO record: the byte count, a newline, the JSON. Nothing after it."""
    data = dumps(obj)
    return b"%d\n%s" % (len(data), data)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    client: str

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, jsonp: str | None = None) -> Response:
        """JSON, or with ``jsonp`` the JSONP form that libprocess writes for `?jsonp=NAME`:
        `NAME(<json>)` with no `;` after it, as text/javascript, the name used as given
        (3rdparty/libprocess/src/http.cpp `OK::OK(const JSON::Value&, const
        Option<string>& jsonp)`)."""
        if jsonp is not None:
            body = jsonp.encode("utf-8", "backslashreplace") + b"(" + dumps(obj) + b")"
            return cls(status, body, "text/javascript")
        return cls(status, dumps(obj), "application/json")

    @classmethod
    def text(cls, status: int, message: str = "", **headers: str) -> Response:
        return cls(
            status,
            # Messages may quote what the client sent, lone surrogates included.
            message.encode("utf-8", "backslashreplace"),
            "text/plain; charset=utf-8" if message else None,
            dict(headers),
        )


class EventStream:
    """A chunked RecordIO response that stays open; any thread may `send` events into it."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.headers = headers or {}
        self.on_close: Callable[[EventStream], None] | None = None
        self._events: deque[bytes] = deque()
        self._closing = False
        self.closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # Held while waking and while closing the pipe, so a late wake never writes to a
        # descriptor number that the process has since reused.
        self._pipe_lock = threading.Lock()

    def send(self, event: dict) -> None:
        if self._closing:
            return
        self._events.append(recordio(event))
        self._wake()

    def close(self) -> None:
        """End the stream after the events already sent."""
        self._closing = True
        self._wake()

    def _wake(self) -> None:
        with self._pipe_lock:
            if self.closed:
                return
            # A full pipe wakes the writer just as well.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        sock: socket.socket = handler.connection
        head = ["HTTP/1.1 200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        try:
            handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            while True:
                batch = b""
                while self._events:
                    record = self._events.popleft()
                    batch += b"%x\r\n%s\r\n" % (len(record), record)
                if batch:
                    handler.wfile.write(batch)
                if self._closing and not self._events:
                    handler.wfile.write(b"0\r\n\r\n")
                    break
                readable, _, _ = select.select([sock, self._wake_r], [], [])
                if self._wake_r in readable:
                    os.read(self._wake_r, 4096)
                if sock in readable and not sock.recv(4096):
                    break  # the subscriber went away
        except OSError:
            pass
        finally:
            self._closing = True
            handler.close_connection = True
            with self._pipe_lock:
                self.closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)
            if self.on_close:
                self.on_close(self)


Route = Callable[[Request], "Response | EventStream"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self.rfile.readline(65537).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    self._reply(Response.text(400, "Malformed chunked request body"), close=True)
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                if len(body) + size > MAX_BODY:
                    self._reply(Response.text(413, "Request body is too large"), close=True)
                    return None
                body += self.rfile.read(size)
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
            if size < 0:
                raise ValueError(length)
        except ValueError:
            self._reply(Response.text(400, f"Invalid Content-Length '{length}'"), close=True)
            return None
        if size > MAX_BODY:
            self._reply(Response.text(413, "Request body is too large"), close=True)
            return None
        return self.rfile.read(size)

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        request = Request(
            self.command,
            url.path or "/",
            parse_qs(url.query),
            self.headers,
            body,
            self.client_address[0],
        )
        try:
            answer = self.server.route(request)
        except Stopped:
            # The component died under this request (a crash injected by a test): a dead
            # process answers nothing, its connections just break.
            self.close_connection = True
            return
        except Exception:
            log.exception(
                "%s: error while answering %s %s", self.server.name, self.command, self.path
            )
            answer = Response.text(500, "Internal error")
        if isinstance(answer, EventStream):
            self.server.streams.add(answer)
            try:
                answer.serve(self)
            finally:
                self.server.streams.discard(answer)
        else:
            self._reply(answer)

    def _reply(self, response: Response, close: bool = False) -> None:
        status = HTTPStatus(response.status)
        head = [f"HTTP/1.1 {status.value} {status.phrase}"]
        if response.content_type:
            head.append(f"Content-Type: {response.content_type}")
        head.append(f"Content-Length: {len(response.body)}")
        head += [f"{k}: {v}" for k, v in response.headers.items()]
        if close or self.close_connection:
            head.append("Connection: close")
            self.close_connection = True
        body = b"" if self.command == "HEAD" else response.body
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A refused connection under a burst of pymesos reconnects would look like a dead master.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], route: Route, name: str) -> None:
        self.route = route
        self.name = name
        self.connections: set[socket.socket] = set()
        self.streams: set[EventStream] = set()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug(
            "%s: connection from %s ended with an error", self.name, client_address, exc_info=True
        )


class Server:
    """An HTTP server on its own thread; `stop` also drops the connections still open."""

    def __init__(self, ip: str, port: int, route: Route, name: str) -> None:
        self._server = _Server((ip, port), route, name)
        self.ip = ip
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name=f"{name}-http",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for stream in list(self._server.streams):
            stream.close()
        for connection in list(self._server.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
