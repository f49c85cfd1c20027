"""The workshop's machinery: the skeletons generated from the steps (and found stale when they
are), the catalog of texts, the sections it links, and the checker's report and language."""

from __future__ import annotations

import ast
import io
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from taller import catalog, checker, skeletons
from tools import ROOT

# -- the skeletons --------------------------------------------------------------------------------


@pytest.mark.parametrize("step", checker.STEPS)
def test_the_committed_skeletons_are_what_the_steps_generate(step: int) -> None:
    assert skeletons.stale(step) == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what generating step 1's skeleton reads (and of its ruff settings)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "step1_scheduler", tmp_path / "step1_scheduler")
    shutil.copytree(ROOT / "taller" / "paso1", tmp_path / "taller" / "paso1")
    for cache in tmp_path.rglob("__pycache__"):
        shutil.rmtree(cache)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def test_a_change_to_the_step_makes_its_skeleton_stale(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert skeletons.stale(1, tree) == []
    edit(tree / "step1_scheduler" / "scheduler.py", '"refuse_seconds": 30.0', '"refuse_seconds": 5')
    assert skeletons.stale(1, tree) == [f"{tree}/taller/paso1/scheduler.py is stale"]
    # A module the step no longer has, as generate wrote it (an attendee's own file is kept).
    (tree / "taller" / "paso1" / "leftover.py").write_text(skeletons.fingerprinted(""))
    (tree / "taller" / "paso1" / "sandbox.py").unlink()
    assert sorted(skeletons.stale(1, tree)) == [
        f"{tree}/taller/paso1/leftover.py comes from no module of step1_scheduler/",
        f"{tree}/taller/paso1/sandbox.py is missing",
        f"{tree}/taller/paso1/scheduler.py is stale",
    ]
    skeletons.write(1, tree)
    assert skeletons.stale(1, tree) == []
    assert '"refuse_seconds": 5' in (tree / "taller" / "paso1" / "scheduler.py").read_text()


def test_a_change_inside_an_exercise_leaves_the_skeleton_as_it_was(tree: Path) -> None:
    edit(tree / "step1_scheduler" / "scheduler.py", "driver.suppressOffers()", "pass")
    assert skeletons.stale(1, tree) == []


def test_the_check_command_fails_on_a_stale_skeleton(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checker, "STEPS", (1,))
    monkeypatch.setattr(skeletons, "STEPS", (1,))
    assert skeletons.main(check=True, root=tree) == 0
    edit(tree / "step1_scheduler" / "sandbox.py", "HTTP_TIMEOUT = 10.0", "HTTP_TIMEOUT = 5.0")
    assert skeletons.main(check=True, root=tree) == 1
    out = capsys.readouterr().out
    assert "skeletons: " in out and "taller/paso1/sandbox.py is stale" in out
    assert "run 'python -m taller generate'" in out


def test_a_stub_keeps_the_decorators_and_the_signature() -> None:
    region = [
        "    @locked\n",
        "    def run_chunk(\n",
        "        self, driver, task_id: str, fail: bool\n",
        "    ) -> None:\n",
        '        """The solution\'s docstring, which the stub replaces."""\n',
        "        return None\n",
        "\n",
    ]
    lines = skeletons.stub(region, 2, "run-chunk", "x.py:1")
    text = "".join(lines)
    assert text.startswith("    @locked\n    def run_chunk(\n        self, driver, task_id: str")
    assert "    ) -> None:\n" in text
    assert '        """EJERCICIO run-chunk (paso 2).\n' in text
    assert "The solution's docstring" not in text and "return None" not in text
    assert text.rstrip().endswith(
        'raise NotImplementedError("ejercicio run-chunk: escribe run_chunk() (lee su docstring)")'
    )
    assert "Lo explica el post del paso 2, en «Una tarea, un hilo»:" in text
    ast.parse("class C:\n" + text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "# EXERCISE: offers\ndef f():\n    pass\n",
            "x.py:1: exercise 'offers' has no EXERCISE_END",
        ),
        ("def f():\n    pass\n# EXERCISE_END: offers\n", "x.py:3: EXERCISE_END without its"),
        (
            "# EXERCISE: offers\ndef f():\n    pass\n# EXERCISE_END: updates\n",
            "x.py:4: EXERCISE_END: updates closes 'offers'",
        ),
        (
            "# EXERCISE: offers\ndef f():\n    pass\ndef g():\n    pass\n# EXERCISE_END: offers\n",
            "x.py:1: exercise 'offers' must hold exactly one function",
        ),
        (
            "# EXERCISE: offers\nX = 1\n# EXERCISE_END: offers\n",
            "x.py:1: exercise 'offers' must hold exactly one function",
        ),
        (
            "# EXERCISE: nope\ndef f():\n    pass\n# EXERCISE_END: nope\n",
            "x.py:1: exercise 'nope' of step 1 is not in taller/catalog.py",
        ),
    ],
)
def test_a_bad_exercise_region_is_an_error_that_says_where(text: str, message: str) -> None:
    with pytest.raises(skeletons.SkeletonError, match=message):
        skeletons.stub_exercises(text, 1, "x.py")


