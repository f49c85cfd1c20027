"""Unmodified pymesos against LocalCluster: subscription, offers, filters and DRF, and
authentication. What Mesos does, with its sources, is in localmesos/CONFORMANCE.md; the
section headers below name its parts.

Waits have generous timeouts and never measure how fast something happened. Where a behaviour
is "not before N seconds", the tests check only that lower bound, which a slow machine cannot
break.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.integration.pymesos_harness import (
    Harness,
    RecordingScheduler,
    command_task,
    framework_info,
    harness_fixture,
    only,
    resources_by_name,
    scalar,
    stop_driver,
)

pytestmark = pytest.mark.integration

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WHOLE_AGENT = {"cpus": 2.0, "mem": 2048.0, "disk": 4096.0, "ports": [(31000, 31999)]}


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from harness_fixture()


def offer_ids(offers: list[dict]) -> list[dict]:
    return [offer["id"] for offer in offers]


def agent_of(offer: dict) -> str:
    return offer["agent_id"]["value"]


def framework_state(state: dict, framework_id: str) -> dict:
    return only([f for f in state["frameworks"] if f["id"] == framework_id])


def agent_state(state: dict, agent_id: str) -> dict:
    return only([a for a in state["slaves"] if a["id"] == agent_id])


def quiet_for(seconds: float) -> None:
    """Let the allocator run some passes (the tests that call this use 0.05 s intervals)."""
    time.sleep(seconds)


# -- 1. SUBSCRIBE, and a second driver taking the framework over ------------------------------
# (CONFORMANCE.md: Scheduler calls and events; Frameworks)


def test_subscribe_registers_with_a_master_generated_framework_id(harness: Harness) -> None:
    cluster = harness.cluster(agents=1)
    scheduler, _, framework_id = harness.subscribe(cluster, framework_info("first"))

    master_id = cluster.state()["id"]
    assert re.fullmatch(UUID, master_id)
    assert framework_id == f"{master_id}-0000"
    (registered_id, master_info) = only(scheduler.calls("registered")).args
    assert registered_id == {"value": framework_id}
    host, port = cluster.master.split(":")
    assert master_info == {"hostname": host, "port": int(port), "version": "1.11.0"}
    assert scheduler.calls("reregistered") == []
    assert scheduler.errors() == []
    # SUBSCRIBED is followed at once by a HEARTBEAT, not only after 15 s.
    scheduler.wait(lambda: scheduler.calls("processHeartBeat"), what="processHeartBeat()")
    assert scheduler.calls()[0].name == "registered"
    assert scheduler.calls()[1].name == "processHeartBeat"

    framework = framework_state(cluster.state(), framework_id)
    assert framework["name"] == "first"
    assert framework["active"] is True
    assert framework["connected"] is True
    assert framework["failover_timeout"] == 100  # pymesos's default

    # The next framework gets the next number.
    _, _, second_id = harness.subscribe(cluster, framework_info("second"))
    assert second_id == f"{master_id}-0001"


def test_resubscribe_with_the_same_id_reregisters_and_fails_the_old_driver_over(
    harness: Harness,
) -> None:
    cluster = harness.cluster(agents=1)
    old, old_driver, framework_id = harness.subscribe(cluster)
    old_offer = only(old.wait_offers(1))

    new = RecordingScheduler()
    harness.driver(
        new, cluster, framework=framework_info(id={"value": framework_id}, failover_timeout=60)
    )
    new.wait(lambda: new.calls("reregistered"), what="reregistered()")
    assert new.calls("registered") == []
    (master_info,) = only(new.calls("reregistered")).args
    assert master_info["version"] == "1.11.0"

    old.wait(old.errors, what="error() on the old driver")
    assert old.errors() == ["Framework failed over"]
    stop_driver(old_driver, failover=True)  # it stopped itself in error(): nothing to tear down

    # The old driver's offer vanished without RESCIND and the agent went to the new driver.
    assert old.calls("offerRescinded") == []
    new_offer = only(new.wait_offers(1))
    assert agent_of(new_offer) == agent_of(old_offer)
    assert new_offer["id"] != old_offer["id"]
    assert new_offer["framework_id"] == {"value": framework_id}

    framework = only(cluster.state()["frameworks"])
    assert framework["id"] == framework_id
    assert framework["connected"] is True
    assert framework["failover_timeout"] == 60
    assert new.errors() == []


# -- 2. Offers (CONFORMANCE.md: Offers and allocation) -----------------------------------------


def test_each_agent_is_offered_whole_right_after_subscribe(harness: Harness) -> None:
    # With a 30 s interval, only the events (subscribe, agent added) can trigger allocation.
    cluster = harness.cluster(agents=2, allocation_interval=30.0)
    scheduler, _, framework_id = harness.subscribe(cluster)
    offers = scheduler.wait_offers(2)
    master_id = cluster.state()["id"]

    # One pass: one OFFERS event with one offer per agent.
    assert len(scheduler.calls("resourceOffers")) == 1
    assert sorted(agent_of(o) for o in offers) == sorted(cluster.agents)
    state = cluster.state()
    for offer in offers:
        agent_id = agent_of(offer)
        agent_port = urlparse(cluster.agent_url(agent_id)).port
        assert re.fullmatch(f"{master_id}-O\\d+", offer["id"]["value"])
        assert offer["framework_id"] == {"value": framework_id}
        assert offer["hostname"] == agent_state(state, agent_id)["hostname"]
        assert offer["url"]["scheme"] == "http"
        assert offer["url"]["path"] == "/slave(1)"
        assert offer["url"]["address"]["ip"] == "127.0.0.1"
        assert offer["url"]["address"]["port"] == agent_port
        assert offer["url"]["address"]["hostname"] == offer["hostname"]
        assert offer["executor_ids"] == []
        assert resources_by_name(offer["resources"]) == WHOLE_AGENT
        assert all(r["role"] == "*" for r in offer["resources"])
        assert {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*"} in offer[
            "resources"
        ]
        assert agent_state(state, agent_id)["offered_resources"]["cpus"] == 2

    # A new agent is offered at once, and whole, with exactly its own resources.
    mark = scheduler.mark()
    new_agent = cluster.add_agent(resources="cpus:1;mem:512;ports:[32000-32009]")
    offer = only(scheduler.wait_offers(1, since=mark))
    assert agent_of(offer) == new_agent
    assert resources_by_name(offer["resources"]) == {
        "cpus": 1.0,
        "mem": 512.0,
        "ports": [(32000, 32009)],
    }
    assert offer["url"]["address"]["port"] == urlparse(cluster.agent_url(new_agent)).port


# -- 3. DECLINE filters, REVIVE and SUPPRESS (CONFORMANCE.md: Offers and allocation) -----------


def test_declined_agent_is_not_reoffered_before_refuse_seconds(harness: Harness) -> None:
    cluster = harness.cluster(agents=2, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    long_offer, short_offer = scheduler.wait_offers(2)
    start = scheduler.mark()

    driver.declineOffer([long_offer["id"]], filters={"refuse_seconds": 60})
    for _ in range(3):
        declined = time.monotonic()
        mark = scheduler.mark()
        driver.declineOffer([short_offer["id"]], filters={"refuse_seconds": 0.5})
        short_offer = only(scheduler.wait_offers(1, since=mark, agent_id=agent_of(short_offer)))
        offered = scheduler.calls("resourceOffers", mark)[0].time
        assert offered - declined >= 0.5, "re-offered before its filter expired"

    # Meanwhile dozens of allocation passes never offered the agent refused for 60 s.
    assert scheduler.offers(since=start, agent_id=agent_of(long_offer)) == []


def test_decline_without_filters_refuses_the_agent_for_5_seconds(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))

    mark = scheduler.mark()
    declined = time.monotonic()
    driver.declineOffer(offer["id"])  # pymesos sends no `filters` at all
    again = only(scheduler.wait_offers(1, since=mark, timeout=10))
    offered = scheduler.calls("resourceOffers", mark)[0].time
    assert offered - declined >= 5.0, "the default filter is refuse_seconds=5"
    assert resources_by_name(again["resources"]) == WHOLE_AGENT


def test_revive_clears_filters_at_once(harness: Harness) -> None:
    cluster = harness.cluster(agents=2, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    offers = scheduler.wait_offers(2)

    mark = scheduler.mark()
    driver.declineOffer(offer_ids(offers), filters={"refuse_seconds": 60})
    quiet_for(0.3)
    assert scheduler.offers(since=mark) == []

    driver.reviveOffers()
    revived = scheduler.wait_offers(2, since=mark)
    assert sorted(agent_of(o) for o in revived) == sorted(cluster.agents)


def test_suppress_stops_offers_until_revive(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05)
    scheduler, driver, _ = harness.subscribe(cluster)
    offer = only(scheduler.wait_offers(1))

    # refuse_seconds=0 installs no filter: the agent comes straight back.
    mark = scheduler.mark()
    driver.declineOffer(offer["id"], filters={"refuse_seconds": 0})
    offer = only(scheduler.wait_offers(1, since=mark))

    driver.suppressOffers()
    mark = scheduler.mark()
    driver.declineOffer(offer["id"], filters={"refuse_seconds": 0})
    quiet_for(0.5)
    assert scheduler.offers(since=mark) == []
    assert agent_state(cluster.state(), cluster.agents[0])["offered_resources"]["cpus"] == 0

    driver.reviveOffers()
    offer = only(scheduler.wait_offers(1, since=mark))
    assert resources_by_name(offer["resources"]) == WHOLE_AGENT


# -- 4. DRF between two frameworks (CONFORMANCE.md: Offers and allocation) ---------------------


def test_two_frameworks_share_the_agents_by_drf(harness: Harness) -> None:
    cluster = harness.cluster(agents=2, allocation_interval=0.05)
    first, first_driver, first_id = harness.subscribe(cluster, framework_info("first"))
    first_offers = first.wait_offers(2)  # alone, it gets every agent
    second, second_driver, second_id = harness.subscribe(cluster, framework_info("second"))
    quiet_for(0.2)
    assert second.offers() == []  # nothing is left to offer

    # Both agents come back. Equal shares (zero): the framework offered less often goes
    # first, then the other one is furthest behind, so each gets one agent.
    first_mark, second_mark = first.mark(), second.mark()
    first_driver.declineOffer(offer_ids(first_offers), filters={"refuse_seconds": 0})
    mine = only(first.wait_offers(1, since=first_mark))
    theirs = only(second.wait_offers(1, since=second_mark))
    assert {agent_of(mine), agent_of(theirs)} == set(cluster.agents)
    state = cluster.state()
    assert framework_state(state, first_id)["offered_resources"]["cpus"] == 2
    assert framework_state(state, second_id)["offered_resources"]["cpus"] == 2

    # The first framework now runs a task on its whole agent. Whatever the second declines
    # goes back to the second: its share (0) stays below the first's (1/2).
    whole = [scalar("cpus", 2), scalar("mem", 2048), scalar("disk", 4096)]
    task = command_task("hog", mine, "sleep 100", resources=whole)
    first_driver.launchTasks(mine["id"], [task])
    first.wait_update("hog", "TASK_RUNNING")
    first_mark = first.mark()
    for _ in range(3):
        second_mark = second.mark()
        second_driver.declineOffer(theirs["id"], filters={"refuse_seconds": 0})
        theirs = only(second.wait_offers(1, since=second_mark))
        assert agent_of(theirs) != agent_of(mine)
    assert first.offers(since=first_mark) == []

    state = cluster.state()
    busy = agent_state(state, agent_of(mine))
    assert busy["used_resources"]["cpus"] == 2
    assert busy["used_resources"]["mem"] == 2048
    assert busy["offered_resources"]["cpus"] == 0
    assert framework_state(state, first_id)["used_resources"]["cpus"] == 2
    assert framework_state(state, second_id)["offered_resources"]["cpus"] == 2
    assert framework_state(state, second_id)["used_resources"]["cpus"] == 0


# -- 13. Authentication (CONFORMANCE.md: Authentication) ---------------------------------------


def test_only_a_driver_with_valid_credentials_registers(harness: Harness) -> None:
    cluster = harness.cluster(agents=1, allocation_interval=0.05, credentials={"p": "s"})
    good, good_driver, framework_id = harness.subscribe(cluster, principal="p", secret="s")
    offer = only(good.wait_offers(1))

    for credentials in ({}, {"principal": "p", "secret": "wrong"}):
        refused = RecordingScheduler()
        harness.driver(refused, cluster, **credentials)
        # pymesos gets 401 on SUBSCRIBE and its IO thread dies.
        error = harness.wait_abort()
        assert isinstance(error, RuntimeError)
        assert str(error).startswith("Failed with HTTP 401")
        assert refused.calls("registered") == []
        assert refused.calls("resourceOffers") == []

    # The good framework is the only one, its principal filled in from the credentials, and
    # its calls still work.
    framework = only(cluster.state()["frameworks"])
    assert framework["id"] == framework_id
    assert framework["principal"] == "p"
    mark = good.mark()
    good_driver.declineOffer(offer["id"], filters={"refuse_seconds": 60})
    good_driver.reviveOffers()
    assert agent_of(only(good.wait_offers(1, since=mark))) == agent_of(offer)
