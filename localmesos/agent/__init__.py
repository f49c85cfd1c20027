"""The agent, in the modules that Mesos's src/slave/ has: slave.py (the actor),
command_tasks.py and command_executor.py, executors.py, http.py, files.py, status_updates.py,
containerizer.py, checkpoint.py and recovery.py (see localmesos/README.md).

The names that other code imports are re-exported here, so `from localmesos.agent import
Agent` keeps working wherever each of them lives.
"""

from localmesos.agent.command_executor import KILL_GRACE
from localmesos.agent.containerizer import SHUTDOWN_GRACE
from localmesos.agent.executors import EXECUTOR_REGISTRATION_TIMEOUT
from localmesos.agent.slave import Agent
from localmesos.agent.status_updates import STATUS_UPDATE_RETRY, STATUS_UPDATE_RETRY_MAX

__all__ = [
    "EXECUTOR_REGISTRATION_TIMEOUT",
    "KILL_GRACE",
    "SHUTDOWN_GRACE",
    "STATUS_UPDATE_RETRY",
    "STATUS_UPDATE_RETRY_MAX",
    "Agent",
]
