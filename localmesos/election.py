"""Master election and detection on ZooKeeper, as Mesos does them (`src/zookeeper/group.cpp`,
`contender.cpp`, `detector.cpp`; `src/master/contender/zookeeper.cpp`, `detector/zookeeper.cpp`).

Every master joins a group rooted at the path of its `--zk` URL: it creates an ephemeral,
sequential znode `<path>/json.info_<10 digits>` holding its MasterInfo as compact JSON. The leader
is the member with the smallest sequence number, compared as a number over every child whose last
`_`-separated token is a number (so `log_replicas` and other strays are no members). A master that
loses its znode or its session while leading must stop leading: Mesos's master then exits
("committing suicide"); here `on_lost` says so and the caller decides. A follower that loses its
znode joins again, as Mesos's does ("Admit to be a loser and contend again").

    contender = Contender(zk_url, master.master_info(),
                          on_elected=lambda: master.dispatch(master.elected),
                          on_lost=lambda why: master.dispatch(master.lost_leadership, why))
    contender.start()
    ...
    contender.withdraw()  # a clean stop: the next master is elected at once

Threads: kazoo runs its own threads, and its watch callbacks must not block. Each Contender and
Detector therefore keeps one thread of its own that reads ZooKeeper and decides, and **every
callback (`on_elected`, `on_lost`, `on_change`) runs on that thread**, one at a time and in
order; never on the caller's thread, never on an actor's. A callback should hand its work to its
actor with `dispatch` and return; it must not wait for a thread that may be calling `withdraw()`
or `stop()`, because those wait for the callback to finish. No callback runs after `withdraw()`,
`stop()` or `abandon()` has returned.

Losing the connection is not losing the session: ZooKeeper keeps a session for its timeout, and a
client hears that it has expired only once it reconnects. As Mesos does, a leader that has been
disconnected for a whole session timeout takes its session as expired and calls `on_lost`, so
that a partitioned leader stands down by the time ZooKeeper lets another master take over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError, SequentialThreadingHandler
from kazoo.protocol.states import WatchedEvent

log = logging.getLogger("localmesos")

# Masters since 0.24 join with this label and JSON data; older ones used "info" and protobuf
# (src/master/constants.hpp MASTER_INFO_JSON_LABEL, MASTER_INFO_LABEL).
MASTER_INFO_LABEL = "json.info"
# MASTER_CONTENDER_ZK_SESSION_TIMEOUT and MASTER_DETECTOR_ZK_SESSION_TIMEOUT.
SESSION_TIMEOUT = 10.0
# kazoo's default reconnection backoff doubles up to an hour, so after a ZooKeeper outage of a
# few minutes a client would stay away long after the server is back. Mesos's group retries
# every 2 s; a local server answers in milliseconds, so one second is plenty.
CONNECTION_RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0}
# A request queued while the connection drops waits for the next connection; the worker must not
# wait that long, or a leader could miss its own session timeout.
CALL_TIMEOUT = 2.0
RETRY_AFTER_ERROR = 0.2
# numify<int32_t> in group.cpp: a larger number is not a sequence.
INT32_MAX = 2**31 - 1


class ZooKeeperUnavailable(RuntimeError):
    """No ZooKeeper server answered."""


# -- URLs and members -------------------------------------------------------------------------


def parse_zk_url(url: str) -> tuple[str, str]:
    """``"zk://h1:2181,h2:2181/mesos"`` -> ``("h1:2181,h2:2181", "/mesos")``.

    As Mesos's `zookeeper::URL::parse`, the scheme is `zk://` and the path is required (`/` alone
    is refused, as Mesos's detector refuses it). Mesos also accepts `zk://user:password@hosts/path`
    for digest authentication; that is refused here, since nothing in localmesos sets ACLs and
    pymesos silently drops the credentials (kazoo parses each host as a URL netloc).
    """
    if not isinstance(url, str) or not url.startswith("zk://"):
        raise ValueError(
            f"a ZooKeeper URL starts with zk://, as in zk://127.0.0.1:2181/mesos: {url!r}"
        )
    hosts, slash, path = url[len("zk://") :].partition("/")
    if "@" in hosts:
        raise ValueError(
            f"credentials in ZooKeeper URLs are not supported (pymesos ignores them): {url!r}"
        )
    if not hosts:
        raise ValueError(f"no ZooKeeper hosts in {url!r}; expected zk://HOST:PORT/path")
    for host in hosts.split(","):
        if host.startswith("["):  # an IPv6 address, [::1]:2181
            name, _, rest = host[1:].partition("]")
            colon, port = rest[:1], rest[1:]
            if rest and colon != ":":
                raise ValueError(f"bad ZooKeeper host {host!r} in {url!r}")
        else:
            name, colon, port = host.partition(":")
        if not name:
            raise ValueError(f"an empty ZooKeeper host in {url!r}; expected zk://HOST:PORT/path")
        if colon and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"bad port {port!r} for ZooKeeper host {name!r} in {url!r}")
    path = "/" + path.rstrip("/")
    if not slash or path == "/":
        raise ValueError(
            f"a ZooKeeper URL needs a path for the masters' group, as in "
            f"zk://127.0.0.1:2181/mesos ('/' alone is not supported): {url!r}"
        )
    if "//" in path:
        raise ValueError(f"an empty znode name in the path of {url!r}")
    return hosts, path


def _tokens(name: str) -> list[str]:
    # stout's strings::tokenize drops empty tokens: "a__0001" is ["a", "0001"].
    return [token for token in name.split("_") if token]


def member_sequence(name: str) -> int | None:
    """The sequence number of a group member's znode, or None for a child that is no member
    (`log_replicas`, or anything whose last `_` token is not a number)."""
    tokens = _tokens(name)
    if not tokens or not re.fullmatch(r"[0-9]+", tokens[-1]):
        return None
    sequence = int(tokens[-1])
    return sequence if sequence <= INT32_MAX else None


def member_label(name: str) -> str | None:
    tokens = _tokens(name)
    return tokens[0] if len(tokens) > 1 else None


def leader_of(children: Iterable[str]) -> str | None:
    """The leader's znode name: the member with the smallest sequence number, as a number and
    whatever its label ("The leader is the oldest member", detector.cpp)."""
    members = [(seq, name) for name in children if (seq := member_sequence(name)) is not None]
    return min(members)[1] if members else None


def master_info_json(master_info: dict[str, Any]) -> bytes:
    """MasterInfo as the znode holds it: `stringify(JSON::protobuf(info))`, compact JSON."""
    missing = [key for key in ("id", "ip", "port") if key not in master_info]
    address = master_info.get("address")
    if not isinstance(address, dict) or "ip" not in address or "port" not in address:
        missing.append("address.ip and address.port")  # pymesos finds the master by these
    if missing:
        raise ValueError(f"MasterInfo lacks {', '.join(missing)}: {master_info!r}")
    return json.dumps(master_info, separators=(",", ":"), ensure_ascii=False).encode()


# -- the ZooKeeper session and its thread -----------------------------------------------------


class _Handler(SequentialThreadingHandler):
    """kazoo's threading handler with a switch that cuts the client off ZooKeeper: the socket
    is shut down (the server sees the connection end, as when a process dies) and reconnections
    are refused until `restore`. No request, and so no close of the session, gets through."""

    def __init__(self) -> None:
        super().__init__()
        self._cut_lock = threading.Lock()
        self._cut = False
        self._socket: socket.socket | None = None

    def create_connection(self, *args: Any, **kwargs: Any) -> socket.socket:
        with self._cut_lock:
            if self._cut:
                raise OSError("cut off from ZooKeeper on purpose")
        sock = super().create_connection(*args, **kwargs)
        with self._cut_lock:
            if self._cut:  # cut while this connection was being made
                sock.close()
                raise OSError("cut off from ZooKeeper on purpose")
            self._socket = sock
        return sock

    def cut(self) -> None:
        with self._cut_lock:
            self._cut = True
            sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):  # kazoo had already closed it
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        with self._cut_lock:
            self._cut = False


class _KazooLog(logging.LoggerAdapter):
    """kazoo's log for one member. Muted once the member has been made to crash (`abandon`):
    its broken connection and failed reconnections are then the point, not news."""

    muted = False

    def isEnabledFor(self, level: int) -> bool:
        return not self.muted and super().isEnabledFor(level)


class _Member:
    """A ZooKeeper session watching the children of a group's path, and the thread that reacts.

    Everything the thread learns arrives as events on one queue: children changed, connection
    state changed, a caller asks to settle or stop. After each batch it reads the current state
    from ZooKeeper and acts on that (level-triggered), so a lost or doubled event does no harm.
    """

    kind = "member"

    def __init__(self, zk_url: str, session_timeout: float) -> None:
        self.hosts, self.path = parse_zk_url(zk_url)
        self.session_timeout = session_timeout
        self._handler = _Handler()
        self._kazoo_log = _KazooLog(logging.getLogger("kazoo.client"))
        self._client = KazooClient(
            hosts=self.hosts,
            timeout=session_timeout,
            handler=self._handler,
            connection_retry=dict(CONNECTION_RETRY),
            logger=self._kazoo_log,
        )
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False  # set first by withdraw/stop/abandon: no callback runs after it
        # Owned by the thread:
        self._suspended_since: float | None = None
        self._session_expired = False
        self._locally_expired = False
        self._retry_at: float | None = None

    @property
    def session_id(self) -> int | None:
        """The current ZooKeeper session, the `ephemeralOwner` of a contender's znode."""
        client_id = self._client.client_id
        return client_id[0] if client_id else None

    # -- life cycle, for subclasses ------------------------------------------------------------

    def _connect(self, timeout: float) -> None:
        self._client.add_listener(self._on_state)
        try:
            self._client.start(timeout)
        except KazooTimeoutError:
            raise ZooKeeperUnavailable(
                f"no ZooKeeper answered at {self.hosts} within {timeout:g}s"
            ) from None
        # As Mesos's group does on connecting, for detectors too: kazoo's watches stop for good
        # on a missing path (pymesos's detector then never finds a master and never says so).
        self._wait(self._client.ensure_path_async(self.path))

    def _run_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"zk-{self.kind}", daemon=True)
        self._thread.start()
        self._events.put(("poke", None))

    def _shutdown(self, delete_node: bool = False) -> None:
        """Stop the thread, delete our znode if asked (and still connected), and close the
        session."""
        self._closed = True
        self._events.put(("stop", None))
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(CALL_TIMEOUT + 5)
            if thread.is_alive():
                log.warning("%s: its thread is still in a callback; closing anyway", self.kind)
        node = self._own_node() if delete_node else None
        if node is not None and self._client.connected:
            # Already gone, or the connection went: closing the session removes it anyway.
            with contextlib.suppress(KazooException, KazooTimeoutError):
                self._wait(self._client.delete_async(node))
        self._client.remove_listener(self._on_state)
        try:
            self._client.stop()
        finally:
            self._client.close()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until this member has read ZooKeeper's current state and made its callbacks.
        For tests and orderly hand-overs: after it, "not elected" means not elected by then."""
        if self._closed or self._thread is None:
            return True
        done = threading.Event()
        self._events.put(("settle", done))
        return done.wait(timeout)

    # -- fault injection ----------------------------------------------------------------------

    def disconnect(self) -> None:
        """Cut this session off ZooKeeper, as a network partition does, until `reconnect()`.
        The session lives on in ZooKeeper until its timeout."""
        self._handler.cut()

    def reconnect(self) -> None:
        self._handler.restore()

    def expire_session(self, timeout: float = 10.0) -> None:
        """Have ZooKeeper expire this session now, as after a partition longer than the session
        timeout; this member learns it when it reconnects (ZooKeeper's FAQ way: a second client
        takes the session over and closes it). Returns once this member has reconnected, heard
        of the expiry and acted on it (`on_lost` for a leader, joining again for a follower)."""
        session = self._client.client_id
        if session is None:
            raise RuntimeError(f"{self.kind} has no session to expire")
        heard, back = threading.Event(), threading.Event()

        def listen(state: str) -> bool:
            if state == KazooState.LOST:
                heard.set()
            elif state == KazooState.CONNECTED and heard.is_set():
                back.set()
            return back.is_set()  # kazoo removes a listener that returns True

        self._client.add_listener(listen)
        self._handler.cut()  # so that this session cannot take itself back meanwhile
        try:
            thief = KazooClient(hosts=self.hosts, client_id=session, timeout=self.session_timeout)
            thief.start(timeout)
            thief.stop()
            thief.close()
        finally:
            self._handler.restore()
        try:
            if not heard.wait(timeout):
                raise RuntimeError(f"{self.kind} did not hear that its session expired")
            # A leader has stood down and closed its client by now; anyone else goes on, in a
            # new session that kazoo opens at once.
            self.settle(timeout)
            if not self._closed:
                if not back.wait(timeout):
                    raise RuntimeError(f"{self.kind} did not reconnect after its session expired")
                self.settle(timeout)
        finally:
            self._client.remove_listener(listen)

    # -- the thread -------------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        # On kazoo's connection thread, which must not block.
        self._events.put(("state", state))

    def _on_watch(self, event: WatchedEvent) -> None:
        self._events.put(("watch", event))

    def _loop(self) -> None:
        while True:
            waits = [t for t in (self._local_expiry_at(), self._retry_at) if t is not None]
            timeout = max(0.0, min(waits) - time.monotonic()) if waits else None
            batch: list[tuple[str, Any]] = []
            with contextlib.suppress(queue.Empty):
                batch.append(self._events.get(timeout=timeout))
            while True:  # one look at ZooKeeper for all that has happened
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
            settled = []
            for kind, value in batch:
                if kind == "stop":
                    for done in settled:
                        done.set()
                    return
                if kind == "state":
                    self._absorb_state(value)
                elif kind == "settle":
                    settled.append(value)
            if not self._closed:
                self._retry_at = None
                try:
                    self._evaluate()
                except (KazooException, KazooTimeoutError) as error:
                    # The state listener will say if the connection went; otherwise look again.
                    log.debug("%s: ZooKeeper call failed (%r); retrying", self.kind, error)
                    self._retry_at = time.monotonic() + RETRY_AFTER_ERROR
                except Exception:
                    # A bug must not silently end the election for this process.
                    log.exception("%s: error while reading ZooKeeper; retrying", self.kind)
                    self._retry_at = time.monotonic() + RETRY_AFTER_ERROR
            for done in settled:
                done.set()

    def _absorb_state(self, state: str) -> None:
        if state == KazooState.SUSPENDED:
            if self._suspended_since is None:
                self._suspended_since = time.monotonic()
        elif state == KazooState.LOST:
            self._session_expired = True
            self._suspended_since = None
            self._locally_expired = False
        elif state == KazooState.CONNECTED:
            self._suspended_since = None
            self._locally_expired = False

    def _local_expiry_at(self) -> float | None:
        if self._suspended_since is None or self._locally_expired:
            return None
        return self._suspended_since + self.session_timeout

    def _evaluate(self) -> None:
        if self._session_expired:
            self._session_expired = False
            self._session_lost("the ZooKeeper session expired", confirmed=True)
        else:
            expiry = self._local_expiry_at()
            if expiry is not None and time.monotonic() >= expiry:
                # group.cpp `timedout`: ZooKeeper tells a client of its expiry only when it
                # reconnects, which a partition may delay for ever.
                self._locally_expired = True
                self._session_lost(
                    f"no connection to ZooKeeper for {self.session_timeout:g}s "
                    f"(the session timeout): taking the session as expired",
                    confirmed=False,
                )
        if not self._closed and self._client.connected:
            self._sync()

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        if self._closed:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("%s: error in callback %s", self.kind, getattr(callback, "__name__", ""))

    @staticmethod
    def _wait(result: Any) -> Any:
        """The result of a kazoo async call, waiting at most CALL_TIMEOUT: a request made just
        as the connection drops would otherwise wait for the next connection."""
        return result.get(timeout=CALL_TIMEOUT)

    def _children(self) -> list[str]:
        try:
            return self._wait(self._client.get_children_async(self.path, watch=self._on_watch))
        except NoNodeError:
            # Someone deleted the group's path: make it again, as the group does on connecting.
            self._wait(self._client.ensure_path_async(self.path))
            return self._wait(self._client.get_children_async(self.path, watch=self._on_watch))

    # -- for subclasses -----------------------------------------------------------------------

    def _own_node(self) -> str | None:
        return None

    def _session_lost(self, reason: str, confirmed: bool) -> None:
        """``confirmed``: ZooKeeper said the session expired; otherwise the connection has been
        down for a session timeout and the session may yet be alive."""
        raise NotImplementedError

    def _sync(self) -> None:
        raise NotImplementedError


# -- the contender ----------------------------------------------------------------------------


class Contender(_Member):
    """A master's candidacy: its znode in the group, and whether it leads.

    `on_elected()` is called once, when this master's znode becomes the leader. `on_lost(reason)`
    is called once, if this master led and then stopped leading: its znode was deleted, its
    session expired (or it was disconnected for a whole session timeout), or another znode has
    become the leader. After `on_lost` the contender has closed its session and does nothing
    more; Mesos's master exits at that point. A follower that loses its znode quietly joins
    again. See the module's docstring for the thread the callbacks run on.
    """

    kind = "contender"

    def __init__(
        self,
        zk_url: str,
        master_info: dict[str, Any],
        on_elected: Callable[[], None],
        on_lost: Callable[[str], None],
        *,
        session_timeout: float = SESSION_TIMEOUT,
    ) -> None:
        super().__init__(zk_url, session_timeout)
        self.master_info = master_info
        self._data = master_info_json(master_info)
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._node: str | None = None
        self._elected = False
        self._started = False

    @property
    def node(self) -> str | None:
        """The full path of this master's znode, e.g. `/mesos/json.info_0000000007`."""
        return self._node

    @property
    def elected(self) -> bool:
        return self._elected and not self._closed

    def start(self, timeout: float = 15.0) -> Contender:
        """Connect, make the group's path if missing, and join. Returns once the znode exists;
        the election result arrives through the callbacks, possibly before this returns."""
        if self._started:
            raise RuntimeError("a contender contends once; make a new one")
        self._started = True
        try:
            self._connect(timeout)
            self._join()
        except BaseException:
            self._shutdown()
            raise
        log.info("contender: joined the group as %s", self._node)
        self._run_thread()
        return self

    def withdraw(self) -> None:
        """Leave the group: delete the znode and close the session, so that the next master is
        elected at once. `on_lost` is not called. Idempotent."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._shutdown(delete_node=True)

    stop = withdraw

    def abandon(self) -> None:
        """Fault injection: vanish as a SIGKILLed master does. The connection drops without
        closing the session, so the znode stays, and this master stays the leader in
        ZooKeeper's eyes, until ZooKeeper expires the session (`session_timeout` later). No
        callback is called."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        self._kazoo_log.muted = True
        # Cut first: after this no byte, and so no request to close the session, can reach
        # ZooKeeper, whatever kazoo does while it is being stopped.
        self._handler.cut()
        self._shutdown()

    def _join(self) -> None:
        self._node = self._wait(
            self._client.create_async(
                f"{self.path}/{MASTER_INFO_LABEL}_", self._data, ephemeral=True, sequence=True
            )
        )

    def _own_node(self) -> str | None:
        return self._node

    def _session_lost(self, reason: str, confirmed: bool) -> None:
        if self._elected:
            self._lose(reason)
        elif confirmed:
            log.info("contender: lost candidacy as a follower (%s); joining again", reason)
            self._node = None
        # A follower merely disconnected for a while keeps its znode: its session may be alive,
        # and a second znode of this master's in the same session could later lead unnoticed.

    def _sync(self) -> None:
        if self._node is None:
            self._join()
            log.info("contender: joined the group again as %s", self._node)
        assert self._node is not None
        children = self._children()
        mine = self._node.rsplit("/", 1)[1]
        if mine not in children:
            if self._elected:
                self._lose(f"its znode {self._node} was deleted")
            else:
                log.info("contender: znode %s was deleted; joining again", self._node)
                self._node = None
                self._events.put(("poke", None))
            return
        leader = leader_of(children)
        if self._elected and leader != mine:
            self._lose(f"another master leads now ({self.path}/{leader})")
        elif not self._elected and leader == mine:
            self._elected = True
            log.info("contender: elected, as %s", self._node)
            self._call(self._on_elected)

    def _lose(self, reason: str) -> None:
        log.warning("contender: lost leadership: %s", reason)
        self._call(self._on_lost, reason)
        # The caller is told; like Mesos's exiting master, this candidacy is over. Closing the
        # session removes the znode if ZooKeeper still has it.
        self._shutdown()


