"""Links: how masters and agents send each other messages, in libprocess's role. A link is
anything with `send(message, *args)`; the receiver runs the method of that name on its own
thread. Within one process a `LocalLink` hands the message to the receiving actor; between
processes an `HttpLink` POSTs it to the receiver's `/link` endpoint, where
`decode_link_message` turns it back into a call. Either way a message to a receiver that is
gone is dropped, as libprocess drops messages to a dead process.

A master also watches each agent it registers, as Mesos's master `link()`s to the agent's pid
and gets an `exited` event when that socket closes (`Master::exited`): `link.monitor(key,
on_exited)`. An in-process agent tells its watchers when it dies as a process
(`Actor.notify_exited`); over HTTP the link holds a `GET /link` open on the agent, which the
agent never answers until it stops, and whose end (or refusal) is the socket closing. Silence
is not an exit: a partitioned agent, or one whose machine died, closes nothing, and only the
health checks notice it.

`/link` is for the cluster's own components only, as libprocess's messages between a master
and its agents are: every request to it carries the cluster's secret (`Authorization: Bearer
<secret>`; `LocalCluster` makes one per cluster, and `localmesos master` and `localmesos
agents` share theirs through LOCALMESOS_LINK_SECRET or a per-user file, see `shared_secret`),
or is refused with a 401. A message names one of the methods below with arguments of the
types that method declares, or is refused with a 400 that says what was wrong.
"""

from __future__ import annotations

import functools
import hmac
import http.client
import inspect
import logging
import os
import queue
import secrets
import threading
import time
import types
import typing
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localmesos import protocol
from localmesos.web import EventStream, Request, Response, dumps

log = logging.getLogger("localmesos.link")


# The messages each side accepts over HTTP links: the methods the in-process links call, and no
# other (a link must not be a way to call anything at all). Agent methods carry the `on_` prefix.
MASTER_MESSAGES = frozenset(
    {
        "register_agent",
        "reregister_agent",
        "pong",
        "status_update",
        "executor_exited",
        "executor_message",
    }
)


AGENT_MESSAGES = frozenset(
    {
        "registered",
        "reregistered",
        "ping",
        "run_task",
        "kill_task",
        "shutdown_executor",
        "shutdown_framework",
        "framework_message",
        "acknowledge",
        "update_framework",
    }
)


# A peer that takes longer than this to take a message is treated as gone for that message.
LINK_TIMEOUT = 5.0
# A link's sending thread ends after this long with nothing to send (the next message starts
# another), so that links to peers that went away hold no thread.
LINK_IDLE = 5.0
# At most this many links are kept for reuse by URL, the least recently used given up first: a
# cluster's components are a handful, and a link given up still works for whoever holds it.
MAX_HTTP_LINKS = 1024
SECRET_VARIABLE = "LOCALMESOS_LINK_SECRET"


def new_secret() -> str:
    """A cluster's link secret: 256 random bits."""
    return secrets.token_hex(32)


def shared_secret() -> str:
    """The secret of a cluster whose masters and agents run as separate processes (`localmesos
    master`, `localmesos agents`): LOCALMESOS_LINK_SECRET if set (processes on other machines,
    or of other users, set it alike), else the one in ~/.localmesos/link-secret, made on first
    use and readable by its owner only, as Erlang's distribution shares ~/.erlang.cookie."""
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    if secret:
        return secret
    path = Path.home() / ".localmesos" / "link-secret"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if not path.exists():
        # Written aside, then linked into place: a process that starts at the same moment
        # finds either no file or the whole secret, and the first link wins.
        draft = path.with_name(f".link-secret-{os.getpid()}-{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(new_secret() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty: remove it, or set {SECRET_VARIABLE}")
    return secret


