"""The hierarchical DRF allocator: coarse offers, DRF order, filters, and framework states."""

from __future__ import annotations

import math
import random

import pytest

from localmesos.allocator import DEFAULT_MIN_ALLOCATABLE, DEFAULT_REFUSE_SECONDS, Allocator
from localmesos.resources import Resources

AGENT = "cpus:2;mem:2048;disk:4096;ports:[31000-31999]"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def res(text: str) -> Resources:
    return Resources.parse(text)


def make(
    agents: int = 1,
    frameworks: tuple[str, ...] = ("f1",),
    *,
    agent: str = AGENT,
    interval: float = 1.0,
    seed: int = 1,
    **options: object,
) -> tuple[Allocator, FakeClock]:
    clock = FakeClock()
    allocator = Allocator(
        allocation_interval=interval, clock=clock, rng=random.Random(seed), **options
    )
    for index in range(agents):
        allocator.add_agent(f"a{index}", res(agent))
    for framework_id in frameworks:
        allocator.add_framework(framework_id)
    return allocator, clock


def offered(offers: dict[str, dict[str, Resources]]) -> dict[str, list[str]]:
    """Framework id -> sorted agent ids, to compare passes at a glance."""
    return {framework: sorted(by_agent) for framework, by_agent in offers.items()}


def decline_all(allocator: Allocator, offers: dict[str, dict[str, Resources]], **kw: float) -> None:
    for framework_id, by_agent in offers.items():
        for agent_id, resources in by_agent.items():
            allocator.recover(framework_id, agent_id, resources, **kw)


def test_defaults_match_mesos() -> None:
    assert DEFAULT_REFUSE_SECONDS == 5.0
    assert (res("cpus:0.01"), res("mem:32")) == DEFAULT_MIN_ALLOCATABLE


# Coarse offers.


def test_a_framework_is_offered_the_whole_agent_once() -> None:
    allocator, _ = make(agents=2)
    offers = allocator.allocate()
    assert offers == {"f1": {"a0": res(AGENT), "a1": res(AGENT)}}
    assert allocator.allocated("f1", "a0") == res(AGENT)
    assert allocator.allocated("f1") == res("cpus:4;mem:4096;disk:8192;ports:[31000-31999]")
    assert not allocator.available("a0")
    # Offered resources stay allocated until recovered: the next pass has nothing to give.
    assert allocator.allocate() == {}


def test_only_what_is_left_on_the_agent_is_offered() -> None:
    allocator, _ = make()
    allocator.add_used("f1", "a0", res("cpus:1.5;mem:1000;ports:[31000-31009]"))
    offers = allocator.allocate()
    left = res("cpus:0.5;mem:1048;disk:4096;ports:[31010-31999]")
    assert offers == {"f1": {"a0": left}}
    assert allocator.allocated("f1", "a0") == res(AGENT)


def test_one_offer_per_agent_even_with_many_hungry_frameworks() -> None:
    allocator, _ = make(agents=3, frameworks=("f1", "f2", "f3", "f4", "f5"))
    offers = allocator.allocate()
    per_agent = [agent for by_agent in offers.values() for agent in by_agent]
    assert sorted(per_agent) == ["a0", "a1", "a2"]
    assert all(resources == res(AGENT) for by in offers.values() for resources in by.values())


def test_allocate_only_visits_the_given_agents() -> None:
    allocator, _ = make(agents=3)
    assert offered(allocator.allocate(["a2", "a2", "gone"])) == {"f1": ["a2"]}
    assert offered(allocator.allocate()) == {"f1": ["a0", "a1"]}


# DRF order.


def test_the_framework_with_the_smaller_dominant_share_gets_the_next_agent() -> None:
    allocator, _ = make(agents=2, frameworks=("f1", "f2"))
    # f1 holds more cpus (1.5 of 4), f2 more memory (2000 of 4096): f2's dominant share is larger.
    allocator.add_used("f1", "a0", res("cpus:1.5;mem:100"))
    allocator.add_used("f2", "a1", res("cpus:0.1;mem:2000"))
    assert allocator.share("f1") == pytest.approx(1.5 / 4)
    assert allocator.share("f2") == pytest.approx(2000 / 4096)
    allocator.add_agent("a2", res(AGENT))
    assert offered(allocator.allocate(["a2"])) == {"f1": ["a2"]}


