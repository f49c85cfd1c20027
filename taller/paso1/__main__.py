# Generated from step1_scheduler/__main__.py by `python -m taller generate`: the workshop's
# skeleton of step 1. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=1`.
# fingerprint: 933a629fd480204a
"""Run the example job on a Mesos cluster, one command task per chunk.

python -m taller.paso1 --master 127.0.0.1:5050
python -m taller.paso1 --master zk://127.0.0.1:2181/mesos --size small
python -m taller.paso1 --master 192.168.1.10:5050 --principal ana --secret ...  # a room
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import sys
import time
from pathlib import Path

from pymesos import MesosSchedulerDriver
from tqdm import tqdm

import jobs
from jobs import bikeshare
from taller.paso1.sandbox import Credential
from taller.paso1.scheduler import JobScheduler, Settings

# Where the agents find the `jobs` package by default: this checkout. That is right when the
# agents run on this machine (localmesos); the compose cluster mounts the checkout at /taller.
REPOSITORY = str(Path(jobs.__file__).resolve().parent.parent)
MASTER = re.compile(r"^(zk://[^/\s]+/\S+|[\w.-]+:\d{1,5})$")


class JobError(Exception):
    """The job could not run to the end; the message says why."""


def framework_info(credential: Credential | None = None) -> dict:
    info = {
        "user": getpass.getuser(),  # the agents run our tasks as this user (if they switch users)
        "name": "step1: bike-share trips",
        # Step 1 does not survive its own failure (step 3 will): with no failover timeout, the
        # master kills our tasks and forgets the framework as soon as we disconnect.
        "failover_timeout": 0.0,
    }
    if credential is not None:
        # A cluster that authenticates frameworks (a workshop room) checks that this is the
        # principal we authenticated as.
        info["principal"] = credential.principal
    return info


def run(
    master: str, settings: Settings, *, progress: bool = True, connect_timeout: float = 10.0
) -> JobScheduler:
    """Register with the master, run every chunk, and tear the framework down."""
    bar = tqdm(
        total=bikeshare.SIZES[settings.size].weeks,
        unit="chunk",
        desc="weeks",
        disable=not progress,
        delay=0.1,
    )
    scheduler = JobScheduler(settings, on_progress=lambda done, total: bar.update(1))
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
            pass
    finally:
        # stop() without failover sends TEARDOWN: the master kills whatever of ours still
        # runs, and the framework is gone.
        driver.stop()
        driver.join()
        bar.close()
    if scheduler.failure:
        raise JobError(scheduler.failure)
    return scheduler


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        prog="python -m taller.paso1",
        description="Count a year of bike-share trips on a Mesos cluster, one command task "
        "per week.",
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
        help="the dataset: 'small' for tests, 'demo' for a whole year (default: %(default)s)",
    )
    parser.add_argument(
        "--task-cpus",
        type=float,
        default=0.5,
        metavar="CPUS",
        help="cpus for each task (default: %(default)s)",
    )
    parser.add_argument(
        "--task-mem",
        type=float,
        default=128.0,
        metavar="MB",
        help="memory for each task, in MB (default: %(default)s)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="attempts per chunk before the job fails (default: %(default)s)",
    )
    parser.add_argument(
        "--task-python",
        default=sys.executable,
        metavar="PATH",
        help="the Python that runs a chunk on the agents (default: this one, "
        "%(default)s; on the compose cluster: python3)",
    )
    parser.add_argument(
        "--task-pythonpath",
        default=REPOSITORY,
        metavar="DIR",
        help="where the agents find the 'jobs' package (default: this checkout, "
        "%(default)s; on the compose cluster: /taller)",
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
        "--chart", metavar="PNG", help="where to draw the chart (default: build/step1-SIZE.png)"
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
        help="log every offer and update, and pymesos's own messages",
    )
    args = parser.parse_args(argv)

    if not MASTER.match(args.master):
        parser.error(
            f"--master {args.master!r}: expected HOST:PORT (like 127.0.0.1:5050) "
            "or zk://HOST:PORT/PATH"
        )
    for name in ("task_cpus", "task_mem", "connect_timeout"):
        if not getattr(args, name) > 0:  # also refuses NaN
            parser.error(
                f"--{name.replace('_', '-')} must be a positive number, not {getattr(args, name)}"
            )
    if args.max_attempts < 1:
        parser.error(f"--max-attempts must be 1 or more, not {args.max_attempts}")
    if (args.principal is None) != (args.secret is None):
        parser.error("--principal and --secret go together ($MESOS_PRINCIPAL, $MESOS_SECRET)")
    weeks = bikeshare.SIZES[args.size].weeks
    if args.fail_chunk is not None and not 0 <= args.fail_chunk < weeks:
        parser.error(
            f"--fail-chunk {args.fail_chunk}: the '{args.size}' job has chunks 0 to {weeks - 1}"
        )
    settings = Settings(
        size=args.size,
        task_cpus=args.task_cpus,
        task_mem=args.task_mem,
        max_attempts=args.max_attempts,
        task_python=args.task_python,
        task_pythonpath=args.task_pythonpath,
        fail_chunk=args.fail_chunk,
        credential=None if args.principal is None else Credential(args.principal, args.secret),
    )
    return args, settings


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
        with logging_redirect_tqdm():
            scheduler = run(
                args.master, settings, progress=not args.quiet, connect_timeout=args.connect_timeout
            )
    except JobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the framework was torn down", file=sys.stderr)
        return 130
    except Exception as error:
        # pymesos hands an error in its event thread to the main thread, after TEARDOWN.
        logging.getLogger("taller.paso1").debug("traceback", exc_info=True)
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
        result, args.chart or f"build/step1-{args.size}.png", lang=args.chart_lang
    )
    agents = {u["agent"] for u in scheduler.timeline.updates if u["state"] == "TASK_FINISHED"}
    on = f"{len(agents)} agent{'' if len(agents) == 1 else 's'}"
    print(f"{scheduler.total} chunks on {on} in {time.monotonic() - started:.1f} s")
    print(bikeshare.summary(result))
    print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
