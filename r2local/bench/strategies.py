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
from dataclasses import dataclass, field
from typing import Callable

from .. import paths
from ..engine import Engine
from ..errors import R2Error
from ..gates import Confirm
from ..ledger import Ledger
from ..records import QuestionEnd
from ..registry import registrar
from ..router import calibrate_thresholds, default_thresholds
from ..routing import (
    ForcedAllocator,
    PolicyAllocator,
    RandomAllocator,
    RouterPlanner,
    Strategy,
    WholeQuestion,
)
from ..tasks.datasets import Item
from ..vocab import QuestionStatus

ORDER = ["all-small", "all-local", "all-cloud", "task-level", "r2local", "cot-cloud", "random"]


@dataclass
class Context:
    """What strategies share during one bench run."""

    engine: Engine
    seed: int
    thresholds: list[float] | None = None  # pinned for the policy allocator; None: the engine's own
    confirm: Confirm | None = None  # privacy mode "confirm": who is asked before each cloud call
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


@register("cot-cloud")
def cot_cloud(ctx: Context) -> Strategy:
    return Strategy("cot-cloud", RouterPlanner(), ForcedAllocator(ctx.cloud.name))


@register("task-level")
def task_level(ctx: Context) -> Strategy:
    # One node that is the question itself: the allocator scores the whole
    # question once and the policy picks its tier.
    return Strategy("task-level", WholeQuestion(), PolicyAllocator(ctx.thresholds))


@register("r2local")
def routed(ctx: Context) -> Strategy:
    return Strategy("r2local", RouterPlanner(), PolicyAllocator(ctx.thresholds))


@register("random")
def random_tiers(ctx: Context) -> Strategy:
    # The router's plan, each node on a tier drawn with r2local's shares: it
    # spends what r2local spends, but blindly.
    return Strategy("random", RouterPlanner(), RandomAllocator(ctx.shares, ctx.rng))


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
    engine: Engine, items: list[Item], share: float, cancel: threading.Event | None = None
) -> tuple[list[float], str]:
    """Thresholds that send ``share`` of the subtasks of ``items`` (a split apart
    from the benched questions) to the cloud: plan and score them, no answers."""
    cancel = cancel or threading.Event()
    scores: list[float] = []
    for item in items:
        qid = engine.ledger.start_question(item.question, local_only=True, pool=engine.settings.pool,
                                           strategy="bench-calibration")
        with engine.router.burst(engine.settings.runtime.threads):
            nodes = engine.nodes(engine.router.plan(qid, item.question, cancel))
            for node in nodes:
                score = engine.router.score(qid, node.id, item.question, node.text)
                node.difficulty = round(score.difficulty, 4) if score is not None else None
                engine.ledger.save_node(qid, node)
        engine.ledger.update_question(qid, plan_note="bench calibration: planned and scored only")
        engine.ledger.finish_question(qid, QuestionEnd(QuestionStatus.DONE, 0.0))
        scores += [n.difficulty for n in nodes if n.difficulty is not None]
    if not scores:
        raise R2Error("calibration produced no difficulty scores", fix="check the router model, or drop --cloud-share")
    th = calibrate_thresholds(scores, len(engine.pool.tiers), share)
    return th, f"calibrated to {share:.0%} cloud share on {len(items)} other questions ({len(scores)} subtasks)"
