"""Failures that the posts show, staged on an embedded cluster: `python -m tools.scenes NAME`.

Each scene starts a `LocalCluster`, runs a step as its own process (as a reader would, with
`--verbose --quiet`), breaks one thing while the job runs, and prints what the scheduler
printed. tools/outputs.py runs them for the posts, so their output comes from a real run:

- ``executor-killed`` (step 2): once tasks run on both agents, SIGKILL to the first executor
  found, as `LocalCluster.kill_executor` does;
- ``agent-partitioned`` (step 3, with `--task-cpus 0.5`): once three tasks run on the first agent,
  its network to the masters is cut for 6 s (`LocalCluster.partition_agent`); only the
  scheduler's lines about the tasks that ran there at the cut are printed, after a line that
  names them;
- ``master-killed`` (step 3, two masters under ZooKeeper): once tasks run on both agents, the
  leading master dies as a SIGKILLed process does (`LocalCluster.kill_master`).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from localmesos.cluster import LocalCluster, NoLeader
from tools import ROOT

EXECUTOR_ID = "bikeshare-executor"
PARTITION = 6.0  # s: longer than the cluster's agent_timeout (2 s), so the agent is lost
WAIT = 60.0  # s: how long a scene waits for tasks to run before it gives up
POLL = 0.05


def running_agents(cluster: LocalCluster) -> dict[str, list[str]]:
    """The running tasks of every framework, by agent ID."""
    try:
        state = cluster.state()
    except NoLeader:
        return {}
    found: dict[str, list[str]] = {}
    for framework in state["frameworks"]:
        for task in framework["tasks"]:
            if task["state"] == "TASK_RUNNING":
                found.setdefault(task["slave_id"], []).append(task["id"])
    return found


def wait_for(condition: Callable[[], object], process: subprocess.Popen) -> object:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and process.poll() is None:
        value = condition()
        if value:
            return value
        time.sleep(POLL)
    raise RuntimeError("the job ended, or ran no tasks, before the scene could break anything")


def start(package: str, cluster: LocalCluster, *options: str, **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", package, "--master", cluster.master, "--verbose", "--quiet"]
    if package == "step3_failover":
        command += ["--code-port", "0"]  # not 5070: other schedulers may run on this machine
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*command, *options], env=environment, **popen)  # type: ignore[call-overload]


def executor_killed() -> int:
    with LocalCluster(agents=2) as cluster:
        process = start("step2_executor", cluster)
        wait_for(lambda: len(running_agents(cluster)) == 2, process)
        framework_id = cluster.state()["frameworks"][0]["id"]
        cluster.kill_executor(framework_id, EXECUTOR_ID)
        return process.wait()


def agent_partitioned(state: Path) -> int:
    with LocalCluster(agents=2) as cluster:
        process = start(
            "step3_failover", cluster, "--state", str(state), "--task-cpus", "0.5",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        agent_id = cluster.agents[0]
        # An agent holds three such tasks (3 x 0.5 CPU, and the executor's 0.1, of its 2 CPUs).
        tasks = wait_for(
            lambda: (
                len(running_agents(cluster).get(agent_id, [])) >= 3
                and running_agents(cluster)[agent_id]
            ),
            process,
        )
        cluster.partition_agent(agent_id, PARTITION)
        output, _ = process.communicate()
    assert isinstance(tasks, list)
    chunks = "|".join(re.escape(task.split("-")[1]) for task in tasks)
    about = re.compile(rf"\bchunk[- ]({chunks})\b|agent {re.escape(agent_id)} was lost")
    print(f"scene: agent {agent_id} cut off for {PARTITION:.0f} s, running {', '.join(tasks)}")
    for line in output.splitlines():
        if about.search(line):
            print(line)
    return process.returncode


def master_killed(state: Path) -> int:
    with LocalCluster(agents=2, masters=2) as cluster:
        process = start("step3_failover", cluster, "--state", str(state))
        wait_for(lambda: len(running_agents(cluster)) == 2, process)
        cluster.kill_master()
        return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scenes", description=__doc__)
    parser.add_argument("scene", choices=["executor-killed", "agent-partitioned", "master-killed"])
    args = parser.parse_args(argv)
    # The cluster's own log would land among the scheduler's lines: it goes nowhere.
    logging.getLogger("localmesos").addHandler(logging.NullHandler())
    logging.getLogger("localmesos").propagate = False
    if args.scene == "executor-killed":
        return executor_killed()
    with tempfile.TemporaryDirectory(prefix="scene-state-") as directory:
        if args.scene == "agent-partitioned":
            return agent_partitioned(Path(directory))
        return master_killed(Path(directory))


if __name__ == "__main__":
    sys.exit(main())
