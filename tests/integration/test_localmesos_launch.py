"""What happens between a LAUNCH and the executor's start, with the unmodified pymesos drivers:
the fetcher brings `CommandInfo.uris` into the sandbox (src/slave/containerizer/fetcher.cpp,
src/launcher/fetcher.cpp), and the Mesos containerizer refuses containers it cannot give
(src/slave/containerizer/mesos/). CONFORMANCE.md: The fetcher; Containers refused. The fetcher's
own behaviours, one by one, are in tests/unit/test_fetcher.py.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import encode_data

from tests.integration.pymesos_harness import (
    Harness,
    command_task,
    harness_fixture,
    only,
    sandbox,
    scalar,
    wait_state,
    wait_until,
)
from tests.integration.sandbox_support import (
    FileServer,
    agent_state,
    file_server,
    glog,
    parse,
    read_sandbox,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNSUPPORTED_IMAGE = "Failed to launch container: Unsupported container image type: DOCKER"
UNKNOWN_CONTAINER = "Abnormal executor termination: unknown container"
FINISH = encode_data(json.dumps({"do": "finish"}).encode())  # what echo_executor.py should do


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fetcher honours the *_proxy variables as curl does; these tests fetch from loopback.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """What the loopback server serves: a text file, a script, a tar.gz and a zip."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "hello.txt").write_text("hello over http\n")
    (root / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")
    with tarfile.open(root / "bundle.tar.gz", "w:gz") as archive:
        add(archive, "inner/from-tar.txt", b"from the tarball\n")
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        archive.writestr("from-zip.txt", "from the zip\n")
    return root


@pytest.fixture
def server(served: Path) -> Iterator[FileServer]:
    yield from file_server(served)


def add(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def start(harness: Harness) -> tuple:
    cluster = harness.cluster(agents=1, allocation_interval=0.1)
    scheduler, driver, framework_id = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))
    return cluster, scheduler, driver, framework_id, offer, offer["agent_id"]["value"]


def with_uris(command: str, *uris: dict) -> dict:
    return {"value": command, "uris": list(uris)}


def assert_launch_failed(status: dict, task_id: str, reason: str, message: str) -> None:
    """An update that the agent wrote because the container did not start."""
    assert status["state"] == "TASK_FAILED"
    assert status["source"] == "SOURCE_AGENT"
    assert status["reason"] == reason
    assert status["message"] == message
    assert status["executor_id"] == {"value": task_id}


# -- the fetcher -----------------------------------------------------------------------------------


