"""The example job (`jobs/bikeshare.py`): deterministic chunks whose counts add up and merge in
any order to the sequential result, its command line, and its summary and chart."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import bikeshare
from tools import ROOT

SMALL = bikeshare.SIZES["small"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_chunks() -> list[dict]:
    return [bikeshare.count_chunk(week, SMALL) for week in bikeshare.chunks(SMALL)]


def test_the_sizes_split_into_one_chunk_per_week() -> None:
    assert bikeshare.chunks(SMALL) == [0, 1, 2, 3]
    assert bikeshare.chunks(bikeshare.SIZES["demo"]) == list(range(52))


def test_a_chunk_is_the_same_every_time_and_differs_from_other_weeks() -> None:
    again = bikeshare.count_chunk(2, SMALL)
    assert bikeshare.count_chunk(2, SMALL) == again
    other = bikeshare.count_chunk(3, SMALL)
    assert other["week"] == 3
    assert other["by_hour"] != again["by_hour"]
    assert other["durations"] != again["durations"]


def test_a_chunks_counts_add_up(small_chunks: list[dict]) -> None:
    for week, chunk in enumerate(small_chunks):
        assert chunk["week"] == week
        assert chunk["trips"] > 0
        assert len(chunk["by_hour"]) == bikeshare.WEEKDAYS
        assert all(len(row) == bikeshare.HOURS for row in chunk["by_hour"])
        assert len(chunk["durations"]) == bikeshare.DURATION_BINS
        assert sum(map(sum, chunk["by_hour"])) == chunk["trips"]
        assert sum(chunk["durations"]) == chunk["trips"]


def test_merging_the_chunks_in_any_order_gives_the_sequential_result(
    small_chunks: list[dict],
) -> None:
    reference = bikeshare.run_sequential(SMALL)
    assert reference["trips"] == sum(c["trips"] for c in small_chunks)
    assert reference["per_week"] == [c["trips"] for c in small_chunks]
    for order in itertools.permutations(small_chunks):
        result = bikeshare.empty_result(SMALL)
        for chunk in order:
            assert bikeshare.merge(result, chunk) is result
        assert result == reference


def test_the_empty_result_is_all_zeros() -> None:
    empty = bikeshare.empty_result(SMALL)
    assert empty == {
        "trips": 0,
        "per_week": [0] * 4,
        "by_hour": [[0] * 24 for _ in range(7)],
        "durations": [0] * 13,
    }


def test_on_day_is_called_after_each_day_and_changes_nothing() -> None:
    days: list[int] = []
    counts = bikeshare.count_chunk(2, SMALL, on_day=days.append)
    assert days == [1, 2, 3, 4, 5, 6, 7]
    assert counts == bikeshare.count_chunk(2, SMALL)


def test_raising_from_on_day_stops_the_chunk_at_that_day() -> None:
    class Stop(Exception):
        pass

    days: list[int] = []

    def on_day(done: int) -> None:
        days.append(done)
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        bikeshare.count_chunk(0, SMALL, on_day=on_day)
    assert days == [1, 2, 3]


def test_the_tiny_size_is_a_year_of_small_chunks() -> None:
    tiny = bikeshare.SIZES["tiny"]
    assert bikeshare.chunks(tiny) == list(range(52))
    assert tiny.trips_per_day < SMALL.trips_per_day


@pytest.mark.parametrize("week", [-1, 4, 52])
def test_count_chunk_refuses_a_week_outside_the_job(week: int) -> None:
    with pytest.raises(ValueError, match=rf"week {week} is outside this job \(weeks 0 to 3\)"):
        bikeshare.count_chunk(week, SMALL)


# -- the command line -----------------------------------------------------------------------------


def test_the_chunk_command_prints_one_line_of_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bikeshare.main(["chunk", "1", "--size", "small"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == bikeshare.count_chunk(1, SMALL)


def test_the_chunk_command_refuses_a_week_outside_the_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        bikeshare.main(["chunk", "4", "--size", "small"])
    assert exited.value.code == 2
    assert "week 4 is outside this job" in capsys.readouterr().err


@pytest.mark.integration
def test_the_chunk_command_as_the_agents_run_it() -> None:
    """A real process, as on an agent: exit status 0 with the JSON, 1 with --fail. Another
    process (with other hash seeds) counts the very same trips."""
    command = [sys.executable, "-m", "jobs.bikeshare", "chunk", "0", "--size", "small"]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == bikeshare.count_chunk(0, SMALL)
    assert done.stderr == ""

    failed = subprocess.run(
        [*command, "--fail"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr == "chunk 0: failing on purpose (--fail)\n"


def test_the_sequential_command_prints_the_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bikeshare.main(["sequential", "--size", "small"]) == 0
    expected = bikeshare.summary(bikeshare.run_sequential(SMALL))
    assert capsys.readouterr().out == expected + "\n"


# -- summary and chart ----------------------------------------------------------------------------


def busiest(result: dict) -> tuple[int, int]:
    """(weekday, hour) with the most trips, found the plain way."""
    cells = [
        (count, -d, -h) for d, row in enumerate(result["by_hour"]) for h, count in enumerate(row)
    ]
    _, day, hour = max(cells)
    return -day, -hour


def test_the_summary_in_english_and_spanish() -> None:
    result = bikeshare.run_sequential(SMALL)
    day, hour = busiest(result)
    best = result["per_week"].index(max(result["per_week"]))

    english = bikeshare.summary(result)
    assert english == bikeshare.summary(result, lang="en")
    assert english.startswith(f"{result['trips']} trips in 4 weeks. ")
    weekday = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][day]
    assert f"Busiest hour: {weekday} at {hour}:00." in english
    assert english.endswith(f"Best week: week {best + 1}, with {max(result['per_week'])} trips.")

    spanish = bikeshare.summary(result, lang="es")
    assert spanish.startswith(f"{result['trips']} viajes en 4 semanas. ")
    dia = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"][day]
    assert f"La hora más concurrida: el {dia} a las {hour} h." in spanish
    assert spanish.endswith(
        f"La mejor semana: la {best + 1}, con {max(result['per_week'])} viajes."
    )


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_chart_is_a_png(tmp_path: Path, lang: str) -> None:
    path = tmp_path / "new" / "dir" / f"chart-{lang}.png"
    assert bikeshare.chart(bikeshare.run_sequential(SMALL), path, lang=lang) == path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # a drawing, not an empty canvas


def test_the_chart_of_an_empty_result_still_draws(tmp_path: Path) -> None:
    path = bikeshare.chart(bikeshare.empty_result(SMALL), tmp_path / "empty.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