# -- the detector -----------------------------------------------------------------------------


class Detector(_Member):
    """Finds the leading master, as agents and drivers do.

    `on_change(master_info)` is called with the leader's MasterInfo (the dict its znode holds)
    first with what it finds at start, and then each time the leading znode changes; with None
    when there is no leader. As in Mesos's group, a session that expires (or a connection
    lost for a whole session timeout) means no known leader until ZooKeeper answers again.
    A leader whose znode this detector cannot read (an `info_` protobuf node of a Mesos before
    0.24, or bad JSON) is reported as None and logged; Mesos's detector fails instead.
    """

    kind = "detector"

    def __init__(
        self,
        zk_url: str,
        on_change: Callable[[dict[str, Any] | None], None],
        *,
        session_timeout: float = SESSION_TIMEOUT,
    ) -> None:
        super().__init__(zk_url, session_timeout)
        self._on_change = on_change
        self._leader_node: str | None = None
        self._leader: dict[str, Any] | None = None
        self._reported = False
        self._started = False

    @property
    def leader(self) -> dict[str, Any] | None:
        """The MasterInfo last reported."""
        return self._leader

    def start(self, timeout: float = 15.0) -> Detector:
        if self._started:
            raise RuntimeError("a detector starts once; make a new one")
        self._started = True
        try:
            self._connect(timeout)
        except BaseException:
            self._shutdown()
            raise
        self._run_thread()
        return self

    def stop(self) -> None:
        if self._closed or not self._started:
            self._closed = True
            return
        self._shutdown()

    def _session_lost(self, reason: str, confirmed: bool) -> None:
        log.info("detector: %s; no leader known until ZooKeeper answers", reason)
        self._report(None, None)

    def _sync(self) -> None:
        leader = leader_of(self._children())
        if leader is None:
            self._report(None, None)
            return
        if leader == self._leader_node and self._reported:
            return
        try:
            data, _ = self._wait(self._client.get_async(f"{self.path}/{leader}"))
        except NoNodeError:
            self._events.put(("poke", None))  # gone between the two reads: look again
            return
        self._report(leader, self._parse(leader, data))

    def _parse(self, node: str, data: bytes) -> dict[str, Any] | None:
        label = member_label(node)
        if label != MASTER_INFO_LABEL:
            log.error(
                "detector: the leading znode %s/%s has label %r; only %r (JSON) can be read",
                self.path,
                node,
                label,
                MASTER_INFO_LABEL,
            )
            return None
        try:
            info = json.loads(data.decode())
        except ValueError:
            info = None
        if not isinstance(info, dict):
            log.error("detector: the leading znode %s/%s holds no JSON object", self.path, node)
            return None
        return info

    def _report(self, node: str | None, info: dict[str, Any] | None) -> None:
        if self._reported and node == self._leader_node:
            return
        self._reported = True
        self._leader_node = node
        self._leader = info
        log.info("detector: leader is %s", f"{self.path}/{node}" if node else "none")
        self._call(self._on_change, info)
