"""Shared test helpers. Standard library and `tools` only: `make test-pythons` runs some of these
tests in fresh venvs that hold nothing but pymesos, its parser and pytest."""

from __future__ import annotations

import shutil

import pytest

from tools import ROOT, in_ci

__all__ = ["ROOT", "need"]


def need(tool: str, how: str) -> str:
    """The path of ``tool``; without it the test fails in CI and is skipped elsewhere."""
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} not found ({how})"
    if in_ci():
        pytest.fail(f"CI must run every test: {message}")
    pytest.skip(message)
