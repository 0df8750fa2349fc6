"""Why a calibration cannot hit the requested cloud share, and the closest it can.

The policy sends a score to the top tier when it is strictly above the top
threshold, so scores that tie at the cut all go one way: with many equal
logged scores some shares cannot be had. This picks the top threshold whose
share is nearest the target and says what the ties allow.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from r2local.errors import R2Error


@dataclass(frozen=True)
class Fit:
    thresholds: list[float]
    share: float  # top-tier share of the logged scores with these thresholds
    note: str | None  # why the target was missed, when it was


def top_share(scores: list[float], threshold: float) -> float:
    return sum(1 for s in scores if s > threshold) / len(scores)


def fit_top(scores: list[float], thresholds: list[float], target: float) -> Fit:
    """Move the top threshold to the distinct cut nearest ``target``; explain a miss.

    Args:
        scores: logged difficulty scores.
        thresholds: ascending thresholds from the quantile calibration.
        target: requested share of subtasks on the top tier.
    """
    if not thresholds:
        return Fit([], 0.0, None)
    values = sorted(set(scores))
    # Cut points: 0 (every positive score goes up) and each distinct score (those above it go up).
    cuts = ([0.0] if values[0] > 0 else []) + values
    best = min(cuts, key=lambda t: abs(top_share(scores, t) - target))
    if abs(top_share(scores, best) - target) >= abs(top_share(scores, thresholds[-1]) - target):
        best = thresholds[-1]  # the quantile is as good: keep it
    new = [min(t, best) for t in thresholds[:-1]] + [best]
    share = top_share(scores, best)
    n = len(scores)
    if abs(share - target) <= 0.5 / n + 1e-12:
        return Fit(new, share, None)
    counts = Counter(scores)
    for v in values:  # the group of equal scores the target falls into
        above, at = top_share(scores, v), counts[v] / n
        if counts[v] > 1 and above <= target <= above + at:
            return Fit(new, share, f"asked {target:.0%}, got {share:.0%}: {counts[v]} of {n} logged scores tie at "
                       f"{v:.4f} and go to the same tier, so the top-tier share can be {above:.0%} or "
                       f"{above + at:.0%} here, not {target:.0%}")
    return Fit(new, share, f"asked {target:.0%}, got {share:.0%}: with {n} logged scores the share moves in "
               f"steps of {1 / n:.0%}")


# -- `r2local calibrate`: the route policy from measured outcomes ----------------------------
def calibrate_all(settings: Any, cloud_share: float | None) -> dict[str, Any]:
    """Fit the route policy (per-band tier accuracy, agreement threshold) from graded answers
    in the main ledger and the bench ledger beside it, and the plan-and-allocate thresholds
    from logged difficulty scores; save both as the new calibration.

    Args:
        settings: validated config (its tiers).
        cloud_share: target share of questions sent to the cloud (None: best accuracy).
    """
    from r2local import paths
    from r2local.store.ledger import Ledger
    from r2local.routing.outcomes import read_rows, route_outcomes, votes
    from r2local.pool import Pool
    from r2local.routing.thresholds import calibrate_thresholds
    from r2local.routing.policy import escalation_curve, first_local, fit_agreement, fit_policy

    tiers = Pool(settings, fetch=False).tiers
    local, clouds = first_local(tiers), [t for t in tiers if not t.is_local]
    main = Ledger()
    bench_path = paths.user_dir() / "bench.db"
    ledgers = [main] + ([Ledger(bench_path)] if bench_path.is_file() and bench_path != main.path else [])
    try:
        rows = [r for r in read_rows(ledgers, local.name) if r.difficulty is not None]
        scores = main.difficulty_scores()
        if len(rows) < MIN_ROWS and len(scores) < 5:
            raise R2Error(f"only {len(rows)} graded questions and {len(scores)} logged scores to learn from",
                          fix="run `r2local bench --dataset generated --n 40` first (it grades every tier's answers), "
                              "or ask questions and mark answers with `r2local feedback`")
        share = cloud_share if cloud_share is not None else 0.2
        fit = fit_top(scores, calibrate_thresholds(scores, len(tiers), share), share) if len(scores) >= 5 else None
        policy, tau, curve = None, None, []
        if len(rows) >= MIN_ROWS:
            found = votes(rows, local.name, clouds[-1].name) if clouds else []
            tau = fit_agreement(found, cloud_share)
            policy = fit_policy(route_outcomes(rows), tiers, agree_below=tau, votes=found, cloud_share=cloud_share,
                                source=f"calibrated on {len(rows)} graded questions")
            curve = escalation_curve(found)
        main.save_calibration(cloud_share, fit.thresholds if fit else [], len(scores),
                              policy.to_json() if policy else None)
    finally:
        for ledger in ledgers:
            ledger.close()
    point = next((c for c in curve if tau is not None and c["agree_below"] >= tau - 1e-9), None)
    return {"graded_questions": len(rows), "logged_scores": len(scores), "target_cloud_share": cloud_share,
            "policy": policy.to_json() if policy else None, "agree_below": tau, "expected": point,
            "thresholds": fit.thresholds if fit else None, "threshold_share": fit.share if fit else None,
            "note": fit.note if fit else None}


MIN_ROWS = 8  # graded questions before a route policy means anything


def calibration_text(data: dict[str, Any]) -> str:
    from r2local.tables import table

    out = []
    policy = data["policy"]
    if policy:
        tiers = sorted({k for b in policy["bands"] for k in b["accuracy"]})
        rows = [[f"<= {b['upto']:.2f}", b["n"], *[_pct(b["accuracy"].get(t)) for t in tiers], f"{b['route']} on {b['tier']}"]
                for b in policy["bands"]]
        out += [f"route policy from {data['graded_questions']} graded questions (accuracy per difficulty band):",
                table(["difficulty", "n", *tiers, "route"], rows, right=set(range(1, len(tiers) + 2)))]
        if data["agree_below"] is not None:
            exp = data["expected"] or {}
            out.append(f"escalate a local answer when fewer than {data['agree_below']:.2f} of its samples agree"
                       + (f": on these questions {exp['cloud_share']:.0%} go to the cloud, {exp['accuracy']:.0%} right"
                          if exp else ""))
    else:
        out.append(f"no route policy yet: {data['graded_questions']} graded questions (need {MIN_ROWS}); "
                   "run `r2local bench` to grade every tier")
    if data["thresholds"] is not None:
        out.append(f"thresholds {[round(t, 4) for t in data['thresholds']]} from {data['logged_scores']} scores; "
                   f"top-tier share on them: {data['threshold_share']:.0%} (used by router.strategy = "
                   "\"plan-and-allocate\")")
    return "\n".join(out)


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.0%}"
