"""The agent's status update manager (src/slave/task_status_update_manager.cpp): one stream of
updates per task, of which only the oldest is in flight; it is sent again, later each time,
until the scheduler acknowledges it, and then the next one goes. While the agent is not
registered with a master nothing goes out (the manager is paused); when it is again, the head
of every stream goes out at once (`resume`).

An update already in a task's stream, or already acknowledged, is a duplicate and is dropped
("Ignoring duplicate status update"): executors that reconnect after an agent restart send
again what they were not sure of. The streams of checkpointing frameworks' tasks are written
as they change (the `journal`: each UPDATE as it enters, each ACK as it arrives), and an
agent that restarts replays them (`recover`), so that what was not acknowledged goes out
again once it has reregistered.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from localmesos.actors import Actor, Timer
from localmesos.protocol import is_terminal

log = logging.getLogger("localmesos.agent")

# slave/constants.hpp: the first retry after 10 s, doubling up to 10 min.
STATUS_UPDATE_RETRY = 10.0
STATUS_UPDATE_RETRY_MAX = 600.0

# How the manager hands an update to the agent for the master: (framework ID, the update, the
# latest state of its task). False when the agent has no master to send it to (paused).
Forward = Callable[[str, dict, str], bool]
# Where the records of checkpointed streams go: (framework ID, task ID, record); the agent
# writes those of tasks of frameworks that checkpoint and drops the others.
Journal = Callable[[str, str, dict], None]


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

    def __init__(
        self,
        actor: Actor,
        forward: Forward,
        retry: float = STATUS_UPDATE_RETRY,
        journal: Journal | None = None,
    ) -> None:
        self._actor = actor
        self._send = forward
        self._journal = journal
        self.retry = retry  # the first retry interval
        self.streams: dict[tuple[str, str], UpdateStream] = {}
        # The uuids each task's stream has taken, acknowledged or not, until its terminal
        # update is acknowledged (`TaskStatusUpdateStream::received`, `acknowledged`).
        self._received: dict[tuple[str, str], set[str]] = {}

    def update(self, framework_id: str, status: dict) -> bool:
        """Take an update into its task's stream; False if it is a duplicate (dropped)."""
        key = (framework_id, status["task_id"]["value"])
        update_uuid = status.get("uuid")
        if update_uuid is not None:
            received = self._received.setdefault(key, set())
            if update_uuid in received:
                log.info(
                    "ignoring duplicate status update %s for task %s of framework %s",
                    status["state"],
                    key[1],
                    framework_id,
                )
                return False
            received.add(update_uuid)
        if self._journal is not None:
            self._journal(framework_id, key[1], {"type": "UPDATE", "update": status})
        stream = self.streams.setdefault(key, UpdateStream(interval=self.retry))
        stream.updates.append(status)
        if len(stream.updates) == 1:
            self._forward(key)
        return True

    def recover(self, framework_id: str, task_id: str, records: list[dict]) -> list[dict]:
        """Replay a checkpointed stream (`TaskStatusUpdateManagerProcess::recover`); returns
        every update it had, in order. Those not acknowledged wait, paused, for `resume`."""
        key = (framework_id, task_id)
        pending: deque[dict] = deque()
        received = self._received.setdefault(key, set())
        updates = []
        for record in records:
            if record.get("type") == "UPDATE":
                status = record["update"]
                if status.get("uuid") in received:
                    continue
                received.add(status.get("uuid"))
                pending.append(status)
                updates.append(status)
            elif (
                record.get("type") == "ACK"
                and pending
                and pending[0].get("uuid") == record.get("uuid")
            ):
                pending.popleft()
        if pending:
            self.streams[key] = UpdateStream(pending, interval=self.retry)
        elif updates and is_terminal(updates[-1]["state"]):
            del self._received[key]
        return updates

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
        if self._journal is not None:
            self._journal(framework_id, task_id, {"type": "ACK", "uuid": ack_uuid})
        acknowledged = stream.updates.popleft()
        if stream.timer:
            stream.timer.cancel()
        if stream.updates:
            stream.interval = self.retry
            self._forward(key)
        else:
            del self.streams[key]
            if is_terminal(acknowledged["state"]):
                self._received.pop(key, None)

    def cleanup(self, framework_id: str) -> None:
        """Forget the framework's streams: it is being shut down, nobody is left to tell."""
        for key in [k for k in self.streams if k[0] == framework_id]:
            stream = self.streams.pop(key)
            if stream.timer:
                stream.timer.cancel()
        for key in [k for k in self._received if k[0] == framework_id]:
            del self._received[key]

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
