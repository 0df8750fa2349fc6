"""Plain example types the ledger integration feeds the trainers.

They hold only JSON-able values so that a ledger query can build them, a test
can write them by hand and a training run can record them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from r2local.errors import TrainError  # noqa: F401  (re-exported: every error type lives in r2local.errors)
from r2local.routing.thresholds import LABELS

Messages = list[dict[str, str]]




@dataclass(frozen=True)
class AllocExample:
    """One allocator decision with known per-label outcomes.

    Attributes:
        messages: the allocator prompt as chat messages, exactly what the router
            scores (``router.allocator.score_messages(question, step)``).
        rewards: label -> reward, e.g. outcome(tier) - lambda * cost(tier). Every
            trained label must be present.
        features: cheap features the engine logged (label probs, agreement,
            lengths, ...), used by the classifier head only.
        weight: how much this example counts in SFT and the head (GRPO weights
            its per-prompt loss by it too).
    """

    messages: Messages
    rewards: dict[str, float]
    features: dict[str, float] = field(default_factory=dict)
    weight: float = 1.0


@dataclass(frozen=True)
class TextExample:
    """Decomposer SFT: the prompt (chat messages) and the target reply (a JSON plan)."""

    messages: Messages
    target: str


def best_label(rewards: dict[str, float], labels: tuple[str, ...] = LABELS) -> str:
    """The label with the highest reward; a tie goes to the cheapest (first) label."""
    best = labels[0]
    for label in labels[1:]:
        if rewards[label] > rewards[best]:
            best = label
    return best


def check_alloc_examples(examples: list[AllocExample], labels: tuple[str, ...]) -> None:
    """Fail early, naming the example, rather than deep inside a training step."""
    if not examples:
        raise TrainError("no allocator examples to train on", fix="log some routed subtasks with outcomes first")
    for i, ex in enumerate(examples):
        missing = [label for label in labels if label not in ex.rewards]
        if missing:
            raise TrainError(
                f"example {i} has no reward for {missing}",
                fix=f"give every example a reward for each of {list(labels)}",
            )
        if not all(math.isfinite(ex.rewards[label]) for label in labels) or not math.isfinite(ex.weight):
            raise TrainError(f"example {i} has a non-finite reward or weight", fix="drop or repair that ledger row")
        if not ex.messages:
            raise TrainError(f"example {i} has no messages", fix="store the allocator prompt with each decision")


def check_text_examples(examples: list[TextExample]) -> None:
    if not examples:
        raise TrainError("no decomposer examples to train on", fix="log some plans with outcomes first")
    for i, ex in enumerate(examples):
        if not ex.messages or not ex.target:
            raise TrainError(f"text example {i} has no messages or an empty target", fix="drop that row")