def test_dominant_share_takes_the_largest_fraction_of_any_scalar() -> None:
    allocator, _ = make(agents=1, frameworks=("f1", "f2"), agent="cpus:10;mem:1000;ports:[1-100]")
    allocator.add_used("f1", "a0", res("cpus:1;mem:800"))  # mem dominates: 0.8
    allocator.add_used("f2", "a0", res("cpus:5;mem:0.5;ports:[1-100]"))  # cpus: 0.5, ranges ignored
    assert allocator.share("f1") == pytest.approx(0.8)
    assert allocator.share("f2") == pytest.approx(0.5)
    allocator.add_agent("a1", res("cpus:10;mem:1000"))
    assert offered(allocator.allocate(["a1"])) == {"f2": ["a1"]}


def test_share_counts_unanswered_offers_and_follows_the_cluster_total() -> None:
    allocator, _ = make(agents=4)
    allocator.allocate(["a0"])
    assert allocator.share("f1") == 0.25
    allocator.remove_agent("a3")
    assert allocator.share("f1") == pytest.approx(1 / 3)
    assert allocator.total() == res("cpus:6;mem:6144;disk:12288")


def test_shares_are_updated_within_a_pass_so_equals_take_turns() -> None:
    allocator, _ = make(agents=6, frameworks=("f1", "f2", "f3"))
    offers = allocator.allocate()
    assert sorted(len(by_agent) for by_agent in offers.values()) == [2, 2, 2]


def test_twenty_frameworks_share_a_thousand_agents_evenly() -> None:
    frameworks = tuple(f"f{index:02d}" for index in range(20))
    allocator, _ = make(agents=1000, frameworks=frameworks)
    offers = allocator.allocate()
    assert {framework: len(by_agent) for framework, by_agent in offers.items()} == dict.fromkeys(
        frameworks, 50
    )
    assert all(allocator.share(framework) == 0.05 for framework in frameworks)


def test_ties_go_to_fewer_allocations_then_to_the_framework_id() -> None:
    allocator, _ = make(agents=1, frameworks=("f2", "f1"))
    assert offered(allocator.allocate()) == {"f1": ["a0"]}  # equal shares, equal counts: by id
    allocator.recover("f1", "a0", res(AGENT))
    # Shares are equal again (zero), but f1 has been allocated to once, f2 never.
    assert offered(allocator.allocate()) == {"f2": ["a0"]}


def test_roles_are_sorted_before_the_frameworks_inside_them() -> None:
    allocator, _ = make(agents=4, frameworks=())
    allocator.add_framework("a1", role="a")
    allocator.add_framework("a2", role="a")
    allocator.add_framework("b1", role="b")
    offers = allocator.allocate()
    # Role b gets half the cluster although it has one framework and role a has two.
    assert {framework: len(by_agent) for framework, by_agent in offers.items()} == {
        "a1": 1,
        "a2": 1,
        "b1": 2,
    }


def test_the_poorer_role_wins_even_over_a_framework_with_nothing() -> None:
    allocator, _ = make(agents=4, frameworks=(), agent="cpus:1;mem:1024")
    allocator.add_framework("a1", role="a")
    allocator.add_framework("a2", role="a")
    allocator.add_framework("b1", role="b")
    allocator.add_used("a2", "a0", res("cpus:1;mem:1024"))  # role a: 0.25
    allocator.add_used("b1", "a1", res("cpus:0.5"))  # role b: 0.125
    # Flat DRF would pick a1 (share 0); role b is further behind than role a.
    assert offered(allocator.allocate(["a2"])) == {"b1": ["a2"]}
    assert offered(allocator.allocate(["a3"])) == {"a1": ["a3"]}


