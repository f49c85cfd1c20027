"""`make pymesos-tests` says in one line why it cannot run, and never leaves a half clone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import pymesos_tests


def test_a_failed_fetch_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pymesos_tests, "REPOSITORY", str(tmp_path / "no-such-repository"))
    monkeypatch.setattr(pymesos_tests, "CHECKOUT", tmp_path / "build" / "pymesos-0.3.15")
    assert pymesos_tests.main([]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pymesos-tests: could not fetch ")
    assert "no-such-repository" in lines[0]
    assert list((tmp_path / "build").iterdir()) == []


def test_a_source_without_tests_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pymesos_tests.main(["--source", str(tmp_path)]) == 2
    assert f"{tmp_path} has no tests/ folder" in capsys.readouterr().out
