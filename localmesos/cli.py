"""`localmesos`: the embedded cluster in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from localmesos.agent import gc
from localmesos.authentication import ROOM_OFFER_TIMEOUT, check_bind, is_loopback
from localmesos.cluster import DEFAULT_RESOURCES, ZK_SESSION_TIMEOUT, LocalCluster
from localmesos.election import ZooKeeperUnavailable, parse_zk_url
from localmesos.link import SECRET_VARIABLE, shared_secret
from localmesos.protocol import parse_duration
from localmesos.resources import Resources
from localmesos.ui.proxy import Proxy, check_master, parse_address, read_secret
from localmesos.web import Limits
from localmesos.zookeeper import ZooKeeper, ZooKeeperError


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_duration(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = duration(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(
                f"Invalid value '{text}' for {flag}: Must be greater than zero"
            )
        return value

    return parse


# master.cpp's words for a --offer_timeout of 0.
offer_timeout = positive_duration("--offer_timeout")


def headroom(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # slave.cpp `Slave::initialize`
        raise argparse.ArgumentTypeError(
            f"Invalid value '{text}' for --gc_disk_headroom. Must be between 0.0 and 1.0"
        )
    return value


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


def zk_url(text: str) -> str:
    try:
        parse_zk_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text.rstrip("/")


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


def add_master_options(p: argparse.ArgumentParser) -> None:
    """The master's own flags, the same for `localmesos` and `localmesos master`."""
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
        "--agent-reregister-timeout",
        type=duration,
        default=20.0,
        help="how long an agent whose process exited may take to reregister while it still "
        "answers pings (recovering) before it is marked unreachable (default 20secs)",
    )
    add_credentials_option(p)
    p.add_argument(
        "--offer-timeout",
        type=offer_timeout,
        default=None,
        help="rescind offers left unanswered this long, so that a framework that stops "
        "answering cannot hold the cluster (default: never, as Mesos; "
        f"{ROOM_OFFER_TIMEOUT:g}secs with an --ip other than loopback, a room's cluster)",
    )


def add_credentials_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--credentials",
        type=Path,
        metavar="FILE",
        help="principals and secrets (Mesos's format: JSON or one 'principal secret' per "
        "line); with it every endpoint but /health, /version and the executors' API requires "
        "HTTP Basic with one of them, as Mesos with --authenticate_http_*; required with an "
        "--ip other than loopback",
    )


def add_agent_options(p: argparse.ArgumentParser) -> None:
    """The agents' garbage collection of sandboxes (Mesos's flags of the same names)."""
    p.add_argument(
        "--gc-delay",
        type=duration,
        default=gc.GC_DELAY,
        help="remove a finished executor's sandbox this long after it ended (default 1weeks)",
    )
    p.add_argument(
        "--gc-disk-headroom",
        type=headroom,
        default=gc.GC_DISK_HEADROOM,
        help="free disk share to keep: sandboxes go sooner as the disk fills; "
        "gc_delay * max(0, 1 - headroom - usage) is the oldest kept (default 0.1)",
    )
    p.add_argument(
        "--disk-watch-interval",
        type=positive_duration("--disk_watch_interval"),
        default=gc.DISK_WATCH_INTERVAL,
        help="how often the agents measure the disk (default 1mins)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="localmesos",
        description="A Mesos-compatible cluster on this machine: one master (or several, "
        "electing a leader in ZooKeeper) and N agents that run tasks as local processes and "
        "speak the Mesos v1 HTTP APIs.",
        epilog="One part per process instead: `localmesos zookeeper`, `localmesos master "
        "--zk URL`, `localmesos agents --zk URL` (each with --help). The live page in front "
        "of any master: `localmesos ui --master HOST:PORT`.",
    )
    p.add_argument(
        "--port",
        type=port,
        default=5050,
        help="master port (default 5050); with several masters, the first of consecutive ports",
    )
    p.add_argument(
        "--masters",
        type=int,
        default=1,
        help="number of masters (default 1); more than one starts a private ZooKeeper, and "
        "frameworks find the leader at the zk:// URL printed",
    )
    p.add_argument(
        "--zookeeper",
        action="store_true",
        help="run even a single master under ZooKeeper (implied by --masters 2 or more)",
    )
    p.add_argument(
        "--zk-port",
        type=port,
        default=0,
        help="the private ZooKeeper's port (default 0 = any free port)",
    )
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
    add_master_options(p)
    add_agent_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log what the cluster does")
    return p


