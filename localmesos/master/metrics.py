"""/metrics/snapshot (src/master/metrics.cpp): the master's gauges and counters, under the
names Mesos gives them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from localmesos.resources import Resources

# What libprocess's `http::encode` (3rdparty/libprocess/src/http.cpp) percent-encodes besides
# control and non-ASCII bytes: a list of reserved and unsafe characters, not an allow-list.
ENCODED = frozenset('$&+,/:;=?@ "<>#%{}|\\^~[]`')

if TYPE_CHECKING:
    from localmesos.master.master import Master


def snapshot(master: Master) -> dict:
    tasks = [t for f in master.frameworks.values() for t in f.tasks.values()]
    gauges: dict[str, float] = {
        "master/elected": int(master.serving),
        "master/uptime_secs": time.time() - master.start_time,
        "master/frameworks_active": sum(f.active for f in master.frameworks.values()),
        "master/frameworks_inactive": sum(not f.active for f in master.frameworks.values()),
        "master/frameworks_connected": sum(f.connected for f in master.frameworks.values()),
        "master/frameworks_disconnected": sum(not f.connected for f in master.frameworks.values()),
        "master/slaves_active": sum(a.active for a in master.agents.values()),
        "master/slaves_connected": sum(a.connected for a in master.agents.values()),
        "master/slaves_disconnected": sum(not a.connected for a in master.agents.values()),
        "master/slaves_inactive": sum(not a.active for a in master.agents.values()),
        "master/slaves_unreachable": len(master.unreachable_agents),
        "master/outstanding_offers": len(master.offers),
        "master/operator_event_stream_subscribers": len(master.subscribers),
    }
    for state in ("staging", "starting", "running", "killing"):
        gauges[f"master/tasks_{state}"] = sum(t.state == f"TASK_{state.upper()}" for t in tasks)
    for state in (
        "finished",
        "failed",
        "killed",
        "lost",
        "error",
        "dropped",
        "unreachable",
        "gone",
        "gone_by_operator",
    ):
        gauges[f"master/tasks_{state}"] = master.counters.get(f"master/tasks_{state}", 0)
    total = master.allocator.total()
    used = Resources()
    for task in tasks:
        if not task.resources_recovered:
            used = used + task.resources
    for name in ("cpus", "mem", "disk", "gpus"):
        gauges[f"master/{name}_total"] = total.scalar(name)
        gauges[f"master/{name}_used"] = used.scalar(name)
        gauges[f"master/{name}_percent"] = (
            used.scalar(name) / total.scalar(name) if total.scalar(name) else 0.0
        )
    for key, value in master.counters.items():
        gauges.setdefault(key, value)
    for framework in master.frameworks.values():
        # FrameworkMetrics (src/master/metrics.cpp), under `getFrameworkMetricPrefix`; a
        # removed framework's metrics go with it.
        prefix = f"master/frameworks/{encode(framework.info.get('name', ''))}/{framework.id}/"
        for name, value in framework.offer_counts.items():
            gauges[f"{prefix}offers/{name}"] = value
    return gauges


def encode(text: str) -> str:
    """libprocess's `http::encode` with no additional characters."""
    return "".join(
        "".join(f"%{b:02X}" for b in char.encode())
        if char in ENCODED or ord(char) < 0x20 or ord(char) > 0x7F
        else char
        for char in text
    )