class HttpLink:
    """A link to a master or an agent of another process: each message is one POST of
    `{"message": ..., "args": [...]}` to the peer's `/link` endpoint with the cluster's
    secret, sent in order by the link's own thread while it has messages to send. A message
    that cannot be delivered is dropped, as libprocess drops messages to a process that has
    gone; the protocols above already retry what matters. A link passed as an argument
    travels as `{"$link": URL}`.

    Links are shared by URL (`to`): agents hand over their link at every (re)registration,
    and masters must not collect links or threads."""

    def __init__(self, url: str, secret: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "http" or not parts.hostname or not port:
            raise ValueError(f"a link URL is http://HOST:PORT/PATH, not {url!r}")
        self.url = url
        self._host, self._port, self._path = parts.hostname, port, parts.path
        self._headers = {"Authorization": f"Bearer {secret}"}
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._sending = False  # a thread delivers the outbox
        self._send_lock = threading.Lock()
        self._watch_lock = threading.Lock()
        self._monitors: dict[Any, Callable[[], None]] = {}
        self._watching = False
        self._severed = False
        # Why the peer refuses our messages (a 401: another link secret), once it has.
        self.refused: str | None = None

    @classmethod
    def to(cls, url: str, secret: str) -> HttpLink:
        """The link to ``url``, shared; raises ValueError for a URL that is not a link's."""
        key = (url, secret)
        with _HTTP_LINKS_LOCK:
            link = _HTTP_LINKS.get(key)
            if link is None:
                link = _HTTP_LINKS[key] = cls(url, secret)
                while len(_HTTP_LINKS) > MAX_HTTP_LINKS:
                    _HTTP_LINKS.popitem(last=False)
            _HTTP_LINKS.move_to_end(key)
            return link

    def send(self, message: str, *args: Any) -> None:
        self._outbox.put(dumps({"message": message, "args": [_encode_arg(a) for a in args]}))
        with self._send_lock:
            if self._sending:
                return
            self._sending = True
        threading.Thread(target=self._deliver, name=f"link {self.url}", daemon=True).start()

    def _deliver(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            try:
                body = self._outbox.get(timeout=LINK_IDLE)
            except queue.Empty:
                with self._send_lock:
                    if self._outbox.empty():
                        self._sending = False
                        break
                continue
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        self._host, self._port, timeout=LINK_TIMEOUT
                    )
                headers = {"Content-Type": "application/json", **self._headers}
                connection.request("POST", self._path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.status == 401:
                    if self.refused is None:
                        self.refused = (
                            f"{self.url} refuses this process's messages (401): it has another "
                            "link secret; give both processes the same LOCALMESOS_LINK_SECRET, or "
                            "run them as the same user (~/.localmesos/link-secret)"
                        )
                        log.error("link %s", self.refused)
                elif response.status != 202:
                    log.warning("link %s: %d %s", self.url, response.status, response.reason)
            except (OSError, http.client.HTTPException) as error:
                log.debug("link %s: dropping a message (%s)", self.url, error)
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def monitor(self, key: Any, on_exited: Callable[[], None]) -> None:
        """Call ``on_exited`` once when the peer's process exits, as libprocess's `link()`
        and `exited`: the end of a `GET` on the peer's /link that it holds open while it
        lives, or a refused connection. A second call with the same key replaces the first."""
        with self._watch_lock:
            self._monitors[key] = on_exited
            if self._watching:
                return
            self._watching = True
            self._severed = False
        threading.Thread(target=self._watch, name=f"link watch {self.url}", daemon=True).start()

    def sever(self) -> None:
        """The peer's machine died: its sockets never close, so the watch ends unheard (the
        other side only learns from silence). The next `monitor` watches afresh."""
        with self._watch_lock:
            self._severed = True
            self._monitors.clear()

    def _watch(self) -> None:
        exited = True
        connection = http.client.HTTPConnection(self._host, self._port, timeout=LINK_TIMEOUT)
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(None)  # the answer comes when the peer dies
            connection.request("GET", self._path, headers=self._headers)
            response = connection.getresponse()
            if response.status == 200:
                response.read()
            else:
                # A peer that cannot be watched (not an agent): no exit to report.
                log.debug("link %s: cannot watch (%d)", self.url, response.status)
                exited = False
        except (OSError, http.client.HTTPException) as error:
            log.debug("link %s: connection closed (%s)", self.url, error)
        finally:
            connection.close()
        with self._watch_lock:
            self._watching = False
            monitors = [] if self._severed or not exited else list(self._monitors.values())
            self._monitors.clear()
        for on_exited in monitors:
            on_exited()


def master_link_url(address: str) -> str:
    """Where agents of other processes send a master ("ip:port") their messages."""
    return f"http://{address}/master/link"


_HTTP_LINKS: OrderedDict[tuple[str, str], HttpLink] = OrderedDict()


_HTTP_LINKS_LOCK = threading.Lock()


def _encode_arg(value: Any) -> Any:
    if isinstance(value, HttpLink):
        return {"$link": value.url}
    return value


def decode_link_message(
    request: Request,
    receiver: Any,
    accepted: frozenset[str],
    secret: str,
    prefix: str = "",
    linkable: bool = False,
) -> tuple[Callable[..., Any], list] | Response | EventStream:
    """The method of ``receiver`` that a POST to `/link` names (``prefix`` + its message) and
    its arguments, links made HttpLinks again; or the response that refuses it: 401 without
    the cluster's ``secret``, 400 for a body, a message or arguments that are not one of
    ``accepted`` with the types its method declares. On a ``linkable`` process (an agent,
    which masters watch), a GET is a peer linking to it: a stream that says nothing and ends
    only when this process stops (see `HttpLink.monitor`)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if (
        not secret
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.encode(), secret.encode())
    ):
        return Response.text(
            401,
            "/link is for the cluster's own masters and agents: expecting its secret in "
            "'Authorization: Bearer <secret>'",
            **{"WWW-Authenticate": 'Bearer realm="localmesos-link"'},
        )
    if linkable and request.method == "GET":
        return EventStream()
    if request.method != "POST":
        if linkable:
            return Response.text(405, "Expecting 'POST' or 'GET'", Allow="POST, GET")
        return Response.text(405, "Expecting 'POST'", Allow="POST")
    try:
        body = protocol.parse_json(request.body)
    except protocol.BadJson as error:
        return Response.text(400, f"Failed to parse body into JSON: {error}")
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("message"), str)
        or not isinstance(body.get("args"), list)
    ):
        return Response.text(400, 'Expecting {"message": "<name>", "args": [...]}')
    message, args = body["message"], body["args"]
    if message not in accepted:
        return Response.text(400, f"Unknown link message {message!r}")
    method = getattr(receiver, prefix + message)
    try:
        return method, _link_arguments(method, args, secret)
    except (TypeError, ValueError) as error:
        return Response.text(400, f"Wrong arguments for link message {message!r}: {error}")


def _link_arguments(method: Callable[..., Any], args: list, secret: str) -> list:
    """``args`` checked against ``method``'s signature and the types it declares; a parameter
    called `link` takes a `{"$link": URL}`, made an HttpLink (no other argument is). Raises
    TypeError or ValueError naming the argument that is wrong."""
    signature, hints = _declared(getattr(method, "__func__", method))
    bound = signature.bind(None, *args)  # None for `self`: the method's own is bound already
    bound.arguments.pop(next(iter(signature.parameters)))
    decoded = []
    for name, value in bound.arguments.items():
        if name == "link":
            if not (isinstance(value, dict) and set(value) == {"$link"}):
                raise TypeError(f"'link' must be {{\"$link\": URL}}, not {value!r:.100}")
            decoded.append(HttpLink.to(str(value["$link"]), secret))
            continue
        hint = hints.get(name, Any)
        if not _is(value, hint):
            raise TypeError(f"{name!r} must be {_type_name(hint)}, not {value!r:.100}")
        decoded.append(value)
    return decoded


@functools.cache
def _declared(function: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    """A link method's signature and type hints, read once (every ping goes through here)."""
    return inspect.signature(function), typing.get_type_hints(function)


def _is(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a parameter's type hint (str, int, float, bool, dict, list,
    unions of them, None and Any)."""
    if hint is Any:
        return True
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return any(_is(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    hint = typing.get_origin(hint) or hint
    if isinstance(value, bool) and hint is not bool:
        return False
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


class Partition:
    """The network between one agent and the masters: cut until a moment, or whole."""

    def __init__(self) -> None:
        self.until = 0.0

    @property
    def cut(self) -> bool:
        return time.monotonic() < self.until


class LocalLink:
    """Delivers a message to an actor of this process: asynchronously, in order, and dropped
    when the receiver is dead or the partition between the two is cut, as libprocess
    delivers messages between processes. Its `target` is whichever actor answers at that
    address now: an agent that restarts gets the same link, as a restarted Mesos agent has
    the same pid (`LocalCluster.restart_agent`)."""

    def __init__(self, target: Any, prefix: str = "", partition: Partition | None = None) -> None:
        self.target = target
        self.prefix = prefix
        self.partition = partition

    def send(self, message: str, *args: Any) -> None:
        if self.partition is not None and self.partition.cut:
            log.debug("partition: dropping %s to %s", message, self.target.name)
            return
        if self.target.alive:
            self.target.dispatch(getattr(self.target, self.prefix + message), *args)

    def monitor(self, key: Any, on_exited: Callable[[], None]) -> None:
        """Call ``on_exited`` once when the target's process exits (`HttpLink.monitor`); not
        if the partition is cut then, since no closing socket crosses a cut network."""
        partition = self.partition

        def exited() -> None:
            if partition is None or not partition.cut:
                on_exited()

        self.target.linked_by(key, exited)
