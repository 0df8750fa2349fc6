"""The strategies a bench compares, on the same questions and pool.

Each is a planner/allocator pair run through the everyday engine (its gates,
its recorder), so the bench measures what a user gets.

- ``all-small`` / ``all-local``: the whole question on the cheapest / strongest
  local tier, no escalation (its samples still vote: the agreement is recorded).
- ``all-cloud``: the whole question on the cloud tier.
- ``cascade``: the whole question on the first local tier; escalated whole to
  the cloud when its samples disagree (the strong simple baseline of routing).
- ``r2local``: a route per question from the router's difficulty and the route
  policy (calibrated from measured outcomes), agreement-based escalation.
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

from ..engine import Engine
from ..errors import R2Error
from ..gates import Confirm
from ..registry import registrar
from ..records import Decision
from ..router.route import RoutePolicy, first_local
from ..routing import (
    ForcedAllocator,
    PolicyAllocator,
    RandomAllocator,
    RouteAllocator,
    RoutePlanner,
    RouterPlanner,
    Strategy,
    WholeQuestion,
)
from ..vocab import DecisionSource

ORDER = ["all-small", "all-local", "all-cloud", "cascade", "r2local", "task-level", "random", "cot-cloud", "plan-local"]


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


@register("all-small")
def all_small(ctx: Context) -> Strategy:
    return Strategy("all-small", WholeQuestion(), ForcedAllocator(ctx.small.name))


@register("all-local")
def all_local(ctx: Context) -> Strategy:
    return Strategy("all-local", WholeQuestion(), ForcedAllocator(ctx.strong.name))


@register("all-cloud")
def all_cloud(ctx: Context) -> Strategy:
    return Strategy("all-cloud", WholeQuestion(), ForcedAllocator(ctx.cloud.name))


@register("cascade")
def cascade(ctx: Context) -> Strategy:
    return Strategy("cascade", WholeQuestion(), StartAt(ctx.first.index))


@register("r2local")
def routed(ctx: Context) -> Strategy:
    return Strategy("r2local", RoutePlanner(ctx.policy), RouteAllocator())


@register("task-level")
def task_level(ctx: Context) -> Strategy:
    # One node that is the question itself: the router scores it once and the
    # thresholds pick its tier, at r2local's cloud share; nothing climbs.
    return Strategy("task-level", WholeQuestion(), PolicyAllocator(ctx.equal_cost_thresholds(), escalate=False))


@register("random")
def random_tiers(ctx: Context) -> Strategy:
    # The whole question on a tier drawn with r2local's shares: it spends what
    # r2local spends, but blindly.
    return Strategy("random", WholeQuestion(), RandomAllocator(ctx.shares, ctx.rng))


@register("cot-cloud")
def cot_cloud(ctx: Context) -> Strategy:
    return Strategy("cot-cloud", RouterPlanner(), ForcedAllocator(ctx.cloud.name))


@register("plan-local")
def plan_local(ctx: Context) -> Strategy:
    return Strategy("plan-local", RouterPlanner(), ForcedAllocator(ctx.first.name))


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
