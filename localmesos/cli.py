"""`localmesos`: the embedded cluster in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from localmesos.cluster import DEFAULT_RESOURCES, LocalCluster
from localmesos.protocol import parse_duration
from localmesos.resources import Resources


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def resources(text: str) -> Resources:
    try:
        return Resources.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port '{text}': expected 0-65535 (0 = any)")
    return number


def read_credentials(path: Path) -> dict[str, str]:
    """Mesos's --credentials file: JSON {"credentials": [{"principal", "secret"}]}, or one
    `principal secret` pair per line."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read credentials file {path}: {error.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            entries = json.loads(text)["credentials"]
            return {e["principal"]: e["secret"] for e in entries}
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"credentials file {path}: expected "
                '{"credentials": [{"principal": ..., "secret": ...}]} '
                f"({error!r})"
            ) from None
    credentials = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"credentials file {path}, line {number}: expected 'principal secret'")
        credentials[fields[0]] = fields[1]
    if not credentials:
        raise ValueError(f"credentials file {path} holds no credentials")
    return credentials


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="localmesos",
        description="A Mesos-compatible cluster on this machine: one master and N agents that "
        "run tasks as local processes and speak the Mesos v1 HTTP APIs.",
    )
    p.add_argument("--port", type=port, default=5050, help="master port (default 5050)")
    p.add_argument("--ip", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--agents", type=int, default=2, help="number of agents (default 2)")
    p.add_argument(
        "--resources",
        type=resources,
        default=Resources.parse(DEFAULT_RESOURCES),
        help=f'each agent\'s resources (default "{DEFAULT_RESOURCES}")',
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        help="where sandboxes go (default: a temporary directory, removed on exit)",
    )
    p.add_argument(
        "--allocation-interval",
        type=duration,
        default=1.0,
        help="time between allocation rounds (default 1secs)",
    )
    p.add_argument(
        "--agent-timeout",
        type=duration,
        default=2.0,
        help="how long an agent may stay silent before it is lost (default 2secs)",
    )
    p.add_argument(
        "--credentials",
        type=Path,
        help="require HTTP basic authentication from frameworks (Mesos format)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what the cluster does")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.agents < 0:
        parser().error(f"argument --agents: must be 0 or more, not {args.agents}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        credentials = read_credentials(args.credentials) if args.credentials else None
    except ValueError as error:
        print(f"localmesos: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster = LocalCluster(
        args.agents,
        ip=args.ip,
        port=args.port,
        resources=args.resources,
        work_dir=args.work_dir,
        allocation_interval=args.allocation_interval,
        agent_timeout=args.agent_timeout,
        credentials=credentials,
    )
    try:
        cluster.start()
    except OSError as error:
        print(
            f"localmesos: cannot listen on {args.ip}:{args.port}: {error.strerror}", file=sys.stderr
        )
        return 1
    try:
        print(
            f"localmesos: master at {cluster.url} with {args.agents} agents "
            f"(work dir {cluster.work_dir})",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
