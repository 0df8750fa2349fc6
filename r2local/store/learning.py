"""The ledger's reads for learning: graded answers, the router's ratings,
escalations, plans that led to right answers, how much is asked. Calibration,
labels and training read the ledger only through these (the SQL stays in
``r2local.store``); each returns small typed rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from r2local.store.ledger import Ledger


@dataclass(frozen=True)
class Graded:
    """A verdict on a whole answer (``feedback`` without a subtask) and what the question cost."""

    question_id: str
    verdict: str
    tier: str | None
    source: str
    question: str
    strategy: str | None
    route: str | None
    cost_usd: float  # paid plus what the call cache saved: the cost as if uncached
    confidence: float | None  # the answer node's agreement share
    features: str | None  # the answer node's features (JSON)
    reason: str | None = None  # why the answer node was not kept as it stood, if it was not


@dataclass(frozen=True)
class Rating:
    """One rating of a whole question by the router: its label probabilities (JSON)."""

    question: str
    output: str


@dataclass(frozen=True)
class Escalated:
    """A one-node question whose node climbed from a cheaper tier and was answered on ``tier``."""

    question_id: str
    question: str
    answer: str | None
    tier: str


@dataclass(frozen=True)
class CallOutput:
    """What one call of a question returned."""

    role: str
    output: str | None
    status: str
    sample: int | None
    temperature: float | None


@dataclass(frozen=True)
class RightPlan:
    """A question whose decomposed answer was judged right, with its plan (JSON) and cost."""

    question: str
    plan_json: str
    cost_usd: float


# A follow-up turn (turn > 1) was answered with earlier turns in its prompts: read alone, its
# question is not what was answered, so no label, rating or plan is drawn from it.
STANDALONE = "coalesce(q.turn, 1) <= 1"


def graded(ledger: Ledger) -> list[Graded]:
    """Every verdict on a whole answer, oldest first."""
    rows = ledger._query(
        "select f.question_id, f.verdict, f.tier, f.source, q.question, q.strategy, q.route, "
        "(select coalesce(sum(coalesce(c.cost_usd, 0) + coalesce(c.saved_usd, 0)), 0) from calls c "
        " where c.question_id = q.id) as cost, "
        "s.confidence as conf, s.features as feats, s.reason "
        "from feedback f join questions q on q.id = f.question_id "
        # the answer node: the question's last subtask, found once for the three columns read from it
        "left join subtasks s on s.question_id = q.id "
        " and s.subtask_id = (select max(t.subtask_id) from subtasks t where t.question_id = q.id) "
        "where f.subtask_id is null "
        f"and {STANDALONE} order by f.id"
    )
    return [Graded(r["question_id"], r["verdict"], r["tier"], r["source"], r["question"], r["strategy"], r["route"],
                   r["cost"] or 0.0, r["conf"], r["feats"], r["reason"]) for r in rows]


def ratings(ledger: Ledger, adapter: str | None, any_adapter: bool) -> list[Rating]:
    """The router's whole-question ratings, oldest first: by the router with ``adapter``
    (None: no adapter), or by any router when ``any_adapter``."""
    rows = ledger._query(
        "select q.question, c.output from calls c join questions q on q.id = c.question_id "
        "where c.role in ('route', 'allocate') and c.status = 'ok' and c.output is not null "
        # a part's rating (the parts route) is a route row with its subtask: not the whole question's
        "and ((c.role = 'route' and c.subtask_id is null) "
        "     or (select count(*) from subtasks s where s.question_id = q.id) = 1) "
        f"and {STANDALONE} "
        + ("" if any_adapter else "and c.adapter is ? ") + "order by c.rowid",
        () if any_adapter else (adapter,),
    )
    return [Rating(r["question"], r["output"]) for r in rows]


def escalated_from(ledger: Ledger, first: str) -> list[Escalated]:
    """One-node questions, done, whose node climbed from tier ``first``."""
    rows = ledger._query(
        "select q.id, q.question, s.answer, s.tier from questions q join subtasks s on s.question_id = q.id "
        f"where s.escalated_from = ? and s.status = 'escalated' and q.status = 'done' and {STANDALONE} "
        "and (select count(*) from subtasks t where t.question_id = q.id) = 1", (first,),
    )
    return [Escalated(r["id"], r["question"], r["answer"], r["tier"]) for r in rows]


def call_outputs(ledger: Ledger, question_id: str, tier: str | None = None) -> list[CallOutput]:
    """A question's calls (on ``tier`` when given), in the order they were made."""
    rows = ledger._query(
        "select role, output, status, sample, temperature from calls where question_id = ? "
        + ("and tier = ? " if tier is not None else "") + "order by rowid",
        (question_id, tier) if tier is not None else (question_id,),
    )
    return [CallOutput(r["role"], r["output"], r["status"], r["sample"], r["temperature"]) for r in rows]


def right_plans(ledger: Ledger) -> list[RightPlan]:
    """Questions with two steps or more whose answer was judged right (or the cloud not needed)."""
    rows = ledger._query(
        "select q.question, q.plan_json, q.cost_usd from questions q join feedback f on f.question_id = q.id "
        "where f.subtask_id is null and f.verdict in ('good', 'did-not-need-it') and q.plan_json is not null "
        f"and {STANDALONE} "
        "and (select count(*) from subtasks s where s.question_id = q.id and s.kind = 'step') >= 2")
    return [RightPlan(r["question"], r["plan_json"], r["cost_usd"] or 0.0) for r in rows]


def done_questions(ledger: Ledger, strategy: str) -> list[tuple[str, str]]:
    """(id, question) of the questions answered with ``strategy``, newest first."""
    rows = ledger._query("select id, question from questions where strategy = ? and status = 'done' "
                         "order by rowid desc", (strategy,))
    return [(r["id"], r["question"]) for r in rows]


def asking_rate(ledger: Ledger) -> tuple[float, float]:
    """Questions asked per active day over the last 30 days, and the mean cost of a paid question."""
    rows = ledger._query(
        "select count(*) as n, count(distinct date(created_at)) as days from questions "
        "where created_at >= datetime('now', '-30 days')")
    cost = ledger._query("select avg(cost_usd) as c from questions where cost_usd > 0")
    return rows[0]["n"] / max(1, rows[0]["days"]), cost[0]["c"] or 0.0


def feedback_by_source(ledger: Ledger) -> dict[str, int]:
    """How many verdicts each source gave (user, bench, shadow, ...)."""
    return {r["source"]: r["n"] for r in ledger._query("select source, count(*) as n from feedback group by source")}
