"""Custom executors on LocalCluster: the unmodified pymesos `MesosExecutorDriver` (run as
`tests/integration/echo_executor.py`) and the unmodified pymesos scheduler driver, plus the
agent's `POST /api/v1/executor` spoken by hand where pymesos cannot show a behaviour (an
executor that never subscribes, a scheduler that never acknowledges).

What Mesos does, with its sources, is in localmesos/CONFORMANCE.md; the section headers below
name its parts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, decode_data, encode_data

from localmesos.cluster import LocalCluster
from tests.integration import raw_http as rh
from tests.integration.pymesos_harness import (
    Callback,
    Harness,
    RecordingScheduler,
    alive,
    command_task,
    framework_info,
    harness_fixture,
    only,
    scalar,
    stop_driver,
    wait_state,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NANOSECONDS = 1_000_000_000
KILLED = 9  # the raw wait(2) status of a process killed by SIGKILL
EXECUTOR_PATH = "/api/v1/executor"


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


# -- ExecutorInfos and TaskInfos ----------------------------------------------------------------


def encode(value: dict) -> str:
    return encode_data(json.dumps(value).encode())


def decode(data: str) -> dict:
    return json.loads(decode_data(data))


def echo_executor(
    executor_id: str = "echo",
    *,
    env: dict[str, str] | None = None,
    grace: float | None = None,
    name: str | None = None,
) -> dict:
    """An ExecutorInfo that runs echo_executor.py on the pymesos executor driver."""
    variables = {"PYTHONPATH": str(ROOT), **(env or {})}
    info: dict[str, Any] = {
        "executor_id": {"value": executor_id},
        "name": name or f"echo executor {executor_id}",
        "command": {
            "shell": False,
            "value": sys.executable,
            "arguments": [sys.executable, "-m", "tests.integration.echo_executor"],
            "environment": {"variables": [{"name": k, "value": v} for k, v in variables.items()]},
        },
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    }
    if grace is not None:
        info["shutdown_grace_period"] = {"nanoseconds": int(grace * NANOSECONDS)}
    return info


def quiet_executor(executor_id: str = "quiet", *, grace: float | None = None) -> dict:
    """An executor that never subscribes: a shell that writes its PID to `pid` in its sandbox,
    then becomes `sleep 30` (same PID). It never speaks to the agent, so it ends only when the
    agent kills it."""
    info: dict[str, Any] = {
        "executor_id": {"value": executor_id},
        "name": f"quiet executor {executor_id}",
        "command": {"value": "echo $$ > pid; exec sleep 30"},
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    }
    if grace is not None:
        info["shutdown_grace_period"] = {"nanoseconds": int(grace * NANOSECONDS)}
    return info


def executor_task(
    task_id: str, offer: dict, executor: dict, do: str = "finish", *, cpus: float = 0.1
) -> dict:
    """A TaskInfo for ``executor``; echo_executor.py reads what to do from its data."""
    return command_task(task_id, offer, None, cpus=cpus, executor=executor, data=encode({"do": do}))


def launch(driver: MesosSchedulerDriver, offer: dict, tasks: list[dict]) -> None:
    """LAUNCH, with what is left offered again at the next allocation (no 5 s refusal)."""
    driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 0})


def shutdown(
    driver: MesosSchedulerDriver, framework_id: str, executor_id: str, agent_id: str
) -> None:
    """The scheduler's SHUTDOWN call, which the pymesos driver has no method for."""
    driver._send(
        {
            "type": "SHUTDOWN",
            "framework_id": {"value": framework_id},
            "shutdown": {"executor_id": {"value": executor_id}, "agent_id": {"value": agent_id}},
        }
    )


# -- one agent, one framework ---------------------------------------------------------------------


def start(
    harness: Harness, framework: dict | None = None, **cluster_options: Any
) -> tuple[LocalCluster, RecordingScheduler, MesosSchedulerDriver, str, dict]:
    """A one-agent cluster and a registered pymesos framework; returns them, the framework
    ID and the first offer."""
    cluster = harness.cluster(agents=1, allocation_interval=0.1, **cluster_options)
    scheduler, driver, framework_id = harness.subscribe(cluster, framework)
    return cluster, scheduler, driver, framework_id, only(scheduler.wait_offers(1))


def agent_of(offer: dict) -> str:
    return offer["agent_id"]["value"]


def agent_address(cluster: LocalCluster, agent_id: str) -> str:
    return cluster.agent_url(agent_id).removeprefix("http://")


def agent_executors(cluster: LocalCluster, agent_id: str, framework_id: str) -> list[dict]:
    """The framework's executors in the agent's GET /state."""
    state = rh.get(agent_address(cluster, agent_id), "/state").json()
    frameworks = [f for f in state["frameworks"] if f["id"] == framework_id]
    return frameworks[0]["executors"] if frameworks else []


def agent_executor(
    cluster: LocalCluster, agent_id: str, framework_id: str, executor_id: str
) -> dict:
    """The executor's entry in the agent's /state once it is there."""
    return wait_until(
        lambda: next(
            (e for e in agent_executors(cluster, agent_id, framework_id) if e["id"] == executor_id),
            None,
        ),
        what=f"executor {executor_id} on the agent",
    )


