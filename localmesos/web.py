"""The HTTP layer shared by the master and the agents: the standard library's threading server,
one-write responses, and RecordIO event streams, with the limits that keep a flood of clients
from hurting the component behind it (`Limits`).

Every response goes out in a single write with TCP_NODELAY: headers and body in separate
segments meet Nagle's algorithm and the client's delayed ACK, which costs ~40 ms per request.

Why the standard library and not aiohttp: the layer is small, it starts in milliseconds (aiohttp
imports in ~265 ms, and a cluster must start in seconds), and the master and agents are threads
(actors.py), which an asyncio server would turn inside out. What a server library would bring,
it has here, each shown by tests/reliability/test_http_floods.py: timeouts for idle and slow
clients, a cap on connections, accept() that survives running out of descriptors, bounded
event streams with linear delivery, and a budget for request bodies read at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import resource
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from localmesos.actors import Stopped

log = logging.getLogger("localmesos.http")

MIB = 1024 * 1024
MAX_BODY = 16 * MIB
# Bodies this small never wait for the body budget: a call such as ACKNOWLEDGE must not queue
# behind someone's 15 MiB upload, and the connection cap bounds what they add up to.
SMALL_BODY = 64 * 1024
# An event stream writes its backlog in pieces of about this size: each record is copied once,
# into one piece, so handing over a backlog is linear in its size and never doubles it.
WRITE_BATCH = 256 * 1024


def dumps(obj: Any) -> bytes:
    """Compact, single-line, ASCII JSON: what RecordIO readers that split on newlines need."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()


def recordio(obj: Any) -> bytes:
    """One RecordIO record: the byte count, a newline, the JSON. Nothing after it."""
    data = dumps(obj)
    return b"%d\n%s" % (len(data), data)