def test_file_and_http_uris_are_fetched_into_the_sandbox_before_the_command_runs(
    harness: Harness, server: FileServer, tmp_path: Path
) -> None:
    local = tmp_path / "local.txt"
    local.write_text("from a file uri\n")
    zip_path = tmp_path / "served" / "bundle.zip"
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    uris = [
        {"value": f"file://{local}"},
        {"value": server.url("hello.txt"), "output_file": "sub/renamed.txt"},
        {"value": server.url("tool.sh"), "executable": True},
        {"value": server.url("bundle.tar.gz")},
        {"value": str(zip_path)},
    ]
    command = (
        "cat local.txt sub/renamed.txt inner/from-tar.txt from-zip.txt && ./tool.sh && "
        "test -x tool.sh"
    )
    driver.launchTasks(offer["id"], [command_task("fetch", offer, with_uris(command, *uris))])
    scheduler.wait_update("fetch", "TASK_FINISHED")

    assert read_sandbox(cluster, agent_id, framework_id, "fetch", "stdout") == (
        "from a file uri\nhello over http\nfrom the tarball\nfrom the zip\ntool ran\n"
    )
    directory = sandbox(cluster, framework_id, agent_id, "fetch").resolve()
    assert oct((directory / "tool.sh").stat().st_mode & 0o777) == "0o755"
    # An archive stays next to what came out of it.
    assert (directory / "bundle.tar.gz").is_file()

    # The fetcher's log comes first in stderr, then the command executor's.
    lines = glog(parse(read_sandbox(cluster, agent_id, framework_id, "fetch", "stderr")))
    fetcher = [(where, text) for where, text in lines if where.startswith("fetcher.cpp")]
    assert lines[: len(fetcher)] == fetcher
    assert lines[len(fetcher)] == ("exec.cpp:164", "Version: 1.11.0")
    assert fetcher[0][1].startswith('Fetcher Info: {"cache_directory":')
    assert fetcher[1:] == [
        ("fetcher.cpp:459", f"Fetching URI 'file://{local}'"),
        ("fetcher.cpp:290", f"Fetching 'file://{local}' directly into the sandbox directory"),
        (
            "fetcher.cpp:332",
            "Copying instead of extracting resource from URI with 'extract' flag, because it "
            f"does not seem to be an archive: file://{local}",
        ),
        ("fetcher.cpp:618", f"Fetched 'file://{local}' to '{directory}/local.txt'"),
        ("fetcher.cpp:459", f"Fetching URI '{server.url('hello.txt')}'"),
        (
            "fetcher.cpp:290",
            f"Fetching '{server.url('hello.txt')}' directly into the sandbox directory",
        ),
        (
            "fetcher.cpp:175",
            f"Downloading resource from '{server.url('hello.txt')}' to "
            f"'{directory}/sub/renamed.txt'",
        ),
        (
            "fetcher.cpp:332",
            "Copying instead of extracting resource from URI with 'extract' flag, because it "
            f"does not seem to be an archive: {server.url('hello.txt')}",
        ),
        (
            "fetcher.cpp:618",
            f"Fetched '{server.url('hello.txt')}' to '{directory}/sub/renamed.txt'",
        ),
        ("fetcher.cpp:459", f"Fetching URI '{server.url('tool.sh')}'"),
        (
            "fetcher.cpp:290",
            f"Fetching '{server.url('tool.sh')}' directly into the sandbox directory",
        ),
        (
            "fetcher.cpp:175",
            f"Downloading resource from '{server.url('tool.sh')}' to '{directory}/tool.sh'",
        ),
        ("fetcher.cpp:618", f"Fetched '{server.url('tool.sh')}' to '{directory}/tool.sh'"),
        ("fetcher.cpp:459", f"Fetching URI '{server.url('bundle.tar.gz')}'"),
        (
            "fetcher.cpp:290",
            f"Fetching '{server.url('bundle.tar.gz')}' directly into the sandbox directory",
        ),
        (
            "fetcher.cpp:175",
            f"Downloading resource from '{server.url('bundle.tar.gz')}' to "
            f"'{directory}/bundle.tar.gz'",
        ),
        (
            "fetcher.cpp:618",
            f"Fetched '{server.url('bundle.tar.gz')}' to '{directory}/bundle.tar.gz'",
        ),
        ("fetcher.cpp:459", f"Fetching URI '{zip_path}'"),
        ("fetcher.cpp:290", f"Fetching '{zip_path}' directly into the sandbox directory"),
        ("fetcher.cpp:618", f"Fetched '{zip_path}' to '{directory}/bundle.zip'"),
        ("fetcher.cpp:623", f"Successfully fetched all URIs into '{directory}'"),
    ]


