# Generated from step2_executor/__main__.py by `python -m taller generate`: the workshop's
# skeleton of step 2. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=2`.
# fingerprint: edac8c76f66116ee
"""Run the example job on a Mesos cluster, one task per chunk on an executor of our own.

python -m taller.paso2 --master 127.0.0.1:5050
python -m taller.paso2 --master zk://127.0.0.1:2181/mesos --size small
python -m taller.paso2 --master 192.168.1.10:5050 --principal ana --secret ...  # a room
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pymesos import MesosSchedulerDriver
from tqdm import tqdm

from jobs import bikeshare
from step1_scheduler.sandbox import Credential
from taller.paso2 import archive, messages
from taller.paso2.scheduler import JobScheduler, Settings

MASTER = re.compile(r"^(zk://[^/\s]+/\S+|[\w.-]+:\d{1,5})$")
URI = re.compile(r"^(https?://[^/\s]+/\S*|file:///\S+)$")


class JobError(Exception):
    """The job could not run to the end; the message says why."""


def framework_info(credential: Credential | None = None) -> dict:
    info = {
        "user": getpass.getuser(),  # the agents run our tasks as this user (if they switch users)
        "name": "step2: bike-share trips",
        # Step 2 does not survive its own failure (step 3 will): with no failover timeout, the
        # master shuts our executors down and forgets the framework as soon as we disconnect.
        "failover_timeout": 0.0,
    }
    if credential is not None:
        # A cluster that authenticates frameworks (a workshop room) checks that this is the
        # principal we authenticated as.
        info["principal"] = credential.principal
    return info


def run(
    master: str,
    settings: Settings,
    *,
    progress: bool = True,
    connect_timeout: float = 10.0,
    cancel_after: int | None = None,
) -> JobScheduler:
    """Register with the master, run every chunk, and tear the framework down. With
    `cancel_after`, cancel the job once that many chunks are done."""
    bar = tqdm(
        total=bikeshare.SIZES[settings.size].weeks * bikeshare.WEEKDAYS,
        unit="day",
        desc="days",
        disable=not progress,
        delay=0.1,
    )
    # The bar moves with the executors' progress messages, and each finished task sets its
    # chunk's seven days, whether or not its messages arrived.
    scheduler = JobScheduler(settings, on_progress=lambda done, total: bar.update(done - bar.n))
    credential = settings.credential
    driver = MesosSchedulerDriver(
        scheduler,
        framework_info(credential),
        master,
        use_addict=True,
        # Sent with every call (HTTP Basic); None for a cluster that does not ask.
        principal=credential.principal if credential else None,
        secret=credential.secret if credential else None,
    )
    started = time.monotonic()
    try:
        driver.start()  # pymesos talks to the master on its own thread from here on
    except Exception as error:  # for a zk:// master, kazoo gives up on ZooKeeper here
        raise JobError(f"could not find the Mesos master through {master}: {error!r}") from error
    try:
        # pymesos retries an unreachable master forever; we give up after a while.
        remaining = connect_timeout - (time.monotonic() - started)
        if not scheduler.registered_event.wait(max(remaining, 0)):
            raise JobError(
                f"could not register with a Mesos master at {master} within "
                f"{connect_timeout:g} s; is the master running, and is --master right?"
            )
        while not scheduler.finished.wait(0.2):
            done = len(scheduler.results)
            if cancel_after is not None and done >= cancel_after and not scheduler.cancelled:
                scheduler.cancel(driver)  # from this thread: the scheduler takes its lock
    finally:
        # stop() without failover sends TEARDOWN: the master shuts our executors down (and
        # with them whatever of ours still runs), and the framework is gone.
        driver.stop()
        driver.join()
        bar.close()
    if scheduler.cancelled:
        raise JobError(
            f"the job was cancelled after {len(scheduler.results)} of {scheduler.total} chunks"
        )
    if scheduler.failure:
        raise JobError(scheduler.failure)
    return scheduler


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        prog="python -m taller.paso2",
        description="Count a year of bike-share trips on a Mesos cluster, one task per week, "
        "run by an executor of our own on each agent.",
    )
    parser.add_argument(
        "--master",
        required=True,
        metavar="HOST:PORT|zk://HOSTS/PATH",
        help="the Mesos master, or the ZooKeeper path where masters register",
    )
    parser.add_argument(
        "--size",
        choices=list(bikeshare.SIZES),
        default="demo",
        help="the dataset: 'small' for tests, 'demo' for a whole year, 'tiny' for a year of "
        "very small chunks (default: %(default)s)",
    )
    parser.add_argument(
        "--task-cpus",
        type=float,
        default=0.1,
        metavar="CPUS",
        help="cpus for each task, a thread in the executor (default: %(default)s)",
    )
    parser.add_argument(
        "--task-mem",
        type=float,
        default=32.0,
        metavar="MB",
        help="memory for each task, in MB (default: %(default)s)",
    )
    parser.add_argument(
        "--executor-cpus",
        type=float,
        default=0.1,
        metavar="CPUS",
        help="cpus for the executor itself, once per agent (default: %(default)s)",
    )
    parser.add_argument(
        "--executor-mem",
        type=float,
        default=64.0,
        metavar="MB",
        help="memory for the executor itself, in MB, once per agent (default: %(default)s)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="attempts per chunk before the job fails (default: %(default)s)",
    )
    parser.add_argument(
        "--executor-python",
        default=sys.executable,
        metavar="PATH",
        help="the Python that runs the executor on the agents (default: this one, "
        "%(default)s; on the compose cluster: python3)",
    )
    parser.add_argument(
        "--executor-uri",
        metavar="URI",
        help="where the agents fetch the executor's code, an archive that "
        "'python -m taller.paso2.archive DIR' builds: http(s)://... or, if every agent can "
        "read it, file:///PATH (default: this process serves it over HTTP)",
    )
    parser.add_argument(
        "--code-host",
        metavar="HOST",
        help="the name or address at which the agents reach this machine, for the URL of the "
        "code it serves (default: this machine's address on the way to the master; on the "
        "laptop with the compose cluster: host.docker.internal)",
    )
    parser.add_argument(
        "--principal",
        default=os.environ.get("MESOS_PRINCIPAL") or None,
        metavar="NAME",
        help="who we are to a cluster that authenticates frameworks, as a workshop room's "
        "does (default: $MESOS_PRINCIPAL)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("MESOS_SECRET") or None,
        help="the principal's secret (default: $MESOS_SECRET, which keeps it out of the "
        "shell's history)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up if no master accepts us within this time (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-chunk",
        type=int,
        metavar="WEEK",
        help="make this chunk (0-based) fail every time, to watch the retries",
    )
    parser.add_argument(
        "--cancel-after",
        type=int,
        metavar="N",
        help="once N chunks are done, send the executors a cancel message: the running "
        "chunks stop at their next day (TASK_KILLED) and the job ends with exit status 1, "
        "since its result is incomplete (if every chunk is done first, it simply succeeds)",
    )
    parser.add_argument(
        "--no-progress-messages",
        action="store_true",
        help="the executors send no progress messages: the bar moves only when a task finishes",
    )
    parser.add_argument(
        "--chart", metavar="PNG", help="where to draw the chart (default: build/step2-SIZE.png)"
    )
    parser.add_argument(
        "--chart-lang",
        choices=["es", "en"],
        default="es",
        help="the chart's language (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log every offer, update and message, and pymesos's own messages",
    )
    args = parser.parse_args(argv)

    if not MASTER.match(args.master):
        parser.error(
            f"--master {args.master!r}: expected HOST:PORT (like 127.0.0.1:5050) "
            "or zk://HOST:PORT/PATH"
        )
    for name in ("task_cpus", "task_mem", "executor_cpus", "executor_mem", "connect_timeout"):
        if not getattr(args, name) > 0:  # also refuses NaN
            parser.error(
                f"--{name.replace('_', '-')} must be a positive number, not {getattr(args, name)}"
            )
    if args.max_attempts < 1:
        parser.error(f"--max-attempts must be 1 or more, not {args.max_attempts}")
    if (args.principal is None) != (args.secret is None):
        parser.error("--principal and --secret go together ($MESOS_PRINCIPAL, $MESOS_SECRET)")
    if args.executor_uri is not None and not URI.match(args.executor_uri):
        parser.error(
            f"--executor-uri {args.executor_uri!r}: expected http://, https:// or file:///PATH"
        )
    if args.executor_uri is not None and args.code_host is not None:
        parser.error(
            "--code-host names the host of the code this process serves; "
            "with --executor-uri it serves none"
        )
    weeks = bikeshare.SIZES[args.size].weeks
    if args.fail_chunk is not None and not 0 <= args.fail_chunk < weeks:
        parser.error(
            f"--fail-chunk {args.fail_chunk}: the '{args.size}' job has chunks 0 to {weeks - 1}"
        )
    if args.cancel_after is not None and not 1 <= args.cancel_after < weeks:
        parser.error(
            f"--cancel-after {args.cancel_after}: the '{args.size}' job has {weeks} chunks; "
            f"cancel after 1 to {weeks - 1} of them"
        )
    settings = Settings(
        size=args.size,
        task_cpus=args.task_cpus,
        task_mem=args.task_mem,
        executor_cpus=args.executor_cpus,
        executor_mem=args.executor_mem,
        max_attempts=args.max_attempts,
        executor_python=args.executor_python,
        executor_uri=args.executor_uri or "",
        fail_chunk=args.fail_chunk,
        progress=not args.no_progress_messages,
        credential=None if args.principal is None else Credential(args.principal, args.secret),
    )
    return args, settings


@contextlib.contextmanager
def served(args: argparse.Namespace, settings: Settings) -> Iterator[None]:
    """Unless --executor-uri names the code's archive, build it and serve it over HTTP while
    the job runs, and put its URL in the settings: the agents fetch it from us."""
    if settings.executor_uri:
        yield
        return
    try:
        host = args.code_host or archive.local_address(args.master)
    except OSError as error:
        raise JobError(
            f"cannot tell our address on the way to {args.master} ({error}); "
            "name it with --code-host"
        ) from error
    with tempfile.TemporaryDirectory(prefix="step2-code-") as directory:
        settings.executor_uri, server = archive.serve(archive.build(Path(directory)), host)
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # pymesos brings a handler of its own, and its records reach ours too: each line twice.
    logging.getLogger("pymesos").handlers.clear()
    if not args.verbose:
        # pymesos and kazoo log each failed connection, pymesos with a traceback; run() says
        # what went wrong in one line. pymesos has a handler of its own, and it resets
        # kazoo's levels when it starts, so kazoo is cut off from our handler instead.
        logging.getLogger("pymesos").setLevel(logging.CRITICAL)
        logging.getLogger("kazoo").addHandler(logging.NullHandler())
        logging.getLogger("kazoo").propagate = False
    # Imported here: it loads tqdm.auto, which warns when imported into Jupyter.
    from tqdm.contrib.logging import logging_redirect_tqdm

    started = time.monotonic()
    try:
        with logging_redirect_tqdm(), served(args, settings):
            scheduler = run(
                args.master,
                settings,
                progress=not args.quiet,
                connect_timeout=args.connect_timeout,
                cancel_after=args.cancel_after,
            )
    except JobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the framework was torn down", file=sys.stderr)
        return 130
    except Exception as error:
        # pymesos hands an error in its event thread to the main thread, after TEARDOWN.
        logging.getLogger("taller.paso2").debug("traceback", exc_info=True)
        hint = ""
        if "HTTP 401" in str(error):  # pymesos's words when the master refuses our SUBSCRIBE
            hint = "; the master wants a valid --principal and --secret (a workshop room's)"
        print(
            f"error: the framework stopped after an error in pymesos's thread: {error!r}{hint}",
            file=sys.stderr,
        )
        return 1
    result = scheduler.result()
    chart = bikeshare.chart(
        result, args.chart or f"build/step2-{args.size}.png", lang=args.chart_lang
    )
    agents = {u["agent"] for u in scheduler.timeline.updates if u["state"] == "TASK_FINISHED"}
    # Each executor process says hello once: more executors than agents means one was lost
    # and a new one started in its place.
    executors = {
        (m["agent"], m.get("pid"))
        for m in scheduler.timeline.messages
        if m["direction"] == "in" and m["type"] == messages.HELLO
    }
    print(
        f"{scheduler.total} chunks on {plural(len(agents), 'agent')} "
        f"({plural(len(executors), 'executor')}) in {time.monotonic() - started:.1f} s"
    )
    print(bikeshare.summary(result))
    print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
