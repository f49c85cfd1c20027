# Generated from step3_failover/messages.py by `python -m taller generate`: the workshop's
# skeleton of step 3. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=3`.
# fingerprint: c429b895e969447c
"""What travels between the scheduler and its executors, in both directions.

To Mesos, a framework message, a task's `data` and a status update's `data` are opaque bytes;
the v1 HTTP API carries bytes in JSON as base64. Here each of them is a small JSON object, and
both sides encode and decode it with the functions below, so they cannot disagree.

Framework messages are best effort: Mesos may drop one and never says so. They carry what is
nice to have (hello, progress, acknowledgements, control). What the job needs, a chunk's
result, travels in the status update, which the agent retries until the scheduler acknowledges
it.
"""

from __future__ import annotations

import json

from pymesos import decode_data, encode_data

# Executor -> scheduler.
HELLO = "hello"  # an executor has registered with its agent: {"pid", "agent_id"}
PROGRESS = "progress"  # a task has counted one more day: {"task_id", "week", "days"}
ACK = "ack"  # the executor has applied a control message: {"of", ...}

# Scheduler -> executor.
CANCEL = "cancel"  # stop every chunk at its next day boundary
SET = "set"  # change a parameter mid-run: {"progress": true | false}


def encode(message: dict) -> str:
    """A JSON object as Mesos's JSON API carries bytes: base64."""
    return encode_data(json.dumps(message, separators=(",", ":")).encode())


def decode(data: object) -> dict:
    """The JSON object that `encode` made. Anything else raises ValueError."""
    if not isinstance(data, str | bytes):
        raise ValueError(f"expected base64 text, not {type(data).__name__}")
    message = json.loads(decode_data(data))  # binascii.Error and JSONDecodeError are ValueErrors
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, not {message!r}")
    return message
