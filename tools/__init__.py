"""The project's own tooling: listing sync, the test harness, screenshots and set-up checks."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """CI sets CI=true; there every check must run, and a missing tool is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def locked_versions(lock: Path = ROOT / "requirements.lock") -> dict[str, str]:
    """The exact versions requirements.lock pins, by normalised package name."""
    pins = {}
    for line in lock.read_text().splitlines():
        if match := re.fullmatch(r"\s*([A-Za-z0-9_.-]+)==(\S+)\s*", line):
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins
