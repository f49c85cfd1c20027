"""The master, in the modules that Mesos's src/master/ has: master.py (the actor), agents.py,
models.py, http.py, validation.py, readonly.py, metrics.py and allocator.py (see
localmesos/README.md).

The names that other code imports are re-exported here, so `from localmesos.master import
Master` keeps working wherever each of them lives.
"""

from localmesos.link import (
    AGENT_MESSAGES,
    MASTER_MESSAGES,
    HttpLink,
    decode_link_message,
    master_link_url,
)
from localmesos.master.http import parse_call
from localmesos.master.master import Master
from localmesos.master.models import AgentRecord, Executor, Framework, MasterFlags, Offer, Task
from localmesos.master.validation import (
    BODY_OF,
    protocol_task_id_error,
    validate_framework_info,
    validate_scheduler_call,
)
from localmesos.protocol import AGENT_CAPABILITIES, MESOS_VERSION, version_json

__all__ = [
    "AGENT_CAPABILITIES",
    "AGENT_MESSAGES",
    "BODY_OF",
    "MASTER_MESSAGES",
    "MESOS_VERSION",
    "AgentRecord",
    "Executor",
    "Framework",
    "HttpLink",
    "Master",
    "MasterFlags",
    "Offer",
    "Task",
    "decode_link_message",
    "master_link_url",
    "parse_call",
    "protocol_task_id_error",
    "validate_framework_info",
    "validate_scheduler_call",
    "version_json",
]
