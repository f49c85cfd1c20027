"""The pieces of the agent's launch path that need no cluster: the command executor's name and
grace periods (`Slave::getExecutorInfo`, launcher/executor.cpp), stout's process trees and how
they are printed, what the containerizer refuses, and commands as argv."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from localmesos.agent import command_executor as cmd
from localmesos.agent.containerizer import command_argv, refuse_container, wait_status


def task(command: dict | None, **fields: object) -> dict:
    info: dict = {"task_id": {"value": "t1"}, **fields}
    if command is not None:
        info["command"] = command
    return info


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ({"value": "sleep 100"}, "(Command: sh -c 'sleep 100')"),
        ({"value": "123456789012345"}, "(Command: sh -c '123456789012345')"),
        ({"value": "1234567890123456"}, "(Command: sh -c '123456789012...')"),
        ({}, "(Command: NO COMMAND)"),
        ({"shell": False}, "(Command: NO EXECUTABLE)"),
        ({"shell": False, "value": "/bin/true"}, "(Command: [/bin/true, ])"),
        ({"shell": False, "value": "ls", "arguments": ["ls", "-l"]}, "(Command: [ls, ls, -l])"),
        (
            {"shell": False, "value": "/usr/bin/python3", "arguments": ["python3"]},
            "(Command: [/usr/bin/pyt...])",
        ),
    ],
)
def test_the_executor_name_shows_the_command_cut_to_12_characters(command: dict, name: str) -> None:
    assert cmd.executor_name(task(command)) == f"Command Executor (Task: t1) {name}"


def test_grace_periods() -> None:
    policy = {"grace_period": {"nanoseconds": 500_000_000}}
    other = {"grace_period": {"nanoseconds": 7_000_000_000}}
    # The KILL's own policy, else the task's, else 3 s.
    assert cmd.kill_grace(None, task({})) == 3.0
    assert cmd.kill_grace(None, task({}, kill_policy=policy)) == 0.5
    assert cmd.kill_grace(other, task({}, kill_policy=policy)) == 7.0
    assert cmd.kill_grace({}, task({}, kill_policy=policy)) == 0.5
    # Shutdown: the agent's default, or the task's kill grace plus 2 s; SHUTDOWN kills with
    # 2 s less.
    assert cmd.shutdown_grace(task({}), 5.0) == 5.0
    assert cmd.shutdown_grace(task({}, kill_policy=policy), 5.0) == 2.5
    assert cmd.shutdown_kill_grace(5.0) == 3.0
    assert cmd.shutdown_kill_grace(2.5) == 0.5
    assert cmd.shutdown_kill_grace(1.0) == 0.0


def tree(
    pid: int, command: str, *children: cmd.ProcessTree, zombie: bool = False
) -> cmd.ProcessTree:
    return cmd.ProcessTree(cmd.Process(pid, 1, pid, pid, command, zombie), list(children))


def test_trees_are_printed_as_stout_prints_them() -> None:
    nested = tree(
        10,
        "sh -c a ",
        tree(11, "a ", tree(13, "b ")),
        tree(12, "", zombie=True),
    )
    assert cmd.format_trees([nested, tree(20, "lone ")]) == (
        "[ \n-+- 10 sh -c a \n |-+- 11 a \n | \\--- 13 b \n \\--- 12 ()\n\n--- 20 lone \n]"
    )
    assert cmd.format_trees([]) == "[ \n\n]"


def session_commands(session: int) -> list[str]:
    """The command lines of the processes in ``session``, sorted (a zombie's is empty)."""
    members = [cmd._process(pid) for pid, stat in cmd._all_stats().items() if stat[3] == session]
    return sorted("" if p.zombie else p.command for p in members if p is not None)


def test_killtree_signals_the_whole_tree_and_its_session() -> None:
    # A shell with a child, and an orphan that it left behind (its parent exited, so init
    # adopted it): the child is found by parentage, the orphan by its session.
    script = "sleep 60 & (sleep 61 &); wait"
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        # Until then the session may still hold a fork of the shell that has not yet become a
        # sleep, or the subshell as a zombie.
        settled = sorted([f"sh -c {script} ", "sleep 60 ", "sleep 61 "])
        deadline = time.monotonic() + 10
        while session_commands(process.pid) != settled and time.monotonic() < deadline:
            time.sleep(0.02)
        assert session_commands(process.pid) == settled
        trees = cmd.killtree(process.pid, signal.SIGTERM)
        assert process.wait(10) == -signal.SIGTERM
        # The orphan is a tree of its own: its parent was not visited. (Trees come in the
        # order of their roots' PIDs.)
        shell = only([t for t in trees if t.process.pid == process.pid])
        orphan = only([t for t in trees if t is not shell])
        child = only(shell.children).process.pid
        assert str(shell) == f"-+- {process.pid} sh -c {script} \n \\--- {child} sleep 60 "
        assert str(orphan) == f"--- {orphan.process.pid} sleep 61 "
        assert cmd.format_trees(trees) == "[ \n" + "\n\n".join(map(str, trees)) + "\n]"
        for pid in {p for t in trees for p in _pids(t)} - {process.pid}:
            _wait_gone(pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_killtree_of_a_process_that_is_gone_is_empty() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    assert cmd.killtree(process.pid, signal.SIGTERM) == []


def only(items: list[cmd.ProcessTree]) -> cmd.ProcessTree:
    assert len(items) == 1, items
    return items[0]


def _pids(tree: cmd.ProcessTree) -> list[int]:
    return [tree.process.pid] + [p for child in tree.children for p in _pids(child)]


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as file:
                if file.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # a zombie waiting for init: dead
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} survived the kill")


def test_the_containerizer_refuses_images_and_docker() -> None:
    assert refuse_container(None) is None
    assert refuse_container({"type": "MESOS"}) is None
    assert refuse_container({"type": "MESOS", "volumes": []}) is None
    image = {"type": "MESOS", "mesos": {"image": {"type": "APPC", "appc": {"name": "x"}}}}
    assert refuse_container(image) == (
        "REASON_CONTAINER_LAUNCH_FAILED",
        "Failed to launch container: Unsupported container image type: APPC",
    )
    assert refuse_container({"type": "DOCKER", "docker": {"image": "x"}}) == (
        "REASON_EXECUTOR_TERMINATED",
        "Abnormal executor termination: unknown container",
    )


def test_commands_as_argv(tmp_path: Path) -> None:
    assert command_argv({"value": "echo hi"}) == (["sh", "-c", "echo hi"], "/bin/sh")
    assert command_argv({"shell": False, "value": "/bin/ls", "arguments": ["ls", "-l"]}) == (
        ["ls", "-l"],
        "/bin/ls",
    )
    # A relative program that is in the working directory is run from there.
    program = tmp_path / "run-me"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    command = {"shell": False, "value": "run-me", "arguments": ["run-me"]}
    assert command_argv(command, tmp_path) == (["run-me"], str(program))
    assert command_argv({"shell": False, "value": "ls"}, tmp_path) == (["ls"], "ls")


def test_wait_statuses_are_worded_as_stout_words_them() -> None:
    assert wait_status(0) == "exited with status 0"
    assert wait_status(3 << 8) == "exited with status 3"
    assert wait_status(signal.SIGKILL) == "terminated with signal Killed"
    assert (
        wait_status(signal.SIGSEGV | 0x80)
        == "terminated with signal Segmentation fault (core dumped)"
    )
