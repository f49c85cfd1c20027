"""`make soak`: the long versions of the reliability experiments of `tests/reliability/`.

Each module here runs one area for longer than `make test` can afford and returns `Figure`s:
what it measured, next to what the same experiment gave before localmesos was hardened (the
figures of the issue that asked for it, measured on the code of that time). Nothing here fails
on a slow machine; a figure that breaks its bound is printed as such and the exit status says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    name: str  # what was measured, e.g. "agent memory per 1,000 tasks"
    value: float
    unit: str
    before: str  # the figure on the code before the fix, as the issue reported it
    bound: float | None = None  # the value must stay at or under it; None: only reported
    details: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        return self.bound is None or self.value <= self.bound

    def line(self) -> str:
        bound = "" if self.bound is None else f" (bound {self.bound:g} {self.unit})"
        verdict = "" if self.bound is None else ("; held" if self.held else "; BROKEN")
        head = f"{self.name}: {self.value:.3g} {self.unit}{bound}; before: {self.before}{verdict}"
        return "\n".join([head, *(f"    {detail}" for detail in self.details)])
