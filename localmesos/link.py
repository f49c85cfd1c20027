"""Links: how masters and agents send each other messages, in libprocess's role. A link is
anything with `send(message, *args)`; the receiver runs the method of that name on its own
thread. Within one process a `LocalLink` hands the message to the receiving actor; between
processes an `HttpLink` POSTs it to the receiver's `/link` endpoint, where
`decode_link_message` turns it back into a call. Either way a message to a receiver that is
gone is dropped, as libprocess drops messages to a dead process.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from localmesos.web import Request, Response, dumps

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


def master_link_url(address: str) -> str:
    """Where agents of other processes send a master ("ip:port") their messages."""
    return f"http://{address}/master/link"


_HTTP_LINKS: dict[str, HttpLink] = {}


_HTTP_LINKS_LOCK = threading.Lock()


def _encode_arg(value: Any) -> Any:
    if isinstance(value, HttpLink):
        return {"$link": value.url}
    return value


def decode_link_message(request: Request, accepted: frozenset[str]) -> tuple[str, list] | Response:
    """The message and arguments of a POST to `/link`, links made HttpLinks again; or the
    response that refuses it."""
    if request.method != "POST":
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
    delivers messages between processes."""

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
