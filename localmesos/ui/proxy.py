"""`localmesos ui --master HOST:PORT`: the live page in front of any Mesos master.

The page (static/) reads only public Mesos endpoints. Served by the localmesos master, it
reaches the agents itself (cross-origin, JSONP). Here a small server serves the page and
forwards what it asks for, so that the same page watches a real Mesos master, whose agents the
browser may not reach and which may want credentials:

- `/` and `/ui/<file>`: the page's files; `/ui/mode.js` is written here and tells the page to
  ask for agents' endpoints under `/agent/<agent-id>/...`.
- `POST /api/v1`: the operator API, read-only calls only (SUBSCRIBE and GET_*), so that the
  proxy can stay open on a projector; the SUBSCRIBE stream is passed on as it arrives.
- `GET` of the master's read-only endpoints (`/master/state`, `/metrics/snapshot`, ...).
- `GET /agent/<agent-id>/<path>`: a few read-only endpoints of that agent, found in the
  master's `/master/slaves`.
Everything else is 404. Calls go to the leading master: a standby's 307 is followed (Mesos
redirects a non-leader's calls, src/master/http.cpp `Master::Http::redirect`), and a master
that stops answering sends the next call back to the addresses given (or to ZooKeeper's
leader). With credentials, every forwarded call carries them as HTTP Basic authentication.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import mimetypes
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from localmesos.election import Detector
from localmesos.web import EventStream, Limits, Request, Response, Server

log = logging.getLogger("localmesos.ui")

STATIC_DIR = Path(__file__).parent / "static"
MODE_JS = b'window.MESOS_UI_MODE = {agents: "proxy"};\n'

# The master's read-only endpoints (src/master/http.cpp, readonly_handler.cpp), each at
# /master/NAME and, as the master process is libprocess's delegate, at /NAME too.
MASTER_READERS = (
    "state",
    "state-summary",
    "frameworks",
    "slaves",
    "tasks",
    "roles",
    "flags",
    "health",
    "maintenance/status",
    "maintenance/schedule",
)
MASTER_PATHS = frozenset(
    [f"/master/{name}" for name in MASTER_READERS]
    + [f"/{name}" for name in MASTER_READERS]
    + ["/version", "/metrics/snapshot"]
)
OPERATOR_PATHS = frozenset({"/api/v1", "/master/api/v1"})
# What the page reads from agents. `state` and `monitor/statistics` belong to the agent's
# process, so they go under its process ID (`slave(1)`) as the Mesos web UI asks for them
# (src/webui/app/controllers.js `agentURLPrefix`); the others are processes of their own.
AGENT_PATHS = frozenset(
    {"files/read", "files/browse", "files/download", "state", "monitor/statistics"}
    | {"metrics/snapshot"}
)
AGENT_PROCESS_PATHS = frozenset({"state", "monitor/statistics"})
AGENT_ROUTE = re.compile(r"/agent/([A-Za-z0-9._-]+)/(.+)")
PID = re.compile(r"([^@]+)@(.+):([0-9]+)")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Mesos sends operator subscribers a HEARTBEAT every 15 s (src/master/master.hpp
# `Heartbeater`, 1.7 too): four missed ones and the master is taken for gone.
STREAM_TIMEOUT = 60.0
MAX_REDIRECTS = 3
# Answers up to this size are read whole and passed on; larger ones, and streams, go through
# as they arrive, at the pace of the client.
BUFFERED = 1024 * 1024
PIECE = 64 * 1024
# Headers of an answer worth passing on besides its body's type.
PASSED_HEADERS = ("WWW-Authenticate", "Retry-After", "Content-Disposition", "Mesos-Stream-Id")
READ_ONLY_CALLS = "SUBSCRIBE and GET_*"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def parse_address(text: str) -> str:
    """``HOST:PORT`` or ``http://HOST:PORT[/]`` as "HOST:PORT"; ValueError naming the input."""
    address = text.strip()
    if address.startswith("http://"):
        address = address[len("http://") :].rstrip("/")
    host, _, port = address.rpartition(":")
    if not host or "/" in address or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"invalid master '{text}': expected HOST:PORT, http://HOST:PORT or "
            "zk://HOST:PORT[,HOST:PORT...]/PATH"
        )
    return f"{host}:{int(port)}"


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def redirect_target(location: str) -> str | None:
    """The HOST:PORT a 307 names: Mesos writes `//host:port/path` (protocol-relative)."""
    url = urlsplit(location if "//" in location else f"//{location}")
    if not url.hostname or url.port is None:
        return None
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    return f"{host}:{url.port}"


