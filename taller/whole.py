"""The last check of every step: the package's own command line, on a local cluster, with the
small job. What it prints is what the checker shows once every check passes."""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator
from typing import Any

from jobs import bikeshare
from localmesos.cluster import LocalCluster
from taller.checker import Mismatch, Package
from tools import ROOT

SMALL = bikeshare.SIZES["small"]
# The small job takes a second or two; a package that has not finished by then never will.
TIMEOUT = 60.0
LOGGERS = ("", "pymesos", "kazoo")  # what the steps' main() reconfigures


@contextlib.contextmanager
def isolated_logging() -> Iterator[None]:
    """The steps' main() configures logging for a process of its own; put it back after."""
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.level, logger.propagate))
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def run_main(package: Package, *options: str) -> str:
    """`python -m PACKAGE --size small ...` against a LocalCluster of two agents, in this process.
    Returns what it printed; raises Mismatch if it fails, hangs or gets the result wrong."""
    main = package.main
    created: list[Any] = []

    class Recorded(main.JobScheduler):  # type: ignore[name-defined]
        """The package's scheduler, remembered so that a job that hangs can be ended."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    timed_out = threading.Event()

    def abandon() -> None:
        timed_out.set()
        for scheduler in created:
            scheduler.failure = scheduler.failure or "stopped by the checker"
            scheduler.finished.set()

    chart = ROOT / "build" / "taller" / f"{package.name}-small.png"
    argv = ["--size", "small", "--quiet", "--chart", str(chart), *options]
    out, err = io.StringIO(), io.StringIO()
    original = main.JobScheduler
    main.JobScheduler = Recorded
    timer = threading.Timer(TIMEOUT, abandon)
    try:
        with (
            LocalCluster(agents=2, allocation_interval=0.1) as cluster,
            isolated_logging(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            timer.start()
            try:
                code = main.main(["--master", cluster.master, *argv])
            except SystemExit as exited:
                code = exited.code
    finally:
        timer.cancel()
        main.JobScheduler = original
    output = out.getvalue() + err.getvalue()
    if timed_out.is_set():
        raise Mismatch("timeout", seconds=TIMEOUT, output=output)
    if code != 0:
        raise Mismatch("exit", code=code, output=output)
    lines = out.getvalue().splitlines()
    summary = bikeshare.summary(bikeshare.run_sequential(SMALL))
    if summary not in lines:
        raise Mismatch("result", output=output)
    return out.getvalue()
