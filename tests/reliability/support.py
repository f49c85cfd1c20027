"""What the reliability tests share: a raw-HTTP scheduler that runs one command task at a time,
and reads of an agent's endpoints. Nothing here waits on a clock except through a timeout."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from localmesos.cluster import LocalCluster
from tests.integration.localmesos_procs import Subscription

TIMEOUT = 30.0


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def agent_state(cluster: LocalCluster, agent_id: str) -> dict:
    status, body = get(cluster.agent_url(agent_id) + "/state")
    assert status == 200, (status, body)
    return json.loads(body)


def browse(cluster: LocalCluster, agent_id: str, path: str) -> int:
    query = urllib.parse.urlencode({"path": path})
    return get(f"{cluster.agent_url(agent_id)}/files/browse?{query}")[0]


def run_task(
    subscription: Subscription, task_id: str, command: str, *, until: str = "TASK_FINISHED"
) -> dict:
    """Launch one command task on the next offer and return its first terminal update, or its
    ``until`` update. Every update is acknowledged, and every other offer declined at once
    (refusing nothing), so that the framework never sits on resources."""
    launched = False
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        event = subscription.next_event()
        if event["type"] == "OFFERS":
            offers = event["offers"]["offers"]
            if not launched:
                subscription.launch(offers.pop(0), task_id, command)
                launched = True
            if offers:
                decline(subscription, offers)
        elif event["type"] == "UPDATE":
            status = event["update"]["status"]
            subscription.acknowledge(status)
            if status["task_id"]["value"] != task_id:
                continue
            if status["state"] == until or status["state"] not in RUNNING:
                return status
    raise TimeoutError(f"task {task_id} did not end within {TIMEOUT} s")


RUNNING = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")


def decline(subscription: Subscription, offers: list[dict]) -> None:
    code = subscription.call(
        "DECLINE",
        decline={"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}},
    )
    assert code == 202, code


def sandboxes(agent_state: dict) -> list[Path]:
    """The directory of every executor, running or completed, that the agent's /state lists."""
    frameworks = agent_state["frameworks"] + agent_state["completed_frameworks"]
    executors = [e for f in frameworks for e in f["executors"] + f["completed_executors"]]
    return [Path(e["directory"]) for e in executors]
