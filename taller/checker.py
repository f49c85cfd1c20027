"""The checker: runs a step's checks against a package, in order, and stops at the first that
fails, saying what was expected, what happened, a hint and the section of the post to reread.

The checks of step N live in `taller/checksN.py`; each is a function of a `Package` (the
attendee's skeleton, the solution, or anything shaped like them) that raises `Mismatch` when
the package does not behave as the step does. They are the step's behaviours, written once:
`make ejercicio` runs them against an attendee's code, and the tests run them against the
solution, the untouched skeletons and wrong answers (tests/unit/test_taller.py).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, TextIO

from taller import catalog
from tools import ROOT, site

STEPS = (1, 2, 3)
SOLUTIONS = {1: "step1_scheduler", 2: "step2_executor", 3: "step3_failover"}
WIDTH = 100  # columns of the report
# Seconds for a check of an exercise, which takes milliseconds (0.1 s at most on the solution).
# A check waits at most 10 s itself (taller/checks2.py: WAIT twice) before it names a wrong
# answer, so one that hangs is reported past that, and still within the 20 s that issue 14
# allows for a step's feedback.
CHECK_TIMEOUT = 15.0
BLOG = "http://127.0.0.1:4000"  # where `make blog` serves the posts


def skeleton(step: int) -> str:
    """The package that the workshop gives attendees for a step."""
    return f"taller.paso{step}"


class Mismatch(Exception):
    """The package did something other than what the check expects; `key` names what happened
    in the catalog, and `values` fill its text."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def expect(condition: object, key: str, **values: Any) -> None:
    if not condition:
        raise Mismatch(key, **values)


class Package:
    """The package under check: `package.scheduler` is its `scheduler` module, and so on."""

    def __init__(self, name: str) -> None:
        self.name = name

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.name}.{name}")

    def __getattr__(self, name: str) -> ModuleType:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.module(name)

    @property
    def main(self) -> ModuleType:
        return self.module("__main__")

    @property
    def directory(self) -> Path:
        module = importlib.import_module(self.name)
        assert module.__file__ is not None
        return Path(module.__file__).resolve().parent


@dataclass(frozen=True)
class Check:
    step: int
    name: str
    exercise: str | None  # None: the whole job
    run: Callable[[Package], str | None]  # what to show once every check passes, if anything

    @property
    def text(self) -> catalog.CheckText:
        return catalog.CHECKS[self.step, self.name]


REGISTRY: dict[int, list[Check]] = {step: [] for step in STEPS}


def check(step: int, name: str, exercise: str | None) -> Callable:
    """Register a check of `step`; checks run in the order they are defined."""

    def register(function: Callable[[Package], str | None]) -> Callable[[Package], str | None]:
        REGISTRY[step].append(Check(step, name, exercise, function))
        return function

    return register


def checks(step: int) -> list[Check]:
    importlib.import_module(f"taller.checks{step}")  # its @check decorators fill the registry
    return REGISTRY[step]


# -- language and the posts ---------------------------------------------------------------------


