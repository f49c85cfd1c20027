"""The project's own tooling: listing sync, the test harness, screenshots and set-up checks."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """CI sets CI=true; there every check must run, and a missing tool is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
