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

from r2local.engine.answers import answer_kind, read_answer, same
from r2local.engine.events import Node, ignore
from r2local.engine.executor import Executor, Run
from r2local.engine.prompts import single_messages
from r2local.errors import BackendError, CloudRefused
from r2local.gates import Confirm, Consent
from r2local.store.records import Feedback
from r2local.vocab import FeedbackSource, NodeKind, QuestionStatus, Role, Status, Verdict

if TYPE_CHECKING:
    from r2local.config import LearningSection
    from r2local.pool import Tier
    from r2local.store.ledger import Ledger


@dataclass(frozen=True)
class ShadowOutcome:
    question_id: str
    tier: str  # the tier that answered
    upper: str  # the tier that shadowed it
    agreed: bool
    cost_usd: float


def pick_upper(nodes: list[Node], status: str, allowed: list["Tier"], learning: "LearningSection",
               rng: random.Random) -> "Tier | None":
    """The tier to shadow a one-node answer on, drawn with the configured shares, or None.

    Args:
        nodes: the answered question's nodes (only a single local answer is shadowed).
        status: the question's status.
        allowed: the tiers the question could use (its availability, computed once when it was asked).
        learning: the [learning] shares.
        rng: draws whether this one is shadowed.
    """
    if len(nodes) != 1 or status != QuestionStatus.DONE:
        return None
    node = nodes[0]
    if not node.is_local or node.status not in (Status.DONE, Status.UNSURE) or node.kind == NodeKind.WHOLE:
        return None
    here = next((t for t in allowed if t.name == node.tier), None)
    above = [t for t in allowed if here is not None and t.index > here.index]
    if not above:
        return None
    upper = above[0]
    share = learning.shadow_local if upper.is_local else learning.shadow_cloud
    return upper if rng.random() < share else None


def shadow(executor: Executor, ledger: "Ledger", question_id: str, question: str, node: Node, upper: "Tier",
           confirm: Confirm | None = None) -> ShadowOutcome | None:
    """Answer ``question`` on ``upper`` too and record whether it agrees with ``node``'s answer.

    The call is the executor's (gates, retries, the ledger row with role ``shadow``, a cut
    stream charged for what arrived); a refused or failing call leaves no label."""
    scratch = Node(node.id, question, [], kind=NodeKind.WHOLE)  # collects the call's tokens and cost
    run = Run(question_id, question, {node.id: scratch}, [upper], threading.Event(), ignore, answer_node=-1,
              consent=Consent(question_id, confirm))
    try:
        reply = executor.call(run, scratch, upper, single_messages(question), node.tier, role=Role.SHADOW)
    except (BackendError, CloudRefused):
        return None
    kind = answer_kind(question)
    agreed = same(read_answer(node.answer, kind, question), read_answer(reply.text, kind, question))
    ledger.add_feedback(Feedback(question_id, Verdict.GOOD if agreed else Verdict.BAD,
                                 FeedbackSource.SHADOW, node.id, node.tier, f"vs {upper.name}"))
    return ShadowOutcome(question_id, node.tier, upper.name, agreed, scratch.cost_usd)
