"""`make demo` (tools/demo.py): a cluster up, the step run against it, the cluster down; with
--failures, the step survives its own crash and the loss of an executor, agents and a master."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs import bikeshare
from tests.integration.localmesos_procs import need_zookeeper
from tools import ROOT

pytestmark = pytest.mark.integration


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.demo", *args],
        cwd=cwd,  # the chart lands in cwd/build, not in the checkout
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("step_args", "package"),
    [
        ((), "step3_failover"),
        (("--step", "1"), "step1_scheduler"),
        (("--step", "2"), "step2_executor"),
    ],
)
def test_demo_runs_the_step_and_stops_the_cluster(tmp_path, step_args, package):
    done = demo(*step_args, "--size", "small", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("localmesos: a master at http://127.0.0.1:")
    assert lines[1].startswith(f"$ python -m {package} --master 127.0.0.1:")
    # Only step 3 keeps a checkpoint; steps 1 and 2 have no --state option.
    assert ("--state" in lines[1]) == (package == "step3_failover")
    assert bikeshare.summary(bikeshare.run_sequential(bikeshare.SIZES["small"])) in lines
    chart = f"build/{package.split('_')[0]}-small.png"
    assert f"chart: {chart}" in lines
    assert (tmp_path / chart).stat().st_size > 0
    assert lines[-1].startswith("localmesos: stopped")


def test_failures_need_the_failover_step():
    done = demo("--step", "2", "--failures", cwd=ROOT)
    assert done.returncode == 2
    assert "--failures (FAILURES=1) needs step 3 or later: step 2" in done.stderr
    assert "localmesos" not in done.stdout  # refused before any cluster starts


def test_demo_with_failures_still_gives_the_sequential_result(tmp_path):
    need_zookeeper()
    done = demo("--failures", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("localmesos: 2 masters under ZooKeeper (zk://127.0.0.1:")
    assert bikeshare.summary(bikeshare.run_sequential(bikeshare.SIZES["demo"])) in lines
    assert lines[-1].startswith("localmesos: stopped")
    # Each failure happened, in this order, and the job went on after it.
    said = [line for line in done.stderr.replace("\r", "\n").splitlines() if "demo: " in line]
    events = [
        "the scheduler died (SIGKILL)",
        "killed an executor",
        "process (not its machine)",
        "with its machine",
        "killed the leading master",
    ]
    found = [next((i for i, line in enumerate(said) if e in line), None) for e in events]
    assert None not in found and found == sorted(found), said
    assert "taking over framework" in done.stderr


def test_demo_passes_the_step_s_failure_on():
    done = demo("--size", "huge", cwd=ROOT)
    assert done.returncode == 2  # the step's own usage error
    assert "invalid choice: 'huge'" in done.stderr
    assert "demo: step3_failover exited with status 2" in done.stderr
