"""The master's HTTP surface (src/master/http.cpp): routing, authentication, the redirect to
the leader, the scheduler endpoint (`Master::Http::scheduler`), the read-only endpoints with
their JSONP form, and the checks every call goes through before it reaches the master's
thread. The operator endpoint (`Master::Http::api`) is in operator.py. These run on the HTTP
server's threads; what changes the master runs on its own (`master.call`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from localmesos import authentication, protocol
from localmesos.authentication import MASTER_READONLY, MASTER_READWRITE, MASTER_SCHEDULER
from localmesos.link import MASTER_MESSAGES, decode_link_message
from localmesos.master import metrics, readonly
from localmesos.master.operator import operator_endpoint
from localmesos.master.validation import validate_scheduler_call
from localmesos.protocol import Invalid, version_json
from localmesos.web import EventStream, Request, Response

if TYPE_CHECKING:
    from localmesos.master.master import Master

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


# The endpoints that a master which does not lead answers with a redirect to the leader (or 503)
# instead of its own answer (http.cpp, each handler's `if (!master->elected())`).
LEADER_ONLY = frozenset(
    {
        "/api/v1/scheduler",
        "/api/v1",
        "/api/v1/operator",
        "/state",
        "/frameworks",
        "/slaves",
        "/tasks",
        "/roles",
        "/maintenance/schedule",
        "/maintenance/status",
        "/teardown",
    }
)

# The read-only endpoints: what each answers (on the master's thread), and the methods it
# takes (None: any, as the handlers that never look at the method). All of them, and /version,
# honour `?jsonp=NAME` (readonly_handler.cpp and http.cpp pass `query.get("jsonp")` to `OK`).
READERS: dict[str, tuple[Callable[[Master, Request], Any], tuple[str, ...] | None]] = {
    "/state": (lambda master, _: readonly.state_json(master), None),
    "/frameworks": (lambda master, _: readonly.frameworks_json(master), None),
    "/slaves": (lambda master, _: readonly.slaves_json(master), None),
    "/tasks": (readonly.tasks_json, None),
    "/roles": (lambda master, _: readonly.roles_json(master), None),
    "/flags": (lambda master, _: {"flags": readonly.flags_json(master)}, None),
    "/metrics/snapshot": (lambda master, _: metrics.snapshot(master), None),
    # http.cpp `maintenanceSchedule` takes GET and POST (a new schedule); localmesos keeps
    # none, so a POST is 501 below. `maintenanceStatus` takes GET only.
    "/maintenance/schedule": (
        lambda master, _: readonly.maintenance_schedule_json(master),
        ("GET", "POST"),
    ),
    "/maintenance/status": (lambda master, _: readonly.maintenance_status_json(master), ("GET",)),
}


# The live page's files (localmesos/ui/static), served as libprocess serves what a process
# `provide`s (master.cpp `Master::initialize` provides the web UI: "" is index.html, "app" and
# "assets" directories): any method, the body ignored, 404 for a name that is not a file.
STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"
STATIC_PREFIX = "/ui/"
# libprocess's mime.cpp says `application/x-javascript` and no charset; the page's scripts are
# UTF-8 (Spanish text), so they say so, with today's JavaScript type.
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# Every path the master answers (each also under /master); anything else is 404. The
# reliability tests send hostile bodies to each of these, so a new endpoint belongs here;
# `/ui/index.html` stands for every file under `/ui/`.
ENDPOINTS = frozenset(
    {
        "/",
        STATIC_PREFIX + "index.html",
        "/version",
        "/health",
        "/link",
        "/redirect",
        "/api/v1/scheduler",
        "/api/v1",
        "/api/v1/operator",
        *READERS,
    }
)


# The realm each endpoint is routed in (master.cpp `Master::initialize`), asked only when the
# master has credentials (CONFORMANCE.md: Authentication). /version, /health, /redirect have
# none; /link checks its own secret. An entry ending in "/" covers every path under it.
REALMS: dict[str, str] = {
    "/api/v1/scheduler": MASTER_SCHEDULER,
    # The operator API: the realm of read-write endpoints, for its reads too.
    "/api/v1": MASTER_READWRITE,
    "/api/v1/operator": MASTER_READWRITE,
    "/state": MASTER_READONLY,
    "/frameworks": MASTER_READONLY,
    "/slaves": MASTER_READONLY,
    "/tasks": MASTER_READONLY,
    "/roles": MASTER_READONLY,
    "/flags": MASTER_READONLY,
    # libprocess's MetricsProcess, given the master's read-only realm by `process::initialize`
    # in master/main.cpp.
    "/metrics/snapshot": MASTER_READONLY,
    # A schedule can be posted: the read-write realm, even for GET.
    "/maintenance/schedule": MASTER_READWRITE,
    "/maintenance/status": MASTER_READONLY,
    # The web page and its files. Mesos serves its web UI with `provide`, in no realm; here
    # they are read-only, so that a browser asks for the credentials once, on the page, and
    # sends them with the page's reads of /state (the same realm on the same origin).
    "/": MASTER_READONLY,
    "/ui/": MASTER_READONLY,
}


def route(master: Master, request: Request) -> Response | EventStream:
    # libprocess also accepts the paths without the process name (libprocess, process.cpp).
    path = request.path
    if path.startswith("/master/"):
        path = path[len("/master") :]
    path = path.rstrip("/") or "/"
    principal: str | None = None
    realm = authentication.realm_of(path, REALMS)
    if realm is not None:
        # Before anything else looks at the request, as libprocess does; not-found paths
        # under a realm's directory are 401 too until the client authenticates.
        authenticated = authentication.authenticate(master.flags.credentials, realm, request)
        if isinstance(authenticated, Response):
            return authenticated
        principal = authenticated
    if path == "/":
        # Every master serves the page, leading or not (the web UI is a static asset in
        # Mesos); the page's API calls go to the leader (`/master/redirect`).
        return static_file("index.html")
    if path.startswith(STATIC_PREFIX):
        return static_file(path[len(STATIC_PREFIX) :])
    if path not in ENDPOINTS:
        # Also the `.json` aliases (`/state.json`...) that Mesos 1.8 removed (MESOS-4509):
        # libprocess finds no handler and answers 404 with no body.
        return Response(404)
    if path == "/version":
        return Response.json(version_json(), jsonp=request.arg("jsonp"))
    if path == "/health":
        return Response(200)  # any master, leading or not
    if path == "/link":
        # Messages from agents of other processes; a standby drops them (`from_agent`).
        decoded = decode_link_message(request, master, MASTER_MESSAGES, master.flags.link_secret)
        if not isinstance(decoded, tuple):
            return decoded
        method, args = decoded
        master.dispatch(method, *args)
        return Response(202)
    if path == "/redirect":
        # To the leader, from the leader too; no path of its own (http.cpp `redirect`).
        if master.serving:
            return Response(307, headers={"Location": f"//{master.hostname}:{master.server.port}"})
        return redirect(master, Request(request.method, "", {}, request.headers, b"", ""))
    if not master.serving and path in LEADER_ONLY:
        # http.cpp: `if (!master->elected()) return redirect(request);`
        return redirect(master, request)
    if path == "/api/v1/scheduler":
        return scheduler_endpoint(master, request, principal)
    if path in ("/api/v1", "/api/v1/operator"):
        return operator_endpoint(master, request)
    reader, methods = READERS[path]
    if methods is not None and request.method not in methods:
        allowed = ", ".join(f"'{m}'" for m in methods)
        return Response.text(
            405,
            f"405 Method Not Allowed. Expecting one of {{ {allowed} }}, but received "
            f"'{request.method}'.",
            Allow=", ".join(methods),
        )
    if request.method == "POST" and path == "/maintenance/schedule":
        return Response.text(501, "localmesos does not implement maintenance schedules")
    try:
        return Response.json(master.call(reader, master, request), jsonp=request.arg("jsonp"))
    except ValueError as error:
        return Response.text(400, str(error))


def static_file(name: str) -> Response:
    """One file of the page's directory by its plain name; anything else (a subdirectory, a
    dot file, `..`, an encoded slash) is 404 with no body, as libprocess answers a missing
    asset."""
    plain = all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    if not name or name.startswith(".") or not plain:
        return Response(404)
    path = STATIC_DIR / name
    if not path.is_file():
        return Response(404)
    kind = STATIC_TYPES.get(path.suffix, "application/octet-stream")
    return Response(200, path.read_bytes(), kind)


def redirect(master: Master, request: Request) -> Response:
    """http.cpp `Master::Http::redirect`: 307 to the leader's hostname and port, with the
    path and query of the request; a protocol-relative Location, on purpose."""
    leader = master.leader
    if leader is None:
        return Response.text(503, "No leader elected")
    if leader.get("id") == master.id:
        # The detector already names this master, but the contender's word has not
        # arrived yet: Mesos answers so while it recovers its registry.
        return Response.text(503, "Master has not finished recovery")
    address = leader.get("address", {})
    host = address.get("hostname") or leader.get("hostname") or address.get("ip")
    # The server keeps the query parsed; encoded again, it names the same parameters.
    query = urlencode(request.query, doseq=True)
    target = f"//{host}:{address.get('port', leader.get('port'))}{request.path}"
    return Response(307, headers={"Location": target + (f"?{query}" if query else "")})


def scheduler_endpoint(
    master: Master, request: Request, principal: str | None
) -> Response | EventStream:
    """``principal``: whom `route` authenticated (None with authentication off)."""
    call = parse_call(request, "Call")
    if isinstance(call, Response):
        return call
    error = validate_scheduler_call(call)
    if error:
        return Response.text(400, f"Failed to validate scheduler::Call: {error}")
    stream_id = request.headers.get("Mesos-Stream-Id")
    if call["type"] == "SUBSCRIBE":
        if stream_id is not None:
            return Response.text(
                400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"
            )
        accept = request.headers.get("Accept", JSON)
        if not any(
            kind.split(";")[0].strip() in (JSON, PROTOBUF, "*/*", "application/*")
            for kind in accept.split(",")
        ):
            return Response.text(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
        return master.call(master.subscribe, call, principal)
    return master.call(master.handle_call, call, stream_id, principal)


def parse_call(request: Request, message: str) -> dict | Response:
    """405, 400 and 415 exactly as `Master::Http::scheduler` checks them; the agent's
    executor endpoint checks a call the same way."""
    if request.method != "POST":
        return Response.text(
            405,
            "405 Method Not Allowed. Expecting one of { 'POST' }, but received "
            f"'{request.method}'.",
            Allow="POST",
        )
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        return Response.text(400, "Expecting 'Content-Type' to be present")
    if content_type == PROTOBUF:
        return Response.text(
            415, "localmesos speaks JSON only: send 'Content-Type: application/json'"
        )
    if content_type != JSON:
        return Response.text(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
    value = parse_json(request.body)
    if isinstance(value, Response):
        return value
    try:
        return protocol.convert(message, value)
    except Invalid as error:
        return Response.text(400, f"Failed to convert JSON into Call protobuf: {error}")


def parse_json(body: bytes) -> Any:
    """A request body as stout's JSON::parse reads it, or a 400 that says where it broke
    (`protocol.parse_json`: deeper than Mesos parses is a 400 too)."""
    try:
        return protocol.parse_json(body)
    except protocol.BadJson as error:
        return Response.text(400, f"Failed to parse body into JSON: {error}")