def language(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """English when the locale says so (LC_ALL, then LC_MESSAGES, then LANG, as gettext reads
    them); Spanish otherwise."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "en" if value.lower().startswith("en") else "es"
    return "es"


def anchor(heading: str) -> str:
    """The id that Jekyll's kramdown (GFM input) gives a heading: lower case, without what is
    neither a word character, a hyphen nor a space, and hyphens for spaces."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@dataclass(frozen=True)
class Place:
    heading: str
    path: Path  # the post's Markdown file
    line: int
    url: str


class SectionError(Exception):
    """A section names a heading that its post does not have."""


def place(section: catalog.Section, lang: str, root: Path = ROOT) -> Place:
    """Where a section is: the post of its step in that language, and the heading's line."""
    heading = section.en if lang == "en" else section.es
    for post in site.posts(root):
        if post.ref == f"paso-{section.step}" and post.lang == lang:
            lines = post.source.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                if re.fullmatch(r"#{2,4} " + re.escape(heading), line):
                    url = f"{BLOG}{post.permalink}#{anchor(heading)}"
                    return Place(heading, post.source, number, url)
            raise SectionError(f"{post.source.name} has no heading {heading!r}")
    raise SectionError(f"no {lang} post with ref paso-{section.step}")


def sections() -> set[catalog.Section]:
    """Every section that an exercise or a check sends an attendee to."""
    return {e.section for e in catalog.EXERCISES.values()} | {
        c.section for c in catalog.CHECKS.values()
    }


def missing_anchors(built: Path, root: Path = ROOT) -> list[str]:
    """The sections whose link has no heading with that id in the built blog (`jekyll build`'s
    output): the anchor() above must agree with kramdown, post by post."""
    problems = []
    for section in sorted(sections(), key=lambda s: (s.step, s.es)):
        for lang in ("es", "en"):
            where = place(section, lang, root)
            page, _, fragment = where.url.removeprefix(BLOG).partition("#")
            html = built / page.strip("/") / "index.html"
            text = html.read_text(encoding="utf-8") if html.is_file() else ""
            if f'id="{fragment}"' not in text:
                problems.append(f"{where.url}: no heading with that id in {relative(html)}")
    return problems


# -- where an error happened --------------------------------------------------------------------


def relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def location(tb: TracebackType | None, directory: Path) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback in the package under check."""
    found = None
    for frame in traceback.extract_tb(tb):
        if Path(frame.filename).resolve().is_relative_to(directory):
            found = frame
    return found


def describe(error: BaseException, directory: Path, lang: str) -> str:
    """An exception, as an attendee needs it: a stub not yet written, or where their code
    raised it."""
    frame = location(error.__traceback__, directory)
    if frame is None:
        return catalog.UI["raised-elsewhere"](lang).format(error=repr(error))
    where = catalog.UI["where"](lang).format(
        path=relative(Path(frame.filename).resolve()), line=frame.lineno, function=frame.name
    )
    stub = re.match(r"ejercicio (\S+):", str(error))
    if isinstance(error, NotImplementedError) and stub:
        return catalog.UI["stub"](lang).format(function=frame.name, exercise=stub[1], where=where)
    return catalog.UI["raised"](lang).format(error=repr(error), where=where)


@contextlib.contextmanager
def thread_errors(directory: Path) -> Iterator[list[BaseException]]:
    """Exceptions from the package's code that escape a thread while a check runs (a task's
    thread, for one); any other goes to Python's usual hook."""
    errors: list[BaseException] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and location(args.exc_traceback, directory):
            errors.append(args.exc_value)
        else:
            previous(args)

    threading.excepthook = hook
    try:
        yield errors
    finally:
        threading.excepthook = previous


@contextlib.contextmanager
def quiet(current: Check) -> Iterator[None]:
    """The steps log what a real run would want to know (a retry, a declined offer); in a check
    it is noise, since the check says what matters. The whole job keeps its logs."""
    if current.exercise is None:
        yield
        return
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


# -- the report ---------------------------------------------------------------------------------


class Report:
    def __init__(self, out: TextIO, lang: str) -> None:
        self.out = out
        self.lang = lang

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def field(self, label: str, text: str) -> None:
        """A labelled paragraph, wrapped, its continuation lines under the text."""
        indent = " " * 16
        lines = []
        for paragraph in text.split("\n"):
            lines += textwrap.wrap(
                paragraph, WIDTH - len(indent), break_long_words=False, break_on_hyphens=False
            ) or [""]
        first, *rest = lines
        self.line(f"  {label:<13} {first}".rstrip())
        for more in rest:
            self.line(f"{indent}{more}".rstrip())

    def failure(self, check: Check, happened: str) -> None:
        text, lang = check.text, self.lang
        self.line()
        self.field(catalog.UI["expected"](lang), text.expected(lang))
        self.field(catalog.UI["happened"](lang), happened)
        self.field(catalog.UI["hint"](lang), text.hint(lang))
        where = place(text.section, lang)
        section = catalog.UI["section"](lang).format(heading=where.heading, step=check.step)
        self.field(catalog.UI["reread"](lang), section)
        self.field("", f"{relative(where.path)}:{where.line}")
        # The address answers only while `make blog` serves the posts, which needs jekyll; the
        # Markdown file above is there in every clone.
        self.field("", catalog.UI["blog"](lang).format(url=where.url))