def run_directory(
    cluster: LocalCluster, framework_id: str, agent_id: str, executor_id: str, container_id: str
) -> Path:
    """`<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>`."""
    framework = Path(cluster.work_dir, "slaves", agent_id, "frameworks", framework_id)
    return framework / "executors" / executor_id / "runs" / container_id


def pid_of(status: dict) -> int:
    return status["container_status"]["executor_pid"]


def container_of(status: dict) -> str:
    return status["container_status"]["container_id"]["value"]


def pid_file(directory: Path) -> int:
    """The PID that a quiet executor wrote in its sandbox."""
    text = wait_until(
        lambda: (directory / "pid").exists() and (directory / "pid").read_text().strip(),
        what="the quiet executor's pid file",
    )
    return int(text)


def wait_gone(pid: int, timeout: float = 5.0) -> None:
    wait_until(lambda: not alive(pid), timeout, f"process {pid} to be gone")


def log_of(directory: Path) -> list[str]:
    """What echo_executor.py logged (its stderr, in the sandbox)."""
    path = directory / "stderr"
    return path.read_text().splitlines() if path.exists() else []


def wait_logged(directory: Path, text: str) -> list[str]:
    return wait_until(
        lambda: any(text in line for line in log_of(directory)) and log_of(directory),
        what=f"{text!r} in the executor's log",
    )


def wait_lost(scheduler: RecordingScheduler, executor_id: str, since: int = 0) -> Callback:
    """The executorLost() callback (a FAILURE event) for ``executor_id``."""
    return scheduler.wait(
        lambda: next(
            (
                c
                for c in scheduler.calls("executorLost", since)
                if c.args[0] == {"value": executor_id}
            ),
            None,
        ),
        what=f"executorLost for {executor_id}",
    )


def offers_of(scheduler: RecordingScheduler, since: int, cpus: float) -> list[dict]:
    """The offers made after ``since``, once they hold ``cpus`` together (what comes back may
    come in more than one offer)."""

    def enough() -> list[dict] | None:
        offers = scheduler.offers(since)
        total = sum(
            r["scalar"]["value"] for o in offers for r in o["resources"] if r["name"] == "cpus"
        )
        return offers if total >= cpus - 1e-9 else None

    return scheduler.wait(enough, what=f"offers of {cpus} CPUs")


def used(state: dict, agent_id: str) -> dict:
    return only([s for s in state["slaves"] if s["id"] == agent_id])["used_resources"]


def wait_used(cluster: LocalCluster, agent_id: str, cpus: float, mem: float) -> dict:
    """Wait until the master's /state shows the agent using exactly that much."""
    return wait_state(
        cluster,
        lambda s: (
            abs(used(s, agent_id)["cpus"] - cpus) < 1e-9
            and abs(used(s, agent_id)["mem"] - mem) < 1e-9
        ),
    )


def framework_state(state: dict, framework_id: str) -> dict:
    return only([f for f in state["frameworks"] if f["id"] == framework_id])


def assert_from_agent(status: dict, agent_id: str, executor_id: str) -> None:
    """An update that the agent wrote itself: reliable, about the executor."""
    assert status["source"] == "SOURCE_AGENT"
    assert len(base64.b64decode(status["uuid"], validate=True)) == 16
    assert status["agent_id"] == {"value": agent_id}
    assert status["executor_id"] == {"value": executor_id}


# -- the executor API by hand -------------------------------------------------------------------


def executor_call(address: str, call: dict) -> rh.Reply:
    return rh.post_json(address, EXECUTOR_PATH, call)


def subscribe_call(framework_id: str, executor_id: str) -> dict:
    return {
        "type": "SUBSCRIBE",
        "framework_id": {"value": framework_id},
        "executor_id": {"value": executor_id},
        "subscribe": {"unacknowledged_tasks": [], "unacknowledged_updates": []},
    }


def subscribe(address: str, framework_id: str, executor_id: str) -> rh.EventStream:
    stream = rh.open_stream(address, subscribe_call(framework_id, executor_id), EXECUTOR_PATH)
    assert isinstance(stream, rh.EventStream), stream
    return stream


def new_uuid() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode()


def update_call(
    framework_id: str,
    executor_id: str,
    task_id: str,
    state: str = "TASK_RUNNING",
    changes: dict | None = None,
) -> dict:
    """An UPDATE as pymesos sends it, with ``changes`` to its status (None removes a field)."""
    fields = {
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_EXECUTOR",
        "uuid": new_uuid(),
        "timestamp": int(time.time()),
        **(changes or {}),
    }
    return {
        "type": "UPDATE",
        "framework_id": {"value": framework_id},
        "executor_id": {"value": executor_id},
        "update": {"status": {k: v for k, v in fields.items() if v is not None}},
    }


