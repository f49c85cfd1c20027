"""localmesos's ZooKeeper server, and master election on it as Mesos does it: the znode layout,
the leader by number, hand-over on a clean stop and only after session expiry on a crash,
unmodified pymesos finding the leader, and no JVM outliving its owner.

The election tests assert the order of events, never how long something took. Where a test
must show that something happened *without* waiting for a session to expire, the sessions
involved are longer than the test's wait, so waiting for the expiry would fail the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from pymesos import MesosSchedulerDriver
from pymesos.detector import MasterDetector

from localmesos import protocol, zookeeper
from localmesos.election import (
    Contender,
    Detector,
    leader_of,
    master_info_json,
    member_sequence,
    parse_zk_url,
)
from localmesos.zookeeper import ZooKeeper, ZooKeeperError, find_classpath, find_java
from tests.integration.localmesos_procs import (
    alive,
    cmdline,
    in_sessions,
    need_zookeeper,
    proc,
    survivors,
)
from tests.integration.raw_http import wait_until
from tools import ROOT

pytestmark = pytest.mark.integration

# Short enough for the expiry tests, long enough that kazoo's pings (every third of it, with up
# to 0.4 s of jitter) never let a healthy session expire.
SHORT_SESSION = 1.5
# Longer than WAIT: a test that passes with it did not wait for the session to expire.
LONG_SESSION = 40.0
WAIT = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeper]:
    need_zookeeper()
    zk = ZooKeeper(tmp_path_factory.mktemp("zookeeper")).start()
    jvm = proc(zk.pid or 0)
    try:
        yield zk
    finally:
        zk.stop()
    assert not alive(jvm), "the module's ZooKeeper outlived stop()"


@pytest.fixture
def url(server: ZooKeeper, request: pytest.FixtureRequest) -> str:
    """A group path of this test's own, below a path that does not exist yet."""
    return server.url(f"/{re.sub(r'[^A-Za-z0-9]', '_', request.node.name)}/mesos")


@pytest.fixture
def observer(server: ZooKeeper) -> Iterator[KazooClient]:
    client = KazooClient(server.hosts)
    client.start(WAIT)
    yield client
    client.stop()
    client.close()


class Events:
    """What the callbacks report, from whatever threads they run on, in the order they ran."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.seen: list[Any] = []

    def add(self, event: Any) -> None:
        with self._changed:
            self.seen.append(event)
            self._changed.notify_all()

    def wait_for(self, wanted: Any) -> Any:
        """Wait for ``wanted`` (an event, or a test on one); returns the event."""
        test = wanted if callable(wanted) else (lambda event: event == wanted)
        with self._changed:
            found = self._changed.wait_for(lambda: [e for e in self.seen if test(e)], WAIT)
        assert found, f"waited for {wanted!r}; the events were {self.seen!r}"
        return found[0]


def master_info(port: int) -> dict[str, Any]:
    """MasterInfo as localmesos's Master.master_info() builds it."""
    ip = "127.0.0.1"
    return {
        "id": f"master-{port}",
        "ip": protocol.ip_as_uint32(ip),
        "port": port,
        "pid": protocol.pid_string("master", ip, port),
        "hostname": "localhost",
        "version": "1.11.0",
        "address": {"hostname": "localhost", "ip": ip, "port": port},
        "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}],
    }


class Contenders:
    """Contenders numbered 0, 1, 2 ... whose callbacks report ("elected", n) and ("lost", n,
    reason); all withdrawn at the end of the test."""

    def __init__(self, url: str, events: Events) -> None:
        self.url = url
        self.events = events
        self.all: list[Contender] = []

    def start(
        self,
        session_timeout: float = LONG_SESSION,
        on_elected: Callable[[int], Any] | None = None,
    ) -> Contender:
        n = len(self.all)
        contender = Contender(
            self.url,
            master_info(5050 + n),
            on_elected=lambda: self.events.add(on_elected(n) if on_elected else ("elected", n)),
            on_lost=lambda reason: self.events.add(("lost", n, reason)),
            session_timeout=session_timeout,
        )
        self.all.append(contender)
        return contender.start()

    def withdraw_all(self) -> None:
        for contender in self.all:
            contender.withdraw()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def contenders(url: str, events: Events) -> Iterator[Contenders]:
    made = Contenders(url, events)
    yield made
    made.withdraw_all()


