"""Unmodified pymesos reads a chunked RecordIO stream through our http_parser.

A throwaway master, just enough for one subscription, sends SUBSCRIBED, HEARTBEAT and OFFERS
in small HTTP chunks that cut through records and their length prefixes. pymesos must
register, see the offer, and answer with a DECLINE on the right stream.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

STREAM_ID = "0b7f6a8e-4c1d-4e8b-9f3a-1c2d3e4f5a6b"
FRAMEWORK_ID = "c0ffee00-0000-4000-8000-000000000000-0000"
OFFER_ID = "c0ffee00-0000-4000-8000-000000000000-O1"
EVENTS = [
    {
        "type": "SUBSCRIBED",
        "subscribed": {"framework_id": {"value": FRAMEWORK_ID}, "heartbeat_interval_seconds": 15},
    },
    {"type": "HEARTBEAT"},
    {
        "type": "OFFERS",
        "offers": {
            "offers": [
                {
                    "id": {"value": OFFER_ID},
                    "framework_id": {"value": FRAMEWORK_ID},
                    "agent_id": {"value": "c0ffee00-S0"},
                    "hostname": "localhost",
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}, "role": "*"}
                    ],
                }
            ]
        },
    },
]


def recordio(event: dict) -> bytes:
    data = json.dumps(event, separators=(",", ":")).encode()
    return b"%d\n%s" % (len(data), data)


class FakeMaster(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), MasterHandler)
        self.calls: list[tuple[dict, dict]] = []
        self.stream_done = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class MasterHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FakeMaster

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/version":
            self.reply(200, b'{"version":"1.11.0"}')
        else:
            self.reply(404)

    def do_POST(self) -> None:
        call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if call["type"] != "SUBSCRIBE":
            self.server.calls.append((call, dict(self.headers)))
            if call["type"] == "TEARDOWN":
                self.server.stream_done.set()
            self.reply(202)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Mesos-Stream-Id", STREAM_ID)
        self.end_headers()
        stream = b"".join(recordio(event) for event in EVENTS)
        # 7-byte chunks, sent apart, so records and their length lines straddle chunks and reads.
        for start in range(0, len(stream), 7):
            chunk = stream[start : start + 7]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            time.sleep(0.002)
        self.server.stream_done.wait(timeout=30)
        self.wfile.write(b"0\r\n\r\n")


class Recorder(Scheduler):
    def __init__(self) -> None:
        self.framework_id: str | None = None
        self.offers: list[dict] = []
        self.offered = threading.Event()

    def registered(self, driver, framework_id, master_info) -> None:
        self.framework_id = framework_id["value"]

    def resourceOffers(self, driver, offers) -> None:
        self.offers.extend(offers)
        driver.declineOffer([offer["id"] for offer in offers], {"refuse_seconds": 5})
        self.offered.set()


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    server = FakeMaster()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stream_done.set()
    server.shutdown()
    server.server_close()


def test_pymesos_registers_and_declines_through_a_chunked_stream(master: FakeMaster) -> None:
    scheduler = Recorder()
    framework = {"user": "tester", "name": "recordio-check"}
    driver = MesosSchedulerDriver(scheduler, framework, master.address, use_addict=False)
    driver.start()
    try:
        assert scheduler.offered.wait(timeout=20), "pymesos never delivered the offer"
    finally:
        driver.stop()
        driver.join()

    assert scheduler.framework_id == FRAMEWORK_ID
    assert [offer["id"]["value"] for offer in scheduler.offers] == [OFFER_ID]
    calls = {call["type"]: (call, headers) for call, headers in master.calls}
    decline, headers = calls["DECLINE"]
    assert headers["Mesos-Stream-Id"] == STREAM_ID
    assert decline["framework_id"]["value"] == FRAMEWORK_ID
    assert decline["decline"]["offer_ids"] == [{"value": OFFER_ID}]
    assert decline["decline"]["filters"] == {"refuse_seconds": 5}
    assert "TEARDOWN" in calls, "stop() without failover must tear the framework down"
