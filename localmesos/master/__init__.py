"""The master, in the modules that Mesos's src/master/ has (see localmesos/README.md).

The names that other code imports are re-exported here, so `from localmesos.master import
Master` keeps working wherever each of them lives.
"""

from localmesos.master.master import (
    AGENT_CAPABILITIES,
    AGENT_MESSAGES,
    BODY_OF,
    MASTER_MESSAGES,
    MESOS_VERSION,
    AgentRecord,
    Executor,
    Framework,
    HttpLink,
    Master,
    MasterFlags,
    Offer,
    Task,
    decode_link_message,
    master_link_url,
    parse_call,
    protocol_task_id_error,
    validate_framework_info,
    validate_scheduler_call,
    version_json,
)

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
