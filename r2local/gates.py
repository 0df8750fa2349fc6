"""The gates every cloud call passes, in order: privacy mode, redaction, budget.

``Gates.admit`` runs right before each cloud attempt and either returns a
``Ticket`` (the exact messages that may leave, how to restore the reply, the
cost bound) or raises ``CloudRefused`` and the subtask runs locally. Local
tiers pass untouched. ``Gates.open`` writes the call's ledger row before the
call, reserving the cost bound against the budget in the same transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Callable

from r2local.backends import Completion, Message
from r2local.budget import Budget
from r2local.errors import PrivacyRefused
from r2local.pool import Tier
from r2local.privacy import Redaction, Redactor, StreamRestorer

PRIVACY_MODES = ("local-only", "confirm", "auto")


@dataclass(frozen=True)
class CloudRequest:
    """What a ``confirm`` callback is asked about: exactly what would leave, and its cost bound."""

    question_id: str
    subtask_id: int
    tier: str
    model: str
    base_url: str | None
    messages: list[Message]  # redacted: the exact text that would be sent
    redactions: dict[str, int]  # kind -> items replaced, e.g. {"EMAIL": 2}
    estimated_usd: float  # upper bound of this call's cost

    @property
    def redaction_count(self) -> int:
        return sum(self.redactions.values())

    def text(self) -> str:
        return "\n\n".join(f"[{m['role']}]\n{m.get('content', '')}" for m in self.messages)


Confirm = Callable[[CloudRequest], bool]


@dataclass
class Consent:
    """One question's confirm callback and the answers it gave (asked once per
    subtask, tier and text; retries of the same call do not ask again)."""

    question_id: str = ""
    confirm: Confirm | None = None
    decided: dict[str, bool] = field(default_factory=dict)


@dataclass
class Ticket:
    """Admission for one call: what to send, and how to put the reply back."""

    messages: list[Message]
    cloud: bool
    redaction: Redaction = field(default_factory=Redaction)
    estimate: float = 0.0
    pieces: int = 0  # text pieces received (a cut stream is charged for them)
    ran: bool = False  # the backend was called (not answered from the call cache)

    def stream(self, emit: Callable[[str], None] | None) -> tuple[Callable[[str], None], Callable[[], None]]:
        """An ``on_text`` that counts pieces and restores placeholders before ``emit``; and its flush."""
        restorer = StreamRestorer(self.redaction, emit) if emit is not None else None

        def on_text(text: str) -> None:
            self.pieces += 1
            if restorer is not None:
                restorer.feed(text)

        return on_text, (restorer.flush if restorer is not None else (lambda: None))

    def restore(self, result: Completion) -> Completion:
        return dataclasses.replace(result, text=self.redaction.restore(result.text)) if self.redaction.total else result


class Gates:
    def __init__(self, mode: str = "auto", redactor: Redactor | None = None, budget: Budget | None = None) -> None:
        if mode not in PRIVACY_MODES:
            raise ValueError(f"unknown privacy mode {mode!r}")
        self.mode = mode
        self.redactor = redactor or Redactor()
        self.budget = budget
        self._asking = threading.Lock()  # one confirm question at a time, whoever asks

    def admit(self, consent: Consent, subtask_id: int, tier: Tier, messages: list[Message]) -> Ticket:
        """Privacy mode, then redaction, then the budget; raises CloudRefused to keep the call local."""
        if tier.is_local:
            return Ticket(messages, cloud=False)
        if self.mode == "local-only":
            raise PrivacyRefused("privacy: mode is local-only", fix='set [privacy] mode = "auto" or "confirm"')
        sent, redaction = self.redactor.messages(messages)
        estimate = self.budget.estimate(tier, sent) if self.budget is not None else 0.0
        if self.budget is not None:
            self.budget.check(estimate)  # never ask the user about a call the budget will refuse
        if self.mode == "confirm":
            request = CloudRequest(
                consent.question_id, subtask_id, tier.name, tier.model, tier.config.base_url, sent,
                dict(redaction.counts), estimate,
            )
            self._confirm(consent, request)
        return Ticket(sent, cloud=True, redaction=redaction, estimate=estimate)

    def _confirm(self, consent: Consent, request: CloudRequest) -> None:
        if consent.confirm is None:
            raise PrivacyRefused(
                "privacy: confirm mode and nobody to ask (no terminal, no app)",
                fix="run it in a terminal or the app, or set [privacy] mode = \"auto\"",
            )
        digest = hashlib.sha256(json.dumps([request.subtask_id, request.tier, request.messages]).encode()).hexdigest()
        with self._asking:
            if digest not in consent.decided:
                try:
                    consent.decided[digest] = bool(consent.confirm(request))
                except Exception as exc:  # a broken prompt must not send anything
                    consent.decided[digest] = False
                    raise PrivacyRefused(f"privacy: could not ask ({type(exc).__name__}); kept local") from None
        if not consent.decided[digest]:
            raise PrivacyRefused(f"privacy: sending to {request.tier!r} was declined")

    def admission(self, ticket: Ticket) -> Callable[[dict[str, float]], None] | None:
        """The budget check a cloud call's row runs in its opening transaction (it
        reserves ``ticket.estimate``); None for local calls or without caps."""
        if not ticket.cloud or self.budget is None:
            return None
        return self.budget.admit(ticket.estimate)