def lost(events: Events) -> list[Any]:
    return [event for event in events.seen if event[0] == "lost"]


# -- the server --------------------------------------------------------------------------------


def test_zookeeper_starts_serves_and_stops_without_leaving_java(tmp_path: Path) -> None:
    need_zookeeper()
    zk = ZooKeeper(tmp_path / "zk")
    with pytest.raises(ZooKeeperError, match="no port until it has started"):
        zk.port  # noqa: B018
    zk.start()
    jvm = proc(zk.pid or 0)
    assert "org.apache.zookeeper.server.ZooKeeperServerMain" in cmdline(jvm.pid)
    assert os.getsid(jvm.pid) == jvm.pid, "the JVM runs in a session of its own"
    assert zk.hosts == f"127.0.0.1:{zk.port}"
    assert zk.url() == f"zk://127.0.0.1:{zk.port}/mesos"
    config = (tmp_path / "zk" / "zoo.cfg").read_text()
    assert "admin.enableServer=false" in config
    assert "clientPortAddress=127.0.0.1" in config

    client = KazooClient(zk.hosts)
    client.start(WAIT)
    client.create("/kept", b"across a restart")
    client.stop()
    client.close()

    zk.stop()
    assert not alive(jvm)
    assert not in_sessions({jvm.pid}), "something of the JVM's session survived"
    assert zk.pid is None
    zk.stop()  # idempotent

    # A restart keeps the port and the data: a ZooKeeper outage, as clients see one.
    port = zk.port
    with zk:
        assert zk.port == port
        again = proc(zk.pid or 0)
        client = KazooClient(zk.hosts)
        client.start(WAIT)
        assert client.get("/kept")[0] == b"across a restart"
        client.stop()
        client.close()
    assert not alive(again)


def test_zookeeper_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    need_zookeeper()
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from localmesos.zookeeper import ZooKeeper\n"
            "zk = ZooKeeper(Path(sys.argv[1])).start()\n"
            "print(zk.pid, flush=True)\n"
            "time.sleep(600)\n",
            str(tmp_path / "zk"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    jvm = proc(int(owner.stdout.readline()))
    try:
        owner.send_signal(signal.SIGKILL)  # no stop(), no atexit, no finally
        owner.wait()
        assert not survivors({jvm}, WAIT), "the JVM outlived its owner"
    finally:
        if alive(jvm):
            os.kill(jvm.pid, signal.SIGKILL)


def test_zookeeper_that_cannot_start_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    need_zookeeper()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        zk = ZooKeeper(tmp_path / "zk", port=port)
        with pytest.raises(ZooKeeperError) as failure:
            zk.start()
    message = str(failure.value)
    assert str(tmp_path / "zk" / "zookeeper.log") in message
    assert "Address already in use" in message
    assert zk.pid is None
    config = str(tmp_path / "zk" / "zoo.cfg")
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and config in cmdline(int(pid))]


def test_missing_java_or_zookeeper_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(zookeeper, "DEBIAN_JAR", tmp_path / "no" / "zookeeper.jar")
    for find in (find_java, find_classpath):
        with pytest.raises(ZooKeeperError) as missing:
            find()
        assert "\n" not in str(missing.value)
        assert "Apache ZooKeeper's binary release" in str(missing.value)
        assert "sudo apt-get install zookeeper" in str(missing.value)
    with pytest.raises(ZooKeeperError, match="ZooKeeper is not installed"):
        ZooKeeper(tmp_path / "zk", java=sys.executable).start()
    with pytest.raises(ZooKeeperError, match="is not a program"):
        find_java(str(tmp_path / "java"))

    # Apache's tarball: bin/zkServer.sh on PATH, its jars in lib/.
    (tmp_path / "zk" / "bin").mkdir(parents=True)
    (tmp_path / "zk" / "lib").mkdir()
    script = tmp_path / "zk" / "bin" / "zkServer.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    for jar in ("zookeeper-3.8.4.jar", "zookeeper-jute-3.8.4.jar", "slf4j-api-1.7.30.jar"):
        (tmp_path / "zk" / "lib" / jar).touch()
    monkeypatch.setenv("PATH", str(tmp_path / "zk" / "bin"))
    assert find_classpath().split(os.pathsep) == [
        str(tmp_path / "zk" / "lib" / jar)
        for jar in ("slf4j-api-1.7.30.jar", "zookeeper-3.8.4.jar", "zookeeper-jute-3.8.4.jar")
    ]