def test_agents_are_visited_in_random_order_from_the_given_rng() -> None:
    def first_pass(seed: int) -> dict[str, list[str]]:
        allocator, _ = make(agents=0, frameworks=("f1", "f2"), seed=seed)
        allocator.add_agent("big", res("cpus:8;mem:8192"))
        allocator.add_agent("small", res("cpus:1;mem:1024"))
        return offered(allocator.allocate())

    # f1 wins the tie on whichever agent is visited first.
    outcomes = {str(first_pass(seed)) for seed in range(20)}
    assert outcomes == {
        str({"f1": ["big"], "f2": ["small"]}),
        str({"f1": ["small"], "f2": ["big"]}),
    }
    assert first_pass(3) == first_pass(3)


# Eligibility.


def test_min_allocatable_needs_cpus_or_mem() -> None:
    allocator, _ = make(agents=0)
    allocator.add_agent("tiny", res("cpus:0.009;mem:31;disk:100"))
    allocator.add_agent("cpu", res("cpus:0.01"))
    allocator.add_agent("mem", res("mem:32"))
    allocator.add_agent("ports", res("ports:[1-100]"))
    assert offered(allocator.allocate()) == {"f1": ["cpu", "mem"]}


def test_an_agent_with_only_ports_left_is_not_offered() -> None:
    allocator, _ = make(frameworks=("f1", "f2"))
    allocator.add_used("f1", "a0", res("cpus:2;mem:2048;disk:4096"))
    assert allocator.available("a0") == res("ports:[31000-31999]")
    assert allocator.allocate() == {}


def test_min_allocatable_can_be_configured_or_disabled() -> None:
    strict, _ = make(agent="cpus:1;mem:64", min_allocatable=(res("cpus:1;mem:128"),))
    assert strict.allocate() == {}
    anything, _ = make(agent="disk:1", min_allocatable=())
    assert offered(anything.allocate()) == {"f1": ["a0"]}


def test_an_agent_with_nothing_available_is_skipped() -> None:
    allocator, _ = make(agents=2)
    allocator.add_used("f1", "a0", res(AGENT))
    assert offered(allocator.allocate()) == {"f1": ["a1"]}


def test_suppress_stops_offers_until_revive() -> None:
    allocator, _ = make(frameworks=("f1", "f2"))
    allocator.suppress("f1")
    allocator.suppress("f2")
    assert allocator.allocate() == {}
    allocator.revive("f2")
    assert offered(allocator.allocate()) == {"f2": ["a0"]}


def test_a_framework_can_be_added_suppressed_or_inactive() -> None:
    allocator, _ = make(frameworks=())
    allocator.add_framework("quiet", suppressed=True)
    allocator.add_framework("away", active=False)
    assert allocator.allocate() == {}
    allocator.activate_framework("away")
    assert offered(allocator.allocate()) == {"away": ["a0"]}


def test_deactivate_keeps_allocations_but_stops_offers() -> None:
    allocator, _ = make(agents=2, frameworks=("f1", "f2"))
    allocator.add_used("f1", "a0", res("cpus:1;mem:1024"))
    allocator.deactivate_framework("f1")
    allocator.deactivate_framework("f2")
    assert allocator.allocate() == {}
    assert allocator.allocated("f1") == res("cpus:1;mem:1024")
    assert allocator.share("f1") == 0.25
    allocator.activate_framework("f1")
    assert offered(allocator.allocate()) == {"f1": ["a0", "a1"]}


# Filters.


def decline_once(interval: float = 1.0, **kw: float | None) -> tuple[Allocator, FakeClock]:
    allocator, clock = make(interval=interval)
    offers = allocator.allocate()
    assert offered(offers) == {"f1": ["a0"]}
    decline_all(allocator, offers, **kw)
    assert allocator.available("a0") == res(AGENT)
    return allocator, clock


def offered_at(allocator: Allocator, clock: FakeClock, seconds: float) -> bool:
    """Whether a pass ``seconds`` after the decline offers the agent (recovering it if so)."""
    clock.now = 1000.0 + seconds
    offers = allocator.allocate()
    decline_all(allocator, offers)  # no filter: keep the agent free for the next probe
    return offers != {}


def test_a_declined_agent_is_filtered_for_refuse_seconds() -> None:
    allocator, clock = decline_once(refuse_seconds=DEFAULT_REFUSE_SECONDS)
    assert not offered_at(allocator, clock, 0)
    assert not offered_at(allocator, clock, 4.99)
    assert offered_at(allocator, clock, 5.0)


