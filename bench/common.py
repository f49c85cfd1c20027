"""What every benchmark reports: a measured value, the floor measured in the same run, and the
issue's goal. Ratios against a floor from the same run keep the figures comparable across
machines; absolute times alone would only describe this laptop."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    value: float
    unit: str
    goal: str  # as the issue states it, e.g. "< 50 ms"
    met: bool
    floor_name: str = ""
    floor: float | None = None  # in the same unit as value
    details: list[str] = field(default_factory=list)  # printed below, one per line

    @property
    def ratio(self) -> float | None:
        # A floor at or below zero (a delay that can come out negative) has no ratio.
        return None if not self.floor or self.floor <= 0 else self.value / self.floor

    def line(self) -> str:
        ratio = "" if self.ratio is None else f", {self.ratio:.1f}x {self.floor_name}"
        floor = "" if self.floor is None else f" (floor {self.floor:.3g} {self.unit}{ratio})"
        verdict = "met" if self.met else "MISSED"
        line = f"{self.name}: {self.value:.3g} {self.unit}{floor}; goal {self.goal}: {verdict}"
        return "\n".join([line, *(f"    {detail}" for detail in self.details)])


def median_ms(action: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """Median wall time of ``action`` in milliseconds."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
