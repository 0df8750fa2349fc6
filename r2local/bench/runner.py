"""Runs strategies over a dataset and measures each answer from the ledger.

Costs come from the ledger's call rows of each question, counted as if
uncached (``cost_usd + saved_usd``), so the table adds up to the ledger.
Latency is the question's wall time plus the original latency of the calls
the cache answered (an upper bound where those calls would have overlapped).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from r2local.engine.core import AskResult, Engine
from r2local.errors import BackendError, Cancelled
from r2local.gates import Confirm
from r2local.store.records import Feedback
from r2local.routing.thresholds import difficulty
from r2local.routing.policy import RoutePolicy
from r2local.tasks.datasets import Item
from r2local.tasks.graders import grade, part_scores
from r2local.vocab import FeedbackSource, NodeKind, Verdict
from r2local.bench.strategies import STRATEGIES, Context

OnProgress = Callable[[int, int, str], None]  # (done, total, label)


@dataclass
class ItemResult:
    strategy: str
    item_id: str
    question_id: str | None
    prediction: str
    correct: bool
    status: str  # done, failed
    cost_usd: float  # as if uncached
    paid_usd: float  # what was actually paid (cache hits are free)
    cloud_tokens: int
    nodes: int
    cloud_nodes: int
    latency_ms: float
    error: str | None = None
    tiers: dict[str, int] = field(default_factory=dict)  # final tier of each node -> nodes
    escalated: int = 0  # nodes that moved up a tier
    tier: str | None = None  # the tier whose answer was given
    route: str | None = None
    difficulty: float | None = None  # the router's rating of the whole question, when it made one
    confidence: float | None = None  # the answer's agreement share (local answers)
    mean_prob: float | None = None  # the answer's mean token probability (a recorded feature)
    local_ms: float = 0.0  # time spent in local model calls
    question_chars: int = 0
    cloud_chars: int = 0  # characters of the question's own text in what the cloud was sent (parts or whole)
    parts: int = 0  # a compound question's parts (graded one by one); 0 for a single question
    parts_right: int = 0
    split: int = 0  # parts the route found and answered one by one (0: kept whole)


@dataclass
class BenchRun:
    items: list[Item]
    strategies: list[str]
    outcomes: list[ItemResult] = field(default_factory=list)
    complete: bool = True
    seconds: float = 0.0

    def of(self, strategy: str) -> list[ItemResult]:
        return [o for o in self.outcomes if o.strategy == strategy]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def measure(engine: Engine, strategy: str, item: Item, qid: str | None, result: AskResult | None,
            error: str | None) -> ItemResult:
    q = engine.ledger.question(qid) if qid else None
    calls = q["calls"] if q else []
    cloud = {t.name for t in engine.pool.tiers if not t.is_local}
    cost = sum((c["cost_usd"] or 0.0) + (c.get("saved_usd") or 0.0) for c in calls)
    paid = sum(c["cost_usd"] or 0.0 for c in calls)
    tokens = sum((c["input_tokens"] or 0) + (c["output_tokens"] or 0) for c in calls if c["tier"] in cloud)
    replayed = sum(c["latency_ms"] or 0.0 for c in calls if c.get("cached"))
    wall = result.latency_ms if result else (q or {}).get("latency_ms") or 0.0
    prediction = result.answer if result else ""
    nodes = result.nodes if result else []
    last = nodes[-1] if nodes else None
    correct = bool(result) and result.status == "done" and grade(item.grader, prediction, item.answer,
                                                                 list(item.choices or []) or None)
    # The whole question's rating; on the parts route each part has its own and the question none.
    rated = [c for c in calls if (c["role"] == "allocate" or (c["role"] == "route" and c["subtask_id"] is None))
             and c["status"] == "ok" and c["output"]]
    local_ms = sum(c["latency_ms"] or 0.0 for c in calls if c["tier"] not in cloud)
    scores = part_scores(prediction if bool(result) and result.status == "done" else "", item.answer) \
        if item.grader == "parts" else []
    return ItemResult(
        strategy, item.id, qid, prediction, correct,
        result.status if result else "failed", cost, paid, tokens, len(nodes),
        sum(1 for n in nodes if not n.is_local), wall + replayed, error,
        dict(Counter(n.tier for n in nodes if n.tier)), sum(1 for n in nodes if n.escalated_from),
        last.tier if last else None, result.route if result else None,
        difficulty(json.loads(rated[0]["output"])) if rated else None,
        last.confidence if last else None, (last.features.get("mean_prob") if last else None), local_ms,
        len(item.question), cloud_chars(item.question, q, cloud), len(scores), sum(scores),
        sum(1 for n in nodes if n.kind == NodeKind.PART),
    )


def cloud_chars(question: str, q: dict[str, Any] | None, cloud: set[str]) -> int:
    """How much of the question's text the cloud saw: the text of every subtask with a cloud call (a part's own
    text, or the whole question; a question-level call counts whole), at most the question's length."""
    if not q:
        return 0
    sent = {c["subtask_id"] for c in q["calls"] if c["tier"] in cloud}
    if None in sent:
        return len(question)
    texts = {s["subtask_id"]: s["text"] or "" for s in q["subtasks"]}
    return min(len(question), sum(len(texts.get(i, question)) for i in sent))


