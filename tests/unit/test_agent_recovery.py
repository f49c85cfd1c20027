"""The pieces of agent death and recovery that need no cluster: status update streams replayed
from their records and duplicates dropped (src/slave/task_status_update_manager.cpp), the meta
directory read back (src/slave/state.cpp), processes adopted by their pid and start time, and a
fetch that its agent's death stops."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from localmesos.actors import Timer
from localmesos.agent.checkpoint import append_record, read_state, write_json, write_text
from localmesos.agent.status_updates import StatusUpdateManager
from localmesos.fetcher import Fetcher, FetchError
from localmesos.processes import Launcher, start_time
from tests.unit.test_fetcher import Server


class FakeActor:
    def after(self, seconds: float, fn: Any, *args: Any) -> Timer:
        return Timer(seconds)


def status(state: str, uuid: str) -> dict:
    return {"task_id": {"value": "t"}, "state": state, "uuid": uuid}


def manager(sent: list, connected: bool = True) -> tuple[StatusUpdateManager, list]:
    journal: list = []
    updates = StatusUpdateManager(
        FakeActor(),  # type: ignore[arg-type]
        lambda framework_id, update, latest: connected and sent.append(update["uuid"]) is None,
        journal=lambda framework_id, task_id, record: journal.append(record),
    )
    return updates, journal


def test_a_replayed_stream_keeps_what_was_not_acknowledged_and_sends_it_on_resume() -> None:
    sent: list = []
    updates, _ = manager(sent)
    records = [
        {"type": "UPDATE", "update": status("TASK_STARTING", "a")},
        {"type": "UPDATE", "update": status("TASK_RUNNING", "b")},
        {"type": "ACK", "uuid": "a"},
        {"type": "UPDATE", "update": status("TASK_FINISHED", "c")},
    ]
    replayed = updates.recover("f", "t", records)
    assert [u["uuid"] for u in replayed] == ["a", "b", "c"]
    assert updates.pending("f", "t")["uuid"] == "b"
    assert sent == []  # paused until the agent has (re)registered
    updates.resume()
    assert sent == ["b"]


def test_a_duplicate_update_is_dropped_acknowledged_or_not() -> None:
    sent: list = []
    updates, journal = manager(sent)
    assert updates.update("f", status("TASK_RUNNING", "a")) is True
    assert updates.update("f", status("TASK_RUNNING", "a")) is False  # still pending
    updates.acknowledgement("f", "t", "a")
    assert updates.update("f", status("TASK_RUNNING", "a")) is False  # already acknowledged
    assert sent == ["a"]
    assert journal == [
        {"type": "UPDATE", "update": status("TASK_RUNNING", "a")},
        {"type": "ACK", "uuid": "a"},
    ]
    # Once the terminal update is acknowledged the stream is over, and forgotten.
    assert updates.update("f", status("TASK_FINISHED", "b")) is True
    updates.acknowledgement("f", "t", "b")
    assert updates.update("f", status("TASK_RUNNING", "a")) is True


def test_the_meta_directory_is_read_back_and_a_torn_last_record_is_dropped(
    tmp_path: Path,
) -> None:
    meta = tmp_path / "meta"
    agent = meta / "slaves" / "S0"
    write_json(agent / "slave.info", {"id": {"value": "S0"}})
    write_text(meta / "boot_id", Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    framework = agent / "frameworks" / "F"
    write_json(framework / "framework.info", {"id": {"value": "F"}, "checkpoint": True})
    executor = framework / "executors" / "E"
    write_json(executor / "executor.info", {"executor_id": {"value": "E"}})
    write_text(executor / "executor_generated_for_command_task", "0")
    run = executor / "runs" / "C"
    (executor / "runs" / "latest").parent.mkdir(parents=True, exist_ok=True)
    (executor / "runs" / "latest").symlink_to("C")
    write_text(run / "pids" / "forked.pid", "4242")
    write_text(run / "pids" / "forked.starttime", "99")
    task = run / "tasks" / "T"
    write_json(task / "task.info", {"task_id": {"value": "T"}, "state": "TASK_STAGING"})
    append_record(task / "task.updates", {"type": "UPDATE", "update": status("TASK_RUNNING", "a")})
    with open(task / "task.updates", "a") as file:
        file.write('{"type": "ACK", "uu')  # the agent died in the middle of this write
    # A framework whose info cannot be read is skipped and counted (Mesos's --strict=false).
    (agent / "frameworks" / "G").mkdir()

    state = read_state(tmp_path, "S0")
    assert state is not None
    assert state.info == {"id": {"value": "S0"}}
    assert not state.rebooted
    assert state.errors == 1
    (recovered,) = state.frameworks
    (executor_state,) = recovered.executors
    assert executor_state.generated is False
    assert executor_state.run is not None
    assert (executor_state.run.container_id, executor_state.run.pid) == ("C", 4242)
    assert executor_state.run.start == 99
    (task_state,) = executor_state.run.tasks
    assert task_state.info == {"task_id": {"value": "T"}}
    assert task_state.records == [{"type": "UPDATE", "update": status("TASK_RUNNING", "a")}]
    assert read_state(tmp_path, "S1") is None  # never registered: nothing to recover


def test_after_a_reboot_the_checkpointed_pids_mean_nothing(tmp_path: Path) -> None:
    agent = tmp_path / "meta" / "slaves" / "S0"
    write_json(agent / "slave.info", {"id": {"value": "S0"}})
    write_text(tmp_path / "meta" / "boot_id", "another boot")
    executor = agent / "frameworks" / "F" / "executors" / "E"
    write_json(agent / "frameworks" / "F" / "framework.info", {"id": {"value": "F"}})
    write_json(executor / "executor.info", {"executor_id": {"value": "E"}})
    write_text(executor / "runs" / "C" / "pids" / "forked.pid", "4242")
    (executor / "runs" / "latest").symlink_to("C")
    state = read_state(tmp_path, "S0")
    assert state is not None and state.rebooted
    assert state.frameworks[0].executors[0].run.pid is None  # type: ignore[union-attr]


@pytest.fixture
def launcher() -> Any:
    launcher = Launcher()
    yield launcher
    launcher.close()


def test_a_process_is_adopted_only_if_it_is_the_one_that_started_then(
    launcher: Launcher, tmp_path: Path
) -> None:
    process = launcher.spawn(
        [sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path, env={}
    )
    reaped = threading.Thread(target=launcher.reap, args=(process,), daemon=True)
    reaped.start()
    started = start_time(process.pid)
    assert started is not None
    assert launcher.adopt(process.pid, started + 1) is None  # another process with that pid
    adopted = launcher.adopt(process.pid, started)
    assert adopted is not None and adopted.pid == process.pid
    assert not adopted.ended()
    launcher.kill_group(process.pid)
    assert adopted.wait() == signal.SIGKILL  # the raw wait status, as the reaper saw it
    assert adopted.ended()
    # Ended, it can still be adopted, with its end known.
    again = launcher.adopt(process.pid, started)
    assert again is not None and again.wait() == signal.SIGKILL
    # Reaped, its group is not the launcher's to signal any more.
    launcher.kill_group(process.pid)


def test_a_task_updates_file_holds_one_json_record_per_line(tmp_path: Path) -> None:
    path = tmp_path / "task.updates"
    append_record(path, {"type": "ACK", "uuid": "a"})
    append_record(path, {"type": "ACK", "uuid": "b"})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"type": "ACK", "uuid": "a"},
        {"type": "ACK", "uuid": "b"},
    ]


def test_a_fetch_stops_between_two_reads_when_its_agent_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Agent.exit` and `crash` stop their fetcher: a download under way writes nothing more
    and logs nothing more (neither `Fetched` nor a failure), and no later fetch starts."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the server is on loopback
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    started, release = threading.Event(), threading.Event()

    def slow(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "10")
        handler.end_headers()
        handler.wfile.write(b"12345")
        handler.wfile.flush()
        started.set()
        release.wait(10)
        handler.wfile.write(b"67890")

    server = Server()
    server.routes["/slow.txt"] = slow
    fetcher = Fetcher(tmp_path / "cache")
    outcome: list[BaseException | None] = []

    def fetch() -> None:
        try:
            fetcher.fetch("c1", {"uris": [{"value": server.url("/slow.txt")}]}, sandbox)
        except FetchError as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=fetch, daemon=True)
    try:
        thread.start()
        assert started.wait(10)
        fetcher.stop()
        release.set()
        thread.join(10)
    finally:
        release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
    assert [str(error) for error in outcome] == ["The fetcher was stopped"]
    # Stopped as the response came (nothing opened) or at its first read (nothing written).
    downloaded = sandbox / "slow.txt"
    assert not downloaded.exists() or downloaded.read_bytes() == b""
    stderr = (sandbox / "stderr").read_text()
    assert "Downloading resource from" in stderr
    assert "Fetched" not in stderr and "EXIT" not in stderr
    with pytest.raises(FetchError, match="The fetcher was stopped"):
        fetcher.fetch("c2", {"uris": [{"value": server.url("/slow.txt")}]}, sandbox)
