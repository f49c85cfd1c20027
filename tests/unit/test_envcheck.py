"""RecordIO framing as the tutorial shows it, and the environment checks."""

from __future__ import annotations

import configparser
import json
import re
import socket
from pathlib import Path

import pytest

from tools import envcheck
from tools.listings import ROOT


def test_a_record_is_its_length_a_newline_and_the_json_with_nothing_after() -> None:
    event = {"type": "HEARTBEAT", "note": "año"}  # the count is in bytes, not characters
    record = envcheck.recordio(event)
    length, _, data = record.partition(b"\n")
    assert int(length) == len(data) == len(json.dumps(event, separators=(",", ":")).encode())
    assert not record.endswith(b"\n")
    assert json.loads(data) == event


def test_events_survive_every_chunk_and_read_size() -> None:
    body = b"".join(envcheck.recordio(event) for event in envcheck.SAMPLE_EVENTS)
    for chunk_size in (1, 2, 3, 7, 17, len(body)):
        response = envcheck.chunked_response(body, chunk_size)
        for read_size in (1, 4, 5, 64, len(response)):
            events = envcheck.read_events(response, read_size)
            assert events == envcheck.SAMPLE_EVENTS, (chunk_size, read_size)


def test_the_core_checks_pass_in_the_project_venv() -> None:
    checks = {check.name: check for check in envcheck.check_all()}
    for name in ("Python", "venv", "pymesos", "kazoo"):
        assert checks[name].ok, checks[name]
        assert checks[name].required
    assert "3 events read" in checks["pymesos"].found
    # One line per need of the workshop, each either required or for one part only.
    assert list(checks) == [
        "Python", "venv", "pymesos", "kazoo", "Java", "ZooKeeper", "ports", "Docker",
    ]  # fmt: skip
    assert not any(checks[name].required for name in ("Java", "ZooKeeper", "ports", "Docker"))


def test_the_report_is_one_line_per_check_with_the_fix_for_what_failed() -> None:
    report = envcheck.report(
        [envcheck.Check("A", True, "fine", "never shown"), envcheck.Check("B", False, "x", "do y")]
    )
    assert report.splitlines() == ["✓ A          fine", "✗ B          x: do y"]


def test_check_env_fails_only_for_a_required_need(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    optional = envcheck.Check("Docker", False, "no docker", "only for the cluster", required=False)
    monkeypatch.setattr(envcheck, "check_all", lambda: [envcheck.Check("A", True, "ok"), optional])
    assert envcheck.main() == 0
    assert "ready for the workshop; Docker" in capsys.readouterr().out
    required = envcheck.Check("venv", False, "outside .venv", "run 'make setup'")
    monkeypatch.setattr(envcheck, "check_all", lambda: [required, optional])
    assert envcheck.main() == 1
    assert "not ready: venv" in capsys.readouterr().out


def test_the_last_line_points_at_one_line_or_at_several(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    ports = envcheck.Check("ports", False, "5050 in use", "stop it", required=False)
    docker = envcheck.Check("Docker", False, "no docker", "only for the cluster", required=False)
    monkeypatch.setattr(envcheck, "check_all", lambda: [docker])
    assert envcheck.main() == 0
    assert capsys.readouterr().out.endswith("Docker: see the line above\n")
    monkeypatch.setattr(envcheck, "check_all", lambda: [ports, docker])
    assert envcheck.main() == 0
    assert capsys.readouterr().out.endswith("ports, Docker: see the lines above\n")


def test_the_venv_check_names_a_package_that_is_not_as_pinned(tmp_path: Path) -> None:
    lock = tmp_path / "requirements-workshop.lock"
    lock.write_text("./compat/http-parser\nkazoo==0.0.1\n")
    check = envcheck.check_venv(ROOT, lock)
    assert not check.ok
    assert "kazoo 2." in check.found and "(pinned 0.0.1)" in check.found
    assert check.advice == "run 'make setup'"


def test_the_venv_check_wants_the_project_s_venv(tmp_path: Path) -> None:
    check = envcheck.check_venv(tmp_path)
    assert not check.ok and "running outside .venv" in check.found


def test_a_busy_port_is_named_with_what_uses_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        check = envcheck.check_ports({busy: "the thing under test (--port)"})
    assert not check.ok
    assert check.found == f"{busy} in use"
    assert "the thing under test (--port)" in check.advice
    assert envcheck.check_ports({busy: "now free"}).ok


def sanitize(text: str) -> str:
    """Apply notebooks/sanitize.cfg in order, as nbval does."""
    config = configparser.ConfigParser()
    config.read(ROOT / "notebooks" / "sanitize.cfg")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


def test_the_sanitizer_hides_what_changes_between_runs_and_nothing_else() -> None:
    run1 = (
        "framework 9f1c2d3e-1111-4222-8333-944445555666-0000 on agent "
        "9f1c2d3e-1111-4222-8333-944445555666-S1, offer 9f1c2d3e-1111-4222-8333-944445555666-O7 "
        "at 2026-11-24T14:02:03.123+00:00 from 127.0.0.1:40123 after 12.5 ms and 1.2 s "
        "(85.2 tasks/s, pid 4242, epoch 1764000000.5) <Line2D at 0x7f3a9c0>"
    )
    run2 = (
        "framework 0a0b0c0d-2222-4333-8444-a55556666777-0000 on agent "
        "0a0b0c0d-2222-4333-8444-a55556666777-S0, offer 0a0b0c0d-2222-4333-8444-a55556666777-O12 "
        "at 2026-11-25T09:00:00.5Z from 127.0.0.1:5050 after 3 ms and 0.9 s "
        "(120 tasks/s, pid 7, epoch 1764100000) <Line2D at 0x55d1>"
    )
    assert sanitize(run1) == sanitize(run2)
    assert sanitize("2 tasks finished on 3 agents: 42") == "2 tasks finished on 3 agents: 42"
