"""The engine facade: plan -> allocate -> execute -> answer, all in the ledger.

The CLI and the TUI both drive this; it never imports either.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from .budget import Budget, BudgetState
from .config import Settings, load_settings
from .errors import BackendError, Cancelled, ContextOverflow, R2Error
from .events import Listener, Node, NodeUpdate, Notice, PlanReady, QuestionStarted, ignore
from .executor import Executor, Run
from .fetch import Progress
from .gates import Confirm, Consent, Gates
from .ledger import Ledger
from .pool import Pool, Tier
from .privacy import Redactor
from .prompts import FINAL_TEXT
from .router import Decomposer, DifficultyScorer, Plan, ThresholdPolicy, default_thresholds, single_plan


@dataclass
class AskResult:
    question_id: str
    question: str
    answer: str
    status: str
    cost_usd: float
    cloud_share: float
    latency_ms: float
    nodes: list[Node]
    offline: str | None = None
    plan_note: str | None = None
    router_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why the answer node failed, when status is "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "question": self.question,
            "answer": self.answer,
            "status": self.status,
            "cost_usd": round(self.cost_usd, 8),
            "cloud_share": round(self.cloud_share, 4),
            "latency_ms": round(self.latency_ms, 1),
            "offline": self.offline,
            "plan_note": self.plan_note,
            "error": self.error,
            "subtasks": [n.public() for n in self.nodes],
        }


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        pool: Pool | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger or Ledger()
        self.pool = pool or Pool(settings, progress=progress)
        self.budget = Budget(self.ledger, settings.budget)
        gates = Gates(settings.privacy.mode, Redactor(settings.privacy.extra_patterns), self.budget)
        self.executor = Executor(self.pool, self.ledger, settings.executor, gates)

    @classmethod
    def from_config(cls, pool: str | None = None, progress: Progress | None = None) -> "Engine":
        return cls(load_settings(pool=pool), progress=progress)

    def close(self) -> None:
        self.pool.close()
        self.ledger.close()

    def budget_state(self) -> BudgetState:
        """Caps, today's and this month's spend, and what is left (running reservations count)."""
        return self.budget.state()

    # -- policy ------------------------------------------------------------------
    def thresholds(self) -> tuple[list[float], str]:
        """Active thresholds and where they come from: config, calibration or default."""
        n = len(self.pool.tiers)
        if self.settings.router.thresholds is not None:
            return list(self.settings.router.thresholds), "config"
        cal = self.ledger.latest_calibration()
        if cal is not None and len(cal["thresholds"]) == n - 1:
            return cal["thresholds"], "calibration"
        return default_thresholds(n), "default"

    def allowed_tiers(self, local_only: bool) -> tuple[list[Tier], str | None]:
        """Tiers usable now, and a one-line reason when the cloud is off."""
        allowed, reasons = [], []
        for tier in self.pool.tiers:
            why = None if tier.is_local else ("local-only" if local_only else self.pool.unavailable_reason(tier))
            if why is None:
                allowed.append(tier)
            else:
                reasons.append(why)
        if not any(t.is_local for t in allowed):
            raise R2Error("no local tier is configured", fix="add a llamacpp or mlx tier to config.toml")
        offline = None
        if reasons and not any(not t.is_local for t in allowed):
            why = "--local-only" if local_only else reasons[0]
            if local_only and self.settings.privacy.mode == "local-only":
                why = 'local-only ([privacy] mode = "local-only")'
            offline = f"offline: {why}; answering with local models only"
        return allowed, offline

    # -- one question ------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        local_only: bool = False,
        on_event: Listener | None = None,
        cancel: threading.Event | None = None,
        plan: Plan | None = None,
        force_tier: str | None = None,
        confirm: Confirm | None = None,
    ) -> AskResult:
        """Answer one question. Raises Cancelled if ``cancel`` is set meanwhile.

        Args:
            question: the user's question.
            local_only: never contact a non-local tier (also when [privacy] mode = "local-only").
            on_event: receives progress events (on engine threads).
            cancel: set it to stop; running calls end at their next token.
            plan: use this plan instead of asking the decomposer (baselines, tests).
            force_tier: run every node on this tier, without scoring or escalation
                (a refused or failing cloud call still falls back to the strongest local tier).
            confirm: for [privacy] mode = "confirm": called (on an engine thread) with a
                CloudRequest before each cloud call; True sends it. Without it, cloud
                subtasks stay local.
        """
        question = question.strip()
        if not question:
            raise R2Error("the question is empty", fix='ask something, e.g. r2local ask "What is 17 * 23?"')
        emit, cancel = on_event or ignore, cancel or threading.Event()
        mode = self.settings.privacy.mode
        local_only = local_only or mode == "local-only"
        allowed, offline = self._usable(local_only, force_tier)
        qid = self.ledger.start_question(question, local_only=local_only, pool=self.settings.pool)
        emit(QuestionStarted(qid, question))
        if offline:
            emit(Notice(qid, offline))
        elif mode == "confirm" and confirm is None:
            emit(Notice(qid, "privacy: confirm mode and nobody to ask; cloud subtasks stay local"))
        start = time.perf_counter()
        try:
            consent = Consent(qid, confirm)
            result = self._answer(qid, question, allowed, emit, cancel, plan, force_tier is not None, consent)
        except Cancelled:
            self.ledger.finish_question(qid, status="cancelled", latency_ms=_ms(start))
            raise
        except Exception as exc:
            self.ledger.finish_question(qid, status="failed", error=str(exc)[:500], latency_ms=_ms(start))
            raise
        result.offline, result.latency_ms = offline, _ms(start)
        self.ledger.finish_question(
            qid, status=result.status, answer=result.answer, cost_usd=result.cost_usd,
            cloud_share=result.cloud_share, latency_ms=result.latency_ms, error=result.error,
        )
        return result

    def _usable(self, local_only: bool, force_tier: str | None) -> tuple[list[Tier], str | None]:
        allowed, offline = self.allowed_tiers(local_only)
        if force_tier is not None:
            forced = self.pool.tier(force_tier)
            if forced not in allowed:
                raise R2Error(f"tier {force_tier!r} is not usable now ({offline})", fix="set its key, or drop --local-only")
            allowed = [forced]
        return allowed, offline

    def _answer(
        self,
        qid: str,
        question: str,
        allowed: list[Tier],
        emit: Listener,
        cancel: threading.Event,
        plan: Plan | None,
        forced: bool,
        consent: Consent,
    ) -> AskResult:
        router = self.pool.router() if not (plan and forced) else None
        # Routing runs before the DAG, when nothing else computes: let the router
        # use the whole thread budget.
        burst = getattr(router, "burst", None)
        with burst(self.settings.runtime.threads) if burst else nullcontext():
            t0 = time.perf_counter()
            plan = plan or self._plan(qid, question, cancel)
            t_plan = _ms(t0)
            nodes = self._nodes(plan)
            self.ledger.update_question(qid, plan_json=plan.model_dump_json(exclude={"note"}), plan_note=plan.note)
            for n in nodes:
                self.ledger.save_subtask(qid, n.id, kind=n.kind, text=n.text, depends_on=n.depends_on, status=n.status)
            emit(PlanReady(qid, [n.snapshot() for n in nodes], plan.note))
            t1 = time.perf_counter()
            wanted = {} if forced else self._allocate(qid, question, nodes, emit, cancel)
            t_alloc = _ms(t1)
        run = Run(qid, question, {n.id: n for n in nodes}, allowed, cancel, emit, nodes[-1].id, wanted, consent)
        self.executor.run(run)
        answer_node = nodes[-1]
        cost = sum(r["cost_usd"] or 0.0 for r in self.ledger.question(qid)["calls"])
        cloud = sum(1 for n in nodes if not n.is_local)
        status = "failed" if answer_node.status == "failed" else "done"
        return AskResult(
            qid, question, answer_node.answer, status, cost, cloud / len(nodes), 0.0, nodes,
            plan_note=plan.note, router_ms={"plan": t_plan, "allocate": t_alloc},
            error=answer_node.reason if status == "failed" else None,
        )

    def _plan(self, qid: str, question: str, cancel: threading.Event) -> Plan:
        router = self.pool.router()
        r = self.settings.router
        decomposer = Decomposer(router, max_subtasks=r.max_subtasks, max_tokens=r.plan_max_tokens)
        row = dict(question_id=qid, role="plan", tier="router", backend=r.backend, model=r.model, attempt=1)
        started = time.perf_counter()
        try:
            plan, result = decomposer.plan(question, cancel)
        except ContextOverflow as exc:
            self.ledger.record_call(**row, status="error", error=exc.message, error_class="ContextOverflow", latency_ms=_ms(started))
            return single_plan(question, "the question is longer than the router's context; answering it as one subtask")
        except BackendError as exc:
            self.ledger.record_call(**row, status="error", error=exc.message, error_class=type(exc).__name__, latency_ms=_ms(started))
            return single_plan(question, f"the router failed ({type(exc).__name__}); answering the question as one subtask")
        self.ledger.record_call(
            **row, status="ok", resolved_model=result.model, input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens, usage_source=result.usage.source, cost_usd=0.0,
            latency_ms=result.latency_ms, ttft_ms=result.ttft_ms,
        )
        return plan

    @staticmethod
    def _nodes(plan: Plan) -> list[Node]:
        nodes = [Node(s.id, s.text, list(s.depends_on)) for s in plan.order()]
        if len(nodes) > 1:
            nodes.append(Node(len(nodes) + 1, FINAL_TEXT, [n.id for n in nodes], kind="final"))
        return nodes

    def _allocate(
        self, qid: str, question: str, nodes: list[Node], emit: Listener, cancel: threading.Event
    ) -> dict[int, int]:
        """Score each node (one forward pass each) and map scores to tier indexes."""
        policy = ThresholdPolicy(self.thresholds()[0])
        scorer = DifficultyScorer(self.pool.router())
        r = self.settings.router
        wanted: dict[int, int] = {}
        for node in nodes:
            if cancel.is_set():
                raise Cancelled("cancelled")
            row = dict(question_id=qid, subtask_id=node.id, role="allocate", tier="router", backend=r.backend, model=r.model)
            try:
                score = scorer.score(question, node.text)
            except ContextOverflow as exc:
                # Too long to rate: send it as high as policy allows.
                self.ledger.record_call(**row, status="error", error=exc.message, error_class="ContextOverflow", attempt=1)
                wanted[node.id] = len(self.pool.tiers) - 1
                continue
            self.ledger.record_call(
                **row, status="ok", input_tokens=score.input_tokens, output_tokens=0, cost_usd=0.0,
                latency_ms=score.latency_ms, attempt=1,
            )
            node.difficulty = round(score.difficulty, 4)
            self.ledger.save_subtask(qid, node.id, difficulty=node.difficulty)
            emit(NodeUpdate(qid, node.snapshot()))
            wanted[node.id] = policy.tier_index(score.difficulty)
        return wanted


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
