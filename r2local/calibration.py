"""Why a calibration cannot hit the requested cloud share, and the closest it can.

The policy sends a score to the top tier when it is strictly above the top
threshold, so scores that tie at the cut all go one way: with many equal
logged scores some shares cannot be had. This picks the top threshold whose
share is nearest the target and says what the ties allow.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


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
