"""Per-tier outcomes of whole questions, read from ledgers: what calibration,
the bench's analysis and router training all learn from.

A graded answer is a ``feedback`` row (source ``bench`` from a gold answer, or
``user``) on a question answered whole on one tier. Questions are matched by
their text, so the all-small / all-local / all-cloud answers of one bench
question and the router's rating of it (from r2local's route call) meet in
one ``Row``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from r2local.engine.kinds import route_kind
from r2local.engine.standing import held_back
from r2local.routing.policy import PLAN, GradedAnswer, Vote
from r2local.routing.thresholds import difficulty
from r2local.store import learning
from r2local.store.ledger import Ledger
from r2local.vocab import Verdict


@dataclass
class TierResult:
    correct: bool
    cost_usd: float  # as if uncached
    confidence: float | None = None  # the answer's agreement share (local tiers)
    mean_prob: float | None = None
    question_id: str | None = None
    held: bool = False  # held back by a check other than the agreement bar (engine.standing.held_back)


@dataclass
class Row:
    """One question (by its text) and what each tier did with it."""

    question: str
    difficulty: float | None = None
    probs: dict[str, float] | None = None  # the router's label probabilities for it
    tiers: dict[str, TierResult] = field(default_factory=dict)  # tier name (or "plan") -> result


ANY_ADAPTER = "*"  # read_rows: ratings by whichever router made them


def _ratings(ledger: Ledger, adapter: str | None = ANY_ADAPTER) -> dict[str, dict[str, float]]:
    """Question text -> the router's latest label probabilities for the whole question (the latest:
    a router with a new adapter rates differently, and bands fitted on old ratings misroute)."""
    out: dict[str, dict[str, float]] = {}
    for r in learning.ratings(ledger, None if adapter == ANY_ADAPTER else adapter, adapter == ANY_ADAPTER):
        try:
            out[r.question] = json.loads(r.output)
        except ValueError:
            continue
    return out


def _tier_of(r: learning.Graded, first_local: str) -> str | None:
    """Which tier a graded answer speaks for; a plan-local answer speaks for the decompose route."""
    if r.strategy == "plan-local":
        return PLAN
    if r.verdict in (Verdict.NEEDED_CLOUD, Verdict.NOT_NEEDED):
        return first_local  # a verdict about the cheaper tier's answer
    if r.strategy in ("cot-cloud", "plan-and-allocate") or r.route in ("decompose", "parts"):
        return None  # not a whole-question answer on one tier
    return r.tier


def read_rows(ledgers: Iterable[Ledger], first_local: str, adapter: str | None = ANY_ADAPTER) -> list[Row]:
    """Every graded whole-question answer in ``ledgers``, grouped by question text; ratings by the
    router with ``adapter`` (an id as in ``calls.adapter``, None: no adapter), else by any."""
    rows: dict[str, Row] = {}
    for ledger in ledgers:
        ratings = _ratings(ledger, adapter)
        for r in learning.graded(ledger):
            tier = _tier_of(r, first_local)
            if tier is None:
                continue
            row = rows.setdefault(r.question, Row(r.question))
            probs = ratings.get(r.question)
            if probs and row.probs is None:
                row.probs, row.difficulty = probs, difficulty(probs)
            feats = json.loads(r.features) if r.features else {}
            correct = r.verdict in (Verdict.GOOD, Verdict.NOT_NEEDED)
            held = tier == first_local and held_back(r.reason)  # another tier's reason is why it was asked
            row.tiers[tier] = TierResult(correct, r.cost_usd, r.confidence, feats.get("mean_prob"), r.question_id, held)
    return list(rows.values())


def route_outcomes(rows: list[Row]) -> list[GradedAnswer]:
    return [GradedAnswer(r.difficulty, tier, res.correct, route_kind(r.question)) for r in rows
            if r.difficulty is not None for tier, res in r.tiers.items()]


def votes(rows: list[Row], local: str, cloud: str) -> list[Vote]:
    """Questions answered both on ``local`` (with an agreement share, or held back by another check) and
    on ``cloud``."""
    out = []
    for r in rows:
        lo, up = r.tiers.get(local), r.tiers.get(cloud)
        if lo is not None and up is not None and (lo.confidence is not None or lo.held):
            out.append(Vote(lo.confidence or 0.0, lo.correct, up.correct, r.difficulty, route_kind(r.question),
                            lo.held))
    return out
