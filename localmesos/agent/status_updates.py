"""The agent's status update manager (src/slave/task_status_update_manager.cpp): one stream of
updates per task, of which only the oldest is in flight; it is sent again, later each time,
until the scheduler acknowledges it, and then the next one goes. While the agent is not
registered with a master nothing goes out (the manager is paused); when it is again, the head
of every stream goes out at once (`resume`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from localmesos.actors import Actor, Timer

# slave/constants.hpp: the first retry after 10 s, doubling up to 10 min.
STATUS_UPDATE_RETRY = 10.0
STATUS_UPDATE_RETRY_MAX = 600.0

# How the manager hands an update to the agent for the master: (framework ID, the update, the
# latest state of its task). False when the agent has no master to send it to (paused).
Forward = Callable[[str, dict, str], bool]


@dataclass
class UpdateStream:
    """The updates of one task not yet acknowledged; only the oldest is in flight
    (`TaskStatusUpdateStream`)."""

    updates: deque[dict] = field(default_factory=deque)
    timer: Timer | None = None
    interval: float = STATUS_UPDATE_RETRY


class StatusUpdateManager:
    """The streams, by (framework ID, task ID). It runs on the agent's thread, and its retry
    timers are the agent's."""

    def __init__(self, actor: Actor, forward: Forward, retry: float = STATUS_UPDATE_RETRY) -> None:
        self._actor = actor
        self._send = forward
        self.retry = retry  # the first retry interval
        self.streams: dict[tuple[str, str], UpdateStream] = {}

    def update(self, framework_id: str, status: dict) -> None:
        key = (framework_id, status["task_id"]["value"])
        stream = self.streams.setdefault(key, UpdateStream(interval=self.retry))
        stream.updates.append(status)
        if len(stream.updates) == 1:
            self._forward(key)

    def resume(self, framework_id: str | None = None) -> None:
        """Forward the head of each pending update stream now (of ``framework_id`` only, when
        given), its retry interval back to the first one: the status update manager's
        `resume()`."""
        for key, stream in self.streams.items():
            if stream.updates and (framework_id is None or key[0] == framework_id):
                if stream.timer is not None:
                    stream.timer.cancel()
                stream.interval = self.retry
                self._forward(key)

    def acknowledgement(self, framework_id: str, task_id: str, ack_uuid: str) -> None:
        key = (framework_id, task_id)
        stream = self.streams.get(key)
        if stream is None or not stream.updates or stream.updates[0].get("uuid") != ack_uuid:
            return  # a duplicate or stale acknowledgement
        stream.updates.popleft()
        if stream.timer:
            stream.timer.cancel()
        if stream.updates:
            stream.interval = self.retry
            self._forward(key)
        else:
            del self.streams[key]

    def cleanup(self, framework_id: str) -> None:
        """Forget the framework's streams: it is being shut down, nobody is left to tell."""
        for key in [k for k in self.streams if k[0] == framework_id]:
            stream = self.streams.pop(key)
            if stream.timer:
                stream.timer.cancel()

    def pending(self, framework_id: str, task_id: str) -> dict | None:
        """The oldest update of the task not yet acknowledged, if any."""
        stream = self.streams.get((framework_id, task_id))
        return stream.updates[0] if stream is not None and stream.updates else None

    def _forward(self, key: tuple[str, str]) -> None:
        stream = self.streams.get(key)
        if stream is None or not stream.updates:
            return
        if not self._send(key[0], stream.updates[0], stream.updates[-1]["state"]):
            return  # paused: it goes out when the agent has (re)registered
        stream.timer = self._actor.after(stream.interval, self._retry, key)

    def _retry(self, key: tuple[str, str]) -> None:
        stream = self.streams.get(key)
        if stream is None or not stream.updates:
            return
        stream.interval = min(stream.interval * 2, STATUS_UPDATE_RETRY_MAX)
        self._forward(key)
