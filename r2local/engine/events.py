"""Events the engine emits while it answers; the TUI and CLI subscribe.

Callbacks run on engine threads; a UI must hand them to its own thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from r2local.backends import Message


@dataclass
class Node:
    """One node of the DAG: a plan subtask or a question's part, or the final synthesis or composition."""

    id: int
    text: str
    depends_on: list[int]
    kind: str = "step"  # step, final, whole, part or compose (see vocab.NodeKind)
    difficulty: float | None = None
    tier: str | None = None
    model: str | None = None
    is_local: bool = True
    answer: str = ""
    # queued, running, done, escalated, unsure, failed, cancelled; and, answered on the
    # strongest local tier instead of the cloud: fallback (cloud failed), budget, kept-local (privacy)
    status: str = "queued"
    escalated_from: str | None = None
    reason: str | None = None
    confidence: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    redactions: int = 0  # items replaced by placeholders in what was sent to the cloud
    sent: list[Message] = field(default_factory=list)  # the last prompt sent
    # What the allocator decided from, and how (see records.Decision).
    label_probs: dict[str, float] | None = None
    features: dict[str, float] = field(default_factory=dict)
    decision_source: str | None = None
    decided_tier: str | None = None
    working: str | None = None  # the program behind a program-aided answer
    answer_kind: str | None = None  # number, clock, yes/no, choice, short or text (see answers.answer_kind)
    programs: bool | None = None  # whether the local tier that answered was asked for a program
    route_reason: str | None = None  # a part's own route and why (the parts route rates each part)

    def public(self) -> dict[str, Any]:
        """The fields of ``r2local ask --json``."""
        keys = ("id", "kind", "text", "depends_on", "difficulty", "tier", "model", "answer", "input_tokens")
        keys += ("output_tokens", "cost_usd", "latency_ms", "escalated_from", "reason", "confidence", "status")
        keys += ("redactions", "decision_source", "decided_tier", "working", "features", "answer_kind", "programs")
        keys += ("route_reason",)
        data = asdict(self)
        out = {k: data[k] for k in keys}
        out["cost_usd"] = round(out["cost_usd"], 8)
        out["latency_ms"] = round(out["latency_ms"], 1)
        return out

    def snapshot(self) -> "Node":
        return Node(**{**asdict(self), "depends_on": list(self.depends_on), "sent": list(self.sent),
                       "features": dict(self.features)})


@dataclass(frozen=True)
class QuestionStarted:
    question_id: str
    question: str


@dataclass(frozen=True)
class Notice:
    question_id: str
    text: str


@dataclass(frozen=True)
class PlanReady:
    question_id: str
    nodes: list[Node]
    note: str | None
    route: str | None = None  # whole-local, decompose, whole-cloud (see vocab.Route)
    route_reason: str | None = None


@dataclass(frozen=True)
class NodeUpdate:
    question_id: str
    node: Node


@dataclass(frozen=True)
class AnswerDelta:
    question_id: str
    text: str
    restart: bool = False  # a new attempt (escalation, retry): drop what was shown


Event = QuestionStarted | Notice | PlanReady | NodeUpdate | AnswerDelta
Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    pass