def events_within(stream: rh.EventStream, seconds: float) -> list[dict]:
    """Every event that arrives in the next ``seconds``."""
    events = []
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            stream.conn.sock.settimeout(left)
            event = stream.next_event()
            if event is None:
                break
            events.append(event)
    except TimeoutError:
        pass
    finally:
        stream.conn.sock.settimeout(rh.TIMEOUT)
    return events


def processes_in(directory: Path) -> list[int]:
    """The processes whose working directory is ``directory`` or below it (Linux /proc)."""
    root = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone, a zombie, or not ours
        if cwd == root or cwd.startswith(root + "/"):
            found.append(int(entry.name))
    return found


# -- 1. Launch: session, sandbox, environment (CONFORMANCE.md: Custom executors; Sandboxes) -----


@pytest.mark.parametrize(
    ("checkpoint", "grace", "shown_grace"),
    [(False, None, "5secs"), (True, 2.0, "2secs")],
    ids=["default", "checkpoint-and-grace"],
)
def test_executor_runs_in_its_own_session_and_sandbox_with_the_mesos_environment(
    harness: Harness, checkpoint: bool, grace: float | None, shown_grace: str
) -> None:
    cluster, scheduler, driver, framework_id, offer = start(
        harness, framework_info(checkpoint=checkpoint)
    )
    agent_id = agent_of(offer)
    executor = echo_executor(env={"GREETING": "hola, mundo"}, grace=grace)
    launch(driver, offer, [executor_task("t", offer, executor, "hold")])
    running = scheduler.wait_update("t", "TASK_RUNNING")
    pid = pid_of(running)
    directory = run_directory(cluster, framework_id, agent_id, "echo", container_of(running))

    # Its own session (pymesos ends with killpg(0)), its sandbox as working directory.
    assert os.getsid(pid) == pid != os.getsid(0)
    assert Path(os.readlink(f"/proc/{pid}/cwd")) == directory.resolve()
    assert os.readlink(directory.parent / "latest") == directory.name
    entry = agent_executor(cluster, agent_id, framework_id, "echo")
    assert entry["directory"] == str(directory)
    assert entry["container"] == directory.name

    # What the executor saw at SUBSCRIBED (echo_executor.py writes env.json then).
    env = json.loads((directory / "env.json").read_text())
    endpoint = agent_address(cluster, agent_id)
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", env["MESOS_AGENT_ENDPOINT"])  # no scheme
    assert env["MESOS_AGENT_ENDPOINT"] == endpoint
    assert env["MESOS_FRAMEWORK_ID"] == framework_id
    assert env["MESOS_EXECUTOR_ID"] == "echo"
    assert env["MESOS_DIRECTORY"] == env["MESOS_SANDBOX"] == str(directory)
    assert env["MESOS_SLAVE_ID"] == agent_id
    assert env["MESOS_SLAVE_PID"] == f"slave(1)@{endpoint}"
    assert env["MESOS_HTTP_COMMAND_EXECUTOR"] == "0"
    assert env["LIBPROCESS_PORT"] == "0"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == shown_grace
    assert env["GREETING"] == "hola, mundo"  # CommandInfo.environment
    if checkpoint:
        assert env["MESOS_CHECKPOINT"] == "1"
        assert env["MESOS_RECOVERY_TIMEOUT"] == "15mins"
        # The agent's executor_reregistration_timeout: 5 s here, Mesos's is 2 s.
        assert env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "5secs"
    else:
        assert env["MESOS_CHECKPOINT"] == "0"
        assert "MESOS_RECOVERY_TIMEOUT" not in env
        assert "MESOS_SUBSCRIPTION_BACKOFF_MAX" not in env
    assert any(f"registered on agent {agent_id}" in line for line in log_of(directory))


# -- 2. SUBSCRIBE, LAUNCH, UPDATE; one executor for many tasks; ACCEPT validation ---------------
# (CONFORMANCE.md: Custom executors and the executor API)


