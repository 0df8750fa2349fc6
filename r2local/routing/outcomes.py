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

from r2local.store.ledger import Ledger
from r2local.routing.thresholds import difficulty
from r2local.routing.policy import PLAN, GradedAnswer, Vote
from r2local.vocab import Verdict


@dataclass
class TierResult:
    correct: bool
    cost_usd: float  # as if uncached
    confidence: float | None = None  # the answer's agreement share (local tiers)
    mean_prob: float | None = None
    question_id: str | None = None


@dataclass
class Row:
    """One question (by its text) and what each tier did with it."""

    question: str
    difficulty: float | None = None
    probs: dict[str, float] | None = None  # the router's label probabilities for it
    tiers: dict[str, TierResult] = field(default_factory=dict)  # tier name (or "plan") -> result


def _graded(ledger: Ledger) -> list[dict]:
    return ledger._query(
        "select f.question_id, f.verdict, f.tier, f.source, q.question, q.strategy, q.route, "
        "(select coalesce(sum(coalesce(c.cost_usd, 0) + coalesce(c.saved_usd, 0)), 0) from calls c "
        " where c.question_id = q.id) as cost, "
        "(select s.confidence from subtasks s where s.question_id = q.id order by s.subtask_id desc limit 1) as conf, "
        "(select s.features from subtasks s where s.question_id = q.id order by s.subtask_id desc limit 1) as feats "
        "from feedback f join questions q on q.id = f.question_id where f.subtask_id is null order by f.id"
    )


ANY_ADAPTER = "*"  # read_rows: ratings by whichever router made them


def _ratings(ledger: Ledger, adapter: str | None = ANY_ADAPTER) -> dict[str, dict[str, float]]:
    """Question text -> the router's latest label probabilities for the whole question (the latest:
    a router with a new adapter rates differently, and bands fitted on old ratings misroute)."""
    rows = ledger._query(
        "select q.question, c.output from calls c join questions q on q.id = c.question_id "
        "where c.role in ('route', 'allocate') and c.status = 'ok' and c.output is not null "
        "and (c.role = 'route' or (select count(*) from subtasks s where s.question_id = q.id) = 1) "
        + ("" if adapter == ANY_ADAPTER else "and c.adapter is ? ") + "order by c.rowid",
        () if adapter == ANY_ADAPTER else (adapter,),
    )
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        try:
            out[r["question"]] = json.loads(r["output"])
        except ValueError:
            continue
    return out


def _tier_of(r: dict, first_local: str) -> str | None:
    """Which tier a graded answer speaks for; a plan-local answer speaks for the decompose route."""
    if r["strategy"] == "plan-local":
        return PLAN
    if r["verdict"] in (Verdict.NEEDED_CLOUD, Verdict.NOT_NEEDED):
        return first_local  # a verdict about the cheaper tier's answer
    if r["strategy"] in ("cot-cloud", "plan-and-allocate") or r["route"] == "decompose":
        return None  # not a whole-question answer
    return r["tier"]


def read_rows(ledgers: Iterable[Ledger], first_local: str, adapter: str | None = ANY_ADAPTER) -> list[Row]:
    """Every graded whole-question answer in ``ledgers``, grouped by question text; ratings by the
    router with ``adapter`` (an id as in ``calls.adapter``, None: no adapter), else by any."""
    rows: dict[str, Row] = {}
    for ledger in ledgers:
        ratings = _ratings(ledger, adapter)
        for r in _graded(ledger):
            tier = _tier_of(r, first_local)
            if tier is None:
                continue
            row = rows.setdefault(r["question"], Row(r["question"]))
            probs = ratings.get(r["question"])
            if probs and row.probs is None:
                row.probs, row.difficulty = probs, difficulty(probs)
            feats = json.loads(r["feats"]) if r["feats"] else {}
            correct = r["verdict"] in (Verdict.GOOD, Verdict.NOT_NEEDED)
            row.tiers[tier] = TierResult(correct, r["cost"] or 0.0, r["conf"], feats.get("mean_prob"), r["question_id"])
    return list(rows.values())


def route_outcomes(rows: list[Row]) -> list[GradedAnswer]:
    return [GradedAnswer(r.difficulty, tier, res.correct) for r in rows if r.difficulty is not None
            for tier, res in r.tiers.items()]


def votes(rows: list[Row], local: str, cloud: str) -> list[Vote]:
    """Questions answered both on ``local`` (with an agreement share) and on ``cloud``."""
    out = []
    for r in rows:
        lo, up = r.tiers.get(local), r.tiers.get(cloud)
        if lo is not None and up is not None and lo.confidence is not None:
            out.append(Vote(lo.confidence, lo.correct, up.correct, r.difficulty))
    return out