def test_the_skeleton_is_renamed_to_run_and_start_its_own_executor() -> None:
    text = 'args = [python, "-m", "step2_executor.executor"]  # see step2_executor/executor.py\n'
    assert skeletons.renamed(text, 2) == (
        'args = [python, "-m", "taller.paso2.executor"]  # see taller/paso2/executor.py\n'
    )
    executor = (ROOT / "taller" / "paso2" / "scheduler.py").read_text()
    assert '"-m", "taller.paso2.executor"' in executor
    assert "step2_executor" not in executor.split("\n", 2)[2]  # past the header


@pytest.mark.parametrize("step", checker.STEPS)
def test_a_skeleton_starts_like_its_step(step: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"taller.paso{step}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m taller.paso{step} ")


@pytest.mark.parametrize("step", checker.STEPS)
def test_every_exercise_of_the_catalog_is_a_stub_in_the_skeleton(step: int) -> None:
    _, exercises = skeletons.generate(step)
    assert sorted(exercises) == sorted(n for s, n in catalog.EXERCISES if s == step)
    text = "".join(p.read_text() for p in skeletons.directory(step).glob("*.py"))
    for name in exercises:
        assert f'"ejercicio {name}: escribe ' in text
        assert f"EXERCISE: {name}" not in text
    assert "# ANCHOR" not in text


# -- the catalog and the sections it links --------------------------------------------------------


@pytest.mark.parametrize("step", checker.STEPS)
def test_every_check_has_its_texts_and_every_text_its_check(step: int) -> None:
    names = [c.name for c in checker.checks(step)]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(n for s, n in catalog.CHECKS if s == step)
    assert checker.checks(step)[-1].exercise is None  # the whole job comes last
    exercises = {c.exercise for c in checker.checks(step)} - {None}
    assert exercises == {n for s, n in catalog.EXERCISES if s == step}


def keys_in(function: ast.AST) -> set[str]:
    """The string literals passed as the second argument of expect() or the first of
    Mismatch(): the keys that a function can raise."""
    keys = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            position = {"expect": 1, "Mismatch": 0}.get(node.func.id)
            if position is not None:
                argument = node.args[position]
                assert isinstance(argument, ast.Constant), ast.dump(node)
                keys.add(argument.value)
    return keys


def raised_keys(step: int) -> dict[str, set[str]]:
    """For each check of a step, the keys that it can raise (the whole job's, in whole.py)."""
    tree = ast.parse((ROOT / "taller" / f"checks{step}.py").read_text())
    keys: dict[str, set[str]] = {}
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            continue
        name = next(
            (
                d.args[1].value
                for d in function.decorator_list
                if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "check"
            ),
            None,
        )
        if name is not None:
            keys[name] = keys_in(function)
    keys["job"] |= keys_in(ast.parse((ROOT / "taller" / "whole.py").read_text()))
    return keys


@pytest.mark.parametrize("step", checker.STEPS)
def test_every_key_a_check_raises_has_its_text(step: int) -> None:
    for name, keys in raised_keys(step).items():
        happened = catalog.CHECKS[step, name].happened
        assert keys <= set(happened), (name, keys - set(happened))
        assert keys, name


def test_every_text_is_in_both_languages() -> None:
    texts = list(catalog.UI.values())
    for text in catalog.CHECKS.values():
        texts += [text.title, text.expected, text.hint, *text.happened.values()]
    for text in texts:
        assert text.es.strip() and text.en.strip() and text.es != text.en, text


@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_section_is_a_heading_of_its_post(lang: str) -> None:
    for section in checker.sections():
        where = checker.place(section, lang)
        line = where.path.read_text().splitlines()[where.line - 1]
        assert line.lstrip("#").strip() == (section.en if lang == "en" else section.es)
        assert f"/{lang}/" in where.url


def test_a_section_that_its_post_lacks_is_an_error() -> None:
    with pytest.raises(checker.SectionError, match="has no heading 'Nowhere'"):
        checker.place(catalog.Section(1, "Ninguna", "Nowhere"), "en")


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [  # as kramdown writes them in the built blog (jekyll 4.3, kramdown GFM input)
        ("Las ofertas", "las-ofertas"),
        (
            "Reconciliación explícita, y luego implícita",
            "reconciliación-explícita-y-luego-implícita",
        ),
        ("`failover=True`, y por qué importa tanto", "failovertrue-y-por-qué-importa-tanto"),
        ("Qué puede fallar, y qué significa «relevo»", "qué-puede-fallar-y-qué-significa-relevo"),
        ("`PARTITION_AWARE`: unreachable is not lost", "partition_aware-unreachable-is-not-lost"),
    ],
)
def test_anchors_are_the_ids_that_kramdown_gives_headings(heading: str, anchor: str) -> None:
    assert checker.anchor(heading) == anchor


