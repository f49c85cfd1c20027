"""Install pymesos with our http-parser in fresh venvs on Python 3.11, 3.12 and 3.13, and run
the parser tests there: the proof that `make setup` works on every Python we support."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tools import ROOT, locked_versions

VERSIONS = ("3.11", "3.12", "3.13")
# Only what pymesos and the two parser tests need, at the versions requirements.lock pins.
PACKAGES = ("pymesos", "six", "addict", "kazoo", "h11", "pytest", "pytest-timeout")
TESTS = ("tests/unit/test_http_parser.py", "tests/integration/test_pymesos_recordio.py")


def interpreter(version: str) -> Path | None:
    """A real interpreter for ``version``: pyenv's newest patch release, else one on PATH.

    pyenv's shims are skipped: a shim for a version that is not selected fails when run.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(
        pyenv_root.glob(f"versions/{version}.*/bin/python{version}"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parts[-3])],
    )
    candidates.reverse()
    on_path = shutil.which(f"python{version}")
    if on_path and ".pyenv/shims" not in on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def pins() -> list[str]:
    locked = locked_versions()
    missing = [name for name in PACKAGES if name not in locked]
    if missing:
        raise SystemExit(f"requirements.lock does not pin {', '.join(missing)}")
    return [f"{name}=={locked[name]}" for name in PACKAGES]


def check(version: str, python: Path) -> bool:
    venv = ROOT / "build" / "pythons" / version
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", venv], check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "./compat/http-parser", *pins()], check=True, cwd=ROOT)
    tests = subprocess.run(
        [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=ROOT,
    )
    return tests.returncode == 0


def missing_interpreters() -> list[str]:
    return [version for version in VERSIONS if interpreter(version) is None]


def main() -> bool:
    results = {}
    for version in VERSIONS:
        python = interpreter(version)
        if python is None:
            print(f"pythons: no Python {version} interpreter found")
            results[version] = False
            continue
        print(f"pythons: Python {version} ({python})", flush=True)
        results[version] = check(version, python)
    for version, ok in results.items():
        print(f"pythons: {version} {'passed' if ok else 'FAILED'}")
    return all(results.values())