# -- URLs and members --------------------------------------------------------------------------


def test_parse_zk_url() -> None:
    assert parse_zk_url("zk://127.0.0.1:2181/mesos") == ("127.0.0.1:2181", "/mesos")
    assert parse_zk_url("zk://h1:2181,h2:2182/a/b/") == ("h1:2181,h2:2182", "/a/b")
    assert parse_zk_url("zk://zk/mesos") == ("zk", "/mesos")
    assert parse_zk_url("zk://[::1]:2181/mesos") == ("[::1]:2181", "/mesos")
    bad = {
        "127.0.0.1:2181/mesos": "starts with zk://",
        "zoo://127.0.0.1:2181/mesos": "starts with zk://",
        "http://127.0.0.1:2181/mesos": "starts with zk://",
        "zk://127.0.0.1:2181": "needs a path",
        "zk://127.0.0.1:2181/": "needs a path",
        "zk:///mesos": "no ZooKeeper hosts",
        "zk://h1:2181,,h2:2181/mesos": "empty ZooKeeper host",
        "zk://:2181/mesos": "empty ZooKeeper host",
        "zk://h1:port/mesos": "bad port 'port'",
        "zk://h1:70000/mesos": "bad port '70000'",
        "zk://h1:/mesos": "bad port ''",
        "zk://user:secret@h1:2181/mesos": "credentials in ZooKeeper URLs are not supported",
        "zk://h1:2181/a//b": "empty znode name",
    }
    for url, why in bad.items():
        with pytest.raises(ValueError, match=re.escape(why)):
            parse_zk_url(url)


def test_the_leader_is_the_smallest_sequence_by_number() -> None:
    assert member_sequence("json.info_0000000007") == 7
    assert member_sequence("info_0000000012") == 12
    assert member_sequence("0000000003") == 3  # a member without a label (Mesos before 0.23)
    for stray in ("log_replicas", "json.info_", "json.info_12a", "foo", "x_99999999999"):
        assert member_sequence(stray) is None, stray
    # As strings "info_0000000009" < "json.info_0000000003" ('i' < 'j'): pymesos's min().
    assert leader_of(["log_replicas", "info_0000000009", "json.info_0000000003"]) == (
        "json.info_0000000003"
    )
    assert leader_of(["json.info_0000000010", "json.info_9"]) == "json.info_9"
    assert leader_of(["log_replicas", "foo_bar"]) is None
    assert leader_of([]) is None


# -- the contender -----------------------------------------------------------------------------


def test_contender_znode_has_mesos_name_and_data(
    url: str, observer: KazooClient, contenders: Contenders
) -> None:
    _, path = parse_zk_url(url)
    assert observer.exists(path) is None  # the contender makes the path
    contender = contenders.start()
    info = contender.master_info

    assert contender.node is not None
    assert re.fullmatch(re.escape(path) + r"/json\.info_\d{10}", contender.node), contender.node
    assert observer.get_children(path) == [contender.node.rsplit("/", 1)[1]]
    data, stat = observer.get(contender.node)
    assert data == json.dumps(info, separators=(",", ":")).encode()  # compact, as stringify()
    parsed = json.loads(data)
    assert parsed["address"] == {"hostname": "localhost", "ip": "127.0.0.1", "port": 5050}
    assert parsed["pid"] == "master@127.0.0.1:5050"
    assert parsed["ip"] == 16777343  # 127.0.0.1 as Mesos stores it (see protocol.ip_as_uint32)
    assert stat.ephemeralOwner == contender.session_id != 0
    path_stat = observer.exists(path)
    assert path_stat is not None and path_stat.ephemeralOwner == 0  # the group outlives masters

    contender.withdraw()
    assert observer.get_children(path) == []


