"""The notebooks' exercises (issue 14, item 4): each step's notebook has an "Ejercicio" for the
attendee, a cell where they write it, and its solution in the cell after, collapsed (its source
hidden) and executed by nbval against its saved output, as dask-tutorial does. nbval runs every
cell it is not told to skip; this checks that nothing tells it to skip the solutions, that they
have an output to compare, and that a notebook editor shows them folded."""

from __future__ import annotations

import copy
import json

import pytest

from tools import ROOT

STEP_NOTEBOOKS = ["01_ofertas.ipynb", "02_ejecutor.ipynb", "03_fallos.ipynb"]
# What makes nbval skip a cell, or not compare its output (nbval's own tags and comments).
NBVAL_SKIPS = ("nbval-skip", "nbval-ignore-output", "raises-exception")
NBVAL_COMMENTS = ("# NBVAL_SKIP", "# NBVAL_IGNORE_OUTPUT", "# NBVAL_RAISES_EXCEPTION")


def source(cell: dict) -> str:
    return "".join(cell["source"])


def exercise_problems(notebook: dict) -> list[str]:
    """What the notebook's exercises lack; an empty list when it has one at least and each is
    an "Ejercicio" heading, the attendee's cell, and a hidden solution that nbval checks."""
    cells = notebook["cells"]
    headings = [
        number
        for number, cell in enumerate(cells)
        if cell["cell_type"] == "markdown" and source(cell).startswith("### Ejercicio")
    ]
    if not headings:
        return ["no '### Ejercicio' cell"]
    problems = []
    for number in headings:
        title = source(cells[number]).splitlines()[0]
        attendee, solution = cells[number + 1 : number + 3]
        if attendee["cell_type"] != "code" or "Escribe aquí tu solución" not in source(attendee):
            problems.append(f"{title}: the next cell is not the attendee's to write")
        if attendee["metadata"].get("jupyter", {}).get("source_hidden"):
            problems.append(f"{title}: the attendee's cell is hidden")
        if solution["cell_type"] != "code" or "solution" not in solution["metadata"].get(
            "tags", []
        ):
            problems.append(f"{title}: the cell after the attendee's is not a solution")
            continue
        if not solution["metadata"].get("jupyter", {}).get("source_hidden"):
            problems.append(f"{title}: the solution's source is not hidden")
        skips = set(solution["metadata"].get("tags", [])) & set(NBVAL_SKIPS)
        skips |= {c for c in NBVAL_COMMENTS if c in source(solution)}
        if skips:
            problems.append(f"{title}: nbval does not check the solution ({', '.join(skips)})")
        if not any(output.get("text") for output in solution.get("outputs", [])):
            problems.append(f"{title}: the solution has no saved output for nbval to compare")
    return problems


def load(name: str) -> dict:
    return json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", STEP_NOTEBOOKS)
def test_each_step_notebook_has_an_exercise_with_a_hidden_checked_solution(name: str) -> None:
    assert exercise_problems(load(name)) == []


def test_every_step_has_a_notebook() -> None:
    found = sorted(p.name for p in (ROOT / "notebooks").glob("0[1-9]_*.ipynb"))
    assert found == STEP_NOTEBOOKS


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda cells, s: cells[s]["metadata"]["jupyter"].pop("source_hidden"), "not hidden"),
        (lambda cells, s: cells[s]["metadata"]["tags"].append("nbval-skip"), "nbval-skip"),
        (lambda cells, s: cells[s]["source"].insert(0, "# NBVAL_IGNORE_OUTPUT\n"), "IGNORE"),
        (lambda cells, s: cells[s].update(outputs=[]), "no saved output"),
        (lambda cells, s: cells[s]["metadata"].update(tags=[]), "not a solution"),
        (lambda cells, s: cells[s - 2].update(source=["### Un ejemplo\n"]), "no '### Ejercicio'"),
    ],
)
def test_a_spoilt_exercise_is_found(spoil, problem: str) -> None:
    notebook = copy.deepcopy(load(STEP_NOTEBOOKS[0]))
    cells = notebook["cells"]
    solution = next(
        n for n, cell in enumerate(cells) if "solution" in cell["metadata"].get("tags", [])
    )
    spoil(cells, solution)
    problems = exercise_problems(notebook)
    assert any(problem in p for p in problems), problems