def record_grade(engine: Engine, outcome: ItemResult) -> None:
    """The grade is feedback in the ledger (source bench): the labels calibration and training read."""
    if outcome.question_id is None or outcome.status != "done":
        return
    verdict = Verdict.GOOD if outcome.correct else Verdict.BAD
    engine.ledger.add_feedback(Feedback(outcome.question_id, verdict, FeedbackSource.BENCH, tier=outcome.tier,
                                        note=outcome.strategy))


def _ask(ctx: Context, strategy: str, item: Item) -> ItemResult:
    engine = ctx.engine
    last = [q["id"] for q in engine.ledger.questions(1)]
    try:
        result = engine.ask(item.question, strategy=STRATEGIES[strategy](ctx), confirm=ctx.confirm)
    except BackendError as exc:
        # A model that fails on one question makes a wrong answer, not the end
        # of the run; setup errors (config, model files, keys) still stop it.
        now = [q["id"] for q in engine.ledger.questions(1)]
        return measure(engine, strategy, item, now[0] if now != last else None, None, exc.message)
    outcome = measure(engine, strategy, item, result.question_id, result, None)
    record_grade(engine, outcome)
    if strategy == "r2local":  # random and task-level spend at r2local's tier shares
        by_name = {t.name: t.index for t in engine.pool.tiers}
        ctx.used.update(by_name[n.tier] for n in result.nodes if n.tier in by_name)
        if outcome.difficulty is not None:
            ctx.difficulties.append(outcome.difficulty)
    return outcome


def run_bench(
    engine: Engine,
    items: list[Item],
    strategies: list[str],
    *,
    seed: int = 0,
    policy: RoutePolicy | None = None,
    confirm: Confirm | None = None,
    on_progress: OnProgress | None = None,
    cancel: threading.Event | None = None,
) -> BenchRun:
    """Every strategy on every item, strategy by strategy (r2local before random).

    Args:
        engine: the engine on the pool to measure (its gates apply to every call).
        items: the questions.
        strategies: names from STRATEGIES, in run order.
        seed: seeds the random baseline.
        policy: pins r2local's route policy (None: the engine's own).
        confirm: asks before each cloud call in privacy mode "confirm".
        on_progress: called before and after each answer.
        cancel: set it to stop after the current answer; the run is then partial.
    """
    ctx = Context(engine, seed, policy, confirm=confirm)
    run = BenchRun(items, strategies)
    total, done, start = len(items) * len(strategies), 0, time.perf_counter()
    cancel = cancel or threading.Event()
    try:
        for strategy in strategies:
            for item in items:
                if cancel.is_set():
                    raise Cancelled("cancelled")
                if on_progress:
                    on_progress(done, total, strategy)
                run.outcomes.append(_ask(ctx, strategy, item))
                done += 1
                if on_progress:
                    on_progress(done, total, strategy)
    except Cancelled:
        run.complete = False
    run.seconds = time.perf_counter() - start
    return run


def summarise(outcomes: list[ItemResult]) -> dict[str, Any]:
    n = len(outcomes)
    k = sum(o.correct for o in outcomes)
    lo, hi = wilson(k, n)
    nodes = sum(o.nodes for o in outcomes)
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n if n else 0.0,
        "ci95": [lo, hi],
        "cloud_cost_usd": sum(o.cost_usd for o in outcomes),
        "paid_usd": sum(o.paid_usd for o in outcomes),
        "cloud_share": sum(o.cloud_nodes for o in outcomes) / nodes if nodes else 0.0,
        "cloud_tokens": sum(o.cloud_tokens for o in outcomes),
        "mean_latency_s": sum(o.latency_ms for o in outcomes) / n / 1000 if n else 0.0,
        "failed": sum(o.status != "done" for o in outcomes),
        "nodes_by_tier": dict(sum((Counter(o.tiers) for o in outcomes), Counter())),
        "escalated": sum(o.escalated for o in outcomes),
        "text_to_cloud": (sum(o.cloud_chars for o in outcomes) / chars) if (chars := sum(o.question_chars for o in outcomes)) else 0.0,
        **_parts_summary(outcomes),
    }


def _parts_summary(outcomes: list[ItemResult]) -> dict[str, Any]:
    """Compound questions: parts right one by one, and how often the route found as many parts as there are."""
    graded = [o for o in outcomes if o.parts]
    if not graded:
        return {}
    return {"parts_right": sum(o.parts_right for o in graded), "parts": sum(o.parts for o in graded),
            "split_exact": sum(max(o.split, 1) == o.parts for o in graded) / len(graded)}


def outcome_json(o: ItemResult) -> dict[str, Any]:
    d = asdict(o)
    d["cost_usd"], d["paid_usd"] = round(o.cost_usd, 8), round(o.paid_usd, 8)
    d["latency_ms"] = round(o.latency_ms, 1)
    return d
