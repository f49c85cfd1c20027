"""A private, throw-away ZooKeeper server for one cluster: the coordination service that Mesos
masters elect their leader through, and that agents and frameworks find the leader in.

    with ZooKeeper(work_dir / "zookeeper") as zk:
        master_flags.zk = zk.url()  # "zk://127.0.0.1:PORT/mesos"

It runs Debian's `zookeeper` package (3.8) directly: `java ... ZooKeeperServerMain zoo.cfg`.
Debian's zkServer.sh is not used, because its zkEnv.sh hard-codes the log directory and the
JVM options. The server listens on 127.0.0.1 only and writes everything it has into its
directory; a watchdog (the one from `processes.py`) kills the JVM if the Python process that
owns it dies without calling `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from localmesos.processes import start_watchdog

MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"
DEBIAN_JAR = Path("/usr/share/java/zookeeper.jar")
# Debian's zookeeper.jar names its dependencies in its manifest, SLF4J's API among them, but
# no SLF4J binding: without one the server logs nothing at all. slf4j-simple (from
# libslf4j-java, which zookeeper depends on) writes to stderr, so the log file gets the log.
DEBIAN_SLF4J_BINDING = Path("/usr/share/java/slf4j-simple.jar")
# One line, as `make check-env` and the posts say it: only the failover parts need ZooKeeper.
INSTALL_HINT = (
    "on Debian or Ubuntu, 'sudo apt-get install zookeeper' (it brings Java); elsewhere, Java 11+ "
    "and Apache ZooKeeper's binary release with its bin/ on PATH"
)

# Sessions expire in multiples of the tick, and ZooKeeper refuses session timeouts below
# 2 ticks; 100 ms lets a test ask for a session of one second and see it expire on time.
TICK_MS = 100
# The default maximum (20 ticks, here 2 s) would silently shorten the 10 s sessions that Mesos's
# masters and agents ask for.
MAX_SESSION_MS = 60_000
STOP_GRACE = 5.0
JVM_OPTIONS = [
    "-Xmx128m",  # without it the JVM may grow its heap to a quarter of the machine's memory
    # The serial collector and the C1 compiler alone halve the start-up time (0.5 -> 0.2 s
    # here); a server holding a few znodes needs neither the parallel GC nor C2.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    # Nothing here must survive a power cut, and an fsync per write costs milliseconds.
    "-Dzookeeper.forceSync=no",
    "-Dzookeeper.jmx.log4j.disable=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
]


class ZooKeeperError(RuntimeError):
    """ZooKeeper is not installed, or the server did not start."""


def find_java(java: str | None = None) -> str:
    """The java to run ZooKeeper with: ``java`` if given, else $JAVA_HOME's, else PATH's."""
    if java is not None:
        if shutil.which(java) is None:
            raise ZooKeeperError(f"ZooKeeper needs java, and '{java}' is not a program")
        return java
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ZooKeeperError(f"ZooKeeper needs java, which is not installed: {INSTALL_HINT}")
    return found


def find_classpath() -> str:
    """The classpath of an installed ZooKeeper: Debian's package, or else the Apache tarball
    whose bin/zkServer.sh is on PATH (the two places that `make check-env` accepts)."""
    if DEBIAN_JAR.is_file():
        jars = [DEBIAN_JAR]
        if DEBIAN_SLF4J_BINDING.is_file():
            jars.append(DEBIAN_SLF4J_BINDING)
        return os.pathsep.join(str(jar) for jar in jars)
    script = shutil.which("zkServer.sh")
    if script is not None:
        # The tarball ships its dependencies and a logging binding in lib/.
        jars = sorted((Path(script).resolve().parent.parent / "lib").glob("*.jar"))
        if any(jar.name.startswith("zookeeper-") for jar in jars):
            return os.pathsep.join(str(jar) for jar in jars)
    raise ZooKeeperError(f"ZooKeeper is not installed ({DEBIAN_JAR} not found): {INSTALL_HINT}")


def unavailable() -> str | None:
    """Why a ZooKeeper server cannot start on this machine (no java, or no ZooKeeper), or None
    if it can."""
    try:
        find_java()
        find_classpath()
    except ZooKeeperError as missing:
        return str(missing)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving(port: int, timeout: float = 1.0) -> bool:
    """True when the server on ``port`` serves clients.

    The four-letter word `srvr` answers "This ZooKeeper instance is not currently serving
    requests" until the server has loaded its data. `ruok` is no test: ZooKeeper 3.8 answers
    `imok` as soon as the port listens, and a client that connects before the server runs is
    dropped, after which kazoo may wait out a whole read timeout (10 s was seen here).
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as conn:
            conn.sendall(b"srvr")
            conn.shutdown(socket.SHUT_WR)
            return conn.recv(64).startswith(b"Zookeeper version:")
    except OSError:
        return False


