"""The workshop's skeletons, generated from the steps, never copied by hand.

`taller/pasoN/` is step N's package, renamed, with each region of its code marked

    # EXERCISE: name
    def method(self, ...):
        ...
    # EXERCISE_END: name

replaced by a stub: the same signature, a Spanish docstring from the catalog (what to write,
which Mesos calls and fields matter, where the post explains it) and `raise
NotImplementedError`. Anchor markers are left out, and the result is formatted with ruff, as
the project's code is. `python -m taller generate --check` fails when a skeleton is stale.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

from taller import catalog
from taller.checker import SOLUTIONS, STEPS, place, relative, skeleton
from tools import ROOT
from tools.listings import without_markers

START = re.compile(r"^\s*# EXERCISE: (?P<name>[\w-]+)\s*$")
END = re.compile(r"^\s*# EXERCISE_END: (?P<name>[\w-]+)\s*$")
HEADER = """\
# Generated from {source} by `python -m taller generate`: the workshop's
# skeleton of step {step}. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO={step}`.
"""
# The digest of the generated text, so that generating again can tell a skeleton that an
# attendee has written in (which it must not overwrite) from one that is only out of date.
FINGERPRINT = re.compile(r"^# fingerprint: (?P<digest>[0-9a-f]{16})\n", re.MULTILINE)


class SkeletonError(Exception):
    """An EXERCISE region that cannot become a stub; the message says where and why."""


def directory(step: int, root: Path = ROOT) -> Path:
    return root / skeleton(step).replace(".", "/")


def signature_end(source: str, function: ast.FunctionDef) -> int:
    """The line (1-based) of the colon that ends the function's `def`."""
    depth, seen_def = 0, False
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.start[0] < function.lineno:
            continue
        if token.type == tokenize.NAME and token.string == "def":
            seen_def = True
        elif token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif seen_def and depth == 0 and token.type == tokenize.OP and token.string == ":":
            return token.start[0]
    raise SkeletonError(f"no end to the signature of {function.name}")


def docstring(exercise: catalog.Exercise) -> str:
    where = place(exercise.section, "es")
    return "\n".join(
        [
            f'"""EJERCICIO {exercise.name} (paso {exercise.step}).',
            "",
            exercise.title,
            "",
            exercise.task,
            "",
            f"Lo explica el post del paso {exercise.step}, en «{where.heading}»:",
            relative(where.path),
            f"Comprueba tu código con: make ejercicio PASO={exercise.step}",
            '"""',
        ]
    )


def stub(region: list[str], step: int, name: str, where: str) -> list[str]:
    """The stub that replaces one EXERCISE region: its function's decorators and signature, the
    exercise's docstring, and `raise NotImplementedError`."""
    exercise = catalog.EXERCISES.get((step, name))
    if exercise is None:
        raise SkeletonError(
            f"{where}: exercise {name!r} of step {step} is not in taller/catalog.py"
        )
    code = [line for line in region if line.strip()]
    if not code:
        raise SkeletonError(f"{where}: exercise {name!r} is empty")
    indent = re.match(r"\s*", code[0])[0]  # type: ignore[index]
    source = textwrap.dedent("".join(region))
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise SkeletonError(f"{where}: exercise {name!r} is not Python: {error}") from error
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise SkeletonError(f"{where}: exercise {name!r} must hold exactly one function")
    function = tree.body[0]
    lines = source.splitlines()
    head = lines[: signature_end(source, function)]
    body_indent = " " * (function.col_offset + 4)
    body = textwrap.indent(docstring(exercise), body_indent).splitlines()
    body.append(
        f'{body_indent}raise NotImplementedError("ejercicio {name}: escribe {function.name}() '
        '(lee su docstring)")'
    )
    stubbed = [f"{indent}{line}" if line.strip() else "" for line in head + body]
    return [line + "\n" for line in stubbed] + ["\n"]


def stub_exercises(text: str, step: int, where: str) -> tuple[str, list[str]]:
    """The text with every EXERCISE region stubbed, and the names of those regions."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    names: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if END.match(line):
            raise SkeletonError(f"{where}:{index + 1}: EXERCISE_END without its EXERCISE")
        start = START.match(line)
        if not start:
            out.append(line)
            index += 1
            continue
        name = start["name"]
        for end in range(index + 1, len(lines)):
            if START.match(lines[end]):
                raise SkeletonError(f"{where}:{end + 1}: an exercise inside exercise {name!r}")
            closing = END.match(lines[end])
            if closing:
                if closing["name"] != name:
                    raise SkeletonError(
                        f"{where}:{end + 1}: EXERCISE_END: {closing['name']} closes {name!r}"
                    )
                break
        else:
            raise SkeletonError(f"{where}:{index + 1}: exercise {name!r} has no EXERCISE_END")
        out += stub(lines[index + 1 : end], step, name, f"{where}:{index + 1}")
        names.append(name)
        index = end + 1
    return "".join(out), names


def renamed(text: str, step: int) -> str:
    """The step's package name, in imports, `-m` commands, loggers and paths, becomes the
    skeleton's: the skeleton runs, and starts its own executor, as the step does."""
    source, target = SOLUTIONS[step], skeleton(step)
    text = re.sub(rf"\b{source}/", target.replace(".", "/") + "/", text)
    return re.sub(rf"\b{source}\b", target, text)


def ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        raise SkeletonError("generating the skeletons needs ruff (make setup installs it)")
    return found


def formatted(text: str, path: Path, root: Path) -> str:
    done = subprocess.run(
        [ruff(), "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=root,
    )
    if done.returncode != 0:
        raise SkeletonError(f"ruff format failed on {path}: {done.stderr.strip()}")
    return done.stdout


def generate(step: int, root: Path = ROOT) -> tuple[dict[Path, str], list[str]]:
    """The skeleton of a step: its files (path -> text) and its exercises, in file order."""
    files: dict[Path, str] = {}
    exercises: list[str] = []
    source_dir = root / SOLUTIONS[step]
    for source in sorted(source_dir.glob("*.py")):
        where = str(source.relative_to(root))
        text, names = stub_exercises(source.read_text(encoding="utf-8"), step, where)
        exercises += names
        text = "".join(line + "\n" for line in without_markers(text.splitlines()))
        text = HEADER.format(source=where, step=step) + renamed(text, step)
        target = directory(step, root) / source.name
        files[target] = fingerprinted(formatted(text, target, root))
    missing = {n for (s, n) in catalog.EXERCISES if s == step} - set(exercises)
    if missing:
        raise SkeletonError(
            f"step {step}: no EXERCISE marker in {SOLUTIONS[step]}/ for {sorted(missing)}"
        )
    return files, exercises


def stale(step: int, root: Path = ROOT) -> list[str]:
    """What differs between a step's skeleton on disk and what `generate` would write."""
    files, _ = generate(step, root)
    problems = []
    for path, text in files.items():
        if not path.is_file():
            problems.append(f"{relative(path)} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{relative(path)} is stale")
    for path in sorted(directory(step, root).glob("*.py")):
        if path not in files:
            problems.append(f"{relative(path)} comes from no module of {SOLUTIONS[step]}/")
    return problems


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprinted(text: str) -> str:
    """The text with its fingerprint as the line after the header."""
    lines = text.splitlines(keepends=True)
    at = HEADER.count("\n")
    return "".join(lines[:at]) + f"# fingerprint: {digest(text)}\n" + "".join(lines[at:])


def edited(path: Path) -> bool:
    """Whether someone changed the file since `generate` wrote it (or wrote it themselves)."""
    text = path.read_text(encoding="utf-8")
    found = FINGERPRINT.search(text)
    if found is None:
        return True
    return digest(text[: found.start()] + text[found.end() :]) != found["digest"]


def write(step: int, root: Path = ROOT, force: bool = False) -> list[str]:
    """Writes the step's skeleton. Without `force`, refuses (writing nothing) when a file it
    would overwrite or remove holds someone's work: an attendee's exercises are never lost."""
    files, exercises = generate(step, root)
    target = directory(step, root)
    target.mkdir(parents=True, exist_ok=True)
    present = sorted(set(target.glob("*.py")) | {p for p in files if p.is_file()})
    if not force:
        kept = [p for p in present if files.get(p) != p.read_text(encoding="utf-8") and edited(p)]
        if kept:
            raise SkeletonError(
                f"{', '.join(relative(p) for p in kept)}: changed since generated (your work?); "
                "nothing was written. Copy it elsewhere first, or overwrite it with "
                "'python -m taller generate --force'"
            )
    for path in present:
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return exercises


def main(check: bool = False, root: Path = ROOT, force: bool = False) -> int:
    try:
        if check:
            problems = [problem for step in STEPS for problem in stale(step, root)]
            for problem in problems:
                print(f"skeletons: {problem}")
            if problems:
                print("skeletons: run 'python -m taller generate' to update them")
                return 1
            print(f"skeletons: taller/paso{STEPS[0]}..{STEPS[-1]} are up to date")
            return 0
        for step in STEPS:
            exercises = write(step, root, force)
            print(f"skeletons: {relative(directory(step, root))}/: {', '.join(exercises)}")
    except SkeletonError as error:
        print(f"skeletons: {error}")
        return 1
    return 0
