"""The example job: one year of trips of a fictional bike-share service, counted in parallel.

Every step of the tutorial distributes this same job, so the steps show only Mesos. The work is
split into chunks, one per week of the year, that do not depend on each other:

- the dataset is generated, not downloaded: a week's trips come from a random generator seeded
  with the week's number, so any machine that runs the chunk gets the very same trips. (A real
  job would read its part from shared storage; regenerating it keeps the workshop free of one.)
- a chunk counts its trips by weekday and hour, per week and by duration. Counts are integers
  and merging them is a sum, so the distributed result is identical to the sequential one.
- the result is drawn as a chart: when people ride, and how that changes over the year.

    python -m jobs.bikeshare chunk 7 --size demo     # one chunk, printed as one line of JSON
    python -m jobs.bikeshare sequential --size demo  # the reference: every chunk, in a loop
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SEED = 2026
WEEKDAYS = 7
HOURS = 24
DURATION_BIN_MINUTES = 5
DURATION_BINS = 13  # 0-5, 5-10, ..., 55-60 and 60 or more


@dataclass(frozen=True)
class Size:
    weeks: int
    trips_per_day: int  # on an average weekday; weather, season and weekends change it


SIZES = {
    "small": Size(weeks=4, trips_per_day=200),  # tests: each chunk in a few milliseconds
    "demo": Size(weeks=52, trips_per_day=12_000),  # make demo, notebooks and benchmarks
    # A year of very small chunks, where the per-task overhead (starting a process, or sending
    # a task to a running executor) dominates the work itself; the benchmark uses it.
    "tiny": Size(weeks=52, trips_per_day=100),
}


def chunks(size: Size) -> list[int]:
    """The chunks of the job: one per week."""
    return list(range(size.weeks))


def _hour_weights(weekend: bool) -> list[float]:
    """How likely a trip is to start at each hour: commuting peaks on weekdays, a long
    afternoon on weekends, and few trips at night."""
    weights = []
    for hour in range(HOURS):
        night = 0.15 if 1 <= hour <= 5 else 1.0
        if weekend:
            weight = 0.3 + 2.2 * math.exp(-(((hour - 13.5) / 4.0) ** 2))
        else:
            morning = 3.0 * math.exp(-(((hour - 8.3) / 1.1) ** 2))
            evening = 2.6 * math.exp(-(((hour - 18.2) / 1.6) ** 2))
            weight = 0.35 + morning + evening + 0.6 * math.exp(-(((hour - 14) / 2.0) ** 2))
        weights.append(weight * night)
    return weights


_WEEKDAY_HOURS = list(itertools.accumulate(_hour_weights(weekend=False)))
_WEEKEND_HOURS = list(itertools.accumulate(_hour_weights(weekend=True)))


def count_chunk(week: int, size: Size, on_day: Callable[[int], None] | None = None) -> dict:
    """Generate one week of trips and count them. The same week always gives the same counts.

    `on_day`, if given, is called after each day with the number of days done (1 to 7): a
    caller can report progress, or stop the chunk by raising from it."""
    if not 0 <= week < size.weeks:
        raise ValueError(f"week {week} is outside this job (weeks 0 to {size.weeks - 1})")
    rng = random.Random(f"{SEED}:{week}")
    by_hour = [[0] * HOURS for _ in range(WEEKDAYS)]
    durations = [0] * DURATION_BINS
    trips = 0
    for weekday in range(WEEKDAYS):
        day_of_year = week * WEEKDAYS + weekday
        weekend = weekday >= 5
        # More trips in late spring and early autumn, fewer in winter and in August's heat.
        season = 0.8 + 0.25 * math.sin(2 * math.pi * (day_of_year - 80) / 365)
        if 210 <= day_of_year <= 240:
            season *= 0.7
        rain = 0.45 if rng.random() < 0.12 else 1.0
        expected = size.trips_per_day * season * rain * (0.75 if weekend else 1.0)
        day_trips = max(0, round(rng.gauss(expected, math.sqrt(expected))))
        hours = rng.choices(
            range(HOURS), cum_weights=_WEEKEND_HOURS if weekend else _WEEKDAY_HOURS, k=day_trips
        )
        row = by_hour[weekday]
        for hour in hours:
            row[hour] += 1
            minutes = rng.lognormvariate(2.55 if weekend else 2.4, 0.5)
            durations[min(int(minutes // DURATION_BIN_MINUTES), DURATION_BINS - 1)] += 1
        trips += day_trips
        if on_day is not None:
            on_day(weekday + 1)
    return {"week": week, "trips": trips, "by_hour": by_hour, "durations": durations}


def empty_result(size: Size) -> dict:
    return {
        "trips": 0,
        "per_week": [0] * size.weeks,
        "by_hour": [[0] * HOURS for _ in range(WEEKDAYS)],
        "durations": [0] * DURATION_BINS,
    }


def merge(result: dict, chunk: dict) -> dict:
    """Add one chunk's counts into the job's result (in place, and returned)."""
    result["trips"] += chunk["trips"]
    result["per_week"][chunk["week"]] += chunk["trips"]
    for total_row, row in zip(result["by_hour"], chunk["by_hour"], strict=True):
        for hour, count in enumerate(row):
            total_row[hour] += count
    for index, count in enumerate(chunk["durations"]):
        result["durations"][index] += count
    return result


def run_sequential(size: Size) -> dict:
    """The reference: every chunk on this machine, one after the other."""
    result = empty_result(size)
    for week in chunks(size):
        merge(result, count_chunk(week, size))
    return result


def summary(result: dict, lang: str = "en") -> str:
    """A few lines that a person can check at a glance."""
    weekday_names = _LABELS[lang]["weekdays"]
    busiest_day, busiest_hour = max(
        ((d, h) for d in range(WEEKDAYS) for h in range(HOURS)),
        key=lambda cell: result["by_hour"][cell[0]][cell[1]],
    )
    per_week = result["per_week"]
    best_week = max(range(len(per_week)), key=per_week.__getitem__)
    text = _LABELS[lang]["summary"]
    return text.format(
        trips=result["trips"],
        weeks=len(per_week),
        day=weekday_names[busiest_day],
        hour=busiest_hour,
        week=best_week + 1,
        week_trips=per_week[best_week],
    )


_LABELS = {
    "es": {
        "weekdays": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
        "title": "{trips} viajes en bicicleta compartida en {weeks} semanas",
        "thousands": ".",
        "heatmap": "¿Cuándo se usa la bici? Viajes por día y hora de salida",
        "hour": "hora de salida",
        "weekly": "Viajes por semana",
        "week": "semana del año",
        "trips": "viajes",
        "summary": (
            "{trips} viajes en {weeks} semanas. La hora más concurrida: el {day} a las {hour} h. "
            "La mejor semana: la {week}, con {week_trips} viajes."
        ),
    },
    "en": {
        "weekdays": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        "title": "{trips} bike-share trips in {weeks} weeks",
        "thousands": ",",
        "heatmap": "When do people ride? Trips by day and starting hour",
        "hour": "starting hour",
        "weekly": "Trips per week",
        "week": "week of the year",
        "trips": "trips",
        "summary": (
            "{trips} trips in {weeks} weeks. Busiest hour: {day} at {hour}:00. "
            "Best week: week {week}, with {week_trips} trips."
        ),
    },
}


def chart(result: dict, path: str | Path, lang: str = "es") -> Path:
    """Draw the result: a heatmap of weekdays by hours above the weekly totals. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed: the chart goes to a file
    import matplotlib.pyplot as plt

    labels = _LABELS[lang]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6.4), height_ratios=[1.25, 1], layout="constrained"
    )
    figure.suptitle(
        labels["title"].format(
            trips=f"{result['trips']:,}".replace(",", labels["thousands"]),
            weeks=len(result["per_week"]),
        ),
        fontsize=14,
        fontweight="bold",
    )
    image = top.imshow(result["by_hour"], aspect="auto", cmap="magma")
    top.set_title(labels["heatmap"], fontsize=11, loc="left")
    top.set_yticks(range(WEEKDAYS), labels["weekdays"])
    top.set_xticks(range(0, HOURS, 2), [f"{h}" for h in range(0, HOURS, 2)])
    top.set_xlabel(labels["hour"])
    figure.colorbar(image, ax=top, label=labels["trips"], pad=0.01)
    weeks = range(1, len(result["per_week"]) + 1)
    bottom.fill_between(weeks, result["per_week"], color="#f4a261", alpha=0.35, linewidth=0)
    bottom.plot(weeks, result["per_week"], color="#c8553d", linewidth=2, marker="o", markersize=3)
    bottom.set_title(labels["weekly"], fontsize=11, loc="left")
    bottom.set_xlabel(labels["week"])
    bottom.set_ylabel(labels["trips"])
    bottom.set_xlim(1, max(len(result["per_week"]), 2))
    bottom.set_ylim(0, max(result["per_week"]) * 1.1 or 1)
    bottom.spines[["top", "right"]].set_visible(False)
    bottom.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.bikeshare", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("chunk", help="count one week's trips and print them as JSON")
    one.add_argument("week", type=int)
    one.add_argument("--size", choices=SIZES, default="demo")
    one.add_argument("--fail", action="store_true", help="fail on purpose, to see retries")
    everything = commands.add_parser("sequential", help="run every chunk here, in a loop")
    everything.add_argument("--size", choices=SIZES, default="demo")
    everything.add_argument("--chart", metavar="PNG", help="also draw the chart into this file")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    # ANCHOR: chunk-command
    if args.command == "chunk":
        if args.fail:
            print(f"chunk {args.week}: failing on purpose (--fail)", file=sys.stderr)
            return 1
        try:
            counts = count_chunk(args.week, size)
        except ValueError as error:
            parser.error(str(error))
        print(json.dumps(counts, separators=(",", ":")))
        return 0
    # ANCHOR_END: chunk-command
    result = run_sequential(size)
    print(summary(result))
    if args.chart:
        print(f"chart: {chart(result, args.chart)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