class ZooKeeper:
    """One standalone ZooKeeper server on 127.0.0.1, with its data, config and log in
    ``directory``. ``port`` 0 picks a free port on the first start; a restart after `stop()`
    keeps the port and the data, so clients see an outage and then the same server again."""

    def __init__(self, directory: Path, port: int = 0, java: str | None = None) -> None:
        self.directory = Path(directory)
        self._port = port
        self._java = java
        self._process: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None

    @property
    def log_file(self) -> Path:
        return self.directory / "zookeeper.log"

    @property
    def config_file(self) -> Path:
        return self.directory / "zoo.cfg"

    @property
    def port(self) -> int:
        if not self._port:
            raise ZooKeeperError("ZooKeeper has no port until it has started")
        return self._port

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def url(self, path: str = "/mesos") -> str:
        if not path.startswith("/"):
            raise ValueError(f"a ZooKeeper path starts with '/', not {path!r}")
        return f"zk://{self.hosts}{path}"

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> ZooKeeper:
        if self._process is not None:
            raise ZooKeeperError(f"ZooKeeper is already running on port {self._port}")
        argv_head = [find_java(self._java), *JVM_OPTIONS, "-cp", find_classpath(), MAIN_CLASS]
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        # A free port can be taken by someone else before the JVM binds it; only a port we
        # chose is worth choosing again.
        attempts = 3 if not self._port else 1
        for attempt in range(attempts):
            port = self._port or free_port()
            self._write_config(port)
            self._launch([*argv_head, str(self.config_file)])
            try:
                self._wait_until_serving(port, deadline)
            except ZooKeeperError:
                self._kill()
                if attempt + 1 == attempts or not self._port_was_taken():
                    raise
                continue
            self._port = port
            break
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after STOP_GRACE seconds. Idempotent."""
        if self._process is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(self._process.pid, signal.SIGTERM)
        self._kill(grace=STOP_GRACE)

    def __enter__(self) -> ZooKeeper:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------------------

    def _write_config(self, port: int) -> None:
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        self.config_file.write_text(
            "\n".join(
                [
                    f"tickTime={TICK_MS}",
                    f"dataDir={data}",
                    f"clientPort={port}",
                    "clientPortAddress=127.0.0.1",
                    f"minSessionTimeout={2 * TICK_MS}",
                    f"maxSessionTimeout={MAX_SESSION_MS}",
                    # The default limit is 60 connections per client address, and here every
                    # master, agent and framework comes from 127.0.0.1.
                    "maxClientCnxns=0",
                    # The AdminServer would take port 8080, the one the notebooks use.
                    "admin.enableServer=false",
                    # srvr tells when the server is ready; the others are for a curious reader.
                    "4lw.commands.whitelist=srvr,ruok,stat,mntr,cons",
                    "",
                ]
            )
        )

    def _launch(self, argv: list[str]) -> None:
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(
                argv,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # The JVM ignores its parent's death; the watchdog outlives us and kills the group when
        # its stdin closes, which happens when this process dies for any reason.
        self._watchdog = start_watchdog()
        assert self._watchdog.stdin is not None
        self._watchdog.stdin.write(f"+{self._process.pid}\n")

    def _wait_until_serving(self, port: int, deadline: float) -> None:
        assert self._process is not None
        while not serving(port):
            status = self._process.poll()
            if status is not None:
                raise ZooKeeperError(
                    f"ZooKeeper exited with status {status} before serving on port {port}; "
                    f"see {self.log_file}{self._last_log_line()}"
                )
            if time.monotonic() > deadline:
                raise ZooKeeperError(
                    f"ZooKeeper did not serve on port {port} in time; see {self.log_file}"
                    f"{self._last_log_line()}"
                )
            time.sleep(0.02)

    def _last_log_line(self) -> str:
        """The log line that most likely says why: the last Java exception ("java.net.
        BindException: Address already in use"), else the last ERROR."""
        with contextlib.suppress(OSError):
            lines = self.log_file.read_text(errors="replace").splitlines()
            exceptions = [line for line in lines if re.match(r"[\w.$]+(Exception|Error)\b", line)]
            errors = [line for line in lines if " ERROR " in line]
            last = (exceptions or errors or [""])[-1].strip()
            if last:
                return f" ({last[:300]})"
        return ""

    def _port_was_taken(self) -> bool:
        with contextlib.suppress(OSError):
            return "Address already in use" in self.log_file.read_text(errors="replace")
        return False

    def _kill(self, grace: float = 0.0) -> None:
        """Wait up to ``grace`` for the JVM to exit, then SIGKILL its whole group, reap it and
        retire the watchdog."""
        process, self._process = self._process, None
        if process is None:
            return
        waitid = getattr(os, "waitid", None)
        deadline = time.monotonic() + grace
        # Wait without reaping: while the JVM is an unreaped zombie its group id cannot be
        # reused, so killing the group cannot hit an unrelated process.
        while waitid is not None and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
                    break
            time.sleep(0.01)
        if waitid is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace)
        # The JVM starts no children, but a group with nothing left in it is what we promise.
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                watchdog.stdin.write(f"-{process.pid}\n")
                watchdog.stdin.close()
            watchdog.wait(5)