@pytest.mark.parametrize("suffix", ["tar", "tgz", "tar.bz2", "tar.xz", "zip"])
def test_each_archive_format_is_extracted(
    harness: Harness, server: FileServer, served: Path, suffix: str
) -> None:
    name = f"archive.{suffix}"
    if suffix == "zip":
        with zipfile.ZipFile(served / name, "w") as archive:
            archive.writestr("data/inside.txt", "inside\n")
    else:
        mode = {"tar": "w", "tgz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}[suffix]
        with tarfile.open(served / name, mode) as tar:  # type: ignore[call-overload]
            add(tar, "data/inside.txt", b"inside\n")
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    task = command_task("x", offer, with_uris("cat data/inside.txt", {"value": server.url(name)}))
    driver.launchTasks(offer["id"], [task])
    scheduler.wait_update("x", "TASK_FINISHED")
    assert read_sandbox(cluster, agent_id, framework_id, "x", "stdout") == "inside\n"


def test_a_cached_uri_is_downloaded_once_for_two_tasks(
    harness: Harness, server: FileServer
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    uri = {"value": server.url("bundle.tar.gz"), "cache": True}
    # Marked before the launch: what the first offer leaves may be offered again before the
    # first task finishes, and that offer, never answered, is the only one to come.
    mark = scheduler.mark()
    driver.launchTasks(
        offer["id"],
        [command_task("first", offer, with_uris("cat inner/from-tar.txt", uri))],
        filters={"refuse_seconds": 0},
    )
    scheduler.wait_update("first", "TASK_FINISHED")
    offer = scheduler.wait_offers(1, since=mark)[0]
    driver.launchTasks(
        offer["id"], [command_task("second", offer, with_uris("cat inner/from-tar.txt", uri))]
    )
    scheduler.wait_update("second", "TASK_FINISHED")

    assert server.gets("bundle.tar.gz") == 1
    for task_id in ("first", "second"):
        stdout = read_sandbox(cluster, agent_id, framework_id, task_id, "stdout")
        assert stdout == "from the tarball\n"
    second = glog(parse(read_sandbox(cluster, agent_id, framework_id, "second", "stderr")))
    assert ("fetcher.cpp:349", f"Fetching URI '{uri['value']}' from cache") in second
    # A cached archive is extracted from the cache: no copy of it in the sandbox.
    assert not (sandbox(cluster, framework_id, agent_id, "second") / "bundle.tar.gz").exists()


def test_a_failed_fetch_fails_the_task_and_gives_its_resources_back(
    harness: Harness, server: FileServer
) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    missing = server.url("missing.txt")
    tasks = [
        command_task("missing", offer, with_uris("touch ran", {"value": missing}), cpus=0.5),
        command_task(
            "escape",
            offer,
            with_uris("touch ran", {"value": server.url("hello.txt"), "output_file": "/etc/x"}),
        ),
    ]
    driver.launchTasks(offer["id"], tasks)
    failed = scheduler.wait_update("missing", "TASK_FAILED")
    container = failed["container_status"]["container_id"]["value"]
    assert_launch_failed(
        failed,
        "missing",
        "REASON_CONTAINER_LAUNCH_FAILED",
        "Failed to launch container: Failed to fetch all URIs for container "
        f"'{container}': exited with status 1",
    )
    # The command executor never started: no TASK_STARTING, and the command never ran.
    assert scheduler.states("missing") == ["TASK_FAILED"]
    directory = sandbox(cluster, framework_id, agent_id, "missing")
    assert not (directory / "ran").exists()
    lines = parse(read_sandbox(cluster, agent_id, framework_id, "missing", "stderr"))
    assert lines[-1].severity == "E"
    assert (lines[-1].where, lines[-1].text) == (
        "fetcher.cpp:615",
        f"EXIT with status 1: Failed to fetch '{missing}': Error downloading resource, "
        "received HTTP return code 404",
    )

    # A URI that fails validation fails before the fetcher runs.
    escape = scheduler.wait_update("escape", "TASK_FAILED")
    assert_launch_failed(
        escape,
        "escape",
        "REASON_CONTAINER_LAUNCH_FAILED",
        "Failed to launch container: Could not fetch: URI output file must be within the "
        "sandbox directory",
    )
    assert scheduler.states("escape") == ["TASK_FAILED"]

    state = wait_state(cluster, lambda s: only(s["slaves"])["used_resources"]["cpus"] == 0)
    assert only(state["slaves"])["used_resources"]["mem"] == 0


def test_a_task_killed_while_its_uris_are_fetched_is_killed_during_launch(
    harness: Harness, server: FileServer
) -> None:
    server.held.add("/hello.txt")
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    uri = {"value": server.url("hello.txt")}
    driver.launchTasks(offer["id"], [command_task("slow", offer, with_uris("touch ran", uri))])
    wait_until(lambda: server.gets("hello.txt") == 1, what="the download to start")

    driver.killTask({"value": "slow"})
    killed = scheduler.wait_update("slow", "TASK_KILLED")
    assert killed["source"] == "SOURCE_AGENT"
    assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
    assert killed["message"] == "Killed before delivery to the executor"
    assert killed["executor_id"] == {"value": "slow"}

    # The fetch ends; its outcome is ignored and the command never runs.
    server.release()
    stderr = wait_until(
        lambda: (
            "Shutting down" in (text := stderr_of(cluster, framework_id, agent_id, "slow")) and text
        ),
        what="the executor to be told to shut down",
    )
    # The executor starts, and the agent tells it to shut down (`Slave::registerExecutor`).
    executor_lines = [line for line in glog(parse(stderr)) if "fetcher.cpp" not in line[0]]
    assert executor_lines == [
        ("exec.cpp:164", "Version: 1.11.0"),
        ("exec.cpp:478", "Executor asked to shutdown"),
        ("executor.cpp:190", "Received SHUTDOWN event"),
        ("executor.cpp:843", "Shutting down"),
    ]
    assert scheduler.states("slow") == ["TASK_KILLED"]
    assert not (sandbox(cluster, framework_id, agent_id, "slow") / "ran").exists()


def stderr_of(cluster: Any, framework_id: str, agent_id: str, task_id: str) -> str:
    path = sandbox(cluster, framework_id, agent_id, task_id) / "stderr"
    return path.read_text() if path.exists() else ""


# -- a custom executor fetched from a URI ----------------------------------------------------------


def executor_info(executor_id: str, uri: str) -> dict:
    """echo_executor.py on the pymesos executor driver, shipped as a tarball: the sandbox gets
    it from ``uri`` and runs it with this interpreter."""
    return {
        "executor_id": {"value": executor_id},
        "name": "fetched echo executor",
        "command": {
            "shell": False,
            "value": sys.executable,
            "arguments": [sys.executable, "echo_executor.py"],
            "uris": [{"value": uri}],
        },
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    }


def test_a_custom_executor_fetched_from_a_uri_runs_its_tasks(
    harness: Harness, server: FileServer, served: Path
) -> None:
    with tarfile.open(served / "executor.tar.gz", "w:gz") as archive:
        archive.add(ROOT / "tests" / "integration" / "echo_executor.py", "echo_executor.py")
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    executor = executor_info("fetched", server.url("executor.tar.gz"))
    task = command_task("work", offer, None, executor=executor, data=FINISH)
    driver.launchTasks(offer["id"], [task])

    finished = scheduler.wait_update("work", "TASK_FINISHED", timeout=20)
    assert finished["source"] == "SOURCE_EXECUTOR"
    assert scheduler.states("work") == ["TASK_RUNNING", "TASK_FINISHED"]
    stderr = read_sandbox(cluster, agent_id, framework_id, "fetched", "stderr")
    lines = parse(stderr)
    assert lines[0].text.startswith("Fetcher Info: ")
    assert any(
        ln.where == "fetcher.cpp:623" and ln.text.startswith("Successfully fetched") for ln in lines
    )
    assert "INFO:echo_executor:launch work: finish" in stderr.splitlines()


def test_a_custom_executor_whose_fetch_fails_fails_its_tasks(
    harness: Harness, server: FileServer
) -> None:
    cluster, scheduler, driver, _, offer, agent_id = start(harness)
    executor = executor_info("broken", server.url("no-such-executor.tar.gz"))
    driver.launchTasks(offer["id"], [command_task("work", offer, None, executor=executor)])
    failed = scheduler.wait_update("work", "TASK_FAILED")
    # Its framework has nothing left on the agent once the update is acknowledged: it may
    # already be among the completed ones.
    state = agent_state(cluster, agent_id)
    framework = only(state["frameworks"] + state["completed_frameworks"])
    container = only(framework["completed_executors"])["container"]
    assert failed["source"] == "SOURCE_AGENT"
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["message"] == (
        "Failed to launch container: Failed to fetch all URIs for container "
        f"'{container}': exited with status 1"
    )
    lost = scheduler.wait(lambda: scheduler.calls("executorLost"), what="executorLost")
    assert only(lost).args[2] == -1  # the container never started: no wait status


# -- containers refused ----------------------------------------------------------------------------


IMAGE = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}}
DOCKER = {"type": "DOCKER", "docker": {"image": "alpine"}}