class Hung(Exception):
    """A check did not end: the package's code loops, or waits for something that never comes."""


def within_time(current: Check, subject: Package) -> str | None:
    """Run a check; one of an exercise's on a thread of its own, so that code that never
    returns (a loop that does not end) fails the check instead of hanging the checker. The
    whole job stays on this thread, where pymesos reports its errors, and times itself."""
    if current.exercise is None:
        return current.run(subject)
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((current.run(subject), None))
        except BaseException as error:
            outcome.append((None, error))

    worker = threading.Thread(target=run, name=f"check {current.name}", daemon=True)
    worker.start()
    worker.join(CHECK_TIMEOUT)
    if not outcome:
        raise Hung()  # the thread is a daemon: it does not keep the process alive
    output, error = outcome[0]
    if error is not None:
        raise error
    return output


def happened(check: Check, mismatch: Mismatch, lang: str) -> str:
    return check.text.happened[mismatch.key](lang).format(**mismatch.values)


def run(step: int, package: str | None = None, lang: str = "es", out: TextIO = sys.stdout) -> int:
    """Check `package` (by default the workshop's skeleton) against step `step`; 0 if every
    check passes."""
    name = package or skeleton(step)
    report = Report(out, lang)
    command = catalog.UI["command"](lang).format(step=step)
    try:
        subject = Package(name)
        directory = subject.directory
        # Every module now, on this thread: pymesos sets a signal handler when it is first
        # imported, which only the main thread may do, and the checks run on threads.
        for module in sorted(directory.glob("*.py")):
            subject.module(module.stem)
    except Exception as error:  # a syntax error in the attendee's code, for one
        frame = location(error.__traceback__, ROOT)
        where = getattr(error, "filename", None) and f"{error.filename}:{error.lineno}"
        if frame is not None and not where:
            where = f"{relative(Path(frame.filename))}:{frame.lineno}"
        text = catalog.UI["import"](lang).format(package=name, error=repr(error), where=where)
        report.line(text)
        return 1
    todo = checks(step)
    report.line(catalog.UI["header"](lang).format(step=step, package=name, count=len(todo)))
    report.line()
    shown: list[str] = []
    for number, current in enumerate(todo, 1):
        title = current.text.title(lang)
        counter = f"{number:>{len(str(len(todo)))}}/{len(todo)}"
        failure = None
        with thread_errors(directory) as escaped, quiet(current):
            try:
                output = within_time(current, subject)
            except Mismatch as mismatch:
                failure = happened(current, mismatch, lang)
            except Hung:
                failure = catalog.UI["hung"](lang).format(seconds=CHECK_TIMEOUT)
            except Exception as error:
                failure = describe(error, directory, lang)
            else:
                if output:
                    shown.append(output)
        if escaped:  # a task's thread died: that is the news, whatever the check saw after
            what = describe(escaped[0], directory, lang)
            failure = catalog.UI["thread"](lang).format(what=what)
        if failure is not None:
            report.line(f"  ✘ {counter}  {title}")
            report.failure(current, failure)
            report.line()
            report.line(
                catalog.UI["failed"](lang).format(
                    passed=number - 1, count=len(todo), command=command
                )
            )
            return 1
        report.line(f"  ✔ {counter}  {title}")
    report.line()
    report.line(catalog.UI["passed"](lang).format(count=len(todo)))
    report.line()
    for output in shown:
        report.line(output.rstrip("\n"))
    return 0
