"""Terminal outputs shown in posts, taken from real runs, as the Rust book does with its
`output.txt` files.

Each output is a command that a post shows, run here in a pseudo-terminal (so that progress
bars and log lines look as they do on a reader's screen), reduced to what the screen shows at
the end, and saved in ``_includes/outputs/NAME.txt``. Posts include it inside a text block:

    ```text
    {% include outputs/demo-step1.txt %}
    ```

``sync-outputs`` runs the commands and rewrites the files; ``sync-outputs --check`` runs them
again into a scratch directory and fails when a saved output no longer matches, once what
changes from run to run (ids, times, rates, ports, pids, temporary paths) is hidden on both
sides with notebooks/sanitize.cfg and a few rules for terminals. Lines whose number and order
depend on timing (a failure run's warnings) are declared per output: the file keeps the first
and the last of a run of them, and the check ignores them.
"""

from __future__ import annotations

import argparse
import configparser
import difflib
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fcntl import ioctl
from pathlib import Path

from tools import ROOT

DIRECTORY = Path("_includes") / "outputs"
COLUMNS, LINES = 80, 24
SHOWN_MASTER = "127.0.0.1:5050"  # the master that posts show, started by hand
TIMEOUT = 180.0
ELLIPSIS = "…"
# How many commands `--check` runs at once; see render_all.
PARALLEL = (os.cpu_count() or 1) + 1


@dataclass(frozen=True)
class Output:
    """One command as a post shows it, and how to run it here."""

    name: str
    shown: str  # what the post prints after "$ "
    # What runs instead, when it is not the shown command itself (`make demo` runs this after
    # its set-up). Both run in bash, with `.venv/bin/python` and `{python}` as this interpreter.
    command: str | None = None
    status: int = 0
    # Shown against a `localmesos --agents 2` in another terminal: the run gets a cluster of its
    # own, on a free port that replaces the shown 127.0.0.1:5050.
    cluster: bool = False
    # Lines that come in a different number and order on every run (regexes).
    volatile: tuple[str, ...] = ()
    # Substitutions for numbers that vary with timing on lines that are otherwise checked.
    loose: tuple[tuple[str, str], ...] = ()
    needs: tuple[Callable[[], str | None], ...] = field(default=(), compare=False)


def zookeeper_missing() -> str | None:
    from localmesos import zookeeper

    return zookeeper.unavailable()


OUTPUTS = [
    Output("demo-step1", "make demo STEP=1", "{python} -m tools.demo --step 1"),
    Output("demo-step2", "make demo STEP=2", "{python} -m tools.demo --step 2"),
    Output(
        "demo-failures",
        "make demo FAILURES=1",
        "{python} -m tools.demo --failures",
        # The progress bar is redrawn in place: where its last state lands among the demo's
        # own lines depends on when the bar last redrew before each fault.
        volatile=(r"^WARNING step3_failover: ", r"^days: PROGRESS$"),
        loose=((r"^demo: \d+ chunks done:", "demo: N chunks done:"),),
        needs=(zookeeper_missing,),
    ),
    Output(
        "step1-no-master",
        ".venv/bin/python -m step1_scheduler --master 127.0.0.1:5099 --connect-timeout 3",
        status=1,
    ),
    Output("step2-executor-alone", ".venv/bin/python -m step2_executor.executor", status=2),
    Output(
        "step1-by-hand", ".venv/bin/python -m step1_scheduler --master 127.0.0.1:5050", cluster=True
    ),
    Output(
        "step1-fail-chunk",
        ".venv/bin/python -m step1_scheduler --master 127.0.0.1:5050 --fail-chunk 3 --quiet",
        status=1,
        cluster=True,
    ),
    Output(
        "step2-by-hand", ".venv/bin/python -m step2_executor --master 127.0.0.1:5050", cluster=True
    ),
    Output(
        "step2-fail-chunk",
        ".venv/bin/python -m step2_executor --master 127.0.0.1:5050 --fail-chunk 3 --quiet",
        status=1,
        cluster=True,
    ),
    Output(
        "bikeshare-chunk", ".venv/bin/python -m jobs.bikeshare chunk 7 --size demo | cut -c1-90"
    ),
]

