"""Every ledger row is built here, from typed records: the call sites say what
happened, this module says which columns that fills. Nothing else spells out
column names for ``calls``, ``subtasks`` or ``feedback``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from r2local.backends import Completion
from r2local.engine.events import Node
from r2local.vocab import CallStatus, DecisionSource, FeedbackSource, Role, Verdict


def _drop_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


@dataclass(frozen=True)
class CallRecord:
    """What a ``calls`` row says when it opens, before the call starts."""

    role: Role
    tier: str  # a tier name, or "router"
    backend: str
    model: str
    question_id: str | None = None
    subtask_id: int | None = None
    escalated_from: str | None = None
    attempt: int = 1
    adapter: str | None = None
    prompt_version: str | None = None
    temperature: float | None = None
    sample: int | None = None
    reserved_usd: float | None = None  # the budget's cost bound held while it runs
    redactions: int | None = None

    def row(self) -> dict[str, Any]:
        return _drop_none({
            "question_id": self.question_id, "subtask_id": self.subtask_id, "role": self.role, "tier": self.tier,
            "backend": self.backend, "model": self.model, "escalated_from": self.escalated_from,
            "attempt": self.attempt, "adapter": self.adapter, "prompt_version": self.prompt_version,
            "temperature": self.temperature, "sample": self.sample, "reserved_usd": self.reserved_usd,
            "redactions": self.redactions,
        })


@dataclass(frozen=True)
class CallEnd:
    """How a call closed."""

    status: CallStatus
    latency_ms: float | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_source: str | None = None
    resolved_model: str | None = None
    ttft_ms: float | None = None
    output: str | None = None
    error: str | None = None
    error_class: str | None = None
    cached: int | None = None
    saved_usd: float | None = None

    @classmethod
    def ok(cls, result: Completion, cost_usd: float) -> "CallEnd":
        return cls(
            CallStatus.OK, result.latency_ms, cost_usd, result.usage.input_tokens, result.usage.output_tokens,
            result.usage.source, result.model, result.ttft_ms, output_of(result),
        )

    @classmethod
    def from_cache(cls, result: Completion, saved_usd: float) -> "CallEnd":
        """A call the call cache answered: nothing paid, ``saved_usd`` not spent."""
        ok = cls.ok(result, 0.0)
        return cls(**{**ok.__dict__, "cached": 1, "saved_usd": saved_usd})

    @classmethod
    def failed(cls, exc: BaseException, latency_ms: float, **extra: Any) -> "CallEnd":
        from r2local.errors import Cancelled, R2Error

        if isinstance(exc, Cancelled):
            return cls(CallStatus.CANCELLED, latency_ms, error_class="Cancelled")
        message = exc.message if isinstance(exc, R2Error) else f"{type(exc).__name__}: {exc}"[:500]
        fields = {"error": message, "error_class": type(exc).__name__, "cost_usd": 0.0, **extra}
        return cls(CallStatus.ERROR, latency_ms, **fields)

    def row(self) -> dict[str, Any]:
        return _drop_none({k: v for k, v in self.__dict__.items()})


def output_of(result: Completion) -> str:
    """What a calls row keeps of a result: the text, or the label probabilities of a scoring call."""
    if result.probs is not None:
        return json.dumps({k: round(v, 6) for k, v in result.probs.items()})
    return result.text


def subtask_row(question_id: str, node: Node) -> dict[str, Any]:
    """The whole ``subtasks`` row for a node, as it stands now."""
    return {
        "question_id": question_id, "subtask_id": node.id, "kind": node.kind, "text": node.text,
        "depends_on": json.dumps(node.depends_on), "difficulty": node.difficulty, "tier": node.tier,
        "model": node.model, "answer": node.answer, "status": node.status, "escalated_from": node.escalated_from,
        "reason": node.reason, "confidence": node.confidence, "input_tokens": node.input_tokens,
        "output_tokens": node.output_tokens, "cost_usd": node.cost_usd, "latency_ms": node.latency_ms,
        "prompt_json": json.dumps(node.sent) if node.sent else None,
        "label_probs": json.dumps(node.label_probs) if node.label_probs else None,
        "features": json.dumps(node.features) if node.features else None,
        "decision_source": node.decision_source, "decided_tier": node.decided_tier, "working": node.working,
        "answer_kind": node.answer_kind, "programs": None if node.programs is None else int(node.programs),
        "route_reason": node.route_reason,
    }


@dataclass(frozen=True)
class QuestionEnd:
    """How a question finished (``questions`` row)."""

    status: str
    latency_ms: float
    answer: str | None = None
    cost_usd: float | None = None
    cloud_share: float | None = None
    error: str | None = None

    def row(self) -> dict[str, Any]:
        return _drop_none(self.__dict__.copy())


@dataclass(frozen=True)
class Feedback:
    """A verdict on a question's answer (``subtask_id`` None) or on one subtask."""

    question_id: str
    verdict: Verdict
    source: FeedbackSource = FeedbackSource.USER
    subtask_id: int | None = None
    tier: str | None = None  # whose answer the verdict is about, when known
    note: str | None = None

    def row(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "subtask_id": self.subtask_id, "tier": self.tier,
                "verdict": self.verdict, "source": self.source, "note": self.note}


@dataclass(frozen=True)
class Decision:
    """The allocator's choice for one node: a tier, and what it was based on."""

    tier: int  # index into the pool's tiers
    source: DecisionSource = DecisionSource.POLICY
    score: float | None = None  # difficulty in [0, 1]
    probs: dict[str, float] | None = None  # label probabilities of the scorer
    features: dict[str, float] = field(default_factory=dict)
    escalate: bool = True  # whether the executor may move it up on a weak answer
    ceiling: int | None = None  # the highest tier index it may climb to (None: any)
    escalate_to: int | None = None  # where a weak answer goes (None: the next tier up)
    agree_below: float | None = None  # agreement threshold for it (None: [executor] agree_below)
    whole_to: int | None = None  # if a node of the plan ends unsure or failed, the whole question goes here
    reason: str | None = None  # why, where a node has its own route (a part of a compound question)
