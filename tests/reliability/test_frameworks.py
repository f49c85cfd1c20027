"""Frameworks that misbehave or come and go: one that stops reading its stream holds no
offer past --offer_timeout, so a second framework keeps running; and an agent forgets
torn-down frameworks as Mesos's does (50 completed kept). localmesos/CONFORMANCE.md cites
the Mesos sources ("Offer timeout", "Completed frameworks on the agent")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localmesos.cluster import LocalCluster
from tests.integration.localmesos_procs import Subscription
from tests.reliability.support import agent_state, run_task

pytestmark = pytest.mark.integration

RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31000-31099]"


@pytest.fixture
def opened() -> Iterator[list[Subscription]]:
    subscriptions: list[Subscription] = []
    yield subscriptions
    for subscription in subscriptions:
        subscription.close()


def subscribe(cluster: LocalCluster, opened: list[Subscription], name: str) -> Subscription:
    subscription = Subscription(cluster.master, name=name, timeout=30)
    opened.append(subscription)
    return subscription


def next_event(subscription: Subscription) -> dict:
    while (event := subscription.next_event())["type"] == "HEARTBEAT":
        pass
    return event


def test_offer_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^Invalid value '0ns' for --offer_timeout: Must be"):
        LocalCluster(1, offer_timeout=0)


def test_offers_of_a_stalled_framework_are_rescinded(opened: list[Subscription]) -> None:
    """The first framework takes every cpu in one offer and never reads again. With
    --offer_timeout the master rescinds the offer (`Master::offerTimeout`, `rescindOffer`):
    its resources go back to the allocator unfiltered, and a second framework runs tasks."""
    with LocalCluster(1, resources=RESOURCES, allocation_interval=0.05, offer_timeout=0.3) as c:
        stalled = subscribe(c, opened, "stalled")

        def offered_to_stalled(state: dict) -> bool:
            framework = next(f for f in state["frameworks"] if f["id"] == stalled.framework_id)
            return framework["offered_resources"]["cpus"] == 2

        c.wait_for(offered_to_stalled)
        working = subscribe(c, opened, "working")
        for n in range(3):
            assert run_task(working, f"t{n}", "true")["state"] == "TASK_FINISHED"
        # What the stalled framework was sent meanwhile: its offer, then that offer rescinded.
        first = next_event(stalled)
        assert first["type"] == "OFFERS", first
        offer_id = first["offers"]["offers"][0]["id"]
        assert next_event(stalled) == {"type": "RESCIND", "rescind": {"offer_id": offer_id}}


def test_an_agent_forgets_torn_down_frameworks(opened: list[Subscription]) -> None:
    """55 frameworks each run a task and tear down. None stays in the agent's `frameworks`;
    `completed_frameworks` keeps the newest 50 (`Slave::removeFramework`,
    MAX_COMPLETED_FRAMEWORKS), each with its completed executor, and the agent keeps no
    more than those in memory."""
    with LocalCluster(1, resources=RESOURCES, allocation_interval=0.02) as c:
        (agent_id,) = c.agents
        ids = []
        for n in range(55):
            framework = Subscription(c.master, name=f"churn-{n}", timeout=30)
            try:
                assert run_task(framework, "only", "true")["state"] == "TASK_FINISHED"
                assert framework.call("TEARDOWN") == 202
                ids.append(framework.framework_id)
            finally:
                framework.close()
        state = c.wait_for(
            lambda _: (s := agent_state(c, agent_id))["frameworks"] == [] and s, timeout=30
        )
        completed = state["completed_frameworks"]
        assert [f["id"] for f in completed] == ids[-50:]
        assert all(len(f["completed_executors"]) == 1 for f in completed)
        agent = c._agent(agent_id)
        assert agent.call(lambda: set(agent.frameworks)) == set(ids[-50:])
        assert agent.call(lambda: set(agent.completed)) == set(ids[-50:])