def _default_max_connections() -> int:
    # A quarter of the descriptors a process may open, so that a flood of connections leaves the
    # rest to tasks, pipes and files; a local cluster needs far fewer than 512.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 512
    return max(16, min(512, soft // 4))


@dataclass(frozen=True)
class Limits:
    """What one HTTP server allows its clients. Mesos (libprocess) sets none of these; each is a
    difference on purpose (CONFORMANCE.md, "HTTP limits"). `from_env` reads them from
    LOCALMESOS_HTTP_* variables, as libprocess reads its settings from LIBPROCESS_* ones."""

    # Seconds a client may stay silent while it owes us something: the first request of a new
    # connection, the rest of a request once its first line came, a body; and seconds a client
    # may take to accept any byte of what we write to it, event streams included.
    request_timeout: float = 30.0
    # Seconds a connection may wait between requests once it has made one; None: for ever, as
    # in Mesos. pymesos keeps its call connection open and fails the next call if the server
    # closed it in between, so this stays off unless asked for.
    keepalive_timeout: float | None = None
    # Connections served at once; more are answered 503 and closed. 0: from RLIMIT_NOFILE.
    max_connections: int = 0
    # Bytes of events queued for one stream before its subscriber is disconnected.
    stream_bound: int = 16 * MIB
    # Bytes of request bodies (above SMALL_BODY) being read and handled at once; a body that
    # does not fit waits its turn, and gets 503 if no body finished for request_timeout.
    # Parsed JSON can take several times its text's size: one largest body at a time.
    body_budget: int = MAX_BODY
    max_body: int = MAX_BODY

    ENV: ClassVar[dict[str, str]] = {
        "request_timeout": "LOCALMESOS_HTTP_REQUEST_TIMEOUT",
        "keepalive_timeout": "LOCALMESOS_HTTP_KEEPALIVE_TIMEOUT",
        "max_connections": "LOCALMESOS_HTTP_MAX_CONNECTIONS",
        "stream_bound": "LOCALMESOS_HTTP_STREAM_BOUND",
        "body_budget": "LOCALMESOS_HTTP_BODY_BUDGET",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        values: dict[str, Any] = {}
        for name, variable in cls.ENV.items():
            text = environ.get(variable)
            if text is None or text == "":
                continue
            kind = float if name.endswith("timeout") else int
            expected = "a number of seconds" if kind is float else "a whole number of bytes"
            try:
                value = kind(text)
                if value < 0 or value != value:
                    raise ValueError(text)
            except ValueError:
                raise ValueError(
                    f"{variable}={text!r}: expected {expected}, not negative"
                ) from None
            values[name] = value
        if values.get("keepalive_timeout") == 0:
            values["keepalive_timeout"] = None
        return cls(**values)

    @property
    def connection_cap(self) -> int:
        return self.max_connections or _default_max_connections()


class _Budget:
    """Bytes of request bodies that may be held at once (Limits.body_budget)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._changed = threading.Condition()

    def acquire(self, n: int, patience: float) -> bool:
        """Wait for ``n`` bytes while other bodies keep finishing; False once none has for
        ``patience`` seconds (a queue that moves is worth waiting in, a stuck one is not)."""
        with self._changed:
            while self.free < n:
                if not self._changed.wait(patience):
                    return False
            self.free -= n
            return True

    def release(self, n: int) -> None:
        if n:
            with self._changed:
                self.free += n
                self._changed.notify_all()


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


def _raw_response(status: int, message: str) -> bytes:
    phrase = HTTPStatus(status).phrase
    body = message.encode()
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class EventStream:
    """A RecordIO response that stays open; any thread may `send` events into it.

    To an HTTP/1.1 client it is chunked, as libprocess writes every streamed response
    (3rdparty/libprocess/src/http_proxy.cpp). An HTTP/1.0 client cannot read chunks (and RFC
    9112 §6.1 forbids sending them to it), so it gets the records as a body that ends when the
    connection closes. A subscriber that falls `bound` bytes behind is disconnected.
    """

    def __init__(
        self, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        self.headers = headers or {}
        self.content_type = content_type
        self.on_close: Callable[[EventStream], None] | None = None
        self.bound = Limits.stream_bound
        self._events: deque[bytes] = deque()
        self._queued = 0  # bytes in _events
        self._lock = threading.Lock()
        self._closing = False
        self._broken = False
        self.overflowed = False
        self.closed = False
        # What serving has copied into its writes; tests check that it is linear in what
        # was sent.
        self.assembled_bytes = 0
        self._sock: socket.socket | None = None
        self._peer = "a subscriber not served yet"
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # Held while waking and while closing the pipe, so a late wake never writes to a
        # descriptor number that the process has since reused.
        self._pipe_lock = threading.Lock()

    def send(self, event: dict) -> None:
        self.send_bytes(recordio(event))

    def send_bytes(self, record: bytes) -> None:
        """Queue bytes already framed as the client expects them (a proxy passing on another
        server's stream); they go out as one chunk."""
        with self._lock:
            if self._closing:
                return
            # One record larger than the bound still goes to a subscriber that is keeping up.
            if self._events and self._queued + len(record) > self.bound:
                behind = self._queued + len(record)
                self._closing = self.overflowed = True
                self._events.clear()
                self._queued = 0
            else:
                self._events.append(record)
                self._queued += len(record)
                behind = 0
        if behind:
            log.warning(
                "Disconnecting %s: its event stream fell %d bytes behind (bound %d bytes)",
                self._peer,
                behind,
                self.bound,
            )
            self._abort()
        self._wake()

    @property
    def backlog(self) -> int:
        """Bytes queued and not yet written: a producer that can wait keeps it under `bound`."""
        return self._queued

    def close(self) -> None:
        """End the stream after the events already sent."""
        with self._lock:
            self._closing = True
        self._wake()

    def abort(self) -> None:
        """End the stream at once and without its last chunk, so that the client sees it cut
        short rather than complete (a proxy whose source broke off)."""
        with self._lock:
            self._closing = self._broken = True
            self._events.clear()
            self._queued = 0
        self._abort()
        self._wake()

    def _abort(self) -> None:
        # A writer blocked on a subscriber that reads nothing wakes up only if its socket goes.
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _wake(self) -> None:
        with self._pipe_lock:
            if self.closed:
                return
            # A full pipe wakes the writer just as well.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _take(self, chunked: bool) -> bytes:
        """Up to about WRITE_BATCH bytes of queued records, framed, in one piece."""
        parts: list[bytes] = []
        size = 0
        with self._lock:
            while self._events and size < WRITE_BATCH:
                record = self._events.popleft()
                self._queued -= len(record)
                size += len(record)
                if chunked:
                    parts += (b"%x\r\n" % len(record), record, b"\r\n")
                else:
                    parts.append(record)
        piece = b"".join(parts)
        self.assembled_bytes += len(piece)
        return piece

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        sock: socket.socket = handler.connection
        limits: Limits = getattr(handler.server, "limits", Limits())
        chunked = handler.request_version not in ("HTTP/1.0", "HTTP/0.9")
        self.bound = limits.stream_bound
        name = getattr(handler.server, "name", "server")
        client, port = handler.client_address[:2]
        self._peer = f"{name} subscriber {client}:{port}"
        head = ["HTTP/1.1 200 OK", f"Content-Type: {self.content_type}"]
        head.append("Transfer-Encoding: chunked" if chunked else "Connection: close")
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        try:
            # A subscriber that takes no byte for request_timeout is gone as far as we care.
            sock.settimeout(limits.request_timeout)
            handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            # Only now may abort() shut the socket: a stream aborted before its head was out
            # (a proxy's source that broke off at once) still reaches the client as a head and
            # a body cut short, never as a connection closed without a word.
            self._sock = sock
            while not self.overflowed:
                piece = self._take(chunked)
                if piece:
                    handler.wfile.write(piece)
                    continue
                if self._closing:
                    if chunked and not self.overflowed and not self._broken:
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
            with self._lock:
                self._closing = True
                self._events.clear()
                self._queued = 0
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
    _held = 0  # bytes of the body budget this request holds

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.limits.request_timeout)

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            # Waiting for the next request on a kept-alive connection.
            self.connection.settimeout(self.server.limits.keepalive_timeout)
            self.handle_one_request()

    def parse_request(self) -> bool:
        # The first line came: the rest of the request is owed within request_timeout.
        self.connection.settimeout(self.server.limits.request_timeout)
        return super().parse_request()

    def _hold(self, n: int) -> bool:
        """Take ``n`` bytes of the body budget (beyond SMALL_BODY); False after a 503."""
        if self._held + n <= SMALL_BODY:
            self._held += n
            return True
        limits = self.server.limits
        take = n if self._held > SMALL_BODY else self._held + n
        if self.server.budget.acquire(take, limits.request_timeout):
            self._held += n
            return True
        log.warning(
            "%s: %s %s from %s got 503: no request body finished in %gs (budget %d bytes)",
            self.server.name,
            self.command,
            self.path,
            self.client_address[0],
            limits.request_timeout,
            limits.body_budget,
        )
        self._reply(
            Response.text(
                503,
                f"Too many large request bodies are being read at once (budget "
                f"{limits.body_budget} bytes); try again",
                **{"Retry-After": "1"},
            ),
            close=True,
        )
        return False

    def _release(self) -> None:
        if self._held > SMALL_BODY:
            self.server.budget.release(self._held)
        self._held = 0

    def _read_body(self) -> bytes | None:
        max_body = self.server.limits.max_body
        too_large = f"Request body is too large (the limit is {max_body} bytes)"
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            total = 0
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
                    return b"".join(parts)
                if total + size > max_body:
                    self._reply(Response.text(413, too_large), close=True)
                    return None
                if not self._hold(size):
                    return None
                parts.append(self.rfile.read(size))
                total += size
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
        if size > max_body:
            self._reply(Response.text(413, too_large), close=True)
            return None
        if not self._hold(size):
            return None
        return self.rfile.read(size)

    def _handle(self) -> None:
        try:
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
            del body
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
        finally:
            # The budget covers the body and what handling it made of it (parsed JSON).
            self._release()
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

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A refused connection under a burst of pymesos reconnects would look like a dead master.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], route: Route, name: str, limits: Limits) -> None:
        self.route = route
        self.name = name
        self.limits = limits
        self.cap = limits.connection_cap
        self.budget = _Budget(max(limits.body_budget, limits.max_body))
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.streams: set[EventStream] = set()
        # One descriptor kept in reserve: when accept() finds none left (EMFILE), closing it
        # lets the server take the waiting connection and tell it why, instead of leaving it
        # in the backlog, where the listening socket stays readable and the loop would spin.
        self._reserve: int | None = os.open(os.devnull, os.O_RDONLY)
        self._fd_failures = 0
        self._fd_logged = 0.0
        self._refusals = 0
        self._refusal_logged = 0.0
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                self._out_of_descriptors(error)
            raise

    def _out_of_descriptors(self, error: OSError) -> None:
        self._fd_failures += 1
        now = time.monotonic()
        if now - self._fd_logged >= 5:
            log.error(
                "%s: cannot accept a connection: %s (%s); %d failure(s) since the last report, "
                "%d connection(s) open; refusing new ones with 503 until descriptors free up",
                self.name,
                os.strerror(error.errno),
                errno.errorcode[error.errno],
                self._fd_failures,
                len(self.connections),
            )
            self._fd_logged, self._fd_failures = now, 0
        if self._reserve is None:
            time.sleep(0.05)  # nothing to free: at least do not spin on the readable socket
            with contextlib.suppress(OSError):
                self._reserve = os.open(os.devnull, os.O_RDONLY)
            return
        os.close(self._reserve)
        self._reserve = None
        try:
            connection, _ = self.socket.accept()
        except OSError:
            pass
        else:
            self._refuse(connection, 503, "Too many open files: the server is out of descriptors")
        with contextlib.suppress(OSError):
            self._reserve = os.open(os.devnull, os.O_RDONLY)

    def _refuse(self, connection: socket.socket, status: int, message: str) -> None:
        with contextlib.suppress(OSError):
            connection.setblocking(False)
            connection.send(_raw_response(status, message))
            # Reading what the client sent keeps close() from answering it with a reset,
            # which could destroy the answer before the client reads it.
            connection.recv(65536)
        self.shutdown_request(connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            full = len(self.connections) >= self.cap
            if not full:
                self.connections.add(request)
        if full:
            self._refusals += 1
            now = time.monotonic()
            if now - self._refusal_logged >= 5:
                log.warning(
                    "%s: %d connection(s) refused with 503: %d are open, the cap",
                    self.name,
                    self._refusals,
                    self.cap,
                )
                self._refusal_logged, self._refusals = now, 0
            self._refuse(request, 503, f"Too many connections (this server takes {self.cap})")
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            # A thread that cannot start (the process is out of threads) serves no one.
            with self._connections_lock:
                self.connections.discard(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self.connections.discard(request)

    def server_close(self) -> None:
        super().server_close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug(
            "%s: connection from %s ended with an error", self.name, client_address, exc_info=True
        )


class Server:
    """An HTTP server on its own thread; `stop` also drops the connections still open."""

    def __init__(
        self, ip: str, port: int, route: Route, name: str, limits: Limits | None = None
    ) -> None:
        self._server = _Server((ip, port), route, name, limits or Limits.from_env())
        self.ip = ip
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name=f"{name}-http",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    @property
    def limits(self) -> Limits:
        return self._server.limits

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