def process_parser(command: str) -> argparse.ArgumentParser:
    """`localmesos zookeeper|master|agents`: one part of a cluster per process. The masters and
    the agents then talk over HTTP (each POSTs the other's messages to its `/link`)."""
    descriptions = {
        "zookeeper": "A private ZooKeeper server for masters and agents of other processes.",
        "master": "One master. With --zk it joins the election there: it leads or stands by.",
        "agents": "N agents that register with the masters found at --zk (or --master).",
    }
    epilog = None
    if command != "zookeeper":
        epilog = (
            "The masters and agents of one cluster share a secret that their /link requires: "
            f"${SECRET_VARIABLE} if set, else the one kept in ~/.localmesos/link-secret "
            "(made on first use), the same for every process of this user on this machine."
        )
    p = argparse.ArgumentParser(
        prog=f"localmesos {command}", description=descriptions[command], epilog=epilog
    )
    if command == "zookeeper":
        p.add_argument("--zk-port", type=port, default=2181, help="client port (default 2181)")
    if command == "master":
        p.add_argument(
            "--zk", type=zk_url, help="the masters' zk:// URL (e.g. zk://127.0.0.1:2181/mesos)"
        )
        p.add_argument(
            "--zk-session-timeout",
            type=duration,
            default=ZK_SESSION_TIMEOUT,
            help="how long ZooKeeper keeps a dead master's place (default 2secs; Mesos: 10secs)",
        )
        p.add_argument("--port", type=port, default=5050, help="master port (default 5050)")
        add_master_options(p)
    if command == "agents":
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--zk", type=zk_url, help="the masters' zk:// URL")
        where.add_argument("--master", help="one master's HOST:PORT")
        p.add_argument("--agents", type=int, default=2, help="number of agents (default 2)")
        p.add_argument(
            "--resources",
            type=resources,
            default=Resources.parse(DEFAULT_RESOURCES),
            help=f'each agent\'s resources (default "{DEFAULT_RESOURCES}")',
        )
        add_agent_options(p)
        add_credentials_option(p)
    if command != "zookeeper":
        p.add_argument("--ip", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--work-dir", type=Path, help="default: a temporary directory")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


def master_spec(text: str) -> str:
    """`localmesos ui --master`: HOST:PORT (several, comma-separated), http://HOST:PORT or a
    zk:// URL."""
    if text.startswith("zk://"):
        return zk_url(text)
    try:
        return ",".join(parse_address(part) for part in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def ui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="localmesos ui",
        description="The live page of a cluster, in front of any Mesos master (a real one, or "
        "a localmesos): it serves the page and forwards the page's read-only calls to the "
        "leading master and to its agents, so the browser needs to reach only this server.",
    )
    p.add_argument(
        "--master",
        type=master_spec,
        required=True,
        help="the master: HOST:PORT (or several, comma-separated), http://HOST:PORT, or "
        "zk://HOST:PORT/PATH to follow the leader in ZooKeeper; a standby's redirects to the "
        "leader are followed",
    )
    p.add_argument("--ip", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=port, default=5060, help="port to serve (default 5060; 0 = any free port)"
    )
    p.add_argument("--principal", help="HTTP Basic credentials sent with every forwarded call")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="the principal's secret")
    secret.add_argument(
        "--secret-file", type=Path, help="a file whose first line is the principal's secret"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what the proxy does")
    return p


def run_ui(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if not http_limits_valid():
        return 2
    secret = args.secret
    if args.secret_file is not None:
        try:
            secret = read_secret(args.secret_file)
        except ValueError as error:
            print(f"localmesos ui: {error}", file=sys.stderr)
            return 2
    if (args.principal is None) != (secret is None):
        ui_parser().error("--principal and --secret (or --secret-file) go together")
    proxy = Proxy(args.master, ip=args.ip, port=args.port, principal=args.principal, secret=secret)
    stop = stop_on_signals()
    try:
        proxy.start()
    except (ZooKeeperUnavailable, ZooKeeperError, TimeoutError) as error:
        print(
            f"localmesos ui: cannot follow the masters at {args.master}: {error}", file=sys.stderr
        )
        return 1
    except OSError as error:
        print(
            f"localmesos ui: cannot listen on {args.ip}:{args.port}: {error.strerror}",
            file=sys.stderr,
        )
        return 1
    try:
        if not proxy.static_dir.is_dir():
            print(
                f"localmesos ui: the page's files are missing (no directory {proxy.static_dir}); "
                "only the forwarded endpoints answer",
                flush=True,
            )
        check_master(proxy, lambda line: print(f"localmesos ui: {line}", flush=True))
        url = proxy.url
        if args.ip in ("0.0.0.0", "::"):
            # Every address of this machine: the loopback one works from here.
            url = f"http://127.0.0.1:{proxy.server.port}"
        where = f" (listening on {args.ip})" if url != proxy.url else ""
        print(f"localmesos ui: open {url}{where}, the master at {args.master}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        proxy.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("zookeeper", "master", "agents"):
        return run_process(argv[0], process_parser(argv[0]).parse_args(argv[1:]))
    if argv and argv[0] == "ui":
        return run_ui(ui_parser().parse_args(argv[1:]))
    args = parser().parse_args(argv)
    if args.agents < 0:
        parser().error(f"argument --agents: must be 0 or more, not {args.agents}")
    if args.masters < 1:
        parser().error(f"argument --masters: must be 1 or more, not {args.masters}")
    if args.port and args.port + args.masters - 1 > 65535:
        parser().error(f"argument --port: {args.masters} masters do not fit above {args.port}")
    setup_logging(args.verbose)
    if not http_limits_valid():
        return 2
    credentials = room_credentials(args)
    if isinstance(credentials, int):
        return credentials
    room = room_notice(args)
    cluster = LocalCluster(
        args.agents,
        masters=args.masters,
        zookeeper=args.zookeeper,
        zk_port=args.zk_port,
        ip=args.ip,
        port=args.port,
        resources=args.resources,
        work_dir=args.work_dir,
        allocation_interval=args.allocation_interval,
        agent_timeout=args.agent_timeout,
        agent_reregister_timeout=args.agent_reregister_timeout,
        credentials=credentials,
        offer_timeout=args.offer_timeout,
        gc_delay=args.gc_delay,
        gc_disk_headroom=args.gc_disk_headroom,
        disk_watch_interval=args.disk_watch_interval,
    )

    def ready() -> str:
        if not cluster.ha:
            return (
                f"localmesos: master at {cluster.url} with {args.agents} agents "
                f"(work dir {cluster.work_dir})"
            )
        # The leader's URL first, as for one master; then where frameworks should look.
        standbys = [f"http://{m}" for m in cluster.masters if m != cluster.leader]
        return (
            f"localmesos: leading master at {cluster.url} with {args.agents} agents; "
            f"masters at {cluster.master} (standby {', '.join(standbys) or 'none'}; "
            f"work dir {cluster.work_dir})"
        )

    def room_ports() -> str:
        # Attendees' schedulers reach the master, and the agents to read sandboxes.
        ports = [m.split(":")[-1] for m in cluster.masters] + [str(a.port) for a in cluster._agents]
        return f"{room}; open TCP ports {', '.join(ports)} to the room"

    return serve(cluster, ready, f"{args.ip}:{args.port}", room_ports if room else None)


def room_credentials(args: argparse.Namespace) -> dict[str, str] | int | None:
    """The --credentials read, or the exit status after saying why they cannot be used: an
    unreadable file, or none with an --ip that other machines reach."""
    try:
        credentials = read_credentials(args.credentials) if args.credentials else None
        check_bind(args.ip, credentials, "--credentials", "--credentials FILE")
    except ValueError as error:
        print(f"localmesos: {error}", file=sys.stderr)
        return 2
    return credentials


def room_notice(args: argparse.Namespace) -> str | None:
    """With an --ip other than loopback (a room: other machines' frameworks share this
    cluster), offers expire unless --offer-timeout says otherwise; the line that says so."""
    if is_loopback(args.ip):
        return None
    given = args.offer_timeout is not None
    if not given:
        args.offer_timeout = ROOM_OFFER_TIMEOUT
    return (
        f"localmesos: room mode: HTTP Basic required (--credentials); offers unanswered for "
        f"{args.offer_timeout:g} s are rescinded"
        + ("" if given else " (--offer-timeout, default in a room)")
        + ", so that a stalled framework cannot hold the agents"
    )


def run_process(command: str, args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if not http_limits_valid():
        return 2
    if command == "zookeeper":
        return serve_zookeeper(args)
    if command == "agents" and args.agents < 1:
        process_parser(command).error(f"argument --agents: must be 1 or more, not {args.agents}")
    try:
        # The masters and agents of other processes must send the same one (link.py).
        link_secret = shared_secret()
    except (OSError, ValueError) as error:
        print(f"localmesos: cannot read the link secret: {error}", file=sys.stderr)
        return 2
    credentials = room_credentials(args)
    if isinstance(credentials, int):
        return credentials
    if command == "master":
        room = room_notice(args)
        cluster = LocalCluster(
            0,
            masters=1,
            join=args.zk,
            links="http",
            ip=args.ip,
            port=args.port,
            work_dir=args.work_dir,
            allocation_interval=args.allocation_interval,
            agent_timeout=args.agent_timeout,
            agent_reregister_timeout=args.agent_reregister_timeout,
            credentials=credentials,
            zk_session_timeout=args.zk_session_timeout,
            link_secret=link_secret,
            offer_timeout=args.offer_timeout,
        )

        def ready() -> str:
            where = f"in the election at {args.zk}" if args.zk else "alone (no --zk)"
            return f"localmesos: master at http://{cluster.masters[0]} {where}"

        return serve(cluster, ready, f"{args.ip}:{args.port}", (lambda: room) if room else None)
    cluster = LocalCluster(
        args.agents,
        masters=0,
        join=args.zk or args.master,
        ip=args.ip,
        resources=args.resources,
        work_dir=args.work_dir,
        link_secret=link_secret,
        credentials=credentials,
        gc_delay=args.gc_delay,
        gc_disk_headroom=args.gc_disk_headroom,
        disk_watch_interval=args.disk_watch_interval,
    )

    def agents_ready() -> str:
        ports = ", ".join(str(a.port) for a in cluster._agents)
        return (
            f"localmesos: {args.agents} agents (ports {ports}) registered with the masters at "
            f"{cluster.master} (work dir {cluster.work_dir})"
        )

    return serve(cluster, agents_ready, args.ip)


def serve_zookeeper(args: argparse.Namespace) -> int:
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="localmesos-zookeeper-"))
    server = ZooKeeper(work_dir, args.zk_port)
    try:
        server.start()
    except ZooKeeperError as error:
        print(f"localmesos: {error}", file=sys.stderr)
        return 1
    stop = stop_on_signals()
    try:
        print(f"localmesos: ZooKeeper at {server.url()} (work dir {work_dir})", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


def serve(
    cluster: LocalCluster,
    ready: Callable[[], str],
    address: str,
    notice: Callable[[], str] | None = None,
) -> int:
    """Start ``cluster``, print its ready line (and ``notice`` after it), and run until
    SIGINT or SIGTERM."""
    stop = stop_on_signals()
    try:
        cluster.start()
    except OSError as error:
        print(f"localmesos: cannot listen on {address}: {error.strerror}", file=sys.stderr)
        return 1
    except (ZooKeeperError, ZooKeeperUnavailable, TimeoutError) as error:
        print(f"localmesos: {error}", file=sys.stderr)
        return 1
    try:
        print(ready(), flush=True)
        if notice is not None:
            print(notice(), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def http_limits_valid() -> bool:
    """The LOCALMESOS_HTTP_* variables (web.Limits) parse; if not, say which one is wrong."""
    try:
        Limits.from_env()
    except ValueError as error:
        print(f"localmesos: {error}", file=sys.stderr)
        return False
    return True


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )


if __name__ == "__main__":
    sys.exit(main())
