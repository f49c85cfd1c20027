"""`make demo` (tools/demo.py): a cluster up, the step run against it, the cluster down."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools import ROOT

pytestmark = pytest.mark.integration


def test_demo_runs_the_step_and_stops_the_cluster(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tools.demo", "--size", "small"],
        cwd=tmp_path,  # the chart lands in tmp_path/build, not in the checkout
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("localmesos: a master at http://127.0.0.1:")
    assert any("trips in 4 weeks" in line for line in lines)
    assert "chart: build/step2-small.png" in lines
    assert (tmp_path / "build" / "step2-small.png").stat().st_size > 0
    assert lines[-1].startswith("localmesos: stopped")


def test_demo_passes_the_step_s_failure_on():
    done = subprocess.run(
        [sys.executable, "-m", "tools.demo", "--size", "huge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 2  # the step's own usage error
    assert "invalid choice: 'huge'" in done.stderr
    assert "demo: step2_executor exited with status 2" in done.stderr