def test_a_task_asking_for_an_image_fails_to_launch(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    tasks = [
        command_task("image", offer, "touch ran", container=IMAGE),
        command_task("docker", offer, "touch ran", container=DOCKER),
        # A ContainerInfo without an image runs on the host, as before.
        command_task("plain", offer, "touch ran", container={"type": "MESOS"}),
    ]
    driver.launchTasks(offer["id"], tasks)
    image = scheduler.wait_update("image", "TASK_FAILED")
    assert_launch_failed(image, "image", "REASON_CONTAINER_LAUNCH_FAILED", UNSUPPORTED_IMAGE)
    docker = scheduler.wait_update("docker", "TASK_FAILED")
    assert_launch_failed(docker, "docker", "REASON_EXECUTOR_TERMINATED", UNKNOWN_CONTAINER)
    scheduler.wait_update("plain", "TASK_FINISHED")
    for task_id in ("image", "docker"):
        assert scheduler.states(task_id) == ["TASK_FAILED"]
        assert not (sandbox(cluster, framework_id, agent_id, task_id) / "ran").exists()
    assert (sandbox(cluster, framework_id, agent_id, "plain") / "ran").exists()
    assert scheduler.calls("executorLost") == []  # command executors end quietly


def test_an_executor_asking_for_an_image_fails_its_tasks(harness: Harness) -> None:
    cluster, scheduler, driver, framework_id, offer, agent_id = start(harness)
    quiet = {
        "executor_id": {"value": "imaged"},
        "command": {"value": "touch ran; sleep 30"},
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
        "container": IMAGE,
    }
    driver.launchTasks(offer["id"], [command_task("work", offer, None, executor=quiet)])
    failed = scheduler.wait_update("work", "TASK_FAILED")
    assert failed["source"] == "SOURCE_AGENT"
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["message"] == UNSUPPORTED_IMAGE
    assert failed["executor_id"] == {"value": "imaged"}
    lost = scheduler.wait(lambda: scheduler.calls("executorLost"), what="executorLost")
    assert only(lost).args[2] == -1
    directory = Path(cluster.work_dir, "slaves", agent_id, "frameworks", framework_id)
    assert not (directory / "executors" / "imaged" / "runs" / "latest" / "ran").exists()


def test_a_docker_container_without_docker_info_is_an_invalid_task(harness: Harness) -> None:
    _, scheduler, driver, _, offer, _ = start(harness)
    driver.launchTasks(
        offer["id"], [command_task("bad", offer, "true", container={"type": "DOCKER"})]
    )
    error = scheduler.wait_update("bad", "TASK_ERROR")
    assert error["reason"] == "REASON_TASK_INVALID"
    assert error["message"] == (
        "Task's `ContainerInfo` is invalid: DockerInfo 'docker' is not set for DOCKER typed "
        "ContainerInfo"
    )
