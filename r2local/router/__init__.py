"""The router: decomposer (question -> plan) and allocator (subtask -> tier)."""

from .allocator import (
    DifficultyScorer,
    ThresholdPolicy,
    calibrate_thresholds,
    default_thresholds,
)
from .decomposer import Decomposer
from .plan import Plan, Subtask, parse_plan, single_plan

__all__ = [
    "Decomposer",
    "DifficultyScorer",
    "Plan",
    "Subtask",
    "ThresholdPolicy",
    "calibrate_thresholds",
    "default_thresholds",
    "parse_plan",
    "single_plan",
]
