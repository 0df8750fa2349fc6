"""How good an allocator is, on held-out questions whose every tier's outcome is known.

An allocator gives each question label probabilities. As a query router it
sends a question to the cloud when P(hard) reaches a cut, else to the likelier
of the two local labels' tiers; sweeping the cut gives a cost–accuracy curve.
The comparison is the cloud cost at equal accuracy: the bar is what the
reference (the active version, else the untrained router) reaches when it
sends the target share of questions to the cloud, but never below all-cloud's
accuracy (a reference that routes badly, e.g. to a tier that gets nothing
right, would set a bar every allocator clears with no cloud at all, which
says nothing); then what each allocator pays to reach the bar. A paired sign test on the
per-question reward of the greedy label says whether a new version really
beats the active one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from r2local.routing.outcomes import Row
from r2local.routing.thresholds import LABELS, score_messages
from r2local.train.data import AllocExample
from r2local.train.labels import complete

Probs = dict[str, float]


@dataclass(frozen=True)
class Point:
    cut: float | None  # P(hard) at or above which the question goes to the cloud (None: never)
    accuracy: float
    cloud_cost_usd: float
    cloud_share: float


def curve(rows: list[Row], probs: list[Probs], mapping: dict[str, str], tau: float | None = None) -> list[Point]:
    """Accuracy and cloud cost for every cut that changes a decision. With ``tau``, as r2local
    runs: a question kept local still climbs to the cloud when its samples agree less than tau."""
    outcomes = [complete(r, mapping) for r in rows]
    agree = [r.tiers[mapping["medium"]].confidence if mapping["medium"] in r.tiers else None for r in rows]
    costs = [r.tiers[mapping["hard"]].cost_usd if mapping["hard"] in r.tiers else 0.0 for r in rows]
    mean = sum(costs) / max(1, sum(1 for c in costs if c)) if any(costs) else 0.0
    costs = [c or mean for c in costs]  # an unmeasured cloud answer costs what they do on average
    cuts = sorted({p.get("hard", 0.0) for p in probs}, reverse=True) + [math.inf]
    points = []
    for cut in [math.inf] + cuts[:-1]:
        right = cost = up = 0.0
        for o, p, c, a in zip(outcomes, probs, costs, agree):
            if o is None:
                continue
            climbs = tau is not None and a is not None and a < tau and p.get("easy", 0.0) <= p.get("medium", 0.0)
            if p.get("hard", 0.0) >= cut or climbs:
                right, cost, up = right + o["hard"], cost + c, up + 1
            else:
                right += o["easy"] if p.get("easy", 0.0) > p.get("medium", 0.0) else o["medium"]
        n = sum(1 for o in outcomes if o is not None) or 1
        points.append(Point(None if cut == math.inf else cut, right / n, cost, up / n))
    return points


def at_share(points: list[Point], share: float) -> Point:
    """The point whose cloud share is the largest not above ``share``."""
    fit = [p for p in points if p.cloud_share <= share + 1e-9]
    return max(fit, key=lambda p: (p.cloud_share, p.accuracy)) if fit else points[0]


def bar(points: list[Point], share: float) -> float:
    """The accuracy to reach: the reference's at ``share``, at least all-cloud's (the curve's last
    point: every question on the cloud, which every allocator's curve reaches too)."""
    return max(at_share(points, share).accuracy, points[-1].accuracy)


def _equal_accuracy(reference: list[Point], share: float) -> tuple[float, float]:
    """The bar, and what the reference pays to reach it."""
    target = bar(reference, share)
    return target, cost_at(reference, target) or 0.0


def _change(cost: float | None, ref_cost: float) -> float | None:
    return None if cost is None or not ref_cost else cost / ref_cost - 1.0


def cost_at(points: list[Point], accuracy: float) -> float | None:
    """The least cloud cost that reaches ``accuracy`` on this curve (None: it never does)."""
    reach = [p.cloud_cost_usd for p in points if p.accuracy >= accuracy - 1e-9]
    return min(reach) if reach else None


def greedy_rewards(examples: list[AllocExample], probs: list[Probs]) -> list[float]:
    return [ex.rewards[max(LABELS, key=lambda k: p.get(k, 0.0))] for ex, p in zip(examples, probs)]


def sign_test(new: list[float], old: list[float]) -> dict[str, Any]:
    """Exact two-sided sign test on paired rewards (ties dropped)."""
    wins = sum(1 for a, b in zip(new, old) if a > b + 1e-12)
    losses = sum(1 for a, b in zip(new, old) if b > a + 1e-12)
    n = wins + losses
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n)
    return {"wins": wins, "losses": losses, "p": p}


def compare(rows: list[Row], examples: list[AllocExample], scored: dict[str, list[Probs]], mapping: dict[str, str],
            *, reference: str = "untrained", share: float = 0.3, tau: float | None = None) -> dict[str, Any]:
    """Each allocator's curve, cost at the reference's accuracy, greedy reward, label accuracy;
    with ``tau``, also each allocator as r2local uses it (its route, then agreement)."""
    curves = {name: curve(rows, probs, mapping) for name, probs in scored.items()}
    target, ref_cost = _equal_accuracy(curves[reference], share)
    out: dict[str, Any] = {"reference": reference, "share": share, "accuracy": target,
                           "reference_at_share": at_share(curves[reference], share).accuracy,
                           "all_cloud_accuracy": curves[reference][-1].accuracy,
                           "reference_cost_usd": ref_cost, "allocators": {}}
    base_rewards = greedy_rewards(examples, scored[reference])
    for name, probs in scored.items():
        rewards = greedy_rewards(examples, probs)
        best = [max(LABELS, key=lambda k: ex.rewards[k]) for ex in examples]
        picked = [max(LABELS, key=lambda k: p.get(k, 0.0)) for p in probs]
        cost = cost_at(curves[name], target)
        out["allocators"][name] = {
            "cost_at_equal_accuracy_usd": cost,
            "cost_change": _change(cost, ref_cost),
            "greedy_reward": sum(rewards) / max(1, len(rewards)),
            "label_accuracy": sum(a == b for a, b in zip(picked, best)) / max(1, len(best)),
            "vs_reference": sign_test(rewards, base_rewards),
            "curve": [p.__dict__ for p in curves[name]],
        }
    if tau is not None:
        out["with_agreement"] = _with_agreement(rows, scored, mapping, reference, share, tau)
    return out


def _with_agreement(rows: list[Row], scored: dict[str, list[Probs]], mapping: dict[str, str], reference: str,
                    share: float, tau: float) -> dict[str, Any]:
    """Each allocator routing first, agreement escalating after: r2local's cloud cost at equal accuracy."""
    curves = {name: curve(rows, probs, mapping, tau) for name, probs in scored.items()}
    target, ref_cost = _equal_accuracy(curves[reference], share)
    out: dict[str, Any] = {"agree_below": tau, "accuracy": target, "reference_cost_usd": ref_cost}
    for name, points in curves.items():
        cost = cost_at(points, target)
        out[name] = {"cost_at_equal_accuracy_usd": cost,
                     "cost_change": _change(cost, ref_cost),
                     "curve": [p.__dict__ for p in points]}
    return out


def score_rows(backend: Any, rows: list[Row], adapter: Any = None) -> list[Probs]:
    """Label probabilities the way inference computes them: llama.cpp, with the GGUF adapter applied."""
    if hasattr(backend, "set_adapter"):
        backend.set_adapter(adapter)
    out = []
    for row in rows:
        probs, _ = backend.score_labels(score_messages(row.question, row.question), list(LABELS))
        out.append(probs)
    return out
