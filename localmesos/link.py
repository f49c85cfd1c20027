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
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

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


class HttpLink:
    """A link to a master or an agent of another process: each message is one POST of
    `{"message": ..., "args": [...]}` to the peer's `/link` endpoint, sent in order by the
    link's own thread. A message that cannot be delivered is dropped, as libprocess drops
    messages to a process that has gone; the protocols above already retry what matters.
    A link passed as an argument travels as `{"$link": URL}`.

    One link (and thread) per URL, shared: agents hand over their link at every
    (re)registration, and masters must not collect threads."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"a link URL is http://HOST:PORT/PATH, not {url!r}")
        self.url = url
        self._host, self._port, self._path = parts.hostname, parts.port, parts.path
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._deliver, name=f"link {url}", daemon=True)
        self._thread.start()
        self._watch_lock = threading.Lock()
        self._monitors: dict[Any, Callable[[], None]] = {}
        self._watching = False
        self._severed = False

    @classmethod
    def to(cls, url: str) -> HttpLink:
        with _HTTP_LINKS_LOCK:
            link = _HTTP_LINKS.get(url)
            if link is None:
                link = _HTTP_LINKS[url] = cls(url)
            return link

    def send(self, message: str, *args: Any) -> None:
        self._outbox.put(dumps({"message": message, "args": [_encode_arg(a) for a in args]}))

    def _deliver(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            body = self._outbox.get()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        self._host, self._port, timeout=LINK_TIMEOUT
                    )
                connection.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 202:
                    log.warning("link %s: %d %s", self.url, response.status, response.reason)
            except (OSError, http.client.HTTPException) as error:
                log.debug("link %s: dropping a message (%s)", self.url, error)
                if connection is not None:
                    connection.close()
                connection = None

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
            connection.request("GET", self._path)
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


_HTTP_LINKS: dict[str, HttpLink] = {}


_HTTP_LINKS_LOCK = threading.Lock()


def _encode_arg(value: Any) -> Any:
    if isinstance(value, HttpLink):
        return {"$link": value.url}
    return value


def decode_link_message(
    request: Request, accepted: frozenset[str], linkable: bool = False
) -> tuple[str, list] | Response | EventStream:
    """The message and arguments of a POST to `/link`, links made HttpLinks again; or the
    response that refuses it. On a ``linkable`` process (an agent, which masters watch), a
    GET is a peer linking to it: a stream that says nothing and ends only when this process
    stops (see `HttpLink.monitor`)."""
    if linkable and request.method == "GET":
        return EventStream()
    if request.method != "POST":
        if linkable:
            return Response.text(405, "Expecting 'POST' or 'GET'", Allow="POST, GET")
        return Response.text(405, "Expecting 'POST'", Allow="POST")
    try:
        body = json.loads(request.body)
        message, args = body["message"], list(body["args"])
    except (ValueError, KeyError, TypeError):
        return Response.text(400, 'Expecting {"message": ..., "args": [...]}')
    if message not in accepted:
        return Response.text(400, f"Unknown link message {message!r}")
    decoded = [
        HttpLink.to(a["$link"]) if isinstance(a, dict) and set(a) == {"$link"} else a for a in args
    ]
    return message, decoded


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
