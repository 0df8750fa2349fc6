"""Daily and monthly caps on cloud spend, checked before every cloud call.

Before a call, an upper bound of its cost is reserved in the call's own ledger
row; afterwards the actual cost replaces it. The check and the reservation are
one transaction (see ``Ledger.open_call``), so concurrent calls, from threads
or from two processes sharing the ledger, cannot jointly overshoot a cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from r2local.backends import Message
from r2local.config import BudgetSection
from r2local.errors import BudgetExceeded
from r2local.store.ledger import Ledger
from r2local.pool import Tier

# A byte-level tokenizer (GPT-style BPE, SentencePiece with byte fallback) never
# makes more tokens than the text has UTF-8 bytes; chat templates add a few
# special tokens per message and to prime the reply. A bound, not a guess.
TEMPLATE_TOKENS_PER_MESSAGE = 8
TEMPLATE_TOKENS_PER_REPLY = 8


def prompt_token_bound(messages: list[Message]) -> int:
    """An upper bound on the prompt tokens any tokenizer makes of ``messages``."""
    body = sum(len(m.get("content", "").encode("utf-8")) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages)
    return body + TEMPLATE_TOKENS_PER_REPLY


@dataclass(frozen=True)
class BudgetState:
    """Caps and what counts against them now (running reservations included)."""

    daily_usd: float | None
    monthly_usd: float | None
    today_usd: float
    month_usd: float
    reserved_usd: float

    @property
    def daily_left(self) -> float | None:
        return None if self.daily_usd is None else self.daily_usd - self.today_usd

    @property
    def monthly_left(self) -> float | None:
        return None if self.monthly_usd is None else self.monthly_usd - self.month_usd

    def refusal(self, estimate: float) -> str | None:
        """Why a call that may cost ``estimate`` must not start, or None."""
        for name, cap, left in (("daily", self.daily_usd, self.daily_left), ("monthly", self.monthly_usd, self.monthly_left)):
            if cap is not None and left is not None and estimate > left + 1e-12:
                return (
                    f"budget: this call may cost up to ${estimate:.6f} but ${max(left, 0.0):.6f} "
                    f"of the {name} budget (${cap:.2f}) is left"
                )
        return None

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 8)

        return {
            "daily_usd": self.daily_usd, "monthly_usd": self.monthly_usd,
            "today_usd": r(self.today_usd), "month_usd": r(self.month_usd), "reserved_usd": r(self.reserved_usd),
            "daily_left_usd": r(self.daily_left), "monthly_left_usd": r(self.monthly_left),
        }


class Budget:
    def __init__(self, ledger: Ledger, section: BudgetSection | None = None) -> None:
        self.ledger = ledger
        self.section = section or BudgetSection()

    @property
    def capped(self) -> bool:
        return self.section.daily_usd is not None or self.section.monthly_usd is not None

    @staticmethod
    def estimate(tier: Tier, messages: list[Message]) -> float:
        """Upper bound of one call's cost: prompt token bound x input price + max_tokens x output price."""
        return tier.cost(input_tokens=prompt_token_bound(messages), output_tokens=tier.config.max_tokens)

    def state(self) -> BudgetState:
        return self._state(self.ledger.charged())

    def _state(self, charged: dict[str, float]) -> BudgetState:
        s = self.section
        return BudgetState(s.daily_usd, s.monthly_usd, charged["today"], charged["month"], charged["reserved"])

    def check(self, estimate: float) -> None:
        """Raise BudgetExceeded if a call of ``estimate`` would not fit now (no reservation)."""
        if self.capped:
            self._refuse_if_over(self.state(), estimate)

    def admit(self, estimate: float) -> Callable[[dict[str, float]], None] | None:
        """The check ``Ledger.open_call`` runs inside its transaction, or None when uncapped."""
        if not self.capped:
            return None
        return lambda charged: self._refuse_if_over(self._state(charged), estimate)

    @staticmethod
    def _refuse_if_over(state: BudgetState, estimate: float) -> None:
        why = state.refusal(estimate)
        if why is not None:
            raise BudgetExceeded(why, fix="raise [budget] daily_usd / monthly_usd in config.toml, or wait")
