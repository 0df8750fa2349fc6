"""The strategies a bench compares, on the same questions and pool.

- ``all-small`` / ``all-local``: the whole question on the cheapest / strongest
  local tier, no decomposition.
- ``all-cloud``: the whole question on the cloud tier, no decomposition.
- ``cot-cloud``: the router's plan, every subtask (and the synthesis) on the cloud.
- ``task-level``: the allocator scores the whole question once and the policy
  sends it, undecomposed, to one tier (a query-level router); escalation as usual.
- ``r2local``: full routing: plan, per-subtask allocation, escalation.
- ``random``: the router's plan, each subtask on a tier drawn at random with
  the shares r2local ended up using (its cloud share first of all), seeded,
  without escalation, so it spends what r2local spends, but blindly.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .. import paths
from ..engine import AskResult, Engine
from ..errors import R2Error
from ..events import Listener, Node, ignore
from ..ledger import Ledger
from ..pool import Tier
from ..router import Plan, calibrate_thresholds, default_thresholds, single_plan
from ..router.decomposer import plan_messages
from .cache import CachingExecutor, call_key
from .datasets import Item

ORDER = ["all-small", "all-local", "all-cloud", "task-level", "r2local", "cot-cloud", "random"]


class BenchEngine(Engine):
    """The engine with the bench's hooks: a call cache (subtasks and plans),
    pinned thresholds, and an allocation override for the random baseline."""

    def __init__(self, *args: Any, cache: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache = cache
        if cache:
            self.executor = CachingExecutor(self.pool, self.ledger, self.settings.executor)
        self.pinned: tuple[list[float], str] | None = None
        self.assign: Callable[[list[Node]], dict[int, int]] | None = None

    def thresholds(self) -> tuple[list[float], str]:
        return self.pinned if self.pinned is not None else super().thresholds()

    def _allocate(
        self, qid: str, question: str, nodes: list[Node], emit: Listener, cancel: threading.Event
    ) -> dict[int, int]:
        if self.assign is not None:
            return self.assign(nodes)
        return super()._allocate(qid, question, nodes, emit, cancel)

    def _plan(self, qid: str, question: str, cancel: threading.Event) -> Plan:
        if not self.cache:
            return super()._plan(qid, question, cancel)
        r = self.settings.router
        key = call_key("plan", r.model, plan_messages(question, r.max_subtasks), backend=r.backend, adapter=r.adapter,
                       max_tokens=r.plan_max_tokens)
        hit = self.ledger.cache_get(key)
        if hit is None:
            plan = super()._plan(qid, question, cancel)
            row = [c for c in self.ledger.question(qid)["calls"] if c["role"] == "plan"][-1:]
            if row and row[0]["status"] == "ok":
                keep = {k: row[0][k] for k in ("input_tokens", "output_tokens", "latency_ms")}
                self.ledger.cache_put(key, r.model, {"plan": plan.model_dump_json(), **keep})
            return plan
        self.ledger.record_call(
            question_id=qid, role="plan", tier="router", backend=r.backend, model=r.model, attempt=1, status="ok",
            cached=1, input_tokens=hit["input_tokens"], output_tokens=hit["output_tokens"], cost_usd=0.0,
            saved_usd=0.0, latency_ms=hit["latency_ms"],
        )
        return Plan.model_validate_json(hit["plan"])


@dataclass
class Context:
    """What strategies share during one bench run."""

    engine: BenchEngine
    seed: int
    used: Counter = field(default_factory=Counter)  # tier index -> r2local nodes that ended there

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        tiers = self.engine.pool.tiers
        local = [t for t in tiers if t.is_local]
        remote = [t for t in tiers if not t.is_local]
        if not local or not remote:
            raise R2Error("the bench needs at least one local tier and one cloud tier (local = false)",
                          fix="add both to config.toml's [[tiers]]; see README, 'Benchmark'")
        self.small, self.strong, self.cloud = local[0], local[-1], remote[-1]


Strategy = Callable[[Context, Item], AskResult]
STRATEGIES: dict[str, Strategy] = {}


def register(name: str) -> Callable[[Strategy], Strategy]:
    def deco(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn

    return deco


def _whole(ctx: Context, item: Item, tier: Tier) -> AskResult:
    return ctx.engine.ask(item.question, plan=single_plan(item.question), force_tier=tier.name)


@register("all-small")
def all_small(ctx: Context, item: Item) -> AskResult:
    return _whole(ctx, item, ctx.small)


@register("all-local")
def all_local(ctx: Context, item: Item) -> AskResult:
    return _whole(ctx, item, ctx.strong)


@register("all-cloud")
def all_cloud(ctx: Context, item: Item) -> AskResult:
    return _whole(ctx, item, ctx.cloud)


@register("cot-cloud")
def cot_cloud(ctx: Context, item: Item) -> AskResult:
    return ctx.engine.ask(item.question, force_tier=ctx.cloud.name)


@register("task-level")
def task_level(ctx: Context, item: Item) -> AskResult:
    # One node that is the question itself: the allocator scores the whole
    # question once and the policy picks its tier.
    return ctx.engine.ask(item.question, plan=single_plan(item.question))


@register("r2local")
def r2local(ctx: Context, item: Item) -> AskResult:
    result = ctx.engine.ask(item.question)
    by_name = {t.name: t.index for t in ctx.engine.pool.tiers}
    ctx.used.update(by_name[n.tier] for n in result.nodes if n.tier in by_name)
    return result


@register("random")
def random_tiers(ctx: Context, item: Item) -> AskResult:
    tiers = ctx.engine.pool.tiers
    # r2local's final tier shares; before any r2local result, every tier alike.
    weights = [ctx.used.get(t.index, 0) for t in tiers] if sum(ctx.used.values()) else [1] * len(tiers)

    def assign(nodes: list[Node]) -> dict[int, int]:
        return {n.id: ctx.rng.choices(range(len(tiers)), weights)[0] for n in nodes}

    with _overrides(ctx.engine, assign):
        return ctx.engine.ask(item.question)


@contextmanager
def _overrides(engine: BenchEngine, assign: Callable[[list[Node]], dict[int, int]]) -> Iterator[None]:
    executor, settings = engine.executor, engine.executor.settings
    engine.assign = assign
    executor.settings = settings.model_copy(update={"max_escalations": 0})
    try:
        yield
    finally:
        engine.assign, executor.settings = None, settings


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
    if "random" in names and "r2local" not in names:
        raise R2Error("the random strategy uses r2local's cloud share", fix="add r2local to --strategies")
    return sorted(dict.fromkeys(names), key=ORDER.index)


# -- thresholds -----------------------------------------------------------------------
def starting_thresholds(engine: Engine) -> tuple[list[float], str]:
    """The thresholds r2local uses day to day: config, else your last calibration, else default."""
    n = len(engine.pool.tiers)
    if engine.settings.router.thresholds is not None:
        return list(engine.settings.router.thresholds), "router.thresholds in config.toml"
    main = Ledger() if engine.ledger.path.resolve() != paths.db_path().resolve() else engine.ledger
    try:
        cal = main.latest_calibration()
    finally:
        if main is not engine.ledger:
            main.close()
    if cal is not None and len(cal["thresholds"]) == n - 1:
        return cal["thresholds"], f"your last `r2local calibrate` ({cal['target_cloud_share']:.0%} cloud share)"
    return default_thresholds(n), "default (evenly spaced)"


def calibrate(
    engine: BenchEngine, items: list[Item], share: float, cancel: threading.Event | None = None
) -> tuple[list[float], str]:
    """Thresholds that send ``share`` of the subtasks of ``items`` (a split apart
    from the benched questions) to the cloud: plan and score them, no answers."""
    cancel = cancel or threading.Event()
    scores: list[float] = []
    for item in items:
        qid = engine.ledger.start_question(item.question, local_only=True, pool=engine.settings.pool)
        nodes = engine._nodes(engine._plan(qid, item.question, cancel))
        engine._allocate(qid, item.question, nodes, ignore, cancel)
        engine.ledger.finish_question(qid, status="done", plan_note="bench calibration: planned and scored only")
        scores += [n.difficulty for n in nodes if n.difficulty is not None]
    if not scores:
        raise R2Error("calibration produced no difficulty scores", fix="check the router model, or drop --cloud-share")
    th = calibrate_thresholds(scores, len(engine.pool.tiers), share)
    return th, f"calibrated to {share:.0%} cloud share on {len(items)} other questions ({len(scores)} subtasks)"
