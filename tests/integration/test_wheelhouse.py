"""`make wheelhouse` and `make setup WHEELS=DIR`: the attendee set-up from a folder of wheels,
with no index at all. The folder is built for this machine's platform only (that part may use
the network); the install runs with pip's configuration ignored, --no-index, and an index URL
and proxies that lead nowhere, so that any attempt to reach a network fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def offline_environment() -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIP_") and key.lower() not in {"http_proxy", "https_proxy"}
    }
    return {
        **environment,
        "PIP_CONFIG_FILE": os.devnull,  # no index, find-links or constraints from this machine
        "PIP_NO_INDEX": "1",
        "PIP_INDEX_URL": f"{NOWHERE}/simple",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "http_proxy": NOWHERE,
        "https_proxy": NOWHERE,
    }


def make_setup(wheels: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "setup", f"WHEELS={wheels}", f"VENV={venv}", f"PYTHON={sys.executable}"],
        cwd=ROOT, env=offline_environment(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    built = subprocess.run(
        [sys.executable, "-m", "tools.wheelhouse", str(folder), "--this-platform"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    assert "install with: make setup WHEELS=" in built.stdout
    return folder


def test_the_attendee_set_up_installs_from_the_wheelhouse_alone(
    wheelhouse: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    done = make_setup(wheelhouse, venv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--no-index --find-links" in done.stdout  # make echoes the pip commands it ran
    # pymesos, whose only release is an sdist, came from the wheel built into the folder.
    assert list(wheelhouse.glob("pymesos-0.3.15-py3-none-any.whl"))
    python = venv / "bin" / "python"
    # What the attendee runs: a step on the embedded cluster, from the offline venv.
    demo = subprocess.run(
        [python, "-m", "tools.demo", "--step", "2", "--size", "small"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "chart: build/step2-small.png" in demo.stdout
    jupyter = subprocess.run([venv / "bin" / "jupyter", "lab", "--version"], capture_output=True)
    assert jupyter.returncode == 0


def test_a_wheel_missing_from_the_folder_fails_instead_of_going_online(
    wheelhouse: Path, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(wheelhouse, partial)
    for wheel in partial.glob("kazoo-*.whl"):
        wheel.unlink()
    done = make_setup(partial, tmp_path / "venv")
    assert done.returncode != 0
    assert "kazoo" in done.stdout + done.stderr
