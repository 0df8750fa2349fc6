"""The engine's seams: a planner turns a question into a plan, an allocator
turns the plan's nodes into decisions (a tier, and what it was based on).

A ``Strategy`` pairs them. The everyday one is ``RouterPlanner`` +
``PolicyAllocator``; the bench's baselines and training's forced or sampled
allocations are other pairs, registered the same way a plugin would register
its own. Whatever the pair, every call still goes through the engine's gates
and recorder: the seams decide *what* to run, never *how* a call is made.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from .errors import Cancelled, ConfigError
from .events import Listener, Node
from .records import Decision
from .registry import registrar
from .router import Plan, ThresholdPolicy, single_plan
from .vocab import DecisionSource

if TYPE_CHECKING:
    from .pool import Tier
    from .router.client import RouterClient


@dataclass
class Job:
    """What a planner or an allocator may use while one question runs."""

    question_id: str
    question: str
    cancel: threading.Event
    emit: Listener
    tiers: list["Tier"]  # the pool's tiers, cheapest first
    allowed: list["Tier"]  # those usable now (key set, not local-only)
    router: "RouterClient"
    thresholds: Callable[[], tuple[list[float], str]]  # active thresholds and their source

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")


class Planner(Protocol):
    def plan(self, job: Job) -> Plan:
        """A valid plan for ``job.question`` (fall back to the one-subtask plan, never raise for bad output)."""
        ...


class Allocator(Protocol):
    def allocate(self, job: Job, nodes: list[Node]) -> dict[int, Decision]:
        """A decision for every node id."""
        ...


@dataclass(frozen=True)
class Strategy:
    name: str
    planner: Planner
    allocator: Allocator


# -- planners -----------------------------------------------------------------------
class RouterPlanner:
    """The router model writes the plan (grammar-constrained JSON, validated)."""

    def plan(self, job: Job) -> Plan:
        return job.router.plan(job.question_id, job.question, job.cancel)


class WholeQuestion:
    """No decomposition: the question itself is the only node."""

    def plan(self, job: Job) -> Plan:
        return single_plan(job.question)


@dataclass(frozen=True)
class FixedPlan:
    """A plan given in advance (tests, replays)."""

    fixed: Plan

    def plan(self, job: Job) -> Plan:
        return self.fixed


# -- allocators ---------------------------------------------------------------------
@dataclass
class PolicyAllocator:
    """Score each node (one forward pass of the router) and map it to a tier by thresholds.

    ``thresholds`` pins them (the bench); otherwise the engine's active ones
    (config, then the last calibration, then evenly spaced).
    """

    thresholds: list[float] | None = None

    def allocate(self, job: Job, nodes: list[Node]) -> dict[int, Decision]:
        policy = ThresholdPolicy(self.thresholds if self.thresholds is not None else job.thresholds()[0])
        out: dict[int, Decision] = {}
        for node in nodes:
            job.check()
            score = job.router.score(job.question_id, node.id, job.question, node.text)
            if score is None:  # too long to rate: as high as policy allows
                out[node.id] = Decision(len(job.tiers) - 1, features={"too_long": 1.0})
                continue
            out[node.id] = Decision(policy.tier_index(score.difficulty), DecisionSource.POLICY, score.difficulty,
                                    score.probs, {"router_ms": round(score.latency_ms, 1)})
        return out


@dataclass(frozen=True)
class ForcedAllocator:
    """Every node on one tier, no scoring, no escalation (a refused or failing
    cloud call still falls back to the strongest local tier)."""

    tier: str

    def allocate(self, job: Job, nodes: list[Node]) -> dict[int, Decision]:
        index = tier_index(job.tiers, self.tier)
        return {n.id: Decision(index, DecisionSource.FORCED, escalate=False) for n in nodes}


@dataclass
class RandomAllocator:
    """Each node on a tier drawn with ``weights()`` (seeded), without escalation."""

    weights: Callable[[], list[float]]
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def allocate(self, job: Job, nodes: list[Node]) -> dict[int, Decision]:
        w = self.weights()
        return {n.id: Decision(self.rng.choices(range(len(job.tiers)), w)[0], DecisionSource.EXPLORATION,
                               escalate=False) for n in nodes}


def tier_index(tiers: list["Tier"], name: str) -> int:
    for t in tiers:
        if t.name == name:
            return t.index
    raise ConfigError(f"unknown tier {name!r}", fix=f"use one of: {', '.join(t.name for t in tiers)}")


# -- the registry -------------------------------------------------------------------
StrategyFactory = Callable[..., Strategy]
STRATEGIES: dict[str, StrategyFactory] = {}


register = registrar(STRATEGIES)


@register("r2local")
def routed(**_: object) -> Strategy:
    """Full routing: the router's plan, per-node allocation, escalation."""
    return Strategy("r2local", RouterPlanner(), PolicyAllocator())


def forced(plan: Plan | None, tier: str, name: str | None = None) -> Strategy:
    """``plan`` (None: the question as one node) with every node on ``tier``."""
    planner: Planner = FixedPlan(plan) if plan is not None else WholeQuestion()
    return Strategy(name or f"forced:{tier}", planner, ForcedAllocator(tier))


def fixed(plan: Plan, name: str = "fixed-plan") -> Strategy:
    """A given plan, allocated by the policy as usual."""
    return Strategy(name, FixedPlan(plan), PolicyAllocator())