def agent_addresses(agent: dict[str, Any]) -> list[str]:
    """Where an agent of `/master/slaves` may be reached: its hostname with its pid's port
    first, as the Mesos web UI links to it (behind Docker the pid's IP is a bridge address),
    then the pid's IP."""
    addresses = []
    match = PID.fullmatch(str(agent.get("pid", "")))
    port = match[3] if match else agent.get("port")
    if agent.get("hostname") and port:
        addresses.append(f"{agent['hostname']}:{port}")
    if match:
        addresses.append(f"{match[2]}:{match[3]}")
    return list(dict.fromkeys(addresses))


def describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class Masters:
    """Where the leading master is: the addresses given, the last leader a call found, or
    ZooKeeper's word (`election.Detector`) for a zk:// URL."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.zk: str | None = spec if spec.startswith("zk://") else None
        self.seeds: list[str] = []
        if self.zk is None:
            self.seeds = [parse_address(part) for part in spec.split(",")]
        self._leader: str | None = None
        self._lock = threading.Lock()
        self._detector: Any = None

    def start(self, timeout: float = 15.0) -> None:
        if self.zk is None:
            return
        self._detector = Detector(self.zk, self._on_leader).start(timeout)

    def stop(self) -> None:
        if self._detector is not None:
            self._detector.stop()

    def _on_leader(self, info: dict[str, Any] | None) -> None:
        leader = None
        if info is not None:
            address = info.get("address", {})
            host = address.get("hostname") or info.get("hostname") or address.get("ip")
            port = address.get("port") or info.get("port")
            if host and port:
                leader = f"{host}:{port}"
        with self._lock:
            self._leader = leader

    def candidates(self) -> list[str]:
        with self._lock:
            leader = self._leader
        if self.zk is not None:
            return [leader] if leader else []
        return list(dict.fromkeys([leader, *self.seeds] if leader else self.seeds))

    def found(self, address: str) -> None:
        if self.zk is None:
            with self._lock:
                self._leader = address

    def lost(self, address: str) -> None:
        if self.zk is None:
            with self._lock:
                if self._leader == address:
                    self._leader = None


class Proxy:
    """The page and the forwarding, on a web.Server (its limits and timeouts included)."""

    def __init__(
        self,
        master: str,
        *,
        ip: str = "127.0.0.1",
        port: int = 5060,
        static_dir: str | Path | None = None,
        principal: str | None = None,
        secret: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.masters = Masters(master)
        self.static_dir = Path(static_dir) if static_dir is not None else STATIC_DIR
        self.authorization: str | None = None
        if principal is not None:
            token = base64.b64encode(f"{principal}:{secret or ''}".encode()).decode()
            self.authorization = f"Basic {token}"
        self._agents: dict[str, list[str]] = {}
        self._agents_lock = threading.Lock()
        self._listen = (ip, port, limits)
        self._server: Server | None = None

    @property
    def server(self) -> Server:
        if self._server is None:
            raise RuntimeError("the proxy has not started")
        return self._server

    @property
    def url(self) -> str:
        host = f"[{self.server.ip}]" if ":" in self.server.ip else self.server.ip
        return f"http://{host}:{self.server.port}"

    @property
    def address(self) -> str:
        return f"{self.server.ip}:{self.server.port}"

    def start(self) -> Proxy:
        """Find the masters (for a zk:// URL), then listen; OSError if the port is taken."""
        self.masters.start()
        ip, port, limits = self._listen
        try:
            self._server = Server(ip, port, self.route, "ui", limits)
        except BaseException:
            self.masters.stop()
            raise
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self.masters.stop()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing ---------------------------------------------------------------------------

    def route(self, request: Request) -> Response | EventStream:
        path = request.path
        if path in ("/", "/index.html") or path.startswith("/ui/"):
            if request.method not in ("GET", "HEAD"):
                return not_allowed(request, "GET, HEAD")
            if path == "/ui/mode.js":
                return Response(200, MODE_JS, CONTENT_TYPES[".js"], {"Cache-Control": "no-cache"})
            return self.static(path[len("/ui/") :] if path.startswith("/ui/") else "index.html")
        if path in OPERATOR_PATHS:
            if request.method != "POST":
                return not_allowed(request, "POST")
            return self.operator(request)
        agent = AGENT_ROUTE.fullmatch(path)
        if agent is not None or path in MASTER_PATHS:
            if request.method != "GET":
                return not_allowed(request, "GET")
            if agent is not None:
                return self.agent(request, agent[1], agent[2])
            return self.master(request)
        return Response.text(
            404,
            f"localmesos ui does not serve or forward {path}: only the page (/, /ui/...), "
            "the operator API (/api/v1), the master's read-only endpoints and "
            "/agent/<agent-id>/{" + ",".join(sorted(AGENT_PATHS)) + "}",
        )

    def static(self, name: str) -> Response:
        if not self.static_dir.is_dir():
            return Response.text(
                404, f"The page's files are not installed: no directory {self.static_dir}"
            )
        parts = name.split("/")
        if (
            not name
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
            or ("\\" in name or "\0" in name)
        ):
            return Response.text(404, f"No such file of the page: {name!r}")
        root = self.static_dir.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return Response.text(404, f"No such file of the page: {name!r}")
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # The page changes between workshop sessions; the browser asks again every time.
        return Response(200, path.read_bytes(), content_type, {"Cache-Control": "no-cache"})

    # -- the master ------------------------------------------------------------------------

    def operator(self, request: Request) -> Response | EventStream:
        kind = (request.headers.get("Content-Type") or "application/json").split(";")[0]
        if kind.strip().lower() != "application/json":
            return Response.text(
                415,
                f"localmesos ui forwards operator calls in JSON only (Content-Type: "
                f"application/json), not {kind!r}",
            )
        try:
            call = json.loads(request.body)
        except ValueError as error:
            return Response.text(400, f"The operator call is not JSON: {error}")
        call_type = call.get("type") if isinstance(call, dict) else None
        if not isinstance(call_type, str):
            return Response.text(400, 'The operator call has no "type" string')
        if call_type != "SUBSCRIBE" and not call_type.startswith("GET_"):
            return Response.text(
                403,
                f"localmesos ui forwards read-only operator calls only ({READ_ONLY_CALLS}), "
                f"not {call_type}",
            )
        headers = self._headers(request, json_body=True)
        # Answers in JSON too: a browser's `Accept: */*` would let the master pick either.
        headers["Accept"] = "application/json"
        timeout = STREAM_TIMEOUT if call_type == "SUBSCRIBE" else READ_TIMEOUT
        opened = self._to_master("POST", target(request), request.body, headers, timeout)
        if isinstance(opened, Response):
            return opened
        return self._answer(*opened)

    def master(self, request: Request) -> Response | EventStream:
        opened = self._to_master("GET", target(request), b"", self._headers(request), READ_TIMEOUT)
        if isinstance(opened, Response):
            return opened
        return self._answer(*opened)

    def _to_master(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str] | Response:
        """The leading master's answer, unread, after any redirects; or a 502/503 saying why
        there is none."""
        candidates = self.masters.candidates()
        if not candidates:
            return Response.text(503, f"No leading master is known at {self.masters.spec}")
        failures = []
        for address in candidates:
            hops = 0
            while True:
                try:
                    connection, response = self._open(address, method, path, body, headers, timeout)
                except (OSError, http.client.HTTPException) as error:
                    failures.append(f"{address} ({describe(error)})")
                    self.masters.lost(address)
                    break
                if response.status != 307:
                    self.masters.found(address)
                    return connection, response, f"the master at {address}"
                location = response.getheader("Location", "")
                connection.close()
                leader = redirect_target(location)
                if leader is None:
                    return Response.text(
                        502, f"The master at {address} redirected to {location!r}: no HOST:PORT"
                    )
                hops += 1
                if hops > MAX_REDIRECTS:
                    return Response.text(
                        502, f"The masters redirected {MAX_REDIRECTS} times, last to {leader}"
                    )
                log.info("%s redirects to %s", address, leader)
                address = leader
        return Response.text(502, f"Cannot reach the master at {', '.join(failures)}")

    def _master_json(self, path: str) -> tuple[Any, str] | Response:
        opened = self._to_master("GET", path, b"", self._headers(None), READ_TIMEOUT)
        if isinstance(opened, Response):
            return opened
        connection, response, where = opened
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            return Response.text(502, f"{where} broke off its answer to {path}: {describe(error)}")
        finally:
            connection.close()
        if response.status != 200:
            return Response.text(
                502, f"{where} answered {path} with {response.status}: {body[:200]!r}"
            )
        try:
            return json.loads(body), where
        except ValueError:
            return Response.text(502, f"{where} answered {path} with no JSON")

    # -- agents ----------------------------------------------------------------------------

    def agent(self, request: Request, agent_id: str, rest: str) -> Response | EventStream:
        if rest not in AGENT_PATHS:
            return Response.text(
                404,
                f"localmesos ui forwards no agent endpoint {rest!r}: only "
                + ", ".join(sorted(AGENT_PATHS)),
            )
        path = f"/{rest}"
        if rest in AGENT_PROCESS_PATHS:
            path = f"/slave(1)/{rest}"
        query = urlencode(request.query, doseq=True)
        path += f"?{query}" if query else ""
        headers = self._headers(request)
        tried: list[str] = []
        for refresh in (False, True):
            addresses = self._agent_addresses(agent_id, refresh)
            if isinstance(addresses, Response):
                return addresses
            for address in addresses:
                if address in tried:
                    continue
                tried.append(address)
                try:
                    connection, response = self._open(
                        address, "GET", path, b"", headers, READ_TIMEOUT
                    )
                except (OSError, http.client.HTTPException) as error:
                    log.info("agent %s at %s: %s", agent_id, address, describe(error))
                    continue
                return self._answer(connection, response, f"agent {agent_id} at {address}")
        return Response.text(
            502, f"Cannot reach agent {agent_id} at {' or '.join(tried) or 'no address'}"
        )

    def _agent_addresses(self, agent_id: str, refresh: bool) -> list[str] | Response:
        with self._agents_lock:
            known = self._agents.get(agent_id)
        if known and not refresh:
            return known
        answer = self._master_json("/master/slaves")
        if isinstance(answer, Response):
            return answer
        listing, where = answer
        table = {
            str(agent.get("id")): agent_addresses(agent)
            for agent in listing.get("slaves", [])
            if isinstance(agent, dict)
        }
        with self._agents_lock:
            self._agents = table
        if agent_id not in table:
            return Response.text(404, f"Unknown agent {agent_id}: {where} lists no such agent")
        return table[agent_id]

    # -- forwarding ------------------------------------------------------------------------

    def _headers(self, request: Request | None, json_body: bool = False) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if request is not None and request.headers.get("Accept"):
            headers["Accept"] = request.headers["Accept"]
        if json_body:
            headers["Content-Type"] = "application/json"
        if self.authorization is not None:
            headers["Authorization"] = self.authorization
        elif request is not None and request.headers.get("Authorization"):
            # Without credentials of its own, the proxy lets the browser answer a 401.
            headers["Authorization"] = request.headers["Authorization"]
        return headers

    def _open(
        self,
        address: str,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        host, port = split_address(address)
        connection = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, connection.getresponse()
        except BaseException:
            connection.close()
            raise

    def _answer(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, where: str
    ) -> Response | EventStream:
        headers = {name: value for name in PASSED_HEADERS if (value := response.getheader(name))}
        if self.authorization is not None:
            # The proxy's own credentials replace the browser's, so a 401 means they are wrong:
            # asking the person for others would change nothing. Without the challenge the
            # browser shows no prompt, and the page says in one line that it was refused.
            headers.pop("WWW-Authenticate", None)
        content_type = response.getheader("Content-Type")
        length = response.getheader("Content-Length")
        whole = length is not None and length.isdigit() and int(length) <= BUFFERED
        if response.status == 200 and not whole:
            return self._stream(connection, response, headers, content_type, where)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            return Response.text(502, f"{where} broke off its answer: {describe(error)}")
        finally:
            connection.close()
        return Response(response.status, body, content_type, headers)

    def _stream(
        self,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        headers: dict[str, str],
        content_type: str | None,
        where: str,
    ) -> EventStream:
        stream = EventStream(headers, content_type or "application/octet-stream")
        # The server's bound, from the start: the pump may fill the stream before the server
        # begins to serve it (and sets the bound), and must not run ahead by the default's.
        stream.bound = self.server.limits.stream_bound
        sock = connection.sock

        def hang_up(_: EventStream) -> None:
            # The client left: a read blocked on the source wakes up only if its socket goes.
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        stream.on_close = hang_up
        threading.Thread(
            target=pump, args=(connection, response, stream, where), name="ui-pump", daemon=True
        ).start()
        return stream


def pump(
    connection: http.client.HTTPConnection,
    response: http.client.HTTPResponse,
    stream: EventStream,
    where: str,
) -> None:
    """Pass on what arrives, as it arrives; never more than the stream's bound ahead of the
    client, so that a slow reader slows the source down instead of being cut off."""
    try:
        while not stream.closed:
            while stream.backlog and stream.backlog + PIECE > stream.bound:
                if stream.closed:
                    return
                time.sleep(0.01)
            data = response.read1(PIECE)
            if not data:
                if response.length:
                    # The connection closed short of the Content-Length announced.
                    raise http.client.IncompleteRead(b"", response.length)
                stream.close()
                return
            stream.send_bytes(data)
    except (OSError, ValueError, http.client.HTTPException) as error:
        if not stream.closed:
            log.info("%s broke off its stream: %s", where, describe(error))
        stream.abort()
    finally:
        connection.close()


def target(request: Request) -> str:
    query = urlencode(request.query, doseq=True)
    return request.path + (f"?{query}" if query else "")


def not_allowed(request: Request, allowed: str) -> Response:
    return Response.text(
        405, f"{request.path} takes {allowed}, not {request.method}", Allow=allowed
    )


def read_secret(path: Path) -> str:
    """A --secret-file: the secret is its first line (a trailing newline is no part of it)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read secret file {path}: {error.strerror}") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ValueError(f"secret file {path} is empty")
    return lines[0]


def check_master(proxy: Proxy, say: Callable[[str], None]) -> None:
    """One look at the master at start, so that a wrong --master shows at once."""
    answer = proxy._master_json("/version")
    if isinstance(answer, Response):
        say(f"warning: {answer.body.decode(errors='replace')} (the page will wait for it)")
    else:
        version, where = answer
        say(f"{where} runs Mesos {version.get('version', '(unknown version)')}")
