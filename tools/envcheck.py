"""The workshop's environment check: `make check-env`, and notebooks/00_entorno.ipynb.

Each check returns a ``Check``: what was looked at, whether it is usable, what was found,
and what to do when it is not. Nothing here needs a cluster.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from http_parser.http import HttpParser

from localmesos import zookeeper
from tools import ROOT, wheelhouse


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    advice: str = ""
    # Optional needs (ZooKeeper, Docker...) serve one part of the workshop; the rest runs without.
    required: bool = True


# ANCHOR: recordio
def recordio(event: dict) -> bytes:
    """Frame one event the way Mesos does: byte count, newline, JSON. Nothing after it."""
    data = json.dumps(event, separators=(",", ":")).encode()
    return b"%d\n%s" % (len(data), data)


def chunked_response(body: bytes, chunk_size: int) -> bytes:
    """An HTTP response whose body travels in chunks that ignore record boundaries."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def read_events(response: bytes, read_size: int) -> list[dict]:
    """Parse the response as pymesos does: feed the HTTP parser, then cut records out."""
    parser = HttpParser()
    buffer = b""
    events = []
    for start in range(0, len(response), read_size):
        data = response[start : start + read_size]
        parser.execute(data, len(data))
        buffer += parser.recv_body()
        while record := re.match(rb"(\d+)\n", buffer):
            end = record.end() + int(record[1])
            if len(buffer) < end:
                break  # the rest of this record is still on its way
            events.append(json.loads(buffer[record.end() : end]))
            buffer = buffer[end:]
    return events


# ANCHOR_END: recordio


SAMPLE_EVENTS = [
    {"type": "SUBSCRIBED", "subscribed": {"framework_id": {"value": "demo-0000"}}},
    {"type": "HEARTBEAT"},
    {"type": "OFFERS", "offers": {"offers": [{"id": {"value": "demo-O1"}}]}},
]


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check(
        "Python", sys.version_info >= (3, 11), version, "install Python 3.11 or newer, then "
        "'make setup PYTHON=python3.11'",
    )  # fmt: skip


def check_venv(root: Path = ROOT, lock: Path | None = None) -> Check:
    """The project's .venv runs this, and holds every pin of the attendee lock."""
    lock = lock or root / "requirements-workshop.lock"
    advice = "run 'make setup'"
    venv = root / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        return Check("venv", False, f"running outside {venv.name} ({sys.prefix})", advice)
    here = wheelhouse.Target(None, None)
    pins = [pin for pin in wheelhouse.read_lock(lock)[0] if pin.applies(here)]
    wrong = []
    for pin in pins:
        try:
            installed = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            wrong.append(f"{pin.name} {installed or 'missing'} (pinned {pin.version})")
    if wrong:
        return Check("venv", False, f"{len(wrong)} not as pinned: {', '.join(wrong[:3])}", advice)
    return Check("venv", True, f"{venv.name}, {len(pins)} packages as pinned in {lock.name}")


def check_pymesos_parser() -> Check:
    """pymesos reads Mesos's event stream through http_parser; check that it really works."""
    try:
        pymesos_version = importlib.metadata.version("pymesos")
        parser_version = importlib.metadata.version("http-parser")
        body = b"".join(recordio(event) for event in SAMPLE_EVENTS)
        events = read_events(chunked_response(body, chunk_size=17), read_size=5)
    except Exception as exc:  # any failure here means the install is broken
        return Check("pymesos", False, repr(exc), "run 'make setup' again")
    ok = events == SAMPLE_EVENTS
    found = f"pymesos {pymesos_version}, http-parser {parser_version}, {len(events)} events read"
    return Check("pymesos", ok, found, "run 'make setup' again")


def check_kazoo() -> Check:
    try:
        version = importlib.metadata.version("kazoo")
    except importlib.metadata.PackageNotFoundError:
        return Check("kazoo", False, "not installed", "run 'make setup'")
    return Check("kazoo", True, version)


FAILOVER_ONLY = "only the failover parts (step 3, FAILURES=1) need it"


def check_java() -> Check:
    try:
        java = zookeeper.find_java()
    except zookeeper.ZooKeeperError:
        return Check("Java", False, "no java", zookeeper.INSTALL_HINT, required=False)
    return Check("Java", True, java, required=False)


def check_zookeeper() -> Check:
    """The same search as localmesos's: Debian's package, or an Apache release on PATH."""
    try:
        classpath = zookeeper.find_classpath()
    except zookeeper.ZooKeeperError:
        return Check("ZooKeeper", False, "not installed", zookeeper.INSTALL_HINT, required=False)
    return Check("ZooKeeper", True, classpath.split(os.pathsep)[0], required=False)


# The ports the workshop's commands use unless told otherwise.
PORTS = {
    5050: "localmesos's master (--port)",
    2181: "'localmesos zookeeper' (--zk-port)",
    8888: "Jupyter, which moves to the next free port by itself",
}


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(ports: dict[int, str] = PORTS) -> Check:
    busy = [port for port in ports if port_in_use(port)]
    listed = ", ".join(map(str, ports))
    if not busy:
        return Check("ports", True, f"{listed} free on 127.0.0.1", required=False)
    uses = "; ".join(f"{port} is {ports[port]}" for port in busy)
    return Check(
        "ports", False, f"{', '.join(map(str, busy))} in use",
        f"stop what listens there, or choose another port: {uses}", required=False,
    )  # fmt: skip


def check_docker() -> Check:
    """Only the real-cluster part of the workshop needs Docker; the embedded cluster does not."""
    advice = "only the real Mesos cluster (make cluster-up) needs Docker with 'docker compose'"
    if shutil.which("docker") is None:
        return Check("Docker", False, "no docker command", advice, required=False)
    engine = subprocess.run(["docker", "info"], capture_output=True, timeout=20)
    if engine.returncode != 0:
        return Check(
            "Docker", False, "docker client only, no engine answering", advice, required=False
        )
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
    if compose.returncode != 0:
        return Check(
            "Docker", False, "engine running, but no 'docker compose'", advice, required=False
        )
    return Check("Docker", True, "engine and compose available", required=False)


def check_all() -> list[Check]:
    """`make check-env`: one line per need of the workshop."""
    return [
        check_python(),
        check_venv(),
        check_pymesos_parser(),
        check_kazoo(),
        check_java(),
        check_zookeeper(),
        check_ports(),
        check_docker(),
    ]


def report(checks: list[Check]) -> str:
    """One line per check: a tick and what was found, or a cross, what was found and the fix."""
    lines = []
    for check in checks:
        if check.ok:
            lines.append(f"✓ {check.name:<10} {check.found}")
        else:
            lines.append(f"✗ {check.name:<10} {check.found}: {check.advice}")
    return "\n".join(lines)


def main() -> int:
    checks = check_all()
    print(report(checks))
    failed = [check.name for check in checks if check.required and not check.ok]
    optional = [check.name for check in checks if not check.required and not check.ok]
    if failed:
        print(f"check-env: not ready: {', '.join(failed)}")
        return 1
    if optional:
        lines = "the line above" if len(optional) == 1 else "the lines above"
        print(f"check-env: ready for the workshop; {', '.join(optional)}: see {lines}")
    else:
        print("check-env: ready for every part of the workshop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
