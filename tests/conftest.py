"""Shared test helpers. Standard library only: `make test-pythons` runs some of these tests in
fresh venvs that hold nothing but pymesos, its parser and pytest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(tool: str, how: str) -> str:
    """The path of ``tool``; without it the test fails in CI and is skipped elsewhere."""
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} not found ({how})"
    if in_ci():
        pytest.fail(f"CI must run every test: {message}")
    pytest.skip(message)
