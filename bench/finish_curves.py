"""The step 2 post's figure: when each week of the job finishes, with step 1's command tasks
and with step 2's executors, in two settings side by side.

Left, the `demo` job with each step's default task resources (what `make demo` runs). Right,
the `tiny` job with the same task resources in both steps, as `bench.executors` measures it.
Each step runs ROUNDS times per setting, each time on a new cluster; the run with the median
span (first offer to last TASK_FINISHED) is drawn. The spans of every run are printed, so the
figures quoted in the post can be checked against them.

    python -m bench.finish_curves            # writes the Spanish and English PNGs of the post

This is not part of `make bench`: it draws a picture, and it has no goal.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench.executors import TASK_CPUS, finish_times, run_step
from step1_scheduler.__main__ import REPOSITORY

ROUNDS = 3
SETTINGS = {"demo": ("demo", None), "tiny": ("tiny", TASK_CPUS)}  # size, task cpus
COLOURS = {1: "#c8553d", 2: "#2f5d8a"}
OUTPUT = Path(REPOSITORY) / "assets" / "img" / "paso-2"
TEXT = {
    "es": {
        "file": "semanas-terminadas-es.png",
        "title": "Semanas terminadas desde la primera oferta",
        "demo": "Trabajo «demo», recursos por omisión",
        "tiny": f"Trabajo «tiny», las mismas tareas en los dos ({TASK_CPUS:g} CPU)".replace(
            ".", ","
        ),
        "x": "segundos desde la primera oferta",
        "y": "semanas terminadas",
        1: "paso 1: tareas de comando",
        2: "paso 2: ejecutor propio",
        "decimal": ",",
    },
    "en": {
        "file": "weeks-finished-en.png",
        "title": "Weeks finished since the first offer",
        "demo": "The “demo” job, default resources",
        "tiny": f"The “tiny” job, the same tasks in both ({TASK_CPUS:g} CPU)",
        "x": "seconds since the first offer",
        "y": "weeks finished",
        1: "step 1: command tasks",
        2: "step 2: our own executor",
        "decimal": ".",
    },
}


def median_run(step: int, setting: str) -> list[float]:
    """The finish times of the run whose span is the median of ROUNDS."""
    size, task_cpus = SETTINGS[setting]
    runs = [finish_times(run_step(step, size, task_cpus)) for _ in range(ROUNDS)]
    spans = [times[-1] for times in runs]
    print(f"{setting} job, step {step}: spans {', '.join(f'{s:.2f}' for s in spans)} s")
    return next(times for times in runs if times[-1] == statistics.median_low(spans))


def draw(curves: dict[tuple[str, int], list[float]], lang: str) -> Figure:
    text = TEXT[lang]
    figure = Figure(figsize=(9, 4.2), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, setting in zip(axes, SETTINGS, strict=True):
        for step in (1, 2):
            times = curves[setting, step]
            # A step curve: the count jumps by one at each TASK_FINISHED.
            ax.step(
                [0.0, *times],
                range(len(times) + 1),
                where="post",
                color=COLOURS[step],
                linewidth=2,
                label=text[step],
            )
        ax.set_title(text[setting], fontsize=10.5, loc="left")
        ax.set_xlabel(text["x"])
        ax.set_ylim(0, 55)
        ax.set_xlim(left=0)
        ax.set_yticks([0, 13, 26, 39, 52])
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda value, _: f"{value:g}".replace(".", text["decimal"]))
        )
    axes[0].set_ylabel(text["y"])
    axes[0].legend(loc="lower right", frameon=False, fontsize=9.5)
    figure.suptitle(text["title"], fontsize=13, fontweight="bold")
    return figure


def main(output: Path = OUTPUT) -> int:
    curves = {(setting, step): median_run(step, setting) for setting in SETTINGS for step in (1, 2)}
    output.mkdir(parents=True, exist_ok=True)
    for lang, text in TEXT.items():
        path = output / text["file"]
        draw(curves, lang).savefig(path, dpi=110)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