def test_recover_without_refuse_seconds_installs_no_filter() -> None:
    allocator, clock = decline_once(refuse_seconds=None)
    assert offered_at(allocator, clock, 0)


def test_refuse_zero_installs_no_filter() -> None:
    allocator, clock = decline_once(refuse_seconds=0)
    assert offered_at(allocator, clock, 0)


@pytest.mark.parametrize("seconds", [-1.0, -0.001, math.nan])
def test_negative_or_invalid_refuse_seconds_mean_the_default(seconds: float) -> None:
    allocator, clock = decline_once(refuse_seconds=seconds)
    assert not offered_at(allocator, clock, 4.9)
    assert offered_at(allocator, clock, 5.0)


def test_a_filter_lasts_at_least_one_allocation_interval() -> None:
    allocator, clock = decline_once(interval=10.0, refuse_seconds=2)
    assert not offered_at(allocator, clock, 2.0)
    assert not offered_at(allocator, clock, 9.99)
    assert offered_at(allocator, clock, 10.0)


def test_refuse_seconds_are_capped_at_365_days() -> None:
    days = 365 * 24 * 3600.0
    allocator, clock = decline_once(refuse_seconds=1e12)
    assert not offered_at(allocator, clock, days - 1)
    assert offered_at(allocator, clock, days)
    allocator, clock = decline_once(refuse_seconds=math.inf)
    assert offered_at(allocator, clock, days)


def test_a_filter_only_applies_to_the_declining_framework_and_agent() -> None:
    allocator, _ = make(agents=2, frameworks=("f1", "f2"))
    offers = allocator.allocate(["a0"])
    assert offered(offers) == {"f1": ["a0"]}
    decline_all(allocator, offers, refuse_seconds=5)
    allocator.add_used("f2", "a1", res("cpus:0.5"))
    assert allocator.share("f1") < allocator.share("f2")
    # f1 comes first in DRF order but has refused a0, so a0 goes to f2.
    assert offered(allocator.allocate(["a0"])) == {"f2": ["a0"]}
    # The filter is for a0 only: f1 is offered another agent.
    allocator.add_agent("a2", res(AGENT))
    assert offered(allocator.allocate(["a2"])) == {"f1": ["a2"]}


def test_a_filter_blocks_only_while_the_offer_is_within_the_refused_resources() -> None:
    allocator, clock = make()
    offers = allocator.allocate()
    task = res("cpus:1;mem:1024;ports:[31000-31000]")
    # The framework launches a task and refuses the rest for a long time.
    allocator.recover("f1", "a0", offers["f1"]["a0"] - task, refuse_seconds=3600)
    clock.now += 10
    assert allocator.allocate() == {}
    # Less than what was refused is still filtered.
    allocator.add_used("f1", "a0", res("cpus:0.5"))
    assert allocator.allocate() == {}
    allocator.recover("f1", "a0", res("cpus:0.5"))
    # The task ends: more is free than was refused, so the agent is offered again early.
    allocator.recover("f1", "a0", task)
    assert allocator.allocate() == {"f1": {"a0": res(AGENT)}}


def test_revive_clears_every_filter() -> None:
    allocator, _ = make(agents=2)
    decline_all(allocator, allocator.allocate(), refuse_seconds=3600)
    assert allocator.allocate() == {}
    allocator.revive("f1")
    assert offered(allocator.allocate()) == {"f1": ["a0", "a1"]}


def test_deactivate_clears_filters_like_mesos() -> None:
    allocator, _ = make()
    decline_all(allocator, allocator.allocate(), refuse_seconds=3600)
    allocator.deactivate_framework("f1")
    allocator.activate_framework("f1")
    assert offered(allocator.allocate()) == {"f1": ["a0"]}


def test_several_filters_on_one_agent_any_blocks_and_expired_ones_go() -> None:
    allocator, clock = make()
    offers = allocator.allocate()
    allocator.recover("f1", "a0", offers["f1"]["a0"] - res("cpus:1"), refuse_seconds=100)
    allocator.recover("f1", "a0", res("cpus:1"), refuse_seconds=10)
    # The whole agent is free now: neither filter covers it.
    assert offered(allocator.allocate()) == {"f1": ["a0"]}
    allocator.recover("f1", "a0", res(AGENT), refuse_seconds=10)
    clock.now += 9
    assert allocator.allocate() == {}
    clock.now += 1
    assert offered(allocator.allocate()) == {"f1": ["a0"]}


