"""The strategies a bench compares, on the same questions and pool.

Each is a planner/allocator pair run through the everyday engine (its gates,
its recorder), so the bench measures what a user gets.

- ``all-small`` / ``all-local``: the whole question on the cheapest / strongest
  local tier, no escalation (its samples still vote: the agreement is recorded).
- ``all-cloud``: the whole question on the cloud tier.
- ``cascade``: the whole question on the first local tier; escalated whole to
  the cloud when its samples disagree (the strong simple baseline of routing).
- ``r2local``: a route per question from the router's difficulty and the route
  policy (calibrated from measured outcomes), agreement-based escalation; a
  compound question is split into its independent parts, each routed on its own.
- ``r2local-whole``: the same, with a compound question never split (what
  part-level routing is worth).
- ``task-level``: the router scores the whole question once and a threshold
  sends it to the first local tier or the cloud, set to r2local's cloud share
  (a query router at equal cost), no escalation.
- ``random``: the whole question on a tier drawn with r2local's tier shares,
  seeded, no escalation: it spends what r2local spends, but blindly.
- ``cot-cloud``: the router's plan, every subtask and the synthesis on the cloud.
- ``plan-local``: the router's plan on the first local tier, no cloud (what
  decomposition is worth locally; the route policy learns from it).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from r2local.engine.core import Engine
from r2local.errors import R2Error
from r2local.gates import Confirm
from r2local.store.records import Decision
from r2local.registry import registrar
from r2local.routing.policy import RoutePolicy, first_local
from r2local.routing.strategies import (
    ForcedAllocator,
    PolicyAllocator,
    RandomAllocator,
    RouteAllocator,
    RoutePlanner,
    RouterPlanner,
    Strategy,
    WholeQuestion,
)
from r2local.vocab import DecisionSource

ORDER = ["all-small", "all-local", "all-cloud", "cascade", "r2local", "r2local-whole", "task-level", "random",
         "cot-cloud", "plan-local"]


@dataclass
class Context:
    """What strategies share during one bench run."""

    engine: Engine
    seed: int
    policy: RoutePolicy | None = None  # pinned route policy for r2local; None: the engine's own
    confirm: Confirm | None = None  # privacy mode "confirm": who is asked before each cloud call
    used: Counter = field(default_factory=Counter)  # tier index -> r2local nodes that ended there
    difficulties: list[float] = field(default_factory=list)  # r2local's route difficulty per question

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        tiers = self.engine.pool.tiers
        local = [t for t in tiers if t.is_local]
        remote = [t for t in tiers if not t.is_local]
        if not local or not remote:
            raise R2Error("the bench needs at least one local tier and one cloud tier (local = false)",
                          fix="add both to config.toml's [[tiers]]; see README, 'Benchmark'")
        self.small, self.strong, self.cloud = local[0], local[-1], remote[-1]
        self.first = first_local(tiers)  # where a question starts without measurements

    def equal_cost_thresholds(self) -> list[float]:
        """Task-level thresholds that send r2local's cloud share of these questions to the cloud
        (by the router's difficulty) and the rest to the first local tier."""
        tiers = self.engine.pool.tiers
        n = sum(self.used.values())
        share = self.used.get(self.cloud.index, 0) / n if n else 0.0
        scores = sorted(self.difficulties) or [1.0]
        cut = 1.0 if share <= 0 else scores[max(0, min(len(scores) - 1, round(len(scores) * (1 - share)) - 1))]
        if share >= 1:
            cut = -1.0
        return [-1.0 if i < self.first.index else cut for i in range(len(tiers) - 1)]

    def shares(self) -> list[float]:
        """r2local's final tier shares so far; before any r2local result, every tier alike."""
        tiers = self.engine.pool.tiers
        return [float(self.used.get(t.index, 0)) for t in tiers] if sum(self.used.values()) else [1.0] * len(tiers)


StrategyFactory = Callable[[Context], Strategy]
STRATEGIES: dict[str, StrategyFactory] = {}


register = registrar(STRATEGIES)


# Each strategy is a planner/allocator pair made from what the run shares (the
# tiers it found, r2local's shares so far, the pinned policy). A plugin adds one
# with @register("name") and a factory of the same shape.
PAIRS: dict[str, Callable[[Context], tuple[Any, Any]]] = {
    "all-small": lambda c: (WholeQuestion(), ForcedAllocator(c.small.name)),
    "all-local": lambda c: (WholeQuestion(), ForcedAllocator(c.strong.name)),
    "all-cloud": lambda c: (WholeQuestion(), ForcedAllocator(c.cloud.name)),
    # the whole question on the first local tier; agreement sends it to the cloud
    "cascade": lambda c: (WholeQuestion(), StartAt(c.first.index)),
    "r2local": lambda c: (RoutePlanner(c.policy), RouteAllocator()),
    # the same route policy, but a compound question is never split: what part-level routing is worth
    "r2local-whole": lambda c: (RoutePlanner(c.policy, split=False), RouteAllocator()),
    # the router scores the question once; thresholds at r2local's cloud share pick the tier; nothing climbs
    "task-level": lambda c: (WholeQuestion(), PolicyAllocator(c.equal_cost_thresholds(), escalate=False)),
    # a tier drawn with r2local's shares: it spends what r2local spends, but blindly
    "random": lambda c: (WholeQuestion(), RandomAllocator(c.shares, c.rng)),
    "cot-cloud": lambda c: (RouterPlanner(), ForcedAllocator(c.cloud.name)),
    "plan-local": lambda c: (RouterPlanner(), ForcedAllocator(c.first.name)),
}
for _name, _pair in PAIRS.items():
    register(_name)(lambda ctx, name=_name, pair=_pair: Strategy(name, *pair(ctx)))


@dataclass(frozen=True)
class StartAt:
    """Allocator: every node starts on one tier and climbs by agreement as policy allows."""

    tier: int

    def allocate(self, job: Any, nodes: list[Any]) -> dict[int, Decision]:
        return {n.id: Decision(self.tier, DecisionSource.POLICY) for n in nodes}


def needs_cloud(names: list[str]) -> bool:
    return any(n in ("all-cloud", "cot-cloud") for n in names)


def parse_strategies(text: str | None) -> list[str]:
    """A comma- or space-separated list, put in run order (r2local before random)."""
    if not text or text.strip() == "all":
        return list(ORDER)
    names = [n for n in text.replace(",", " ").split() if n]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise R2Error(f"unknown strategy {unknown[0]!r}", fix=f"use some of: {', '.join(ORDER)}")
    for needy in ("random", "task-level"):
        if needy in names and "r2local" not in names:
            raise R2Error(f"the {needy} strategy spends at r2local's cloud share", fix="add r2local to --strategies")
    return sorted(dict.fromkeys(names), key=ORDER.index)
