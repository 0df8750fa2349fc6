"""Router training data from the user's own ledgers: per question, which tier
got it right, turned into allocator examples with a reward per label.

Sources, all in the ledger, none needing a gold answer in daily use except
the first: bench grades (every tier answered the same question), user
feedback, shadow runs one tier up, and escalations (the cheaper tier's answer
is kept beside the upper one; agreement says whether it sufficed).

The action is one label token; each label stands for a tier: ``easy`` the
cheapest local tier, ``medium`` the tier a question starts on (the strongest
program-writing local tier), ``hard`` the cloud. Reward = right(tier) minus
``lam`` times the cloud's cost for this question over the mean (and a small
nudge towards the faster local tier when both are right).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from r2local.routing.outcomes import Row, TierResult, read_rows
from r2local.routing.thresholds import LABELS, difficulty, score_messages
from r2local.routing.policy import first_local
from r2local.engine.answers import answer_kind, read_answer, same
from r2local.store import learning
from r2local.train.data import AllocExample

if TYPE_CHECKING:
    from r2local.store.ledger import Ledger
    from r2local.pool import Tier

SLOWER = 0.02  # reward given up for a slower local tier when a faster one is right too


def label_tiers(tiers: list["Tier"]) -> dict[str, str]:
    """Label -> tier name: easy the cheapest local tier, medium the first local, hard the top cloud tier."""
    local = [t for t in tiers if t.is_local]
    cloud = [t for t in tiers if not t.is_local]
    top = cloud[-1] if cloud else local[-1]
    return {"easy": local[0].name, "medium": first_local(tiers).name, "hard": top.name}


def escalation_rows(ledger: "Ledger", first: str) -> list[Row]:
    """Questions that climbed from ``first`` to another tier: both answers are in the ledger.

    The cheaper tier's answer is its greedy program's result when it ran, else its
    prose; agreement with the upper tier's final answer says whether it sufficed.
    """
    out = []
    for q in learning.escalated_from(ledger, first):
        calls = learning.call_outputs(ledger, q.question_id, first)
        program = [c.output for c in calls if c.role == "program" and c.status == "ok" and not c.sample]
        prose = [c.output for c in calls if c.role in ("subtask", "sample") and c.status == "ok"]
        mine = program[0] if program else (prose[0] if prose else None)
        if mine is None:
            continue
        kind = answer_kind(q.question)
        agreed = same(read_answer(mine, kind, q.question), read_answer(q.answer, kind, q.question))
        out.append(Row(q.question, tiers={first: TierResult(agreed, 0.0, None, None, q.question_id),
                                          q.tier: TierResult(True, 0.0, None, None, q.question_id)}))
    return out


def gather(ledgers: list["Ledger"], tiers: list["Tier"]) -> list[Row]:
    """Every question with outcomes, from every source; a question seen twice keeps the richer row."""
    first = first_local(tiers).name
    rows: dict[str, Row] = {}
    for row in [r for ledger in ledgers for r in escalation_rows(ledger, first)] + read_rows(ledgers, first):
        have = rows.get(row.question)
        if have is None or len(row.tiers) >= len(have.tiers):
            merged = Row(row.question, row.difficulty or (have.difficulty if have else None),
                         row.probs or (have.probs if have else None), {**(have.tiers if have else {}), **row.tiers})
            rows[row.question] = merged
    return list(rows.values())


def complete(row: Row, mapping: dict[str, str]) -> dict[str, bool] | None:
    """Right-or-wrong for every labelled tier, filling what a source leaves out the careful way:
    the cloud unknown counts as right (it is what the cheaper tiers are checked against);
    the cheapest tier unknown counts as wrong (no traffic without evidence). None without the first tier."""
    got = {label: row.tiers[name].correct for label, name in mapping.items() if name in row.tiers}
    if "medium" not in got:
        return None
    got.setdefault("hard", True)
    got.setdefault("easy", False if mapping["easy"] != mapping["medium"] else got["medium"])
    return got


def rewards(row: Row, mapping: dict[str, str], lam: float, mean_cost: float) -> dict[str, float] | None:
    right = complete(row, mapping)
    if right is None:
        return None
    cloud = row.tiers.get(mapping["hard"])
    cost = (cloud.cost_usd / mean_cost) if cloud is not None and cloud.cost_usd and mean_cost else 1.0
    return {"easy": float(right["easy"]), "medium": float(right["medium"]) - (SLOWER if mapping["easy"] != mapping["medium"] else 0.0),
            "hard": float(right["hard"]) - lam * cost}


def features(row: Row) -> dict[str, float]:
    """Cheap features the engine has for a question: the router's label probabilities, lengths, numbers."""
    probs = row.probs or {}
    out = {f"p_{label}": float(probs.get(label, 0.0)) for label in LABELS}
    out["difficulty"] = difficulty(probs) if probs else 0.5
    out["chars"] = float(len(row.question))
    out["numbers"] = float(len(re.findall(r"\d+(?:\.\d+)?", row.question)))
    out["sentences"] = float(len(re.findall(r"[.?!](?:\s|$)", row.question)))
    return out


def examples(rows: list[Row], mapping: dict[str, str], lam: float) -> list[AllocExample]:
    """Allocator examples: the prompt the router scores a whole question with, and the reward per label."""
    costs = [r.tiers[mapping["hard"]].cost_usd for r in rows if mapping["hard"] in r.tiers and r.tiers[mapping["hard"]].cost_usd]
    mean_cost = sum(costs) / len(costs) if costs else 0.0
    out = []
    for row in rows:
        table = rewards(row, mapping, lam, mean_cost)
        if table is not None:
            out.append(AllocExample(score_messages(row.question, row.question), table, features(row)))
    return out


def split(rows: list[Row], holdout: float) -> tuple[list[Row], list[Row]]:
    """A stable split by question text: a question is always on the same side."""
    def side(r: Row) -> float:
        return int(hashlib.sha256(r.question.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return [r for r in rows if side(r) >= holdout], [r for r in rows if side(r) < holdout]


def counts(rows: list[Row]) -> dict[str, Any]:
    return {"questions": len(rows), "with_every_tier": sum(1 for r in rows if len(r.tiers) >= 3),
            "with_router_rating": sum(1 for r in rows if r.probs)}


def lam_from_budget(ledger: "Ledger", daily_usd: float | None, default: float = 0.5) -> float:
    """The cost weight: what an average cloud answer costs against the daily budget per question asked.

    With a daily cap, lam = (mean cloud cost of a question) x (questions a day) / cap, kept in
    [0.1, 0.9]: a tight budget makes the cloud dearer in the reward. Without one: ``default``."""
    if not daily_usd:
        return default
    per_day, mean = learning.asking_rate(ledger)
    return min(0.9, max(0.1, mean * per_day / daily_usd)) if mean else default


def to_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [{"question": r.question, "difficulty": r.difficulty,
             "tiers": {k: {"correct": v.correct, "cost_usd": v.cost_usd} for k, v in r.tiers.items()}} for r in rows]


def dumps(rows: list[Row]) -> str:
    return json.dumps(to_json(rows))
