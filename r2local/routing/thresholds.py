"""Allocator: the router's label probabilities give each subtask a difficulty in
[0, 1] (``RouterClient.score`` makes the call); a separate threshold policy maps
scores to tiers. Thresholds are calibrated from logged
scores so that a target share of subtasks goes to the top (cloud) tier.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

LABELS = ("easy", "medium", "hard")
VALUES = (0.0, 0.5, 1.0)

SYSTEM = (
    "Rate how hard this step is for a small language model to answer correctly. "
    "Reply with one word: easy, medium or hard."
)


def score_messages(question: str, text: str) -> list[dict[str, str]]:
    # The shared system prefix stays in the KV cache between subtasks.
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Question: {question}\nStep: {text}"},
    ]


@dataclass(frozen=True)
class Score:
    difficulty: float
    probs: dict[str, float]
    latency_ms: float
    input_tokens: int


def difficulty(probs: dict[str, float]) -> float:
    """The scorer: expected label value, easy = 0, medium = 0.5, hard = 1."""
    value = sum(probs.get(label, 0.0) * v for label, v in zip(LABELS, VALUES))
    return min(1.0, max(0.0, value))


def default_thresholds(n_tiers: int) -> list[float]:
    """Evenly spaced cut points: with 3 tiers, [1/3, 2/3]."""
    return [i / n_tiers for i in range(1, n_tiers)]


class ThresholdPolicy:
    """Tier index = number of thresholds the score is strictly above."""

    def __init__(self, thresholds: list[float]) -> None:
        if thresholds != sorted(thresholds):
            raise ValueError("thresholds must be ascending")
        self.thresholds = list(thresholds)

    def tier_index(self, difficulty: float) -> int:
        return bisect.bisect_left(self.thresholds, difficulty)


def _quantile(sorted_scores: list[float], q: float) -> float:
    """The smallest logged score with at least a share q of scores at or below it."""
    if q <= 0:
        return 0.0
    index = min(len(sorted_scores) - 1, max(0, math.ceil(q * len(sorted_scores)) - 1))
    return sorted_scores[index]


def calibrate_thresholds(scores: list[float], n_tiers: int, cloud_share: float) -> list[float]:
    """Thresholds that send about ``cloud_share`` of these scores to the top tier.

    The top cut is the (1 - share) quantile of the scores; the lower tiers split
    the rest evenly by quantile.

    Args:
        scores: logged difficulty scores.
        n_tiers: number of tiers (cheapest first).
        cloud_share: target share of subtasks on the top tier, in [0, 1].
    """
    if not 0.0 <= cloud_share <= 1.0:
        raise ValueError("cloud share must be between 0 and 1")
    if not scores:
        raise ValueError("no logged scores to calibrate from")
    if n_tiers < 2:
        return []
    ordered = sorted(scores)
    below = 1.0 - cloud_share
    return [_quantile(ordered, below * k / (n_tiers - 1)) for k in range(1, n_tiers)]