def test_executor_subscribes_gets_the_task_and_reports_it(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    task = executor_task("t", offer, echo_executor(), "finish")
    launch(driver, offer, [task])

    finished = scheduler.wait_update("t", "TASK_FINISHED")
    assert scheduler.states("t") == ["TASK_RUNNING", "TASK_FINISHED"]
    assert finished["data"] == task["data"]  # the executor's own data, base64 untouched
    updates = scheduler.updates("t")
    for status in updates:
        assert status["source"] == "SOURCE_EXECUTOR"
        assert status["agent_id"] == {"value": agent_id}  # added by the agent
        # slave.cpp copies TaskStatus.executor_id only from the executor's own status, and
        # pymesos sends none: on Mesos too these updates come without it.
        assert "executor_id" not in status
        assert len(base64.b64decode(status["uuid"], validate=True)) == 16
        assert "reason" not in status
    assert len({pid_of(s) for s in updates}) == 1
    assert len({container_of(s) for s in updates}) == 1
    assert updates[0]["uuid"] != updates[1]["uuid"]

    # SUBSCRIBED came first, then the queued task as LAUNCH.
    directory = run_directory(cluster, framework_id, agent_id, "echo", container_of(finished))
    lines = log_of(directory)
    registered = next(i for i, line in enumerate(lines) if "registered on agent" in line)
    launched = next(i for i, line in enumerate(lines) if "launch t: finish" in line)
    assert registered < launched


def test_tasks_with_one_executor_id_share_one_executor(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    executor = echo_executor()
    mark = scheduler.mark()
    launch(
        driver,
        offer,
        [
            executor_task("a", offer, executor, "finish"),
            executor_task("b", offer, executor, "hold"),
            executor_task("c", offer, executor, "hold"),
        ],
    )
    scheduler.wait_update("a", "TASK_FINISHED")
    scheduler.wait_update("b", "TASK_RUNNING")
    scheduler.wait_update("c", "TASK_RUNNING")
    pid = only(list({pid_of(s) for s in scheduler.updates()}))

    # One executor with the tasks, on the agent and in the master (charged once).
    entry = only(agent_executors(cluster, agent_id, framework_id))
    assert entry["id"] == "echo"
    assert sorted(t["id"] for t in entry["tasks"]) == ["b", "c"]
    assert [t["id"] for t in entry["completed_tasks"]] == ["a"]
    state = wait_used(cluster, agent_id, cpus=0.3, mem=96)  # executor + b + c
    assert [e["executor_id"] for e in framework_state(state, framework_id)["executors"]] == ["echo"]

    # The next offer names the executor, and a task for it takes every CPU offered: it fits,
    # because the running executor is not charged again (`Master::_accept`).
    offer = only(scheduler.wait_offers(1, since=mark))
    assert offer["executor_ids"] == [{"value": "echo"}]
    cpus = only([r for r in offer["resources"] if r["name"] == "cpus"])["scalar"]["value"]
    launch(driver, offer, [executor_task("d", offer, executor, "hold", cpus=cpus)])
    running = scheduler.wait_update("d", "TASK_RUNNING")
    assert pid_of(running) == pid
    assert scheduler.states("d") == ["TASK_RUNNING"]
    wait_used(cluster, agent_id, cpus=0.3 + cpus, mem=128)
    entry = only(agent_executors(cluster, agent_id, framework_id))
    assert sorted(t["id"] for t in entry["tasks"]) == ["b", "c", "d"]
    directory = Path(entry["directory"])
    assert sum("registered on agent" in line for line in log_of(directory)) == 1


def test_launch_validation_of_the_executor(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    mark = scheduler.mark()
    launch(driver, offer, [executor_task("h", offer, echo_executor(), "hold")])
    scheduler.wait_update("h", "TASK_RUNNING")
    offer = only(scheduler.wait_offers(1, since=mark))
    cpus = only([r for r in offer["resources"] if r["name"] == "cpus"])["scalar"]["value"]

    other_info = echo_executor(name="the same ID, another ExecutorInfo")
    too_big = executor_task("big", offer, echo_executor("second"), "hold", cpus=cpus)
    launch(driver, offer, [executor_task("other", offer, other_info, "hold"), too_big])

    for task_id in ("other", "big"):
        error = scheduler.wait_update(task_id, "TASK_ERROR")
        assert error["source"] == "SOURCE_MASTER"
        assert error["reason"] == "REASON_TASK_INVALID"
        assert "uuid" not in error
    other = scheduler.updates("other")[0]["message"]
    assert other.startswith(
        "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n"
    )
    # The task alone would fit; with its executor's 0.1 CPUs it does not.
    big = scheduler.updates("big")[0]["message"]
    assert "required by task and its executor is more than available" in big

    # Neither started anything: one executor, one task.
    entry = only(agent_executors(cluster, agent_id, framework_id))
    assert (entry["id"], [t["id"] for t in entry["tasks"]]) == ("echo", ["h"])
    assert scheduler.states("h") == ["TASK_RUNNING"]


# -- 3. POST /api/v1/executor by hand (CONFORMANCE.md: Custom executors) -------------------------


def test_executor_endpoint_answers_like_mesos(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("q", offer, quiet_executor())])
    entry = agent_executor(cluster, agent_id, framework_id, "quiet")
    assert [t["id"] for t in entry["queued_tasks"]] == ["q"]
    address = agent_address(cluster, agent_id)

    def post(call: dict) -> tuple[int, str]:
        reply = executor_call(address, call)
        return reply.status, reply.text

    # Who is calling.
    assert post(subscribe_call("no-such-framework", "quiet")) == (
        400,
        "Framework cannot be found",
    )
    assert post(subscribe_call(framework_id, "nobody")) == (400, "Executor cannot be found")
    assert post(update_call(framework_id, "quiet", "q")) == (403, "Executor is not subscribed")
    message = {
        "type": "MESSAGE",
        "framework_id": {"value": framework_id},
        "executor_id": {"value": "quiet"},
        "message": {"data": encode({"hi": 1})},
    }
    assert post(message) == (403, "Executor is not subscribed")

    # The call itself is checked first, even for an unknown framework.
    invalid = "Failed to validate Executor::Call: "
    of = f"from executor quiet of framework {framework_id}"
    bad_updates = [
        (
            update_call(framework_id, "quiet", "q", changes={"uuid": None}),
            "Expecting 'uuid' to be present",
        ),
        (
            update_call("no-such-framework", "quiet", "q", changes={"uuid": None}),
            "Expecting 'uuid' to be present",
        ),
        (
            update_call(framework_id, "quiet", "q", changes={"executor_id": {"value": "other"}}),
            "ExecutorID in Call: quiet does not match ExecutorID in TaskStatus: other",
        ),
        (
            update_call(framework_id, "quiet", "q", changes={"source": "SOURCE_AGENT"}),
            f"Received Call {of} with invalid source, expecting 'SOURCE_EXECUTOR'",
        ),
        (
            update_call(framework_id, "quiet", "q", changes={"source": None}),
            f"Received Call {of} with invalid source, expecting 'SOURCE_EXECUTOR'",
        ),
        (
            update_call(framework_id, "quiet", "q", "TASK_STAGING"),
            f"Received TASK_STAGING {of} which is not allowed",
        ),
        (
            {**update_call(framework_id, "quiet", "q"), "update": None},
            "Expecting 'update' to be present",
        ),
    ]
    for call, expected in bad_updates:
        assert post(call) == (400, invalid + expected), call

    # Method and content type, as on the master.
    body = json.dumps(subscribe_call(framework_id, "quiet"))
    reply = rh.request(address, "GET", EXECUTOR_PATH)
    assert reply.status == 405
    assert reply.header("Allow") == "POST"
    reply = rh.request(address, "POST", EXECUTOR_PATH, body, {"Content-Type": "text/plain"})
    assert reply.status == 415
    reply = rh.request(
        address, "POST", EXECUTOR_PATH, body, {"Content-Type": "application/json; charset=utf-8"}
    )
    assert reply.status == 415
    reply = rh.request(address, "POST", EXECUTOR_PATH, body)
    assert (reply.status, reply.text) == (400, "Expecting 'Content-Type' to be present")

    # SUBSCRIBE: a chunked RecordIO stream, SUBSCRIBED first with the IDs exactly as pymesos
    # compares them, then the queued task.
    stream = subscribe(address, framework_id, "quiet")
    try:
        head = stream.head
        assert (head.status, head.reason) == (200, "OK")
        assert head.all("Transfer-Encoding") == ["chunked"]
        assert head.all("Content-Length") == []
        assert head.all("Content-Type") == ["application/json"]
        assert head.header("Mesos-Stream-Id") is None
        subscribed = stream.next_event()
        assert subscribed is not None and subscribed["type"] == "SUBSCRIBED"
        assert not rh.whitespace_outside_strings(stream.records[0])
        body = subscribed["subscribed"]
        assert body["executor_info"]["executor_id"] == {"value": "quiet"}
        assert body["framework_info"]["id"] == {"value": framework_id}
        assert body["agent_info"]["id"] == {"value": agent_id}
        assert body["container_id"] == {"value": entry["container"]}
        launched = stream.next_event()
        assert launched is not None and launched["type"] == "LAUNCH"
        assert launched["launch"]["task"]["task_id"] == {"value": "q"}
        # Subscribed now: the same UPDATE is accepted.
        assert post(update_call(framework_id, "quiet", "q")) == (202, "")
        scheduler.wait_update("q", "TASK_RUNNING")
    finally:
        stream.close()


# -- 4. ACKNOWLEDGED comes from the agent; the update is retried to the scheduler ---------------
# (CONFORMANCE.md: Status updates and acknowledgements)


def test_agent_acknowledges_at_once_and_retries_toward_the_scheduler(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.1, status_update_retry=0.1)
    with rh.subscribe(cluster.master, rh.framework_info(name="never-acks")) as sub:
        framework_id = sub.framework_id
        offer = sub.stream.wait_for(lambda e: e["type"] == "OFFERS")["offers"]["offers"][0]
        agent_id = agent_of(offer)
        task = executor_task("q", offer, quiet_executor())
        accept = {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                "filters": {"refuse_seconds": 0},
            },
        }
        assert sub.call(accept).status == 202
        agent_executor(cluster, agent_id, framework_id, "quiet")
        address = agent_address(cluster, agent_id)

        def update_of(state: str):
            return lambda e: (
                e["type"] == "UPDATE"
                and e["update"]["status"]["task_id"] == {"value": "q"}
                and e["update"]["status"]["state"] == state
            )

        stream = subscribe(address, framework_id, "quiet")
        try:
            assert [stream.next_event()["type"] for _ in range(2)] == ["SUBSCRIBED", "LAUNCH"]
            call = update_call(framework_id, "quiet", "q", "TASK_RUNNING")
            running_uuid = call["update"]["status"]["uuid"]
            assert executor_call(address, call).status == 202
            # The agent acknowledges at once; the scheduler has acknowledged nothing.
            assert stream.next_event() == {
                "type": "ACKNOWLEDGED",
                "acknowledged": {"task_id": {"value": "q"}, "uuid": running_uuid},
            }
            # Unacknowledged, the same update comes again and again.
            copies = [sub.stream.wait_for(update_of("TASK_RUNNING")) for _ in range(3)]
            statuses = [c["update"]["status"] for c in copies]
            assert all(s == statuses[0] for s in statuses)
            assert statuses[0]["uuid"] == running_uuid
            assert statuses[0]["agent_id"] == {"value": agent_id}

            # TASK_FINISHED is acknowledged to the executor too, but held back from the
            # scheduler until TASK_RUNNING is acknowledged.
            call = update_call(framework_id, "quiet", "q", "TASK_FINISHED")
            finished_uuid = call["update"]["status"]["uuid"]
            assert executor_call(address, call).status == 202
            assert stream.next_event() == {
                "type": "ACKNOWLEDGED",
                "acknowledged": {"task_id": {"value": "q"}, "uuid": finished_uuid},
            }
            held = sub.stream.wait_for(lambda e: e["type"] == "UPDATE")
            assert held["update"]["status"] == statuses[0]  # TASK_RUNNING again, not FINISHED
            assert sub.acknowledge(statuses[0]).status == 202
            finished = sub.stream.wait_for(update_of("TASK_FINISHED"))["update"]["status"]
            assert finished["uuid"] == finished_uuid
            assert sub.acknowledge(finished).status == 202
        finally:
            stream.close()

        # Acknowledged: no more copies (one already on its way may still come).
        wait_state(
            cluster,
            lambda s: (
                [t["id"] for t in framework_state(s, framework_id)["completed_tasks"]] == ["q"]
            ),
        )
        late = [e for e in events_within(sub.stream, 0.8) if e["type"] == "UPDATE"]
        assert len(late) <= 1, late


# -- 5. Framework messages (CONFORMANCE.md: Scheduler calls and events) -------------------------


def test_framework_messages_go_both_ways_with_their_base64_intact(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    agent = {"value": agent_id}
    launch(
        driver,
        offer,
        [
            executor_task("h", offer, echo_executor(), "hold"),
            executor_task("q", offer, quiet_executor()),
        ],
    )
    scheduler.wait_update("h", "TASK_RUNNING")
    agent_executor(cluster, agent_id, framework_id, "quiet")

    value = {"text": "??>>~"}
    data = encode(value)
    assert "+" in data and "/" in data and data.endswith("=")
    driver.sendFrameworkMessage({"value": "echo"}, agent, data)
    call = scheduler.wait(lambda: scheduler.calls("frameworkMessage"), what="the echo")[0]
    executor_id, from_agent, reply = call.args
    assert (executor_id, from_agent) == ({"value": "echo"}, agent)
    # The executor got the scheduler's text, and the scheduler gets the executor's, unchanged.
    assert reply == encode({"echo": value, "data": data})

    # To an executor that does not exist, or that has not subscribed: dropped, no error, and
    # not kept for later either.
    driver.sendFrameworkMessage({"value": "nobody"}, agent, encode({"lost": 1}))
    driver.sendFrameworkMessage({"value": "quiet"}, agent, encode({"lost": 2}))
    stream = subscribe(agent_address(cluster, agent_id), framework_id, "quiet")
    try:
        assert [stream.next_event()["type"] for _ in range(2)] == ["SUBSCRIBED", "LAUNCH"]
        driver.sendFrameworkMessage({"value": "quiet"}, agent, encode({"kept": 3}))
        assert stream.next_event() == {"type": "MESSAGE", "message": {"data": encode({"kept": 3})}}
    finally:
        stream.close()
    mark = scheduler.mark()
    driver.sendFrameworkMessage({"value": "echo"}, agent, encode({"again": 4}))
    call = scheduler.wait(lambda: scheduler.calls("frameworkMessage", mark), what="the echo")[0]
    assert decode(call.args[2])["echo"] == {"again": 4}
    assert len(scheduler.calls("frameworkMessage")) == 2
    assert scheduler.errors() == []


# -- 6. KILL (CONFORMANCE.md: Custom executors) -------------------------------------------------


def test_kill_goes_to_the_executor_which_reports_killed(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    executor = echo_executor()
    launch(
        driver,
        offer,
        [executor_task("h", offer, executor, "hold"), executor_task("k", offer, executor, "hold")],
    )
    running = scheduler.wait_update("h", "TASK_RUNNING")
    scheduler.wait_update("k", "TASK_RUNNING")
    directory = run_directory(cluster, framework_id, agent_of(offer), "echo", container_of(running))

    driver.killTask({"value": "k"})
    killed = scheduler.wait_update("k", "TASK_KILLED")
    assert killed["source"] == "SOURCE_EXECUTOR"
    assert "reason" not in killed
    assert any("kill k" in line for line in log_of(directory))
    # The executor and its other task live on.
    assert alive(pid_of(running))
    assert scheduler.states("h") == ["TASK_RUNNING"]
    assert scheduler.calls("executorLost") == []


def test_kill_before_delivery_is_answered_by_the_agent(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("q", offer, quiet_executor(grace=0.5))])
    agent_executor(cluster, agent_id, framework_id, "quiet")

    driver.killTask({"value": "q"})
    killed = scheduler.wait_update("q", "TASK_KILLED")
    assert_from_agent(killed, agent_id, "quiet")
    assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
    assert killed["message"] == "Killed before delivery to the executor"
    assert scheduler.states("q") == ["TASK_KILLED"]
    pid = pid_of(killed)
    assert alive(pid)  # slave.cpp leaves it be until it subscribes or times out

    # Left with nothing to run, the executor gets SHUTDOWN instead of SUBSCRIBED when it
    # subscribes, and is killed once its grace period is over.
    stream = subscribe(agent_address(cluster, agent_id), framework_id, "quiet")
    try:
        assert list(stream.events()) == [{"type": "SHUTDOWN"}]
    finally:
        stream.close()
    lost = wait_lost(scheduler, "quiet")
    assert lost.args == ({"value": "quiet"}, {"value": agent_id}, KILLED)
    wait_gone(pid)


# -- 7. SHUTDOWN (CONFORMANCE.md: Custom executors) ---------------------------------------------


def test_shutdown_call_ends_the_executor_and_fails_its_tasks(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    launch(driver, offer, [executor_task("h", offer, echo_executor(), "hold")])
    running = scheduler.wait_update("h", "TASK_RUNNING")
    pid = pid_of(running)
    directory = run_directory(cluster, framework_id, agent_id, "echo", container_of(running))

    shutdown(driver, framework_id, "echo", agent_id)
    lost = wait_lost(scheduler, "echo")
    # pymesos stops by itself, well within the 5 s grace period: a clean exit, status 0.
    assert lost.args == ({"value": "echo"}, {"value": agent_id}, 0)
    assert any(line.endswith("shutdown") for line in log_of(directory))
    failed = scheduler.wait_update("h", "TASK_FAILED")
    assert_from_agent(failed, agent_id, "echo")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["message"] == "Executor terminated"
    wait_gone(pid)
    wait_used(cluster, agent_id, cpus=0, mem=0)


def test_executor_that_ignores_shutdown_is_killed_after_its_grace_period(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    # MESOS_LOCAL keeps pymesos from killing itself; its shutdown() callback never returns.
    stubborn = echo_executor(
        "stubborn", env={"MESOS_LOCAL": "1", "ECHO_IGNORE_SHUTDOWN": "1"}, grace=0.5
    )
    launch(driver, offer, [executor_task("h", offer, stubborn, "hold")])
    running = scheduler.wait_update("h", "TASK_RUNNING")
    pid = pid_of(running)
    directory = run_directory(cluster, framework_id, agent_id, "stubborn", container_of(running))

    sent = time.monotonic()
    shutdown(driver, framework_id, "stubborn", agent_id)
    wait_logged(directory, "shutdown")
    lost = wait_lost(scheduler, "stubborn")
    assert lost.args == ({"value": "stubborn"}, {"value": agent_id}, KILLED)
    assert 0.5 <= lost.time - sent < 5
    wait_gone(pid)
    failed = scheduler.wait_update("h", "TASK_FAILED")
    assert_from_agent(failed, agent_id, "stubborn")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"


# -- 8. Registration timeout (CONFORMANCE.md: Custom executors) ---------------------------------


def test_executor_that_never_subscribes_meets_the_registration_timeout(harness: Harness) -> None:
    cluster, scheduler, driver, _, offer = start(harness, executor_registration_timeout=0.5)
    agent_id = agent_of(offer)
    launched = time.monotonic()
    launch(driver, offer, [executor_task("q", offer, quiet_executor())])

    failed = scheduler.wait_update("q", "TASK_FAILED")
    assert time.monotonic() - launched >= 0.5
    assert_from_agent(failed, agent_id, "quiet")
    assert failed["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
    assert failed["message"] == "Executor did not register within 500ms"
    assert scheduler.states("q") == ["TASK_FAILED"]
    lost = wait_lost(scheduler, "quiet")
    assert lost.args == ({"value": "quiet"}, {"value": agent_id}, KILLED)
    wait_gone(pid_of(failed))
    wait_used(cluster, agent_id, cpus=0, mem=0)


# -- 9. Executor death (CONFORMANCE.md: Custom executors) ---------------------------------------


def test_executor_death_fails_its_tasks_and_reports_the_wait_status(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    executor = echo_executor()
    mark = scheduler.mark()
    launch(driver, offer, [executor_task("h1", offer, executor, "hold")])
    first = scheduler.wait_update("h1", "TASK_RUNNING")
    wait_used(cluster, agent_id, cpus=0.2, mem=64)
    rest = only(scheduler.wait_offers(1, since=mark))  # what h1 and its executor left
    assert rest["executor_ids"] == [{"value": "echo"}]

    mark = scheduler.mark()
    cluster.kill_executor(framework_id, "echo")
    failed = scheduler.wait_update("h1", "TASK_FAILED")
    assert_from_agent(failed, agent_id, "echo")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["message"] == "Executor terminated"
    lost = wait_lost(scheduler, "echo")
    assert lost.args == ({"value": "echo"}, {"value": agent_id}, KILLED)
    wait_gone(pid_of(first))
    # Its resources come back, and offers no longer name it.
    wait_used(cluster, agent_id, cpus=0, mem=0)
    offers = offers_of(scheduler, mark, cpus=0.2)  # what h1 and its executor held
    assert offers[-1]["executor_ids"] == []

    # The same executor ID again: a new process in a new container.
    driver.launchTasks(
        [o["id"] for o in offers],
        [executor_task("h2", offers[0], executor, "hold")],
        filters={"refuse_seconds": 0},
    )
    second = scheduler.wait_update("h2", "TASK_RUNNING")
    assert pid_of(second) != pid_of(first)
    assert container_of(second) != container_of(first)
    runs = run_directory(cluster, framework_id, agent_id, "echo", container_of(second)).parent
    assert os.readlink(runs / "latest") == container_of(second)
    assert (runs / container_of(first)).is_dir()

    # An exit with status 3 is reported as the raw wait status 3 << 8.
    mark = scheduler.mark()
    driver.sendFrameworkMessage({"value": "echo"}, {"value": agent_id}, encode({"exit": 3}))
    lost = wait_lost(scheduler, "echo", since=mark)
    assert lost.args == ({"value": "echo"}, {"value": agent_id}, 768)
    failed = scheduler.wait_update("h2", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    wait_used(cluster, agent_id, cpus=0, mem=0)


# -- 10. TEARDOWN (CONFORMANCE.md: Frameworks) --------------------------------------------------


def test_teardown_ends_every_executor_and_no_failure_follows(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    agent_id = agent_of(offer)
    echo = echo_executor()
    launch(
        driver,
        offer,
        [
            executor_task("h1", offer, echo, "hold"),
            executor_task("h2", offer, echo, "hold"),
            executor_task("q", offer, quiet_executor(grace=1.0)),
            command_task("cmd", offer, "sleep 100"),
        ],
    )
    echo_pid = pid_of(scheduler.wait_update("h1", "TASK_RUNNING"))
    scheduler.wait_update("h2", "TASK_RUNNING")
    command_pid = pid_of(scheduler.wait_update("cmd", "TASK_RUNNING"))
    quiet_pid = pid_file(
        Path(agent_executor(cluster, agent_id, framework_id, "quiet")["directory"])
    )
    framework_dir = Path(cluster.work_dir, "slaves", agent_id, "frameworks", framework_id)
    assert set(processes_in(framework_dir)) >= {echo_pid, command_pid, quiet_pid}

    stop_driver(driver)  # TEARDOWN
    # The master forgets the framework's executors at once, before they are gone (the quiet
    # one lives on for its 1 s grace period).
    assert used(cluster.state(), agent_id) == {"cpus": 0, "gpus": 0, "mem": 0, "disk": 0}
    for pid in (echo_pid, command_pid, quiet_pid):
        wait_gone(pid)
    wait_until(lambda: not processes_in(framework_dir), what="no process left in the sandboxes")
    state = wait_state(
        cluster, lambda s: any(f["id"] == framework_id for f in s["completed_frameworks"])
    )
    assert state["frameworks"] == []
    assert scheduler.calls("executorLost") == []
    # Every resource came back exactly once: a new framework is offered the whole agent.
    wait_used(cluster, agent_id, cpus=0, mem=0)
    other, _, _ = harness.subscribe(cluster, framework_info("after-teardown"))
    offered = only(other.wait_offers(1))
    amounts = {r["name"]: r.get("scalar", {}).get("value") for r in offered["resources"]}
    assert (amounts["cpus"], amounts["mem"]) == (2.0, 2048.0)
    assert offered["executor_ids"] == []


# -- 11. Command tasks are unchanged (CONFORMANCE.md: Command tasks) ----------------------------


def test_command_task_has_no_custom_executor_and_no_failure(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer = start(harness)
    mark = scheduler.mark()
    launch(driver, offer, [command_task("c", offer, "sleep 100"), command_task("d", offer, "true")])
    running = scheduler.wait_update("c", "TASK_RUNNING")
    finished = scheduler.wait_update("d", "TASK_FINISHED")
    assert scheduler.states("d") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert finished["source"] == "SOURCE_EXECUTOR"
    assert finished["executor_id"] == {"value": "d"}  # the command executor's ID is the task's
    assert finished["message"] == "Command exited with status 0"
    assert os.getsid(pid_of(running)) != os.getsid(0)

    # The master tracks no executor for them, and offers name none.
    state = cluster.state()
    assert framework_state(state, framework_id)["executors"] == []
    assert only(scheduler.wait_offers(1, since=mark))["executor_ids"] == []
    # A FAILURE for "d" would have come before the answer to this reconciliation.
    reconciled = scheduler.mark()
    driver.reconcileTasks([{"task_id": {"value": "c"}}])
    scheduler.wait_update("c", "TASK_RUNNING", since=reconciled)
    assert scheduler.calls("executorLost") == []
