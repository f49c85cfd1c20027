"""The workshop's environment check, shown in notebooks/00_entorno.ipynb.

Each check returns a ``Check``: what was looked at, whether it is usable, what was found,
and what to do when it is not. Nothing here needs a cluster.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from http_parser.http import HttpParser


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    advice: str = ""


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
    return Check("Python", sys.version_info >= (3, 11), version, "Install Python 3.11 or newer.")


def check_pymesos_parser() -> Check:
    """pymesos reads Mesos's event stream through http_parser; check that it really works."""
    try:
        pymesos_version = importlib.metadata.version("pymesos")
        parser_version = importlib.metadata.version("http-parser")
        body = b"".join(recordio(event) for event in SAMPLE_EVENTS)
        events = read_events(chunked_response(body, chunk_size=17), read_size=5)
    except Exception as exc:  # any failure here means the install is broken
        return Check("pymesos", False, repr(exc), "Run 'make setup' again.")
    ok = events == SAMPLE_EVENTS
    found = f"pymesos {pymesos_version}, http-parser {parser_version}, {len(events)} events read"
    return Check("pymesos", ok, found, "Run 'make setup' again.")


def check_kazoo() -> Check:
    try:
        version = importlib.metadata.version("kazoo")
    except importlib.metadata.PackageNotFoundError:
        return Check("kazoo", False, "not installed", "Run 'make setup'.")
    return Check("kazoo", True, version)


def find_zookeeper() -> Path | None:
    """Debian's zookeeper package puts its scripts outside PATH."""
    on_path = shutil.which("zkServer.sh")
    if on_path:
        return Path(on_path)
    debian = Path("/usr/share/zookeeper/bin/zkServer.sh")
    return debian if debian.exists() else None


def check_zookeeper() -> Check:
    script = find_zookeeper()
    java = shutil.which("java")
    ok = script is not None and java is not None
    found = f"{script}, java: {java}" if ok else "zkServer.sh or java not found"
    advice = "Step 3 needs it: 'sudo apt-get install zookeeper' (not zookeeperd)."
    return Check("ZooKeeper", ok, found, advice)


def check_docker() -> Check:
    """Only the real-cluster part of the workshop needs Docker; the embedded cluster does not."""
    advice = "Optional: the embedded cluster needs no Docker. For the real cluster, start Docker."
    if shutil.which("docker") is None:
        return Check("Docker", False, "no docker command", advice)
    engine = subprocess.run(["docker", "info"], capture_output=True, timeout=20)
    if engine.returncode != 0:
        return Check("Docker", False, "docker client only, no engine answering", advice)
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
    if compose.returncode != 0:
        return Check("Docker", False, "engine running, but no 'docker compose'", advice)
    return Check("Docker", True, "engine and compose available")


def check_all() -> list[Check]:
    return [
        check_python(),
        check_pymesos_parser(),
        check_kazoo(),
        check_zookeeper(),
        check_docker(),
    ]


def report(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = "ok " if check.ok else "-- "
        lines.append(f"{mark}{check.name:<10} {check.found}")
        if not check.ok and check.advice:
            lines.append(f"   {'':<10} {check.advice}")
    return "\n".join(lines)


if __name__ == "__main__":
    results = check_all()
    print(report(results))
    sys.exit(0 if all(c.ok for c in results[:3]) else 1)
