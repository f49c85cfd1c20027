"""The link secret of a cluster whose masters and agents run as processes of their own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from localmesos import link


def test_the_environment_decides_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(link.SECRET_VARIABLE, " from-the-environment\n")
    assert link.shared_secret() == "from-the-environment"
    assert not (tmp_path / ".localmesos").exists()


def test_else_one_per_user_made_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(link.SECRET_VARIABLE, raising=False)
    first = link.shared_secret()
    assert len(first) == 64 and link.shared_secret() == first
    path = tmp_path / ".localmesos" / "link-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["link-secret"]  # no draft left behind
    path.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        link.shared_secret()


def test_two_clusters_make_two_secrets() -> None:
    assert link.new_secret() != link.new_secret()
