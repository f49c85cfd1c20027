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

Besides one command and its output, an `Output` can say: which commands run unseen before it
in the same scratch directory and cluster (`setup`: a crashed run before the one that takes
over), which shown commands follow it (`more`), that it is a server left running until its
start line appears (`until`, then SIGINT), which masters its cluster has (`masters`), which
runs of similar lines to fold (`folds`, as a post does by hand with "…"), and how to present
what a reader does not need to read in full (`present`: long IDs shortened to `0c9dfb2e-…-S0`).
A command that shows only some lines of a run selects them itself (`grep` on a sandbox's
`stderr`; tools/scenes.py prints a scheduler's lines about one agent). A post may show no other
terminal output: `pasted_blocks` finds a text block with output lines that is not an include,
and the check fails on it.
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
import shutil
import signal
import socket
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
from typing import TYPE_CHECKING

from tools import ROOT

if TYPE_CHECKING:
    from localmesos.cluster import LocalCluster

DIRECTORY = Path("_includes") / "outputs"
COLUMNS, LINES = 80, 24
SHOWN_MASTER = "127.0.0.1:5050"  # the master that posts show, started by hand
SHOWN_STANDBY = "127.0.0.1:5051"  # a second master, with `masters=2`
SHOWN_ZOOKEEPER = "127.0.0.1:2181"  # `localmesos zookeeper`'s default port
SHOWN_WORK_DIR = "/tmp/localmesos-*"  # the work directory that `localmesos` prints
# Step 3's schedulers serve their executor's code on this port. Outputs run at the same time,
# and so may other checkouts: each output's step 3 runs get a free port of their own.
SHOWN_CODE = "127.0.0.1:5070"
SERVES_CODE = "-m step3_failover"
TIMEOUT = 180.0
GRACE = 10.0  # s: how long a server has to stop after SIGINT
ELLIPSIS = "…"
# The health checks of the cluster that stands for `localmesos --agents 2`. None of those
# outputs loses an agent on purpose, and `--check` runs beside pytest: on a starved machine an
# agent can miss `localmesos`'s 2 s of pings, and a run full of TASK_UNREACHABLE says nothing
# about the post. Mesos's own default is 75 s (5 pings, 15 s apart).
AGENT_TIMEOUT = 15.0
# How many commands `--check` runs at once; see render_all.
PARALLEL = (os.cpu_count() or 1) + 1


@dataclass(frozen=True)
class Fold:
    """A run of more than ``first + last + 1`` consecutive lines matching ``pattern`` is shown
    as its first ``first`` lines, "…" and its last ``last`` lines. Lines of a run that vary
    between runs (which chunk came first) are also declared volatile, or made `loose`."""

    pattern: str
    first: int = 1
    last: int = 1


# Presentation: a Mesos ID's UUID shortened to its first 8 digits, "0c9dfb2e-…-S0".
SHORT_IDS = (
    r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    r"\1-" + ELLIPSIS,
)


@dataclass(frozen=True)
class Output:
    """One command as a post shows it, and how to run it here."""

    name: str
    shown: str  # what the post prints after "$ "
    # What runs instead, when it is not the shown command itself (`make demo` runs this after
    # its set-up). Both run in bash, with `.venv/bin/python` and `{python}` as this interpreter.
    command: str | None = None
    # Its exit status; a process killed by a signal has minus its number (-9: SIGKILL).
    status: int = 0
    # Shown against a `localmesos --agents 2` in another terminal: the run gets a cluster of its
    # own, on a free port that replaces the shown 127.0.0.1:5050 in the commands; in what they
    # print, the cluster's ports are shown as the post's again.
    cluster: bool = False
    # With `cluster`, 2 masters under ZooKeeper: 127.0.0.1:5050 is the first (the leader),
    # 127.0.0.1:5051 the standby and 127.0.0.1:2181 the ZooKeeper (zk://127.0.0.1:2181/mesos).
    masters: int = 1
    # Commands run first, unseen, in the same scratch directory and against the same cluster
    # (a run that crashes before the one that takes over); their status is not checked.
    setup: tuple[str, ...] = ()
    # Shown commands run after the first, each shown with its output; each must exit with 0.
    more: tuple[str, ...] = ()
    # Servers: stop each command with SIGINT once a line matching this regex shows; its
    # output ends with that line, and its status is not checked.
    until: str | None = None
    # Runs of similar lines shown as their first and last few; see Fold.
    folds: tuple[Fold, ...] = ()
    # Presentation substitutions on what is saved and shown (regex, replacement): SHORT_IDS.
    present: tuple[tuple[str, str], ...] = ()
    # Lines that come in a different number and order on every run (regexes, matched against
    # the lines as shown and as sanitized: "-O12:" is "UUID-ON:" once sanitized).
    volatile: tuple[str, ...] = ()
    # Substitutions for numbers that vary with timing on lines that are otherwise checked.
    loose: tuple[tuple[str, str], ...] = ()
    needs: tuple[Callable[[], str | None], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.masters > 1 and zookeeper_missing not in self.needs:
            object.__setattr__(self, "needs", (*self.needs, zookeeper_missing))


def zookeeper_missing() -> str | None:
    from localmesos import zookeeper

    return zookeeper.unavailable()


def curl_missing() -> str | None:
    return None if shutil.which("curl") else "curl is not installed (make setup-dev installs it)"


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
    # `localmesos` in a terminal of its own, up to its start line (port 0: any free one).
    Output(
        "localmesos-start",
        ".venv/bin/localmesos --agents 2",
        ".venv/bin/localmesos --agents 2 --port 0",
        until=r"^localmesos: master at ",
        present=((r"http://127\.0\.0\.1:\d+", "http://" + SHOWN_MASTER),),
    ),
    Output(
        "step1-verbose",
        ".venv/bin/python -m step1_scheduler --master 127.0.0.1:5050 --verbose --quiet",
        cluster=True,
        folds=(Fold(r": launched \d+ tasks$", 2, 1),),
        loose=((r"launched \d+ tasks", "launched N tasks"),),
    ),
    Output(
        "step2-verbose",
        ".venv/bin/python -m step2_executor --master 127.0.0.1:5050 --verbose --quiet",
        cluster=True,
        # After the first two offers (19 tasks each, one per agent), the rest come as tasks end.
        volatile=(r": launched (?!19 )\d+ tasks$",),
    ),
    Output(
        "step2-cancel",
        ".venv/bin/python -m step2_executor --master 127.0.0.1:5050 --cancel-after 10 "
        "--verbose --quiet",
        status=1,
        cluster=True,
        volatile=(
            r"TASK_KILLED: cancelled by the scheduler",
            r"applied 'cancel'$",
            r"every chunk is launched",
            r": launched (?!19 )\d+ tasks$",
        ),
        # Then each executor's log says how many tasks it stopped (a sandbox's `stderr`).
        more=(
            "grep -h cancel: /tmp/localmesos-*/slaves/*-S*/frameworks/*/executors/*/runs/latest/"
            "stderr",
        ),
        loose=(
            (r"\b\d+ of 52 chunks", "N of 52 chunks"),
            (r"stopping \d+ running tasks", "stopping N running tasks"),
        ),
    ),
    Output(
        "step2-executor-killed",
        ".venv/bin/python -m tools.scenes executor-killed",
        present=(SHORT_IDS,),
        # Which agent's executor dies, and when its failure and the next offers come.
        volatile=(
            r"TASK_FAILED: Executor terminated",
            r"exited with signal SIGKILL",
            r": launched \d+ tasks$",
        ),
    ),
    Output(
        "step3-takeover",
        ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
        "--crash-after 10",
        status=-signal.SIGKILL,
        cluster=True,
        more=(
            ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state",
        ),
        loose=((r"chunk-\d+-attempt-\d+ is recorded", "chunk-N-attempt-N is recorded"),),
    ),
    Output(
        "step3-removed",
        ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
        "--quiet",
        cluster=True,
        setup=(
            ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
            "--failover-timeout 2 --crash-after 10 --quiet; sleep 4",
        ),
        volatile=(r"TASK_UNKNOWN: Reconciliation: Task is unknown",),
    ),
    Output(
        "step3-ls",
        "ls build/step3-state build/step3-state/results",
        cluster=True,
        setup=(
            ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
            "--crash-after 10 --quiet",
        ),
        more=("ls build/step3-state/tasks | wc -l",),
        # Which ten chunks are done, and how many tasks were launched, depends on timing.
        volatile=(r"^chunk-\d+(\s+chunk-\d+)*$",),  # ls pads its columns with tabs or spaces
        loose=((r"^\d+$", "N"),),
    ),
    Output(
        "step3-verbose",
        ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
        "--verbose --quiet",
        cluster=True,
        setup=(
            ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
            "--crash-after 10 --quiet",
        ),
        present=(SHORT_IDS,),
        volatile=(
            r": result of chunk-\d+-attempt-\d+ recorded$",
            r"ignoring TASK_\w+ for chunk-",
            r"finished; waiting for its result",
            r": launched \d+ tasks$",
        ),
        loose=(
            (r"\d+ tasks that may still run, \d+ chunks", "N tasks that may still run, N chunks"),
            (r"reconciling \d+ tasks", "reconciling N tasks"),
        ),
    ),
    Output(
        "step3-fail-chunk",
        ".venv/bin/python -m step3_failover --master 127.0.0.1:5050 --state build/step3-state "
        "--fail-chunk 3 --quiet",
        status=1,
        cluster=True,
    ),
    Output(
        "step3-partition",
        ".venv/bin/python -m tools.scenes agent-partitioned",
        present=(SHORT_IDS,),
        # Which tasks the agent ran at the cut; whether each was still running when the cut
        # healed (adopted), or had ended (its result comes late), and when the notice comes.
        volatile=(
            r"is TASK_RUNNING: its chunk is on its way$",
            r": result of chunk-\d+-attempt-\d+ recorded$",
            r"ignoring TASK_\w+ for chunk-",
            r" was lost$",
        ),
        loose=((r"chunk([- ])\d+", r"chunk\1N"),),
    ),
    Output(
        "step3-standby",
        ".venv/bin/python -m step3_failover --master zk://127.0.0.1:2181/mesos "
        "--state zk://127.0.0.1:2181/bikeshare --quiet",
        # The first copy, started a moment earlier in another terminal, leads until it crashes;
        # the second starts once the first serves the executor's code.
        ".venv/bin/python -m step3_failover --master zk://127.0.0.1:2181/mesos "
        "--state zk://127.0.0.1:2181/bikeshare --crash-after 10 --quiet >/dev/null 2>&1 & "
        "until curl -sf -o /dev/null http://127.0.0.1:5070/step3-executor.tar.gz; do sleep 0.2; "
        "done; sleep 1; .venv/bin/python -m step3_failover --master zk://127.0.0.1:2181/mesos "
        "--state zk://127.0.0.1:2181/bikeshare --quiet",
        cluster=True,
        masters=2,
        needs=(curl_missing,),
        loose=((r"^standby: \S+ pid", "standby: HOST pid"),),
    ),
    Output(
        "step3-election",
        '.venv/bin/python -c "from kazoo.client import KazooClient as K; '
        "zk = K('127.0.0.1:2181'); zk.start(); print(sorted(zk.get_children('/mesos')))\"",
        cluster=True,
        masters=2,
        needs=(curl_missing,),
        more=("curl -si http://127.0.0.1:5051/master/state | head -3",),  # the standby's answer
    ),
    Output(
        "step3-master-killed",
        ".venv/bin/python -m tools.scenes master-killed",
        present=(SHORT_IDS,),
        volatile=(
            r"^WARNING pymesos\.process: ",
            r"^ERROR pymesos\.process: ",
            r": result of chunk-\d+-attempt-\d+ recorded$",
            r"ignoring TASK_\w+ for chunk-",
            r"finished; waiting for its result",
            r": launched \d+ tasks$",
            r"disconnected from the master",
        ),
        loose=((r"\b\d+ tasks", "N tasks"),),
        needs=(zookeeper_missing,),
    ),
]

# What a terminal shows differently on every run, besides what notebooks/sanitize.cfg hides.
TERMINAL_RULES = [
    (r"^(\w+): +\d+%\|[^|]*\|.*$", r"\1: PROGRESS"),  # a tqdm bar, whatever its state
    (re.escape(tempfile.gettempdir()) + r"/[\w.-]+", "TMPDIR"),
    (r"\b[0-9a-fA-F]{8}-" + ELLIPSIS + r"-([SO]?)\d+", r"UUID-\1N"),  # SHORT_IDS
    (r"\b[0-9a-fA-F]{8}-" + ELLIPSIS, "UUID"),
    (r"TIMESTAMP,\d+", "TIMESTAMP"),  # the milliseconds of Python's logging
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


def elide(text: str, volatile: tuple[str, ...], folds: tuple[Fold, ...] = ()) -> str:
    """Fold each run of similar lines: a `Fold`'s keeps its first and last few, and a run of
    more than three lines matching one volatile pattern (not in a fold) its first and last."""
    rules = [(re.compile(fold.pattern), fold.first, fold.last) for fold in folds]
    rules += [(re.compile(pattern), 1, 1) for pattern in volatile]
    if not rules:
        return text
    kept: list[str] = []
    run: list[str] = []
    rule: tuple[re.Pattern[str], int, int] | None = None

    def flush() -> None:
        if rule is not None:
            _, first, last = rule
            fold = len(run) > first + last + 1
            kept.extend([*run[:first], ELLIPSIS, *run[len(run) - last :]] if fold else run)
        run.clear()

    for line in text.splitlines():
        matching = next((r for r in rules if r[0].search(line)), None)
        if matching is not None and matching is rule:
            run.append(line)
        elif line.strip() == "" and run:
            continue  # a blank line inside a run of warnings, left by a cleared progress bar
        else:
            flush()
            rule = matching
            (run if matching is not None else kept).append(line)
    flush()
    return "\n".join(kept)


def run_in_terminal(
    argv: list[str], cwd: Path, timeout: float = TIMEOUT, until: str | None = None
) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdout and stderr; its status and output.
    With ``until``, a server: once a line matching it shows, SIGINT stops it, and the output
    ends with that line."""
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
    started = re.compile(until, re.MULTILINE) if until else None
    interrupted = 0.0  # when SIGINT was sent
    try:
        while True:
            if interrupted and time.monotonic() > interrupted + GRACE:
                os.killpg(process.pid, signal.SIGKILL)  # a server deaf to SIGINT
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
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
            if started and not interrupted:
                text = b"".join(chunks).decode("utf-8", errors="replace")
                if started.search(text) and text.endswith("\n"):
                    os.killpg(process.pid, signal.SIGINT)
                    interrupted = time.monotonic()
    finally:
        os.close(controller)
    status = process.wait()
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if started:
        found = started.search(text)
        if not found:
            raise OutputError(f"{shlex.join(argv)}: exited ({status}) before printing /{until}/")
        text = text[: text.find("\n", found.end()) + 1 or len(text)]
    return status, text


def addresses(cluster: LocalCluster | None) -> dict[str, str]:
    """The addresses that posts show, and the cluster's own ones that replace them."""
    if cluster is None:
        return {}
    if cluster.zk is None:
        return {SHOWN_MASTER: cluster.master}
    shown = dict(zip([SHOWN_MASTER, SHOWN_STANDBY], cluster.masters, strict=False))
    shown[SHOWN_ZOOKEEPER] = cluster.zk.removeprefix("zk://").split("/")[0]
    return shown


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_shown(text: str, shown: dict[str, str]) -> str:
    """The cluster's addresses in a command's output, written as the post's commands show them
    (a master's redirect names it "localhost")."""
    for address, actual in shown.items():
        port, actual_port = address.rsplit(":", 1)[1], actual.rsplit(":", 1)[1]
        text = re.sub(rf"\b(127\.0\.0\.1|localhost):{actual_port}\b", rf"\1:{port}", text)
    return text


def render(output: Output, cwd: Path) -> str:
    """Run one output's commands; what the post shows, from the first prompt line on."""
    from localmesos.cluster import LocalCluster

    python = shlex.quote(sys.executable)

    def run(command: str, until: str | None = None) -> tuple[int, str]:
        command = command.replace(".venv/bin/python", python).replace("{python}", python)
        command = command.replace(".venv/bin/localmesos", f"{python} -m localmesos")
        for address, actual in shown.items():
            command = command.replace(address, actual)
        if cluster is not None:
            command = command.replace(SHOWN_WORK_DIR, str(cluster.work_dir))
        command = command.replace(SERVES_CODE, f"{SERVES_CODE} --code-port {code_port}")
        return run_in_terminal(["bash", "-c", command], cwd, until=until)

    def presented(raw: str) -> str:
        text = elide(screen(raw), output.volatile, output.folds)
        for regex, replace in output.present:
            text = re.sub(regex, replace, text)
        return as_shown(text, shown).rstrip("\n")

    cluster = (
        LocalCluster(agents=2, masters=output.masters, agent_timeout=AGENT_TIMEOUT)
        if output.cluster
        else None
    )
    if cluster is not None:
        cluster.start()
    try:
        code_port = free_port()
        shown = {**addresses(cluster), SHOWN_CODE: f"127.0.0.1:{code_port}"}
        for command in output.setup:
            run(command)
        status, raw = run(output.command or output.shown, output.until)
        parts = [f"$ {output.shown}", presented(raw)]
        if status != output.status and output.until is None:
            raise OutputError(
                f"{output.name}: '{output.shown}' exited with status {status}, not "
                f"{output.status}; it printed:\n{parts[1]}"
            )
        for command in output.more:
            status, raw = run(command, output.until)
            parts += [f"$ {command}", presented(raw)]
            if status != 0 and output.until is None:
                raise OutputError(f"{output.name}: '{command}' exited with status {status}")
    finally:
        if cluster is not None:
            cluster.stop()
    return "\n".join(part for part in parts if part)


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


# The code blocks that a terminal's output could be pasted into; ```python blocks are listings,
# which sync-listings copies from the code.
TERMINAL_BLOCKS = {"", "text", "console", "shell", "sh", "bash", "shell-session", "output"}


def pasted_blocks(root: Path = ROOT) -> list[str]:
    """The terminal blocks in posts that show a terminal's output without including it: a
    block whose lines are not all `$ command` lines (with their `\\` continuations), includes
    or blank. Each as "post:line: its first such line"."""
    found = []
    for post in sorted((root / "_posts").glob("*.md")):
        start, language, continued, pasted = 0, "", False, ""
        for number, line in enumerate(post.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if not start:
                if text.startswith("```"):
                    start, language, continued, pasted = number, text[3:].strip(), False, ""
            elif text == "```":
                if pasted and language in TERMINAL_BLOCKS:
                    found.append(f"{post.name}:{start}: {pasted}")
                start = 0
            elif continued or text.startswith("$ ") or text.startswith("{%") or not text:
                continued = text.endswith("\\")
            elif not pasted:
                pasted = text
    return found


def render_one(output: Output) -> str:
    print(f"sync-outputs: running '{output.shown}'", flush=True)
    with tempfile.TemporaryDirectory(prefix="outputs-") as scratch:
        return render(output, Path(scratch))


def render_all(outputs: list[Output]) -> list[str]:
    """Each output's fresh run, in order. The commands run a few at a time: each has its own
    scratch directory, terminal and cluster (on ports the OS picks), and much of their time is
    spent waiting (a connect timeout, faults being noticed, a ZooKeeper starting). The longest
    start first, so that the short ones fill the gaps instead of a long one coming last."""
    if not outputs:
        return []
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {o.name: pool.submit(render_one, o) for o in sorted(outputs, key=expected_work)}
        return [futures[output.name].result() for output in outputs]


def expected_work(output: Output) -> int:
    """A rough rank of how long an output takes, longest (lowest) first: what needs ZooKeeper,
    then a staged failure (tools.scenes), then the runs that come after others."""
    return -(
        4 * (zookeeper_missing in output.needs)
        + 2 * ("tools.scenes" in output.shown)
        + len(output.setup)
        + len(output.more)
    )


def check(outputs: list[Output], root: Path = ROOT, ci: bool = False) -> list[str]:
    """Problems with the saved outputs: missing, unused, or not what a run prints now."""
    from tools import in_ci

    problems = []
    sanitize = sanitizer()
    uses = included(root)
    for block in pasted_blocks(root):
        problems.append(
            f"{block}: terminal output pasted by hand; add an Output in tools/outputs.py and "
            "include what 'sync-outputs' writes"
        )
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
