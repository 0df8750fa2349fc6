"""What an app needs from the engine, typed: no settings digging, no tier-name
literals, no SQL on the caller's side. The TUI talks to this, never to the
engine's parts; every method that reads the ledger or the keyring is meant to
be called off the UI thread (the app's workers do).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from r2local import keys
from r2local.backends import backend_class
from r2local.engine.conversation import Context
from r2local.engine.core import AskResult, Engine
from r2local.engine.events import Listener
from r2local.gates import Confirm


@dataclass(frozen=True)
class TierView:
    name: str
    model: str
    is_local: bool
    needs_key: bool


@dataclass(frozen=True)
class Missing:
    """What keeps the app from running fully: model files not here, a cloud tier without a key."""

    models: list[tuple[str, int | None]]  # (manifest name, size in bytes)
    key_tier: str | None
    key_problem: str | None = None

    @property
    def anything(self) -> bool:
        return bool(self.models or self.key_tier)


@dataclass(frozen=True)
class Meter:
    """The status bar's facts."""

    today_usd: float
    month_usd: float
    daily_budget: float | None
    monthly_budget: float | None
    key: str  # e.g. "key …WXYZ (keyring)" or "no key"
    key_set: bool


class Facade:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tiers = [TierView(t.name, t.model, t.is_local, backend_class(t.backend).uses_key and t.config.needs_key)
                      for t in engine.pool.tiers]

    # -- settings, typed -----------------------------------------------------------
    @property
    def privacy_mode(self) -> str:
        return self.engine.settings.privacy.mode

    @property
    def confidence_bar(self) -> float:
        """Local answers whose samples agree less than this escalate, or are kept and marked."""
        return self.engine.route_policy().agree_below or self.engine.settings.executor.agree_below

    @property
    def budget_caps(self) -> tuple[float | None, float | None]:
        b = self.engine.settings.budget
        return b.daily_usd, b.monthly_usd

    def tier_is_local(self, name: str | None) -> bool:
        """Whether a tier (by name) stays on this machine; an unknown or missing name counts as local."""
        return next((t.is_local for t in self.tiers if t.name == name), True)

    @property
    def cloud_tier(self) -> str | None:
        """The top tier that needs a key (the one the key dialog is for)."""
        clouds = [t.name for t in self.tiers if t.needs_key]
        return clouds[-1] if clouds else None

    # -- reads (off the UI thread) ---------------------------------------------------------
    def meter(self, today: date | None = None) -> Meter:
        spend = self.engine.ledger.spend(days=1, today=today)
        tier = self.cloud_tier
        st = keys.status(tier) if tier else None
        key = "no cloud tier" if st is None else st.short()
        daily, monthly = self.budget_caps
        return Meter(spend["today_usd"], spend["month_usd"], daily, monthly, key, bool(st and st.is_set))

    def spend(self, days: int, today: date | None = None) -> dict[str, Any]:
        return self.engine.ledger.spend(days=days, today=today)

    def questions(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.engine.ledger.questions(limit)

    def question(self, qid: str) -> dict[str, Any] | None:
        return self.engine.ledger.question(qid)

    def missing(self) -> Missing:
        """Model files not fetched yet, and a cloud tier without a key."""
        from r2local.fetch import local_path
        from r2local.manifests import lookup

        settings, manifests = self.engine.settings, self.engine.pool.manifests
        refs = [settings.router.model] + [t.model for t in settings.tiers if backend_class(t.backend).loads_file]
        models = []
        for ref in dict.fromkeys(refs):
            if ref in manifests:
                manifest = lookup(ref, manifests)
                if local_path(manifest) is None:
                    models.append((ref, manifest.expected_size))
        key_tier, problem = None, None
        if self.cloud_tier:
            st = keys.status(self.cloud_tier)
            if not st.is_set:
                key_tier, problem = self.cloud_tier, st.problem
        return Missing(models, key_tier, problem)

    # -- asking ----------------------------------------------------------------------------
    def ask(self, question: str, *, local_only: bool, on_event: Listener, cancel: threading.Event,
            confirm: Confirm | None = None, context: Context | None = None) -> AskResult:
        return self.engine.ask(question, local_only=local_only, on_event=on_event, cancel=cancel, confirm=confirm,
                               context=context)

    # -- conversations (off the UI thread) ---------------------------------------------------
    def turn_context(self, conversation_id: str | None, local_only: bool) -> Context:
        """What the next turn continues: the given conversation, or a new one."""
        from r2local.engine import conversation

        if conversation_id is None:
            return conversation.start(self.engine.ledger, self.engine.settings.pool, local_only)
        return conversation.load(self.engine.ledger, conversation_id)

    def conversations(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.engine.ledger.conversations(limit)

    def conversation_questions(self, conversation_id: str) -> list[dict[str, Any]]:
        """A conversation's questions, each with its subtasks and calls, first turn first."""
        ledger = self.engine.ledger
        return [q for q in (ledger.question(t["id"]) for t in ledger.turns(conversation_id)) if q is not None]

    def shadow(self, result: AskResult, *, local_only: bool, confirm: Confirm | None = None) -> Any:
        return self.engine.shadow(result, local_only=local_only, confirm=confirm)

    def feedback(self, question_id: str, verdict: str, subtask_id: int | None = None, tier: str | None = None) -> None:
        """Mark an answer (subtask_id None) or one subtask good / bad / needed-the-cloud / did-not-need-it."""
        from r2local.store.records import Feedback
        from r2local.vocab import Verdict

        if subtask_id is None and tier is None:  # the answer: the tier of the node that gave it
            q = self.engine.ledger.question(question_id)
            tier = q["subtasks"][-1]["tier"] if q and q["subtasks"] else None
        self.engine.ledger.add_feedback(Feedback(question_id, Verdict(verdict), subtask_id=subtask_id, tier=tier))

    # -- training (minutes of PyTorch: call from a worker) -------------------------------------
    def train_status_text(self) -> str:
        from r2local.train.summary import status, status_text

        return status_text(status(self.engine.settings))

    def train(self, steps: tuple[int, int], progress: Any, cancel: threading.Event) -> dict[str, Any]:
        """Train a candidate adapter (not adopted: the caller decides) on half the thread budget."""
        from r2local.train.run import TrainArgs, run

        budget = self.engine.pool.budget
        threads = max(1, budget.total // 2)  # the rest stays free for answering questions meanwhile
        with budget.hold(threads, cancel):
            report = run(self.engine.settings, TrainArgs(sft_steps=steps[0], grpo_steps=steps[1], threads=threads,
                                                          adopt=False), progress=progress, cancel=cancel)
        return report.to_json()

    def decide_adapter(self, adapter_id: str, adopt: bool) -> str:
        """Adopt a trained version (the router switches now) or discard it."""
        from r2local.store import adapters
        from r2local.train.run import adopt as adopt_version

        if not adopt:
            adapters.reject(self.engine.ledger, adapter_id)
            return f"{adapter_id} discarded; the router is unchanged"
        row = adopt_version(self.engine.settings, adapter_id)
        self.engine.use_adapter(row.id, row.path)
        return f"{row.id} adopted: the router uses it from the next question"

    def close(self) -> None:
        self.engine.close()
