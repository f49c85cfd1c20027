"""`make pymesos-tests`: pymesos 0.3.15's own unit tests, run against our http-parser adapter.

Those tests are not in pymesos's sdist, and the project does not copy them: this clones the
0.3.15 tag from GitHub into build/ (so it needs network access to github.com), installs the one
package only they need (pytest-mock) into build/ too, and runs them with the venv's pymesos and
http_parser. ``--source DIR`` runs them from a checkout or export you already have instead.
Not part of `make test`: CI may not reach GitHub.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import ROOT

REPOSITORY = "https://github.com/douban/pymesos"
TAG = "0.3.15"
CHECKOUT = ROOT / "build" / f"pymesos-{TAG}"
DEPS = ROOT / "build" / "pymesos-tests-deps"
# Their `mocker` fixture. Pinned here, not in requirements.lock: the project never imports it.
TEST_ONLY = ("pytest-mock==3.17.0",)


def fetch() -> Path | None:
    """The 0.3.15 checkout in build/, cloned on first use; None (and one line said) if it fails."""
    if (CHECKOUT / "tests").is_dir():
        return CHECKOUT
    CHECKOUT.parent.mkdir(parents=True, exist_ok=True)
    # Clone beside the final place, then rename: an interrupted clone never looks like a good one.
    with tempfile.TemporaryDirectory(dir=CHECKOUT.parent) as scratch:
        clone = Path(scratch) / "pymesos"
        done = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", TAG, REPOSITORY, str(clone)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["git clone failed"])[-1]
            print(
                f"pymesos-tests: could not fetch {REPOSITORY} at {TAG} ({why}); this needs "
                "network access to github.com, or --source DIR with a copy of it"
            )
            return None
        clone.rename(CHECKOUT)
    return CHECKOUT


def install_test_only() -> bool:
    stamp = DEPS / ".installed"
    if stamp.is_file() and stamp.read_text() == "\n".join(TEST_ONLY):
        return True
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade"]
    if subprocess.run([*pip, "--target", str(DEPS), *TEST_ONLY]).returncode != 0:
        print(f"pymesos-tests: could not install {', '.join(TEST_ONLY)} into {DEPS}")
        return False
    stamp.write_text("\n".join(TEST_ONLY))
    return True


def run(source: Path) -> int:
    tests = source / "tests"
    if not tests.is_dir():
        print(f"pymesos-tests: {source} has no tests/ folder; give a copy of pymesos {TAG}")
        return 2
    if not install_test_only():
        return 1
    env = {**os.environ, "PYTHONPATH": str(DEPS)}
    # -P keeps the checkout's own pymesos/ off sys.path, so the tests import the venv's pymesos
    # (the one the steps run); -o addopts= drops their tox.ini's coverage options.
    command = [
        sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-o", "addopts=", "--rootdir", str(source), str(tests),
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=source, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pymesos-tests", description=__doc__)
    parser.add_argument(
        "--source",
        type=Path,
        help=f"a checkout or export of pymesos {TAG} (default: clone it into {CHECKOUT})",
    )
    args = parser.parse_args(argv)
    source = args.source.resolve() if args.source else fetch()
    if source is None:
        return 1
    return run(source)


if __name__ == "__main__":
    sys.exit(main())
