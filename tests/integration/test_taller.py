"""The workshop's checker passes every step's own solution, from its smallest check up to the
whole job on a LocalCluster, and ends with the step's own result lines. (That it fails the
skeletons and catches wrong answers is in tests/unit/test_taller_mutants.py.)"""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from jobs import bikeshare
from taller import catalog, checker
from tools import ROOT

pytestmark = pytest.mark.integration

SUMMARY = bikeshare.summary(bikeshare.run_sequential(bikeshare.SIZES["small"]))
# What each step prints first when it ends well.
RESULT_LINE = {
    1: r"4 chunks on (1 agent|2 agents) in \d+\.\d s",
    2: r"4 chunks on (1 agent|2 agents) \((1 executor|2 executors)\) in \d+\.\d s",
    3: r"4 chunks in \d+\.\d s: 0 from the checkpoint, 4 recorded by this scheduler",
}


@pytest.mark.parametrize("step", checker.STEPS)
def test_every_check_passes_on_the_solution(step: int) -> None:
    out = io.StringIO()
    status = checker.run(step, checker.SOLUTIONS[step], "es", out)
    text = out.getvalue()
    assert status == 0, text
    count = len(checker.checks(step))
    assert text.count("✔") == count
    assert f"Pasan las {count} comprobaciones." in text
    for number, current in enumerate(checker.checks(step), 1):
        assert f"{number:>{len(str(count))}}/{count}  {current.text.title('es')}" in text
    result, summary, chart = text.rstrip("\n").splitlines()[-3:]
    assert re.fullmatch(RESULT_LINE[step], result)
    assert summary == SUMMARY
    assert chart == f"chart: {ROOT}/build/taller/{checker.SOLUTIONS[step]}-small.png"


def test_the_command_line_checks_any_package_in_english() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taller", "check", "1", "--package", "step1_scheduler"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    count = len(checker.checks(1))
    lines = done.stdout.splitlines()
    assert lines[0] == f"Step 1: checking step1_scheduler ({count} checks)"
    assert f"All {count} checks pass. What the step writes when it ends:" in lines
    assert catalog.CHECKS[1, "job"].title("en") in done.stdout
    assert lines[-2] == SUMMARY