def test_three_contenders_elect_one_and_hand_over_on_withdraw(
    server: ZooKeeper, contenders: Contenders, events: Events
) -> None:
    # LONG_SESSION: a hand-over that waited for a session to expire would time out the test.
    first, second, third = (contenders.start(LONG_SESSION) for _ in range(3))
    assert [first.node, second.node, third.node] == sorted([first.node, second.node, third.node])

    events.wait_for(("elected", 0))
    for contender in (first, second, third):
        assert contender.settle(WAIT)
    assert [c.elected for c in (first, second, third)] == [True, False, False]
    assert events.seen == [("elected", 0)]

    session = first.session_id
    first.withdraw()
    events.wait_for(("elected", 1))
    assert third.settle(WAIT)
    assert not third.elected
    assert events.seen == [("elected", 0), ("elected", 1)]  # no on_lost for a withdrawal
    assert not expired(server, session)

    second.withdraw()
    events.wait_for(("elected", 2))
    assert events.seen == [("elected", 0), ("elected", 1), ("elected", 2)]


def expired(server: ZooKeeper, session: int | None) -> bool:
    """Whether ZooKeeper's log says it expired ``session``: a session closed by its client is
    not "expired" there."""
    assert session is not None
    return f"Expiring session {session:#x}," in server.log_file.read_text(errors="replace")


def test_an_abandoned_leader_is_succeeded_only_after_its_session_expires(
    server: ZooKeeper, contenders: Contenders, events: Events, observer: KazooClient
) -> None:
    crashed = contenders.start(SHORT_SESSION)
    node = crashed.node
    assert node is not None
    # The successor notes, when elected, whether the crashed master's znode was gone by then.
    successor = contenders.start(
        LONG_SESSION, on_elected=lambda n: ("elected", n, observer.exists(node) is None)
    )
    events.wait_for(("elected", 0))
    session = crashed.session_id

    crashed.abandon()
    events.add(("abandoned", 0))
    assert successor.settle(WAIT)
    elected_early = successor.elected
    stat = observer.exists(node)
    if stat is not None:  # read after: the znode was there all along
        assert stat.ephemeralOwner == session
        assert not elected_early, "elected while the crashed leader's session was alive"

    events.wait_for(lambda event: event[:2] == ("elected", 1))
    assert events.seen == [("elected", 0), ("abandoned", 0), ("elected", 1, True)]
    assert observer.exists(node) is None
    # Gone because ZooKeeper expired the session, not because the crash closed it.
    wait_until(lambda: expired(server, session), WAIT, "the crashed leader's session to expire")


def test_a_leader_whose_session_expires_is_told_and_a_follower_rejoins(
    contenders: Contenders, events: Events
) -> None:
    leader = contenders.start(LONG_SESSION)
    follower = contenders.start(LONG_SESSION)
    events.wait_for(("elected", 0))
    old_node = follower.node

    follower.expire_session()
    assert follower.settle(WAIT)
    assert follower.node is not None and follower.node != old_node  # it joined again
    assert leader.settle(WAIT)
    assert leader.elected
    assert events.seen == [("elected", 0)]  # a follower's loss is nobody's business

    leader.expire_session()
    events.wait_for(("elected", 1))
    events.wait_for(lambda event: event[0] == "lost")
    assert lost(events) == [("lost", 0, "the ZooKeeper session expired")]
    assert not leader.elected


def test_a_partitioned_leader_stands_down_on_its_own(
    contenders: Contenders, events: Events
) -> None:
    leader = contenders.start(SHORT_SESSION)
    contenders.start(LONG_SESSION)
    events.wait_for(("elected", 0))

    # ZooKeeper tells a client that its session expired only when it reconnects; the leader
    # must not wait for that to stop leading.
    leader.disconnect()
    events.wait_for(lambda event: event[0] == "lost")
    events.wait_for(("elected", 1))
    assert len(lost(events)) == 1
    assert lost(events)[0][:2] == ("lost", 0)
    assert "no connection to ZooKeeper" in lost(events)[0][2]
    leader.reconnect()
    assert events.seen.count(("elected", 0)) == 1


