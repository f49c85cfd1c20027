"""One thread per component, as libprocess runs one actor per Mesos process.

The master and every agent own their state and change it only on their own thread. Other threads
(HTTP handlers, process waiters) hand work over with `dispatch` (fire and forget) or `call`
(wait for the answer). Timers run on the same thread, so no component needs a lock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger("localmesos")


class Stopped(RuntimeError):
    """The actor has stopped (its component crashed or was stopped) and runs nothing more."""


class Timer:
    __slots__ = ("cancelled", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Actor:
    def __init__(self, name: str) -> None:
        self.name = name
        self._mailbox: queue.SimpleQueue[tuple[Callable[..., Any], tuple, Future | None]] = (
            queue.SimpleQueue()
        )
        self._timers: list[tuple[float, int, Timer, Callable[..., Any], tuple]] = []
        self._sequence = itertools.count()
        self._running = False
        self._thread: threading.Thread | None = None
        # libprocess `link()`: who wants to hear when this actor's process exits, by key.
        self._linked: dict[Any, Callable[[], None]] = {}
        self._linked_lock = threading.Lock()
        self._process_exited = False

    def linked_by(self, key: Any, on_exited: Callable[[], None]) -> None:
        """Call ``on_exited`` (once, on whatever thread ends this actor) when its process
        exits: libprocess's `exited` event, which a socket closing delivers. A link to an
        actor that has already exited hears of it at once, as in libprocess."""
        with self._linked_lock:
            if not self._process_exited:
                self._linked[key] = on_exited
                return
        on_exited()

    def notify_exited(self) -> None:
        """This actor's process died: every socket to it closes, and those linked hear it."""
        with self._linked_lock:
            self._process_exited = True
            linked, self._linked = list(self._linked.values()), {}
        for on_exited in linked:
            on_exited()

    def start_actor(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop_actor(self, wait: bool = True) -> None:
        if not self._running:
            return
        self._running = False
        self._mailbox.put((lambda: None, (), None))
        if wait and self._thread is not threading.current_thread() and self._thread:
            self._thread.join(5)

    @property
    def alive(self) -> bool:
        return self._running

    def fail_pending_calls(self) -> None:
        """Threads waiting in `call` on a stopped actor would wait out their timeout; they
        get `Stopped` at once instead."""
        while True:
            try:
                _, _, future = self._mailbox.get_nowait()
            except queue.Empty:
                return
            if future is not None and not future.done():
                future.set_exception(Stopped(f"{self.name} is stopped"))

    def dispatch(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._running:
            self._mailbox.put((fn, args, None))

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        """Run ``fn`` on the actor's thread and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        if not self._running:
            raise Stopped(f"{self.name} is stopped")
        future: Future = Future()
        self._mailbox.put((fn, args, future))
        return future.result(timeout)

    def after(self, seconds: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn`` on this actor's thread in ``seconds``; only call this from that thread."""
        timer = Timer(time.monotonic() + seconds)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer, fn, args))
        return timer

    def _loop(self) -> None:
        while self._running:
            timeout = None
            now = time.monotonic()
            while self._timers and self._running:
                when, _, timer, fn, args = self._timers[0]
                if timer.cancelled:
                    heapq.heappop(self._timers)
                    continue
                if when > now:
                    timeout = when - now
                    break
                heapq.heappop(self._timers)
                self._run(fn, args, None)
                now = time.monotonic()
            try:
                fn, args, future = self._mailbox.get(timeout=timeout)
            except queue.Empty:
                continue
            if not self._running:
                # Stopped while it waited: what was still in the mailbox never runs (a
                # process launch that a fetch's end queued must not happen after death).
                if future is not None and not future.done():
                    future.set_exception(Stopped(f"{self.name} is stopped"))
                break
            self._run(fn, args, future)

    def _run(self, fn: Callable[..., Any], args: tuple, future: Future | None) -> None:
        try:
            result = fn(*args)
        except BaseException as error:  # one bad message must not kill the component
            if future is not None:
                future.set_exception(error)
            else:
                log.exception("%s: error while handling %s", self.name, getattr(fn, "__name__", fn))
            return
        if future is not None:
            future.set_result(result)
