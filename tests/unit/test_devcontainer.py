"""`.devcontainer/devcontainer.json`, checked statically: this machine has no Docker engine, so
the container is never built here. The schema is the specification's; the rest is what the
workshop needs from it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import json5
import pytest

from tests.conftest import ROOT
from tools.suites import devcontainer_schema_check

DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"


@pytest.fixture(scope="module")
def config() -> dict:
    return json5.loads(DEVCONTAINER.read_text(encoding="utf-8"))


def schema_errors(path: Path) -> str | None:
    result = subprocess.run(devcontainer_schema_check(path), capture_output=True, text=True)
    return None if result.returncode == 0 else result.stdout + result.stderr


def test_the_file_follows_the_dev_container_schema() -> None:
    assert schema_errors(DEVCONTAINER) is None


def test_a_misspelt_property_fails_the_schema_check(tmp_path: Path) -> None:
    broken = tmp_path / "devcontainer.json"
    broken.write_text(DEVCONTAINER.read_text().replace('"forwardPorts"', '"forwardPort"'))
    errors = schema_errors(broken)
    assert errors is not None and "forwardPort" in errors


def test_the_image_is_pinned_by_version_and_digest(config: dict) -> None:
    image = config["image"]
    match = re.fullmatch(r"([\w./-]+):([\w.-]+)@sha256:([0-9a-f]{64})", image)
    assert match, f"{image} is not NAME:TAG@sha256:DIGEST"
    tag = match[2]
    # A full image version (3.2.6), not a moving one such as "1" or "3.12".
    assert re.match(r"\d+\.\d+\.\d+-", tag), tag


def test_it_runs_the_attendee_set_up_and_not_the_maintainer_s(config: dict) -> None:
    command = config["postCreateCommand"]
    steps = [step.strip() for step in command.split("&&")]
    assert "make setup" in steps
    assert "make check-env" in steps
    assert not any("setup-dev" in step or "make test" in step for step in steps)
    # ZooKeeper for the failover parts, from Debian; the image is bookworm, whose zookeeper
    # package is the one localmesos runs.
    assert any(step.startswith("sudo apt-get install") and "zookeeper" in step for step in steps)
    assert "bookworm" in config["image"]


def test_it_forwards_jupyter_and_the_cluster(config: dict) -> None:
    ports = set(config["forwardPorts"])
    assert {8888, 5050} <= ports
    # The ports of the real cluster's agents, as docker-compose.yml publishes them.
    assert {5051, 5052} <= ports
    # localmesos's agents take free ports: they are forwarded as they open.
    assert config["otherPortsAttributes"]["onAutoForward"] in {"silent", "notify"}
    assert config["portsAttributes"]["8888"]["label"].startswith("Jupyter")