# Recovering, removing, adding.


def test_recover_gives_resources_back_and_lowers_the_share() -> None:
    allocator, _ = make(agents=2)
    allocator.allocate()
    assert allocator.share("f1") == 1.0
    allocator.recover("f1", "a0", res("cpus:2;mem:2048;disk:4096"))
    assert allocator.available("a0") == res("cpus:2;mem:2048;disk:4096")
    assert allocator.allocated("f1", "a0") == res("ports:[31000-31999]")
    assert allocator.share("f1") == 0.5


def test_recover_ignores_unknown_ids_and_empty_resources() -> None:
    allocator, _ = make()
    allocator.allocate()
    allocator.recover("nobody", "a0", res("cpus:1"))
    allocator.recover("f1", "nowhere", res("cpus:1"))
    allocator.recover("f1", "a0", Resources(), refuse_seconds=3600)
    assert allocator.allocated("f1", "a0") == res(AGENT)


def test_recovering_more_than_held_is_an_error() -> None:
    allocator, _ = make()
    allocator.add_used("f1", "a0", res("cpus:1"))
    with pytest.raises(ValueError, match="holds 'cpus:1' on agent a0, cannot recover 'cpus:2'"):
        allocator.recover("f1", "a0", res("cpus:2"))
    assert allocator.allocated("f1", "a0") == res("cpus:1")


def test_add_used_checks_availability_and_ids() -> None:
    allocator, _ = make()
    with pytest.raises(ValueError, match="cannot allocate 'cpus:3' to framework f1"):
        allocator.add_used("f1", "a0", res("cpus:3"))
    with pytest.raises(KeyError, match="unknown framework nobody"):
        allocator.add_used("nobody", "a0", res("cpus:1"))
    with pytest.raises(KeyError, match="unknown agent nowhere"):
        allocator.add_used("f1", "nowhere", res("cpus:1"))


def test_remove_framework_frees_everything_it_held() -> None:
    allocator, _ = make(agents=2, frameworks=("f1", "f2"))
    allocator.suppress("f2")
    decline_all(allocator, {"f1": allocator.allocate()["f1"]}, refuse_seconds=3600)
    allocator.add_used("f1", "a0", res("cpus:1"))
    allocator.remove_framework("f1")
    assert allocator.available("a0") == res(AGENT)
    allocator.recover("f1", "a0", res("cpus:1"))  # a late recover is ignored
    with pytest.raises(KeyError):
        allocator.share("f1")
    allocator.revive("f2")
    assert offered(allocator.allocate()) == {"f2": ["a0", "a1"]}
    # Re-adding the id starts afresh: no filters, no allocations.
    allocator.add_framework("f1")
    allocator.recover("f2", "a0", res(AGENT))
    assert offered(allocator.allocate()) == {"f1": ["a0"]}
    allocator.remove_framework("never-added")


def test_remove_agent_forgets_its_allocations() -> None:
    allocator, _ = make(agents=2)
    allocator.allocate()
    allocator.remove_agent("a0")
    assert allocator.allocated("f1") == res(AGENT)
    assert allocator.share("f1") == 1.0
    assert allocator.total() == res("cpus:2;mem:2048;disk:4096")
    allocator.recover("f1", "a0", res(AGENT))  # a late recover is ignored
    with pytest.raises(KeyError, match="unknown agent a0"):
        allocator.available("a0")
    allocator.remove_agent("a0")
    allocator.add_agent("a0", res("cpus:1;mem:512"))
    assert offered(allocator.allocate()) == {"f1": ["a0"]}


def test_adding_twice_is_an_error() -> None:
    allocator, _ = make()
    with pytest.raises(ValueError, match="agent a0 is already known"):
        allocator.add_agent("a0", res(AGENT))
    with pytest.raises(ValueError, match="framework f1 is already known"):
        allocator.add_framework("f1")


def test_the_allocation_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="allocation_interval must be > 0"):
        Allocator(allocation_interval=0)
