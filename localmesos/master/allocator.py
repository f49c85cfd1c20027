"""The hierarchical DRF allocator of Mesos 1.x, reduced to what the local cluster needs.

Pure bookkeeping: no threads, timers or I/O. The master calls it from its own thread, asks
for an allocation pass every ``allocation_interval`` (and after events that free or add
resources), and turns what `allocate` returns into offers. Everything handed out stays
allocated to the framework until the master gives it back with `recover`.

Mesos references are to src/master/allocator/mesos/hierarchical.cpp and
src/master/allocator/mesos/sorter/drf/sorter.{hpp,cpp}. Left out: quota, weights other than 1,
reservations, multi-role frameworks, maintenance, and the GPU capability check.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from localmesos.resources import EMPTY, Resources

__all__ = ["DEFAULT_MIN_ALLOCATABLE", "DEFAULT_REFUSE_SECONDS", "Allocator"]

# master/flags.cpp: --min_allocatable_resources defaults to "cpus:0.01|mem:32".
DEFAULT_MIN_ALLOCATABLE = (Resources.parse("cpus:0.01"), Resources.parse("mem:32"))
# mesos.proto `Filters.refuse_seconds` default.
DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0


class _Filter:
    """`RefusedOfferFilter`: blocks an agent while what it could offer is within `refused`."""

    __slots__ = ("expires", "refused")

    def __init__(self, refused: Resources, expires: float) -> None:
        self.refused = refused
        self.expires = expires


class _Client:
    """A node of the DRF sorter: a framework, or a role grouping frameworks.

    `key` is what `DRFSorter::Node::compareDRF` orders by: the dominant share, then how many
    times the client was allocated to (so equal shares take turns), then the name.
    """

    __slots__ = ("count", "key", "name", "used")

    def __init__(self, name: str) -> None:
        self.name = name
        self.used: dict[str, int] = {}  # scalar name -> thousandths held (offered or in use)
        self.count = 0
        self.key: tuple[float, int, str] = (0.0, 0, name)


C = TypeVar("C", bound=_Client)


class _Framework(_Client):
    __slots__ = ("active", "filters", "holdings", "role", "suppressed")

    def __init__(self, name: str, role: str, active: bool, suppressed: bool) -> None:
        super().__init__(name)
        self.role = role
        self.active = active
        self.suppressed = suppressed
        self.holdings: dict[str, Resources] = {}  # agent id -> offered or allocated there
        self.filters: dict[str, list[_Filter]] = {}  # agent id -> live refusals


class _Role(_Client):
    __slots__ = ("frameworks",)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.frameworks: list[_Framework] = []  # kept in DRF order during a pass


class _Agent:
    __slots__ = ("activated", "available", "holders", "total")

    def __init__(self, total: Resources) -> None:
        self.total = total
        self.available = total
        self.holders: set[str] = set()  # ids of frameworks holding something here
        self.activated = True  # a disconnected agent is offered to nobody


class Allocator:
    def __init__(
        self,
        *,
        allocation_interval: float = 1.0,
        min_allocatable: tuple[Resources, ...] = DEFAULT_MIN_ALLOCATABLE,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not allocation_interval > 0:
            raise ValueError(f"allocation_interval must be > 0, not {allocation_interval!r}")
        self.allocation_interval = float(allocation_interval)
        self.min_allocatable = tuple(min_allocatable)
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._agents: dict[str, _Agent] = {}
        self._frameworks: dict[str, _Framework] = {}
        self._roles: dict[str, _Role] = {}
        # Scalars only, like `totalScalarQuantities`: the same ports on two agents are two
        # different things, and a union of ranges would lose one of them.
        self._scalar_total: dict[str, int] = {}

    # Agents.

    def add_agent(self, agent_id: str, total: Resources) -> None:
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id} is already known")
        self._agents[agent_id] = _Agent(total)
        for name, amount in total._scalars.items():
            self._scalar_total[name] = self._scalar_total.get(name, 0) + amount

    def remove_agent(self, agent_id: str) -> None:
        """Forget the agent and everything allocated on it; unknown ids are ignored."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        for framework_id in agent.holders:
            framework = self._frameworks[framework_id]
            held = framework.holdings.pop(agent_id)
            self._untrack(framework, held)
        for framework in self._frameworks.values():
            framework.filters.pop(agent_id, None)
        for name, amount in agent.total._scalars.items():
            left = self._scalar_total[name] - amount
            if left:
                self._scalar_total[name] = left
            else:
                del self._scalar_total[name]

    def activate_agent(self, agent_id: str) -> None:
        self._agent(agent_id).activated = True

    def deactivate_agent(self, agent_id: str) -> None:
        """`deactivateSlave`: no offers from it until it is activated again; what is allocated
        there stays allocated."""
        self._agent(agent_id).activated = False

    # Frameworks.

    def add_framework(
        self, framework_id: str, *, role: str = "*", active: bool = True, suppressed: bool = False
    ) -> None:
        if framework_id in self._frameworks:
            raise ValueError(f"framework {framework_id} is already known")
        framework = _Framework(framework_id, role, active, suppressed)
        self._frameworks[framework_id] = framework
        if role not in self._roles:
            self._roles[role] = _Role(role)
        self._roles[role].frameworks.append(framework)

    def remove_framework(self, framework_id: str) -> None:
        """Release everything the framework held and drop its filters; unknown ids are ignored."""
        framework = self._frameworks.pop(framework_id, None)
        if framework is None:
            return
        for agent_id, held in framework.holdings.items():
            agent = self._agents[agent_id]
            agent.available = agent.available + held
            agent.holders.discard(framework_id)
            self._untrack(framework, held)
        role = self._roles[framework.role]
        role.frameworks.remove(framework)
        # `tryUntrackFrameworkUnderRole`: a role lives only while it has frameworks, so its
        # allocation count restarts if it comes back.
        if not role.frameworks:
            del self._roles[framework.role]

    def activate_framework(self, framework_id: str) -> None:
        self._framework(framework_id).active = True

    def deactivate_framework(self, framework_id: str) -> None:
        """No more offers, but its allocations (running tasks) stay accounted for."""
        framework = self._framework(framework_id)
        framework.active = False
        # `deactivateFramework` drops the filters, so a scheduler that comes back (after a
        # disconnection or failover) is not held to refusals made by its previous instance.
        framework.filters.clear()

    def suppress(self, framework_id: str) -> None:
        self._framework(framework_id).suppressed = True

    def revive(self, framework_id: str) -> None:
        """`reviveRoles`: clear all the framework's filters and unsuppress it."""
        framework = self._framework(framework_id)
        framework.filters.clear()
        framework.suppressed = False

    # Resources changing hands outside an allocation pass.

    def recover(
        self,
        framework_id: str,
        agent_id: str,
        resources: Resources,
        refuse_seconds: float | None = None,
    ) -> None:
        """Resources the framework held on the agent come back (`recoverResources`).

        With ``refuse_seconds`` the framework refuses them: the agent is filtered for it
        while it could offer no more than these resources. Unknown framework or agent ids
        are ignored, since the master may recover after a removal; giving back more than
        the framework holds there is a bug and raises ValueError.
        """
        if not resources:
            return  # Mesos returns early too, so refusing nothing installs no filter.
        framework = self._frameworks.get(framework_id)
        agent = self._agents.get(agent_id)
        if framework is None or agent is None:
            return
        held = framework.holdings.get(agent_id, EMPTY)
        if not held.contains(resources):
            raise ValueError(
                f"framework {framework_id} holds '{held}' on agent {agent_id}, "
                f"cannot recover '{resources}'"
            )
        left = held - resources
        if left:
            framework.holdings[agent_id] = left
        else:
            del framework.holdings[agent_id]
            agent.holders.discard(framework_id)
        agent.available = agent.available + resources
        self._untrack(framework, resources)

        if refuse_seconds is None:
            return
        seconds = float(refuse_seconds)
        if math.isnan(seconds) or seconds < 0:
            seconds = DEFAULT_REFUSE_SECONDS
        seconds = min(seconds, MAX_REFUSE_SECONDS)
        if seconds == 0:
            return
        # MESOS-4302: never expire before the next periodic pass has seen the filter.
        seconds = max(seconds, self.allocation_interval)
        expires = self._clock() + seconds
        framework.filters.setdefault(agent_id, []).append(_Filter(resources, expires))

    def add_used(self, framework_id: str, agent_id: str, resources: Resources) -> None:
        """Allocate without an offer: tasks an agent reports when it (re)registers.

        Both ids must be known (add the framework, inactive if need be, first) and the
        resources must still be available on the agent.
        """
        framework = self._framework(framework_id)
        agent = self._agent(agent_id)
        if not resources:
            return
        if not agent.available.contains(resources):
            raise ValueError(
                f"agent {agent_id} has only '{agent.available}' available, "
                f"cannot allocate '{resources}' to framework {framework_id}"
            )
        agent.available = agent.available - resources
        self._give(framework, agent_id, agent, resources)

    # The allocation pass.

    def allocate(self, agent_ids: Iterable[str] | None = None) -> dict[str, dict[str, Resources]]:
        """One pass over the given agents (all when None), as `__generateOffers` does it.

        Returns framework id -> agent id -> resources; they are allocated to that framework
        from now on. Unknown agent ids are skipped.
        """
        agents = self._agents
        if agent_ids is None:
            order = list(agents)
        else:
            order = [agent_id for agent_id in dict.fromkeys(agent_ids) if agent_id in agents]
        self._rng.shuffle(order)

        roles = self._sorted_roles()
        minimums = self.min_allocatable
        now = self._clock()
        offers: dict[str, dict[str, Resources]] = {}

        for agent_id in order:
            agent = agents[agent_id]
            available = agent.available
            if not available or not agent.activated:
                continue
            # `allocatable`: some minimum must fit; equal for every framework on this agent.
            if minimums and not any(available.contains(minimum) for minimum in minimums):
                continue
            chosen = None
            for role in roles:
                for framework in role.frameworks:
                    if not framework.active or framework.suppressed:
                        continue
                    filters = framework.filters.get(agent_id)
                    if filters and self._filtered(framework, agent_id, filters, available, now):
                        continue
                    chosen = framework
                    break
                if chosen is not None:
                    break
            if chosen is None:
                continue
            # Coarse-grained: the first eligible framework takes all that is left, so there
            # is at most one offer per agent and framework in a pass.
            agent.available = EMPTY
            self._give(chosen, agent_id, agent, available)
            offers.setdefault(chosen.name, {})[agent_id] = available
            # `DRFSorter::allocated` keeps both sorters ordered, so the next agent goes to
            # whoever is now furthest behind.
            role = self._roles[chosen.role]
            _reposition(chosen, role.frameworks, self._share(chosen.used))
            _reposition(role, roles, self._share(role.used))
        return offers

    # Queries.

    def share(self, framework_id: str) -> float:
        """The framework's dominant share: its largest fraction of any cluster scalar."""
        return self._share(self._framework(framework_id).used)

    def available(self, agent_id: str) -> Resources:
        return self._agent(agent_id).available

    def allocated(self, framework_id: str, agent_id: str | None = None) -> Resources:
        """What the framework holds (offered or in use) on one agent or on all of them."""
        framework = self._framework(framework_id)
        if agent_id is not None:
            return framework.holdings.get(agent_id, EMPTY)
        result = EMPTY
        for held in framework.holdings.values():
            result = result + held
        return result

    def total(self) -> Resources:
        """The cluster's scalar totals (ranges are per agent and are not summed)."""
        return Resources._new(dict(self._scalar_total), {})

    # Internals.

    def _framework(self, framework_id: str) -> _Framework:
        try:
            return self._frameworks[framework_id]
        except KeyError:
            raise KeyError(f"unknown framework {framework_id}") from None

    def _agent(self, agent_id: str) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise KeyError(f"unknown agent {agent_id}") from None

    def _share(self, used: dict[str, int]) -> float:
        # `DRFSorter::calculateShare`: every scalar in the cluster total counts; ranges don't.
        share = 0.0
        totals = self._scalar_total
        for name, amount in used.items():
            total = totals.get(name, 0)
            if total > 0 and amount / total > share:
                share = amount / total
        return share

    def _sorted_roles(self) -> list[_Role]:
        """Fresh shares and DRF order for every role and framework (`DRFSorter::sort`)."""
        roles = list(self._roles.values())
        for role in roles:
            role.key = (self._share(role.used), role.count, role.name)
            for framework in role.frameworks:
                framework.key = (self._share(framework.used), framework.count, framework.name)
            role.frameworks.sort(key=_by_key)
        roles.sort(key=_by_key)
        return roles

    def _filtered(
        self,
        framework: _Framework,
        agent_id: str,
        filters: list[_Filter],
        offerable: Resources,
        now: float,
    ) -> bool:
        blocked = False
        expired = False
        for refusal in filters:
            if refusal.expires <= now:
                expired = True
            # The filter holds only while the refused resources cover all that is offerable.
            elif refusal.refused.contains(offerable):
                blocked = True
        if expired:
            live = [refusal for refusal in filters if refusal.expires > now]
            if live:
                framework.filters[agent_id] = live
            else:
                del framework.filters[agent_id]
        return blocked

    def _give(self, framework: _Framework, agent_id: str, agent: _Agent, res: Resources) -> None:
        held = framework.holdings.get(agent_id)
        framework.holdings[agent_id] = res if held is None else held + res
        agent.holders.add(framework.name)
        role = self._roles[framework.role]
        for client in (framework, role):
            used = client.used
            for name, amount in res._scalars.items():
                used[name] = used.get(name, 0) + amount
            client.count += 1

    def _untrack(self, framework: _Framework, res: Resources) -> None:
        role = self._roles[framework.role]
        for client in (framework, role):
            used = client.used
            for name, amount in res._scalars.items():
                left = used[name] - amount
                if left:
                    used[name] = left
                else:
                    del used[name]


def _by_key(client: _Client) -> tuple[float, int, str]:
    return client.key


def _reposition(client: C, order: list[C], share: float) -> None:
    """Shift a client whose share and count just grew right, to its sorted place."""
    key = client.key = (share, client.count, client.name)
    index = order.index(client)
    last = len(order) - 1
    while index < last and order[index + 1].key < key:
        order[index] = order[index + 1]
        index += 1
    order[index] = client