def test_a_leader_that_sees_an_older_member_concedes(
    url: str, observer: KazooClient, contenders: Contenders, events: Events
) -> None:
    _, path = parse_zk_url(url)
    observer.ensure_path(path)
    observer.create(f"{path}/log_replicas")  # so that the first master's number is not 0
    leader = contenders.start()
    events.wait_for(("elected", 0))

    # Sequence numbers only grow, so only a hand-made znode can be older than the leader; Mesos's
    # master then concedes ("Conceded leadership to another master") and exits.
    intruder = master_info(6000)
    observer.create(f"{path}/json.info_0000000000", master_info_json(intruder), ephemeral=True)
    events.wait_for(lambda event: event[0] == "lost")
    assert events.seen == [
        ("elected", 0),
        ("lost", 0, f"another master leads now ({path}/json.info_0000000000)"),
    ]
    assert not leader.elected


# -- detectors ---------------------------------------------------------------------------------


def test_detector_reports_leader_changes_and_none(
    url: str, contenders: Contenders, events: Events
) -> None:
    changes = Events()
    detector = Detector(url, changes.add, session_timeout=LONG_SESSION).start()
    try:
        changes.wait_for(None)  # the path did not exist: the detector made it, and saw nobody
        first = contenders.start()
        changes.wait_for(first.master_info)
        second = contenders.start()
        assert second.settle(WAIT) and detector.settle(WAIT)
        assert changes.seen == [None, first.master_info]

        first.withdraw()
        changes.wait_for(second.master_info)
        assert detector.leader == second.master_info
        second.withdraw()
        assert detector.settle(WAIT)
        assert changes.seen == [None, first.master_info, second.master_info, None]
    finally:
        detector.stop()


def test_strays_in_the_group_do_not_lead(
    url: str, observer: KazooClient, contenders: Contenders, events: Events
) -> None:
    _, path = parse_zk_url(url)
    observer.ensure_path(path)
    observer.create(f"{path}/log_replicas")  # a replicated log's, next to the masters
    observer.create(f"{path}/foo_bar")
    master = contenders.start()
    # A pre-0.24 master's node, joined later: first as a string (what pymesos compares), but
    # not as a number.
    old = observer.create(f"{path}/info_", b"\x08", ephemeral=True, sequence=True)
    assert master.node is not None
    assert old.rsplit("/", 1)[1] < master.node.rsplit("/", 1)[1]

    changes = Events()
    detector = Detector(url, changes.add, session_timeout=LONG_SESSION).start()
    try:
        events.wait_for(("elected", 0))
        changes.wait_for(master.master_info)
        assert master.settle(WAIT) and detector.settle(WAIT)
        assert changes.seen == [master.master_info]
    finally:
        detector.stop()


def pymesos_agent(found: Events) -> object:
    """What pymesos's MasterDetector calls back, with the driver's own code for reading the
    znode: `change_master` gets "ip:port", or None when there is no master."""

    class Agent:
        onNewMasterDetectedMessage = MesosSchedulerDriver.onNewMasterDetectedMessage
        onNoMasterDetectedMessage = MesosSchedulerDriver.onNoMasterDetectedMessage

        def change_master(self, master: str | None) -> None:
            found.add(master)

    return Agent()


def test_unmodified_pymesos_finds_the_leader_and_its_successor(
    url: str, contenders: Contenders, events: Events
) -> None:
    first = contenders.start()
    second = contenders.start()
    found = Events()
    # pymesos strips the scheme and hands "hosts/path" to kazoo as a chroot.
    detector = MasterDetector(url[len("zk://") :], pymesos_agent(found))
    detector.start()
    try:
        found.wait_for("127.0.0.1:5050")
        first.withdraw()
        found.wait_for("127.0.0.1:5051")
        second.withdraw()
        found.wait_for(None)
        assert found.seen == ["127.0.0.1:5050", "127.0.0.1:5051", None]
    finally:
        detector.stop()
