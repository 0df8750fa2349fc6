"""The engine's seams: a planner turns a question into a plan, an allocator
turns the plan's nodes into decisions (a tier, and what it was based on).

A ``Strategy`` pairs them. The everyday one is ``RouterPlanner`` +
``PolicyAllocator``; the bench's baselines and training's forced or sampled
allocations are other pairs, registered the same way a plugin would register
its own. Whatever the pair, every call still goes through the engine's gates
and recorder: the seams decide *what* to run, never *how* a call is made.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from r2local.errors import Cancelled, ConfigError
from r2local.engine.events import Listener, Node
from r2local.store.records import Decision
from r2local.registry import registrar
from r2local.routing.parts import split_parts
from r2local.routing.splitter import may_have_parts
from r2local.routing.plan import Plan, Subtask, single_plan
from r2local.routing.thresholds import ThresholdPolicy
from r2local.routing.policy import NEVER_DONE, Band, first_local
from r2local.vocab import DecisionSource, NodeKind, Role, Route, Routing

if TYPE_CHECKING:
    from r2local.pool import Tier
    from r2local.routing.router import RouterClient
    from r2local.routing.thresholds import Score
    from r2local.routing.policy import RoutePolicy


@dataclass(frozen=True)
class Job:
    """What a planner or an allocator may use while one question runs (values, computed once per ask)."""

    question_id: str
    question: str
    cancel: threading.Event
    emit: Listener
    tiers: list["Tier"]  # the pool's tiers, cheapest first
    allowed: list["Tier"]  # those usable now (key set, not local-only)
    router: "RouterClient"
    thresholds: list[float]  # the active thresholds (config, calibration or default)
    policy: "RoutePolicy | None" = None  # the active route policy
    route: "RouteChoice | None" = None  # the route the planner returned, for the allocator
    previous: str = ""  # the conversation's previous whole turn ("" on a first turn)
    kind_before: str | None = None  # the previous turn's answer kind (a follow-up may take it)

    @property
    def rated(self) -> str:
        """What the router rates a message in: the previous turn, then the message."""
        return self.rated_as(self.question)

    def rated_as(self, text: str) -> str:
        """What the router rates ``text`` (the message or one part of it) in."""
        return f"{self.previous}\n\nNow: {text}" if self.previous else text

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")


@dataclass(frozen=True)
class Planned:
    """A planner's answer: the plan, and the route it chose (None: the plan is the route)."""

    plan: Plan
    route: "RouteChoice | None" = None


class Planner(Protocol):
    def plan(self, job: Job) -> Planned:
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

    def plan(self, job: Job) -> Planned:
        return Planned(job.router.plan(job.question_id, job.question, job.cancel))


class WholeQuestion:
    """No decomposition: the question itself is the only node."""

    def plan(self, job: Job) -> Planned:
        return Planned(single_plan(job.question))


@dataclass(frozen=True)
class FixedPlan:
    """A plan given in advance (tests, replays)."""

    fixed: Plan

    def plan(self, job: Job) -> Planned:
        return Planned(self.fixed)


@dataclass(frozen=True)
class RouteChoice:
    """The route a question takes, and why (shown in the plan tree and ``ask --json``)."""

    route: Route
    tier: int  # the tier that answers first
    reason: str
    difficulty: float | None = None
    probs: dict[str, float] | None = None
    agree_below: float | None = None
    policy: "RoutePolicy | None" = None  # the policy it was chosen by (the parts route rates each part with it)