# What a terminal shows differently on every run, besides what notebooks/sanitize.cfg hides.
TERMINAL_RULES = [
    (r"^(\w+): +\d+%\|[^|]*\|.*$", r"\1: PROGRESS"),  # a tqdm bar, whatever its state
    (re.escape(tempfile.gettempdir()) + r"/[\w.-]+", "TMPDIR"),
]


class OutputError(Exception):
    """A command did not end as its post says, or an output file is missing or stale."""


def screen(raw: str) -> str:
    """What a terminal shows once ``raw`` is written to it: a carriage return goes back to the
    start of the line, later text overwrites earlier text, ESC[K and ESC[2K erase; other escape
    sequences (colours, cursor moves for several bars) are dropped. Lines are not wrapped."""
    lines: list[str] = []
    line: list[str] = []
    column = 0
    for token in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n|\x08)", raw):
        if not token:
            continue
        if token == "\n":
            lines.append("".join(line).rstrip())
            line, column = [], 0
        elif token == "\r":
            column = 0
        elif token == "\x08":
            column = max(0, column - 1)
        elif token.startswith("\x1b["):
            if token.endswith("K"):
                if token[2:-1] == "2":  # the whole line; the cursor stays where it is
                    line = [" "] * column
                else:  # from the cursor to the end of the line
                    del line[column:]
        else:
            for char in token:
                if column < len(line):
                    line[column] = char
                else:
                    line.extend(" " * (column - len(line)))
                    line.append(char)
                column += 1
    if "".join(line).strip():
        lines.append("".join(line).rstrip())
    return "\n".join(lines)


def elide(text: str, volatile: tuple[str, ...]) -> str:
    """Keep the first and the last line of each run of more than three volatile lines."""
    if not volatile:
        return text
    pattern = re.compile("|".join(volatile))
    lines, run, kept = text.splitlines(), [], []

    def flush() -> None:
        kept.extend(run if len(run) <= 3 else [run[0], ELLIPSIS, run[-1]])
        run.clear()

    for line in lines:
        if pattern.search(line):
            run.append(line)
        elif line.strip() == "" and run:
            continue  # a blank line inside a run of warnings, left by a cleared progress bar
        else:
            flush()
            kept.append(line)
    flush()
    return "\n".join(kept)


