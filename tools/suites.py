"""`make test`: every check of the project, with a summary. The suites run one after another,
but for two groups that run at the same time as the others, each in a process of its own: the
notebooks and the terminal outputs (alongside pytest, at the same priority), and the suites that
only read the tree (beside, at a lower priority).

With CI=true every suite must run, and a missing tool fails its suite. On a user's machine a
suite that cannot run says why in one line, and how to enable it, then the others go on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools import ROOT, in_ci, pythons, site

BIN = Path(sys.executable).parent


@dataclass
class Need:
    """A tool a suite needs, and how a user gets it."""

    name: str
    how: str
    available: Callable[[], bool] = field(default=lambda: False)

    @classmethod
    def command(cls, name: str, how: str) -> Need:
        return cls(name, how, lambda: shutil.which(name) is not None)


@dataclass
class Suite:
    name: str
    title: str
    run: Callable[[], bool]
    needs: list[Need] = field(default_factory=list)
    # Suites too slow for every local run; CI runs them, and so does asking for them by name.
    ci_only: bool = False
    # Suites that only read the tree and start no cluster on a timer run beside the others, in a
    # process of lower priority: they use the cores that the cluster tests leave idle while they
    # wait, and cannot slow those tests down enough to change what they see.
    beside: bool = False
    # A beside suite that mostly waits on the network and on pip (the wheelhouse: about 340 s
    # in CI, with a cold cache) runs in a process of its own, so that the others beside do
    # not queue behind it and it does not queue behind them.
    apart: bool = False
    # Suites that start a few clusters of their own (the notebooks, the terminal outputs) run
    # alongside pytest, at the same priority, in a process of their own: pytest's workers spend
    # most of their time waiting on the cluster's timers (on 2 cores its tests kept 1.2 cores
    # busy on average), and these suites, one cluster at a time per notebook or command, fill
    # the rest instead of waiting for pytest to end.
    alongside: bool = False


def command(*args: str | Path) -> bool:
    print("$", " ".join(str(a) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], cwd=ROOT).returncode == 0


def run_ruff() -> bool:
    lint = command(BIN / "ruff", "check", ".")
    return command(BIN / "ruff", "format", "--check", ".") and lint


COMPOSE_TESTS = "tests/unit/test_compose.py"
DEVCONTAINER_TESTS = "tests/unit/test_devcontainer.py"
# The dev container schema from the specification's repository (MIT), kept as a test fixture.
DEVCONTAINER_SCHEMA = ROOT / "tests" / "fixtures" / "devcontainer" / "devContainer.base.schema.json"

# pytest-xdist. Every test starts its clusters on ports the OS picks, in its own tmp_path, and
# looks only at the processes it started (its descendants, its tasks' sessions, its own
# ZooKeeper config), so no test needs to run alone. One worker more than there are cores: the
# tests spend much of their time waiting on the cluster's timers, and on 2 cores a third worker
# took pytest from 406 s to 324 s (2026-12-07, same commit, back to back). worksteal: a chaos
# run or the demo takes 10-60 s, most tests well under one, and an idle worker takes tests from
# a busy one instead of waiting at the end.
PARALLEL_TESTS = ("-n", str((os.cpu_count() or 1) + 1), "--dist", "worksteal")
# A notebook's cells run in order on one kernel: each notebook stays on one worker.
PARALLEL_NOTEBOOKS = ("-n", "auto", "--dist", "loadfile")


WHEELHOUSE_TESTS = "tests/integration/test_wheelhouse.py"


def run_pytest() -> bool:
    # The compose, dev container and wheelhouse tests run in suites of their own, beside.
    return command(
        sys.executable, "-m", "pytest", *PARALLEL_TESTS, "tests",
        "--ignore", COMPOSE_TESTS, "--ignore", DEVCONTAINER_TESTS, "--ignore", WHEELHOUSE_TESTS,
    )  # fmt: skip


def run_wheelhouse() -> bool:
    # Builds the attendee's wheels, then installs and runs the demo with no network: minutes of
    # pip, not of cluster timing, so it runs beside the rest.
    return command(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", WHEELHOUSE_TESTS)


def run_nbval() -> bool:
    return command(
        sys.executable, "-m", "pytest", *PARALLEL_NOTEBOOKS, "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-p", "no:cacheprovider",
        "notebooks",
    )  # fmt: skip


def run_listings() -> bool:
    return command(BIN / "sync-listings", "--check")


def run_skeletons() -> bool:
    return command(sys.executable, "-m", "taller", "generate", "--check")


def run_outputs() -> bool:
    return command(BIN / "sync-outputs", "--check")


def run_site() -> bool:
    try:
        built = site.build()
        site.check_pages(ROOT, built)
        site.proof(built)
    except site.SiteError as exc:
        print(f"site: {exc}")
        return False
    # The workshop's checker links sections of the posts: each link must land on its heading.
    from taller.checker import missing_anchors

    broken = missing_anchors(built)
    for problem in broken:
        print(f"site: workshop link {problem}")
    return not broken


def run_screenshots() -> bool:
    built = ROOT / "_site"
    if not (built / "index.html").is_file():
        print("screenshots: the site is not built (the site suite failed or did not run)")
        return False
    try:
        shots = site.screenshots(built)
    except site.SiteError as exc:
        print(f"screenshots: {exc}")
        return False
    for png in shots:
        print(f"screenshots: {png.relative_to(ROOT)}")
    return True


def compose_schema_check(compose_file: Path | str) -> list[str]:
    """check-jsonschema against the Compose Specification that it ships."""
    return [
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(compose_file),
    ]


def devcontainer_schema_check(devcontainer_file: Path | str) -> list[str]:
    """check-jsonschema against the dev container schema; the file is JSON with comments."""
    return [
        str(BIN / "check-jsonschema"),
        "--schemafile",
        str(DEVCONTAINER_SCHEMA),
        "--force-filetype",
        "json5",
        str(devcontainer_file),
    ]


def run_compose() -> bool:
    # Static only: this machine has no Docker engine to build or start either of them.
    schemas = command(*compose_schema_check("docker-compose.yml")) and command(
        *devcontainer_schema_check(".devcontainer/devcontainer.json")
    )
    return schemas and command(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        COMPOSE_TESTS, DEVCONTAINER_TESTS,
    )  # fmt: skip


JEKYLL = Need.command("jekyll", "make setup-dev (as root on Debian) installs jekyll")
SUITES = [
    Suite("ruff", "lint and format", run_ruff),
    Suite("pytest", "unit and integration tests", run_pytest),
    Suite("nbval", "notebooks against their saved outputs", run_nbval, alongside=True),
    Suite("listings", "code listings in posts match the code", run_listings),
    Suite("skeletons", "the workshop's skeletons (taller/paso*) match the steps", run_skeletons),
    Suite("outputs", "terminal outputs in posts match a fresh run", run_outputs, alongside=True),
    Suite(
        "site",
        "jekyll build without warnings, then html-proofer",
        run_site,
        [JEKYLL, Need.command("htmlproofer", "make setup-dev installs ruby-html-proofer")],
        beside=True,
    ),
    Suite(
        "screenshots",
        "the blog in headless Chromium, not blank",
        run_screenshots,
        [
            JEKYLL,
            Need("chromium", "make setup-dev installs chromium", lambda: bool(site.chromium())),
        ],
        beside=True,
    ),
    Suite(
        "compose",
        "docker-compose.yml and .devcontainer against their schemas, statically",
        run_compose,
        beside=True,
    ),
    Suite(
        "wheelhouse",
        "the attendee's set-up from a folder of wheels, with no network",
        run_wheelhouse,
        beside=True,
        apart=True,
    ),
    Suite(
        "pythons",
        "pymesos and its parser on Python 3.11, 3.12 and 3.13",
        pythons.main,
        [
            Need(
                f"python{version}",
                f"install Python {version} (pyenv install {version})",
                lambda version=version: pythons.interpreter(version) is not None,
            )
            for version in pythons.VERSIONS
        ],
        ci_only=True,
        beside=True,
    ),
]


def run(suites: list[Suite], asked: bool) -> dict[str, tuple[str, float]]:
    results: dict[str, tuple[str, float]] = {}
    for suite in suites:
        missing = [need for need in suite.needs if not need.available()]
        if suite.ci_only and not (in_ci() or asked):
            print(f"-- {suite.name}: skipped locally (slow); run 'make test-{suite.name}'")
            results[suite.name] = ("skipped", 0.0)
            continue
        if missing:
            why = "; ".join(f"no {need.name} ({need.how})" for need in missing)
            if in_ci():
                print(f"-- {suite.name}: FAILED, CI must run every suite: {why}")
                results[suite.name] = ("failed", 0.0)
            else:
                print(f"-- {suite.name}: skipped: {why}")
                results[suite.name] = ("skipped", 0.0)
            continue
        print(f"\n== {suite.name}: {suite.title} ==", flush=True)
        started = time.monotonic()
        try:
            ok = suite.run()
        except Exception as exc:  # a crashing check is a failing check, and the rest still run
            print(f"{suite.name}: crashed: {exc!r}")
            ok = False
        results[suite.name] = ("passed" if ok else "failed", time.monotonic() - started)
    return results


def start_beside(
    suites: list[Suite], asked: bool, folder: Path, where: str = "beside", niceness: int = 10
) -> subprocess.Popen[bytes]:
    """This same command for the beside (or alongside) suites, at a lower priority (or the
    same), into a log of its own."""
    folder.mkdir()
    names = [suite.name for suite in suites]
    args = [sys.executable, "-m", "tools.suites", "--results", str(folder / "results.json")]
    args += [*(["--asked"] if asked else []), "--", *names]
    log = (folder / "output.log").open("wb")
    print(f"-- {', '.join(names)}: running {where} the others; their output comes at the end")
    # os.nice in the child only: the suites that run here keep their priority.
    return subprocess.Popen(
        args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(niceness)
    )


def collect_beside(
    process: subprocess.Popen[bytes], folder: Path, where: str = "beside"
) -> dict[str, tuple[str, float]]:
    process.wait()
    print(f"\n== {where}: what the suites that ran {where} printed ==", flush=True)
    sys.stdout.flush()
    sys.stdout.buffer.write((folder / "output.log").read_bytes())
    sys.stdout.flush()
    try:
        saved = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"beside: no results (exit status {process.returncode}): {exc}")
        return {}
    return {name: (outcome, seconds) for name, (outcome, seconds) in saved.items()}


def main(argv: list[str] | None = None) -> int:
    names = [suite.name for suite in SUITES]
    parser = argparse.ArgumentParser(prog="tutorial-checks", description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"default: all of {names}")
    # Internal: how main() runs the beside suites in a process of their own.
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--asked", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.suites) - set(names))
    if unknown:
        parser.error(f"unknown suite {', '.join(unknown)}; choose from {', '.join(names)}")
    chosen = [suite for suite in SUITES if not args.suites or suite.name in args.suites]
    asked = args.asked if args.results else bool(args.suites)
    started = time.monotonic()
    beside = [suite for suite in chosen if suite.beside and not args.results]
    if len(beside) == len(chosen):  # nothing to run them beside of
        beside = []
    alongside = [suite for suite in chosen if suite.alongside and not args.results]
    if len(alongside) + len(beside) == len(chosen):  # nothing to run them alongside of
        alongside = []
    results: dict[str, tuple[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tutorial-checks-") as folder:
        # One process for the beside suites that share one, and one for each apart suite.
        lanes = [[s for s in beside if not s.apart]] + [[s] for s in beside if s.apart]
        processes = [
            (start_beside(lane, asked, Path(folder) / f"beside-{i}"), Path(folder) / f"beside-{i}")
            for i, lane in enumerate(lane for lane in lanes if lane)
        ]
        along = (
            start_beside(alongside, asked, Path(folder) / "alongside", "alongside", 0)
            if alongside
            else None
        )
        results = run([s for s in chosen if s not in beside and s not in alongside], asked)
        if along:
            results |= collect_beside(along, Path(folder) / "alongside", "alongside")
        for process, lane_folder in processes:
            results |= collect_beside(process, lane_folder)
    if args.results:
        args.results.write_text(json.dumps(results))
        return 0

    print("\n== summary ==")
    for suite in chosen:
        outcome, seconds = results.get(suite.name, ("failed", 0.0))
        where = " (beside)" if suite in beside else " (alongside)" if suite in alongside else ""
        print(f"{suite.name:<12} {outcome:<8} {seconds:6.1f} s{where}")
    outcomes = [results.get(suite.name, ("failed", 0.0))[0] for suite in chosen]
    counts = {o: outcomes.count(o) for o in ("passed", "failed", "skipped")}
    print(
        f"suites: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        f"; {time.monotonic() - started:.0f} s in all"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
