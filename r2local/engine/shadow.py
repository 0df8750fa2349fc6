"""Shadow runs: a share of locally answered questions is also answered one tier
up, for learning only. Whether the two answers agree says whether the cheaper
tier sufficed: a free label, written as ``feedback`` (source ``shadow``).

A shadow call is a model call like any other: it passes the gates (privacy,
redaction, budget; in confirm mode somebody is asked), has its ledger row
(role ``shadow``) and shows in ``r2local spend`` as its own line. The user
already has the answer; a shadow run never changes it.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from r2local.backends import complete
from r2local.errors import BackendError, CloudRefused
from r2local.gates import Confirm, Consent
from r2local.engine.prompts import prompt_version, single_messages
from r2local.engine.recorder import CallSpec
from r2local.store.records import CallRecord, Feedback
from r2local.engine.answers import answer_kind, read_answer, same
from r2local.vocab import FeedbackSource, NodeKind, Role, Status, Verdict

if TYPE_CHECKING:
    from r2local.engine.core import AskResult, Engine
    from r2local.pool import Tier


@dataclass(frozen=True)
class ShadowOutcome:
    question_id: str
    tier: str  # the tier that answered
    upper: str  # the tier that shadowed it
    agreed: bool
    cost_usd: float


def pick_upper(engine: "Engine", result: "AskResult", rng: random.Random, local_only: bool) -> "Tier | None":
    """The tier to shadow ``result`` on, drawn with the configured shares, or None."""
    if len(result.nodes) != 1 or result.status != "done":
        return None
    node = result.nodes[0]
    if not node.is_local or node.status not in (Status.DONE, Status.UNSURE) or node.kind == NodeKind.WHOLE:
        return None
    allowed, _ = engine.allowed_tiers(local_only or engine.settings.privacy.mode == "local-only")
    here = engine.pool.tier(node.tier)
    above = [t for t in allowed if t.index > here.index]
    if not above:
        return None
    upper = above[0]
    share = engine.settings.learning.shadow_local if upper.is_local else engine.settings.learning.shadow_cloud
    return upper if rng.random() < share else None


def shadow(engine: "Engine", result: "AskResult", upper: "Tier", confirm: Confirm | None = None) -> ShadowOutcome | None:
    """Answer ``result``'s question on ``upper`` too and record whether the two agree."""
    node = result.nodes[0]
    messages = single_messages(result.question)
    consent = Consent(result.question_id, confirm)
    try:
        ticket = engine.gates.admit(consent, node.id, upper, messages)
    except CloudRefused:
        return None  # the gates said no: no shadow, no label
    record = CallRecord(Role.SHADOW, upper.name, upper.backend, upper.model, result.question_id, node.id,
                        node.tier, prompt_version=prompt_version(messages), temperature=0.0,
                        reserved_usd=ticket.estimate if ticket.cloud else None,
                        redactions=ticket.redaction.total if ticket.cloud else None)
    spec = CallSpec(record, ticket.messages, {"max_tokens": upper.config.max_tokens, "temperature": 0.0},
                    engine.gates.admission(ticket), upper.cost)
    backend = engine.pool.backend(upper)
    try:
        reply = engine.recorder.call(spec, lambda: ticket.restore(complete(
            backend, ticket.messages, max_tokens=upper.config.max_tokens, cancel=threading.Event())))
    except (BackendError, CloudRefused):
        return None
    kind = answer_kind(result.question)
    agreed = same(read_answer(node.answer, kind, result.question), read_answer(reply.text, kind, result.question))
    engine.ledger.add_feedback(Feedback(result.question_id, Verdict.GOOD if agreed else Verdict.BAD,
                                        FeedbackSource.SHADOW, node.id, node.tier, f"vs {upper.name}"))
    return ShadowOutcome(result.question_id, node.tier, upper.name, agreed, upper.cost(reply.usage))