class RoutePlanner:
    """A route per question: a compound question is split into its independent parts
    (``parts``, each routed on its own by the allocator); otherwise the router rates
    the whole question once and the route policy picks whole-local, decompose (the
    router's plan) or whole-cloud.

    ``policy`` pins one (the bench); otherwise the engine's (the last calibration, else the default).
    ``split`` False keeps every question whole (``r2local-whole``, for comparison).
    """

    def __init__(self, policy: "RoutePolicy | None" = None, split: bool = True) -> None:
        self.policy = policy
        self.split = split

    def plan(self, job: Job) -> Planned:
        policy = self.policy or job.policy
        if policy is None:
            raise ConfigError("RoutePlanner needs a route policy", fix="give the job the engine's route policy")
        parts, found_by = self._parts(job)
        if len(parts) > 1:
            plan = Plan(subtasks=[Subtask(id=i, text=p) for i, p in enumerate(parts, 1)])
            first = tier_index(job.tiers, first_local(job.tiers).name)
            why = (f"{len(parts)} independent parts ({found_by}): each is rated and routed on its own, "
                   "then composed locally")
            return Planned(plan, RouteChoice(Route.PARTS, first, why, policy=policy))
        score = job.router.score(job.question_id, None, job.rated, job.question, role=Role.ROUTE)
        choice = _choose(job, policy, score)
        plan = job.router.plan(job.question_id, job.question, job.cancel) if choice.route == Route.DECOMPOSE else None
        if plan is not None and len(plan.subtasks) < 2:
            choice = dataclasses.replace(choice, route=Route.WHOLE_LOCAL,
                                         reason=choice.reason + "; the plan had one step, so it runs whole")
        return Planned(plan if plan is not None and choice.route == Route.DECOMPOSE else single_plan(job.question),
                       choice)

    def _parts(self, job: Job) -> tuple[list[str], str]:
        """The message's parts and what found them: the rules, else (where the message may hold several
        asks) the router under its split adapter; one part keeps it whole."""
        if not self.split:
            return [job.question], ""
        parts = split_parts(job.question)
        if len(parts) > 1 or not job.router.can_split or not may_have_parts(job.question):
            return parts, "found by rules"
        found = job.router.split(job.question_id, job.question, job.cancel)
        return (found, "found by the router's split adapter") if len(found) > 1 else ([job.question], "")


def _choose(job: Job, policy: "RoutePolicy", score: "Score | None", text: str | None = None) -> RouteChoice:
    """The route the policy's band gives a rated text (the question, or ``text``: one part of it);
    whole-cloud only if the cloud is usable now."""
    d = score.difficulty if score is not None else None
    band, kind = policy.for_question(text or job.question, d, job.kind_before if text is None else None)
    route, tier = band.route, tier_index(job.tiers, band.tier)
    why = _why(band, d, policy.source, kind)
    tau = policy.threshold(band)
    if route == Route.WHOLE_CLOUD and tier not in {t.index for t in job.allowed}:
        local = first_local(job.tiers).name
        route, tier = Route.WHOLE_LOCAL, tier_index(job.tiers, local)
        why += "; the cloud is not usable now, so a local tier tries"
        if local in band.accuracy:  # measured too weak here: agreement cannot vouch for its answer
            tau = NEVER_DONE
            why += f" (right on {band.accuracy[local]:.0%} of these when measured: its answer stays unsure)"
    return RouteChoice(route, tier, why, d, score.probs if score else None, tau, policy)


def _why(band: "Band", d: float | None, source: str, kind: str | None = None) -> str:
    rated = f"difficulty {d:.2f}" if d is not None else "too long to rate"
    if kind:
        rated += f", {kind} answers (their own bands)"
    if not band.accuracy:
        return f"{rated}; no measurements yet ({source}): {band.tier} answers, agreement decides if it climbs"
    measured = ", ".join(f"{k} {v:.0%}" for k, v in band.accuracy.items())
    climb = f", climbs below {band.agree_below:.2f} agreement" if band.agree_below is not None else ""
    if band.agree_below is not None and band.agree_below >= NEVER_DONE:  # measured: even a unanimous vote was no proof
        climb = ", always climbs (the local answer is kept as an attempt)"
    elif band.agree_below == 0.0:  # measured: escalating split votes bought nothing here
        climb = ", kept at any agreement (only an answer another check holds back climbs)"
    return (f"{rated}, band <= {band.upto:.2f} ({band.n} measured: {measured}): {band.route} on {band.tier}{climb}"
            f"; policy: {source}")


class RouteAllocator:
    """Tiers for the route a RoutePlanner chose: whole-local climbs by agreement,
    decompose keeps its steps local, whole-cloud goes straight up, and each part
    of a compound question takes the one of those its own rating gives."""

    def allocate(self, job: Job, nodes: list[Node]) -> dict[int, Decision]:
        r = job.route
        if r is None:
            raise ConfigError("RouteAllocator needs a RoutePlanner", fix="pair them in the strategy")
        clouds = [t.index for t in job.allowed if not t.is_local]
        up = clouds[-1] if clouds else None
        if r.route == Route.PARTS:
            return _part_decisions(job, r, nodes, up)
        if r.route == Route.DECOMPOSE:
            # Steps stay local; an unsure plan goes to the cloud as the whole question (never as a
            # plan-sized prompt, which would cost more than the question itself).
            ceiling = max(t.index for t in job.tiers if t.is_local)
            return {n.id: Decision(r.tier, DecisionSource.POLICY, r.difficulty, r.probs, _feats(r), ceiling=ceiling,
                                   agree_below=r.agree_below, whole_to=up) for n in nodes}
        return {n.id: _decision(r, up) for n in nodes}