def run_in_terminal(argv: list[str], cwd: Path, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdout and stderr; its status and output."""
    controller, terminal = pty.openpty()
    ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TERM": "xterm",
        "COLUMNS": str(COLUMNS),
        "LINES": str(LINES),
    }
    process = subprocess.Popen(
        argv, cwd=cwd, env=environment, stdin=subprocess.DEVNULL, stdout=terminal,
        stderr=terminal, start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise OutputError(f"{shlex.join(argv)}: no end after {timeout:.0f} s")
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
    status = process.wait()
    return status, b"".join(chunks).decode("utf-8", errors="replace")


def render(output: Output, cwd: Path) -> str:
    """Run one output's command; what the post shows, from the prompt line on."""
    python = shlex.quote(sys.executable)
    command = (output.command or output.shown).replace(".venv/bin/python", python)
    command = command.replace("{python}", python)
    if output.cluster:
        from localmesos.cluster import LocalCluster

        with LocalCluster(agents=2) as cluster:
            command = command.replace(SHOWN_MASTER, cluster.master)
            status, raw = run_in_terminal(["bash", "-c", command], cwd)
    else:
        status, raw = run_in_terminal(["bash", "-c", command], cwd)
    shown = elide(screen(raw), output.volatile)
    if status != output.status:
        raise OutputError(
            f"{output.name}: '{output.shown}' exited with status {status}, not "
            f"{output.status}; it printed:\n{shown}"
        )
    return f"$ {output.shown}\n{shown}".rstrip("\n")


def sanitizer(config: Path = ROOT / "notebooks" / "sanitize.cfg") -> Callable[[str], str]:
    """notebooks/sanitize.cfg, in order, then the terminal rules: one line at a time."""
    parser = configparser.ConfigParser()
    parser.read(config)
    rules = [(parser[s]["regex"], parser[s]["replace"]) for s in parser.sections()]
    rules += TERMINAL_RULES
    compiled = [(re.compile(regex, re.MULTILINE), replace) for regex, replace in rules]

    def sanitize(text: str) -> str:
        for regex, replace in compiled:
            text = regex.sub(replace, text)
        return text

    return sanitize


def comparable(text: str, output: Output, sanitize: Callable[[str], str]) -> list[str]:
    """The lines of an output that must match between two runs."""
    volatile = re.compile("|".join(output.volatile)) if output.volatile else None
    lines = []
    for line in sanitize(text).splitlines():
        if volatile and (volatile.search(line) or line == ELLIPSIS):
            continue
        for regex, replace in output.loose:
            line = re.sub(regex, replace, line)
        if line.strip():
            lines.append(line)
    return lines


def path(output: Output, root: Path = ROOT) -> Path:
    return root / DIRECTORY / f"{output.name}.txt"


def missing_needs(output: Output) -> str | None:
    return next(filter(None, (need() for need in output.needs)), None)


def included(root: Path = ROOT) -> dict[str, list[str]]:
    """Which posts include each output file."""
    found: dict[str, list[str]] = {}
    for post in sorted((root / "_posts").glob("*.md")):
        for name in re.findall(r"\{%-?\s*include\s+outputs/([\w.-]+)\.txt", post.read_text()):
            found.setdefault(name, []).append(post.name)
    return found


def render_one(output: Output) -> str:
    print(f"sync-outputs: running '{output.shown}'", flush=True)
    with tempfile.TemporaryDirectory(prefix="outputs-") as scratch:
        return render(output, Path(scratch))


def render_all(outputs: list[Output]) -> list[str]:
    """Each output's fresh run, in order. The commands run at the same time: each has its own
    scratch directory, terminal and cluster (on ports the OS picks), and most of their time is
    spent waiting (a connect timeout, the demo's faults being noticed), so together they take
    about as long as the longest (the demo with failures) rather than the sum of all."""
    if not outputs:
        return []
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return list(pool.map(render_one, outputs))


def check(outputs: list[Output], root: Path = ROOT, ci: bool = False) -> list[str]:
    """Problems with the saved outputs: missing, unused, or not what a run prints now."""
    from tools import in_ci

    problems = []
    sanitize = sanitizer()
    uses = included(root)
    for name in sorted(set(uses) - {o.name for o in OUTPUTS}):
        problems.append(f"{', '.join(uses[name])} include outputs/{name}.txt, which no tool writes")
    runnable = []
    for output in outputs:
        saved = path(output, root)
        if not saved.is_file():
            problems.append(
                f"{saved.relative_to(root)} is missing: run 'sync-outputs {output.name}'"
            )
            continue
        if output.name not in uses:
            problems.append(f"{saved.relative_to(root)} is in no post")
        missing = missing_needs(output)
        if missing:
            if ci or in_ci():
                problems.append(f"{output.name}: cannot run: {missing}")
            else:
                print(f"sync-outputs: {output.name}: not checked here: {missing}")
            continue
        runnable.append(output)
    for output, fresh in zip(runnable, render_all(runnable), strict=True):
        saved = path(output, root)
        old = comparable(saved.read_text(encoding="utf-8"), output, sanitize)
        new = comparable(fresh, output, sanitize)
        if old != new:
            diff = "\n".join(
                difflib.unified_diff(
                    old, new, "saved (sanitized)", "this run (sanitized)", lineterm=""
                )
            )
            problems.append(
                f"{saved.relative_to(root)} is stale: run 'sync-outputs {output.name}' and "
                f"commit it\n{diff}"
            )
    return problems


def write(outputs: list[Output], root: Path = ROOT) -> None:
    for output in outputs:
        missing = missing_needs(output)
        if missing:
            raise OutputError(f"{output.name}: cannot run: {missing}")
        text = render_one(output)  # one at a time: the saved outputs come from a quiet machine
        target = path(output, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        # No newline at the end: the include sits on its own line inside the text block.
        target.write_text(text, encoding="utf-8")
        print(f"sync-outputs: wrote {target.relative_to(root)}")


def main(argv: list[str] | None = None) -> int:
    names = [output.name for output in OUTPUTS]
    parser = argparse.ArgumentParser(prog="sync-outputs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a saved output is stale")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {names}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown output {', '.join(unknown)}; choose from {', '.join(names)}")
    chosen = [output for output in OUTPUTS if not args.names or output.name in args.names]
    try:
        if args.check:
            problems = check(chosen)
            for problem in problems:
                print(f"sync-outputs: {problem}")
            if problems:
                return 1
            print(f"sync-outputs: {len(chosen)} output(s) match a fresh run")
        else:
            write(chosen)
    except OutputError as error:
        print(f"sync-outputs: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
