# Generated from step3_failover/archive.py by `python -m taller generate`: the workshop's
# skeleton of step 3. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=3`.
# fingerprint: 21d6ecd3afbf3df4
"""How our executor's code reaches the agents: an archive that the Mesos fetcher downloads.

An agent knows nothing of our code. The ExecutorInfo's CommandInfo lists URIs; before the
agent starts the executor, its fetcher downloads each one into the executor's sandbox (the
directory that is also its working directory) and, with `extract`, unpacks archives there
(src/launcher/fetcher.cpp, `fetch` and `extract`). So the scheduler packs the executor's
packages into a tar.gz and says where to download it: an http:// URL served by the scheduler
itself, for agents on other machines, or a file:// path that every agent can read.

`python -m taller.paso3.executor` then runs in the sandbox, and Python looks for modules in
the working directory first: the fetched copy is the one that runs.

Step 3 adds one constraint: the ExecutorInfo, URI included, must be the same for every
scheduler of the job (see scheduler.executor_info). The archive is the same bytes for the same
code, and the schedulers serve it on a fixed port (--code-port) under one host name, so a
scheduler that takes over names the very same URL (see `served` in __main__.py).
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import socket
import sys
import tarfile
import threading
from pathlib import Path

import jobs

# What the executor imports, besides the standard library and pymesos (installed on the agents).
PACKAGES = ("taller.paso3", "jobs")
ROOT = Path(jobs.__file__).resolve().parent.parent  # the checkout that holds those packages
NAME = "step3-executor.tar.gz"


def build(directory: Path) -> Path:
    """Pack the packages' Python files into directory/NAME. Same code, same bytes: the
    files are sorted, and their dates and owners are left out."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name in files():
            info = tarfile.TarInfo(name)
            info.size, info.mode = (ROOT / name).stat().st_size, 0o644
            tar.addfile(info, io.BytesIO((ROOT / name).read_bytes()))
    archive = directory / NAME
    archive.write_bytes(gzip.compress(data.getvalue(), mtime=0))
    return archive


def files() -> list[str]:
    """The packages' Python files, as paths from ROOT. A package inside another (`a.b`) also
    needs the `__init__.py` of the one around it."""
    found = []
    for package in PACKAGES:
        parts = package.split(".")
        found += ["/".join([*parts[:depth], "__init__.py"]) for depth in range(1, len(parts))]
        folder = ROOT.joinpath(*parts)
        found += [path.relative_to(ROOT).as_posix() for path in sorted(folder.glob("*.py"))]
    return found


def serve(archive: Path, host: str, port: int = 0) -> tuple[str, http.server.ThreadingHTTPServer]:
    """Serve the archive's directory over HTTP, from a thread, until `shutdown()`: on every
    interface, on `port` (0: any free one). The URL names `host`, the address at which the
    agents reach this machine."""
    handler = functools.partial(Handler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("", port), handler)
    threading.Thread(target=server.serve_forever, name="archive", daemon=True).start()
    return f"http://{host}:{server.server_port}/{archive.name}", server


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass  # one line per download would cut through the progress bar


def local_address(master: str) -> str:
    """The address of this machine on the way to the master (or to ZooKeeper): the one its
    agents, on the same network, can reach us at. Connecting a UDP socket sends nothing; it
    only picks the route, and with it our address."""
    hostport = master.removeprefix("zk://").split("/", 1)[0].split(",", 1)[0]
    host, _, port = hostport.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, int(port)))
        return probe.getsockname()[0]


if __name__ == "__main__":
    # python -m taller.paso3.archive DIR: build the archive for --executor-uri file:///...
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python -m taller.paso3.archive DIRECTORY (an existing directory)")
    print(build(Path(sys.argv[1]).resolve()).as_uri())