def _feats(r: RouteChoice) -> dict[str, float]:
    return {"route_difficulty": r.difficulty} if r.difficulty is not None else {}


def _decision(r: RouteChoice, up: int | None) -> Decision:
    """Whole-cloud goes straight up; whole-local: the band chose the local tier, a weak answer goes to ``up``."""
    if r.route == Route.WHOLE_CLOUD:
        return Decision(r.tier, DecisionSource.POLICY, r.difficulty, r.probs, _feats(r), escalate=False)
    return Decision(r.tier, DecisionSource.POLICY, r.difficulty, r.probs, _feats(r), agree_below=r.agree_below,
                    escalate_to=up)


def _part_decisions(job: Job, r: RouteChoice, nodes: list[Node], up: int | None) -> dict[int, Decision]:
    """Each part rated on its own text (one forward pass) and routed as a question of its own;
    the compose node stays local and makes no call. Never ``whole_to``: the whole message never leaves."""
    policy = r.policy or job.policy
    if policy is None:
        raise ConfigError("the parts route needs a route policy", fix="give the job the engine's route policy")
    out: dict[int, Decision] = {}
    for node in nodes:
        job.check()
        if node.kind != NodeKind.PART:
            out[node.id] = Decision(r.tier, DecisionSource.POLICY, escalate=False)
            continue
        score = job.router.score(job.question_id, node.id, job.rated_as(node.text), node.text, role=Role.ROUTE)
        choice = _choose(job, policy, score, node.text)
        if choice.route == Route.DECOMPOSE:  # a part is not split further: its band's local tier answers it whole
            choice = dataclasses.replace(choice, route=Route.WHOLE_LOCAL, reason=choice.reason + "; answered whole")
        out[node.id] = dataclasses.replace(_decision(choice, up), reason=f"{choice.route}: {choice.reason}")
    return out


# -- allocators ---------------------------------------------------------------------
@dataclass
class PolicyAllocator:
    """Score each node (one forward pass of the router) and map it to a tier by thresholds.

    ``thresholds`` pins them (the bench); otherwise the engine's active ones
    (config, then the last calibration, then evenly spaced).
    """

    thresholds: list[float] | None = None
    escalate: bool = True

    def allocate(self, job: Job, nodes: list[Node]) -> dict[int, Decision]:
        policy = ThresholdPolicy(self.thresholds if self.thresholds is not None else job.thresholds)
        out: dict[int, Decision] = {}
        for node in nodes:
            job.check()
            score = job.router.score(job.question_id, node.id, job.rated, node.text)
            if score is None:  # too long to rate: as high as policy allows
                out[node.id] = Decision(len(job.tiers) - 1, features={"too_long": 1.0})
                continue
            out[node.id] = Decision(policy.tier_index(score.difficulty), DecisionSource.POLICY, score.difficulty,
                                    score.probs, {"router_ms": round(score.latency_ms, 1)}, escalate=self.escalate)
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


@register(Routing.R2LOCAL.value)
def routed(**_: object) -> Strategy:
    """A route per part of a question (whole-local, decompose or whole-cloud), agreement-based escalation."""
    return Strategy("r2local", RoutePlanner(), RouteAllocator())


@register(Routing.R2LOCAL_WHOLE.value)
def routed_whole(**_: object) -> Strategy:
    """As r2local, but a compound question is never split: it takes one route whole (for comparison)."""
    return Strategy("r2local-whole", RoutePlanner(split=False), RouteAllocator())


@register(Routing.PLAN_AND_ALLOCATE.value)
def planned(**_: object) -> Strategy:
    """Always decompose: the router's plan, every node scored and placed by thresholds."""
    return Strategy("plan-and-allocate", RouterPlanner(), PolicyAllocator())


def forced(plan: Plan | None, tier: str, name: str | None = None) -> Strategy:
    """``plan`` (None: the question as one node) with every node on ``tier``."""
    planner: Planner = FixedPlan(plan) if plan is not None else WholeQuestion()
    return Strategy(name or f"forced:{tier}", planner, ForcedAllocator(tier))


def fixed(plan: Plan, name: str = "fixed-plan") -> Strategy:
    """A given plan, allocated by the policy as usual."""
    return Strategy(name, FixedPlan(plan), PolicyAllocator())
