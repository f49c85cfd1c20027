"""Hostile input, at the sizes that once broke localmesos (issue 16): three 15 MiB SUBSCRIBEs
full of labels, then torn down, and 2,000 /link messages that each name another URL.

What is measured: the memory the process (the cluster runs in it) still holds once the three
are completed frameworks (its resident size, against before the first SUBSCRIBE), the size of
GET_FRAMEWORKS then (and its time, only reported), and the threads the process has after the
/link messages, once idle links have let theirs go.
"""

from __future__ import annotations

import gc
import http.client
import json
import logging
import sys
import threading
import time
from typing import Any

import psutil

from bench.soak import Figure
from localmesos import link
from localmesos.cluster import LocalCluster

SUBSCRIBE_BYTES = 15 * 1024 * 1024
# Eight, not the three: the resident size after each teardown rises for the first few
# (the allocators keep the pages that parsing one 15 MiB body took) and then stays level
# (2026-12-07: +40, +84, +130, +142, +146, +150, +113, +117 MB), since one large body is parsed
# at a time. Before, three took about 450 MB and each one more kept another ~150 MB.
FRAMEWORKS = 8
LINK_MESSAGES = 2000


def run() -> list[Figure]:
    with LocalCluster(agents=1) as cluster:
        figures = completed_frameworks(cluster)
        figures.append(link_threads(cluster))
    return figures


def request(
    address: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes, http.client.HTTPConnection]:
    """POST ``body``; the connection stays open for an event stream (close it after)."""
    connection = http.client.HTTPConnection(address, timeout=120)
    connection.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    if response.getheader("Transfer-Encoding") == "chunked":
        # A SUBSCRIBE: read what came so far of the stream (SUBSCRIBED at least), no more.
        return response.status, dict(response.getheaders()), response.read1(65536), connection
    data = response.read()
    return response.status, dict(response.getheaders()), data, connection


def rss() -> int:
    """This process's resident memory (the cluster runs in it): what it took and kept."""
    return psutil.Process().memory_info().rss


def labels_info(index: int) -> dict[str, Any]:
    label = {"key": "k000000", "value": "v" * 40}
    count = SUBSCRIBE_BYTES // len(json.dumps(label))
    labels = [{"key": f"k{i:06d}", "value": "v" * 40} for i in range(count)]
    return {"user": "soak", "name": f"labels-{index}", "labels": {"labels": labels}}


def completed_frameworks(cluster: LocalCluster) -> list[Figure]:
    gc.collect()
    base, base_blocks = rss(), sys.getallocatedblocks()
    steps, blocks = [], []
    for index in range(FRAMEWORKS):
        body = json.dumps(
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": labels_info(index)}}
        ).encode()
        status, headers, first, stream = request(cluster.leader, "/api/v1/scheduler", body)
        del body
        assert status == 200, (status, first[:200])
        length, record = first.split(b"\n", 1)  # RecordIO: the size, then SUBSCRIBED
        framework_id = json.loads(record[: int(length)])["subscribed"]["framework_id"]["value"]
        teardown = json.dumps({"type": "TEARDOWN", "framework_id": {"value": framework_id}})
        status, _, answer, calls = request(
            cluster.leader,
            "/api/v1/scheduler",
            teardown.encode(),
            {"Mesos-Stream-Id": headers["Mesos-Stream-Id"]},
        )
        assert status == 202, (status, answer[:200])
        calls.close()
        stream.close()
        gc.collect()
        steps.append(f"{(rss() - base) / 1e6:.1f}")
        blocks.append(f"{sys.getallocatedblocks() - base_blocks:+,}")
    kept = (rss() - base) / 1e6
    start = time.perf_counter()
    status, _, frameworks, connection = request(
        cluster.leader, "/api/v1", b'{"type": "GET_FRAMEWORKS"}'
    )
    took = time.perf_counter() - start
    connection.close()
    assert status == 200, status
    completed = json.loads(frameworks)["get_frameworks"]["completed_frameworks"]
    return [
        Figure(
            f"memory kept after {FRAMEWORKS} torn-down {SUBSCRIBE_BYTES >> 20} MiB SUBSCRIBEs",
            kept,
            "MB",
            "about 450 MB",
            bound=200.0,
            details=(
                f"{len(completed)} completed frameworks in GET_FRAMEWORKS",
                f"resident size after each teardown: +{' MB, +'.join(steps)} MB",
                f"memory blocks Python holds after each: {', '.join(blocks)} (one SUBSCRIBE "
                "parses into about a million): the rest of the resident growth is memory the "
                "allocators keep after it was freed, not data localmesos holds",
            ),
        ),
        Figure(
            "GET_FRAMEWORKS after them",
            len(frameworks) / 1e6,
            "MB",
            "41 MB in 6.7 s",
            bound=0.5,
            details=(f"answered in {took:.3f} s",),
        ),
    ]


def link_threads(cluster: LocalCluster) -> Figure:
    secret = {"Authorization": f"Bearer {cluster.link_secret}"}
    # A thousand agents that are not there, all at one address, say so at length.
    logging.getLogger("localmesos").setLevel(logging.ERROR)
    before = threading.active_count()
    refused = registered = 0
    # Half name a link where none belongs (refused before any link is made); half register
    # agents that are not there, each answered over a new link of its own.
    for i in range(LINK_MESSAGES):
        if i % 2:
            message = {"message": "pong", "args": [{"$link": f"http://127.0.0.1:1/link/{i}"}]}
        else:
            info = {"hostname": f"ghost-{i}", "ip": "127.0.0.1", "port": 1}
            message = {
                "message": "register_agent",
                "args": [
                    {**info, "resources": [], "attributes": []},
                    {"$link": f"http://127.0.0.1:1/{i}"},
                ],
            }
        status, _, _, connection = request(
            cluster.leader, "/master/link", json.dumps(message).encode(), secret
        )
        connection.close()
        refused += status == 400
        registered += status == 202
    peak = threading.active_count() - before
    deadline = time.monotonic() + 3 * link.LINK_IDLE + 10
    while threading.active_count() - before > 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    return Figure(
        f"threads added by {LINK_MESSAGES} /link messages naming distinct URLs, once idle",
        threading.active_count() - before,
        "threads",
        "+2,000, for good",
        bound=10,
        details=(
            f"{refused} refused (a link where none belongs), {registered} registrations",
            f"{peak:+d} threads right after the last message; "
            f"{len(link._HTTP_LINKS)} links kept (at most {link.MAX_HTTP_LINKS})",
        ),
    )
