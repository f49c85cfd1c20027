"""An agent busy launching a burst of tasks is slow, not lost.

The agent spawns its tasks on its own thread, so its answers to the master's health checks
wait behind the launches. On a loaded laptop a spawn can take tens of milliseconds: 64 tasks
in one offer then kept the pong back past agent_timeout, and the master declared the agent
unreachable and its tasks TASK_LOST. The status updates it keeps sending show it is up.
"""

from __future__ import annotations

import time

import pytest

from localmesos import processes
from localmesos.cluster import LocalCluster
from tests.integration.localmesos_procs import Subscription

pytestmark = pytest.mark.integration

TASKS = 40
SPAWN_DELAY = 0.05  # what one spawn costs on a busy 2-core machine
AGENT_TIMEOUT = 1.0  # well under TASKS * SPAWN_DELAY


def test_an_agent_slow_to_spawn_a_burst_of_tasks_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawn = processes.Launcher.spawn

    def slow_spawn(self: processes.Launcher, *args: object, **kwargs: object) -> object:
        time.sleep(SPAWN_DELAY)
        return spawn(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(processes.Launcher, "spawn", slow_spawn)
    with LocalCluster(agents=1, agent_timeout=AGENT_TIMEOUT) as cluster:
        subscription = Subscription(cluster.master, timeout=30)
        try:
            offer = subscription.wait_for("OFFERS")["offers"]["offers"][0]
            tasks = [
                {
                    "name": f"t{i}",
                    "task_id": {"value": f"t{i}"},
                    "agent_id": offer["agent_id"],
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                    ],
                    "command": {"value": "true"},
                }
                for i in range(TASKS)
            ]
            launch = {"type": "LAUNCH", "launch": {"task_infos": tasks}}
            subscription.call("ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [launch]})
            finished: set[str] = set()
            while len(finished) < TASKS:
                status = subscription.wait_for("UPDATE", timeout=30)["update"]["status"]
                assert status["state"] not in ("TASK_LOST", "TASK_FAILED", "TASK_ERROR"), status
                if status["state"] == "TASK_FINISHED":
                    finished.add(status["task_id"]["value"])
            assert cluster.state()["unreachable_slaves"] == 0
        finally:
            subscription.close()
