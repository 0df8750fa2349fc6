"""What a bench run says beyond each strategy's own row, computed from the
outcomes it already has (no model runs, no reruns):

- ``oracle``: per question the cheapest whole-question tier that got it right
  (all-small, all-local, all-cloud), the ceiling of any router on this pool;
- cost-accuracy curves over thresholds: agreement (escalate the first local
  tier's answer when its samples agree less than t) and the router's
  difficulty (send the question to the cloud above d);
- exact McNemar tests, paired on the same questions;
- AUROC of agreement and of mean token probability for "the local answer is wrong".
"""

from __future__ import annotations

import math
from typing import Any

from r2local.bench.runner import BenchRun, ItemResult
from r2local.engine.kinds import answer_kind

WHOLE = ("all-small", "all-local", "all-cloud")


def _by_item(run: BenchRun) -> dict[str, dict[str, ItemResult]]:
    out: dict[str, dict[str, ItemResult]] = {}
    for o in run.outcomes:
        out.setdefault(o.item_id, {})[o.strategy] = o
    return out


def oracle(run: BenchRun) -> list[ItemResult] | None:
    """The cheapest whole-question tier that is right, per question (wrong if none is)."""
    if not set(WHOLE) <= set(run.strategies):
        return None
    out = []
    for item_id, got in _by_item(run).items():
        tried = [got[s] for s in WHOLE if s in got]
        right = sorted((o for o in tried if o.correct), key=lambda o: o.cost_usd)
        pick = right[0] if right else min(tried, key=lambda o: o.cost_usd)
        out.append(ItemResult("oracle", item_id, pick.question_id, pick.prediction, bool(right), "done", pick.cost_usd,
                           0.0, pick.cloud_tokens, 1, pick.cloud_nodes, pick.latency_ms, tiers=dict(pick.tiers),
                           tier=pick.tier, question_chars=pick.question_chars, cloud_chars=pick.cloud_chars,
                           parts=pick.parts, parts_right=pick.parts_right))
    return out


def _curve(points: list[tuple[float, ItemResult, ItemResult]], key: str) -> list[dict[str, float]]:
    """Accuracy and cloud cost when every question whose score is below a cut takes
    the first outcome, the rest the second; one row per cut that changes anything."""
    if not points:
        return []
    cuts = sorted({p[0] for p in points}) + [math.inf]
    rows = []
    for cut in cuts:
        picked = [(lo if score >= cut else up) for score, lo, up in points]
        rows.append({key: cut if cut != math.inf else None,
                     "accuracy": sum(o.correct for o in picked) / len(points),
                     "cloud_cost_usd": sum(o.cost_usd for o in picked),
                     "cloud_share": sum(1 for o in picked if o.strategy == "all-cloud") / len(points)})
    return rows


def agreement_curve(run: BenchRun) -> list[dict[str, float]]:
    """Escalate the all-local answer to all-cloud's when its agreement is below the cut."""
    pts = [(g["all-local"].confidence, g["all-local"], g["all-cloud"]) for g in _by_item(run).values()
           if "all-local" in g and "all-cloud" in g and g["all-local"].confidence is not None]
    return _curve(pts, "agree_below")


def difficulty_curve(run: BenchRun) -> list[dict[str, float]]:
    """Send the question to the cloud when the router rates it above the cut (a query router)."""
    items = _by_item(run)
    pts = []
    for g in items.values():
        d = next((o.difficulty for o in g.values() if o.difficulty is not None), None)
        if d is not None and "all-local" in g and "all-cloud" in g:
            pts.append((1.0 - d, g["all-local"], g["all-cloud"]))  # by ease: easy questions stay local
    rows = _curve(pts, "ease_cut")
    for row in rows:  # say it as a difficulty: the cloud gets what is rated above it
        cut = row.pop("ease_cut")
        row["cloud_above"] = None if cut is None else round(1.0 - cut, 6)
    return rows


def mcnemar(a: list[ItemResult], b: list[ItemResult]) -> dict[str, Any]:
    """Exact two-sided McNemar test of a against b on the questions both answered."""
    right_b = {o.item_id: o.correct for o in b}
    pairs = [(o.correct, right_b[o.item_id]) for o in a if o.item_id in right_b]
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2 ** n)
    return {"n": len(pairs), "only_a": only_a, "only_b": only_b, "p": p}


def auroc(scores: list[float], wrong: list[bool]) -> float | None:
    """Probability that a wrong answer scores higher than a right one (ties count half)."""
    pos = [s for s, w in zip(scores, wrong) if w]
    neg = [s for s, w in zip(scores, wrong) if not w]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def signals(run: BenchRun) -> dict[str, Any] | None:
    """How well agreement and mean token probability flag wrong all-local answers, overall and
    per answer kind (the kind each question asks for, read from its wording)."""
    local = [o for o in run.of("all-local") if o.status == "done"]
    if not local:
        return None
    out = _signal(local)
    questions = {i.id: i.question for i in run.items}
    by_kind: dict[str, list[ItemResult]] = {}
    for o in local:
        by_kind.setdefault(answer_kind(questions.get(o.item_id, "")), []).append(o)
    out["kinds"] = {kind: _signal(mine) for kind, mine in sorted(by_kind.items())}
    return out


def _signal(local: list[ItemResult]) -> dict[str, Any]:
    with_conf = [o for o in local if o.confidence is not None]
    with_prob = [o for o in local if o.mean_prob is not None]
    return {
        "n": len(local), "wrong": sum(not o.correct for o in local),
        "agreement_auroc": auroc([-o.confidence for o in with_conf], [not o.correct for o in with_conf]),
        "mean_prob_auroc": auroc([-o.mean_prob for o in with_prob], [not o.correct for o in with_prob]),
    }


def significance(run: BenchRun, of: str = "r2local") -> dict[str, Any]:
    mine = run.of(of)
    others = ["all-cloud", "random", "task-level", "cascade", "all-local"]
    return {s: mcnemar(mine, run.of(s)) for s in others if s in run.strategies and mine}