def test_missing_anchors_finds_a_link_that_lands_nowhere(tmp_path: Path) -> None:
    for section in checker.sections():
        for lang in ("es", "en"):
            where = checker.place(section, lang)
            page = where.url.removeprefix(checker.BLOG).partition("#")[0]
            html = tmp_path / page.strip("/") / "index.html"
            html.parent.mkdir(parents=True, exist_ok=True)
            with html.open("a") as file:
                file.write(f'<h2 id="{checker.anchor(where.heading)}">\n')
    assert checker.missing_anchors(tmp_path) == []
    page = tmp_path / "es" / "paso-1-ofertas-de-recursos-y-un-primer-planificador" / "index.html"
    page.write_text(page.read_text().replace('id="las-ofertas"', 'id="ofertas"'))
    (problem,) = checker.missing_anchors(tmp_path)
    assert problem.endswith("#las-ofertas: no heading with that id in " + str(page))


# -- the report ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "lang"),
    [
        ({}, "es"),
        ({"LANG": "es_ES.UTF-8"}, "es"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "es"),
        ({"LANG": "es_ES.UTF-8", "LC_ALL": "en_US.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "es_ES.UTF-8"}, "es"),
    ],
)
def test_the_language_follows_the_locale(environ: dict[str, str], lang: str) -> None:
    assert checker.language(environ) == lang


def test_a_package_that_does_not_import_is_reported_with_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "broken_step"
    package.mkdir()
    (package / "__init__.py").write_text("def oops(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = io.StringIO()
    assert checker.run(1, "broken_step", "es", out) == 1
    text = out.getvalue()
    assert text.startswith("No se puede importar broken_step: SyntaxError(")
    assert f"{package / '__init__.py'}:1" in text


def test_the_command_line_refuses_a_step_that_does_not_exist() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taller", "check", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "argument step: invalid choice: 4 (choose from 1, 2, 3)" in done.stderr


def test_a_check_that_never_ends_fails_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    import step1_scheduler.scheduler

    release = threading.Event()
    monkeypatch.setattr(checker, "CHECK_TIMEOUT", 0.2)
    monkeypatch.setattr(
        step1_scheduler.scheduler.JobScheduler,
        "resourceOffers",
        lambda self, driver, offers: release.wait(10),  # a loop that never ends, for the checker
    )
    out = io.StringIO()
    try:
        assert checker.run(1, "step1_scheduler", "es", out) == 1
    finally:
        release.set()
    assert "la comprobación no acabó en 0.2 s" in " ".join(out.getvalue().split())
    assert "Pasan 0 de 7 comprobaciones" in out.getvalue()


def test_the_command_line_checks_the_skeleton_in_a_fresh_process() -> None:
    # A process of its own: nothing is imported yet when the checks start on their threads.
    done = subprocess.run(
        [sys.executable, "-m", "taller", "check", "3", "--lang", "es"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    flat = " ".join(done.stdout.split())
    assert "record() es todavía el esqueleto del ejercicio «record»" in flat
    # The blog's address answers only while `make blog` serves it; the report says so.
    assert "/#escribir-solo-si-no-existe (con el blog servido: make blog)" in flat
    assert (
        "Pasan 0 de 9 comprobaciones. Arregla esta y vuelve a probar: make ejercicio PASO=3" in flat
    )


def test_generating_again_never_overwrites_an_attendees_work(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = tree / "taller" / "paso1" / "scheduler.py"
    assert not skeletons.edited(scheduler)
    stub = 'raise NotImplementedError("ejercicio offers'
    edit(scheduler, stub, "return  # mine\n        " + stub)
    mine = scheduler.read_text()
    notes = tree / "taller" / "paso1" / "notes.py"
    notes.write_text("# my notes\n")
    assert skeletons.edited(scheduler) and skeletons.edited(notes)
    monkeypatch.setattr(skeletons, "STEPS", (1,))
    assert skeletons.main(root=tree) == 1
    out = capsys.readouterr().out
    assert "taller/paso1/notes.py" in out and "taller/paso1/scheduler.py" in out
    assert "nothing was written" in out and "--force" in out
    assert scheduler.read_text() == mine and notes.is_file()
    # A skeleton that is only out of date (its step changed) is regenerated without asking.
    notes.unlink()
    scheduler.write_text(skeletons.generate(1, tree)[0][scheduler])
    edit(tree / "step1_scheduler" / "scheduler.py", '"refuse_seconds": 30.0', '"refuse_seconds": 5')
    assert skeletons.main(root=tree) == 0
    assert '"refuse_seconds": 5' in scheduler.read_text()
    scheduler.write_text(mine)
    assert skeletons.main(root=tree, force=True) == 0
    assert skeletons.stale(1, tree) == []
