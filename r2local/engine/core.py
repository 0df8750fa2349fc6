"""The engine facade: plan -> allocate -> execute -> answer, all in the ledger.

The CLI and the TUI both drive this; it never imports either. What to run is
decided by a strategy (a planner and an allocator, see ``routing``); how every
call is made (gates, then the recorder's ledger row, then the backend) is the
engine's, whatever the strategy.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from r2local.budget import Budget, BudgetState
from r2local.config import Settings, load_settings
from r2local.errors import Cancelled, R2Error
from r2local.engine.conversation import Context, Summariser
from r2local.engine.events import (
    Listener,
    Node,
    NodeUpdate,
    Notice,
    PlanReady,
    QuestionStarted,
    ignore,
)
from r2local.engine.executor import Executor, Run
from r2local.fetch import Progress
from r2local.gates import Confirm, Consent, Gates
from r2local.store.ledger import Ledger
from r2local.pool import Pool, Tier
from r2local.privacy import Redactor
from r2local.engine.compose import COMPOSE_TEXT
from r2local.engine.prompts import FINAL_TEXT
from r2local.engine.recorder import LedgerRecorder, Recorder
from r2local.engine.shadow import ShadowOutcome, pick_upper, shadow
from r2local.engine.standing import answer_status
from r2local.store.records import Decision, QuestionEnd
from r2local.routing.plan import Plan
from r2local.routing.thresholds import default_thresholds
from r2local.routing.router import RouterClient
from r2local.routing.policy import RoutePolicy
from r2local.routing.shipped import active_policy
from r2local.routing.splitter import split_adapter
from r2local.routing.strategies import STRATEGIES, Job, Strategy
from r2local.vocab import OFFLINE, DecisionSource, NodeKind, QuestionStatus, Route, Status




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
    strategy: str = "r2local"
    route: str | None = None
    route_reason: str | None = None
    allowed: list[Tier] = field(default_factory=list, repr=False)  # the tiers it could use (not in to_json)
    conversation_id: str | None = None  # the conversation this question is a turn of
    follow_up: bool = False  # its prompts carried earlier turns: the question alone is not what was answered
    local_only: bool = False  # asked local-only (also when its conversation is)

    def to_json(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "question": self.question,
            "answer": self.answer,
            "status": self.status,
            # What the answer stands as (done, unsure, escalated, ...): "status" says only that the question
            # finished, so a caller reading it alone took an unsure local answer for a checked one.
            "answer_status": answer_status(self.status, self.nodes[-1].status if self.nodes else None),
            "confidence": self.nodes[-1].confidence if self.nodes else None,
            "cost_usd": round(self.cost_usd, 8),
            "cloud_share": round(self.cloud_share, 4),
            "latency_ms": round(self.latency_ms, 1),
            "offline": self.offline,
            "plan_note": self.plan_note,
            "error": self.error,
            "strategy": self.strategy,
            "route": self.route,
            "route_reason": self.route_reason,
            "answer_kind": self.nodes[-1].answer_kind if self.nodes else None,  # the answer node's
            "programs": any(n.programs for n in self.nodes),  # whether any local answer was asked for a program
            "conversation_id": self.conversation_id,
            "subtasks": [n.public() for n in self.nodes],
        }


class Engine:
    """Answers questions on a pool of tiers; every call passes the gates and the recorder.

    Args:
        settings: validated config.
        ledger: the SQLite ledger (default: the user's).
        pool: tiers and resident models (default: built from settings).
        progress: shows model downloads.
        recorder: records (and may answer, like the bench's call cache) every model call.
        strategy: the default planner/allocator pair (default: full routing).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        pool: Pool | None = None,
        progress: Progress | None = None,
        recorder: Recorder | None = None,
        strategy: Strategy | None = None,
    ) -> None:
        self.ledger = ledger or Ledger()
        settings, self.adapter_id = _with_active_adapter(settings, self.ledger)
        self.settings = settings
        self.pool = pool or Pool(settings, progress=progress)
        self.budget = Budget(self.ledger, settings.budget)
        self.gates = Gates(settings.privacy.mode, Redactor(settings.privacy.extra_patterns), self.budget)
        self.recorder = recorder or LedgerRecorder(self.ledger)
        self.router = RouterClient(self.pool, settings.router, self.recorder, self.adapter_id,
                                   _plan_adapter(settings, self.ledger), split_adapter(settings.router, self.pool.manifests))
        self.executor = Executor(self.pool, settings.executor, self.gates, self.recorder, self.ledger)
        self.strategy = strategy or STRATEGIES[settings.router.strategy]()
        self._rng = random.Random()

    @classmethod
    def from_config(cls, pool: str | None = None, progress: Progress | None = None) -> "Engine":
        return cls(load_settings(pool=pool), progress=progress)

    def close(self) -> None:
        self.executor.close()
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

    def shadow(self, result: AskResult, *, local_only: bool = False, confirm: Confirm | None = None) -> ShadowOutcome | None:
        """Maybe answer ``result``'s question one tier up too, for learning ([learning] shares);
        records whether the answers agree. Call it after the user has the answer."""
        if result.follow_up:  # shadowed without its history it would be judged on another question
            return None
        allowed = result.allowed
        # A local-only conversation's turn stays local too.
        if local_only or result.local_only or self.settings.privacy.mode == "local-only":
            allowed = [t for t in allowed if t.is_local]
        upper = pick_upper(result.nodes, result.status, allowed, self.settings.learning, self._rng)
        if upper is None:
            return None
        return shadow(self.executor, self.ledger, result.question_id, result.question, result.nodes[0], upper, confirm)

    def use_adapter(self, adapter_id: str | None, path: str | None) -> None:
        """Route with another adapter from the next question on (the replaced router instance is unloaded)."""
        self.pool.use_router_adapter(path)
        self.settings = self.pool.settings
        self.adapter_id = adapter_id
        self.router = RouterClient(self.pool, self.settings.router, self.recorder, adapter_id,
                                   self.router.plan_adapter, self.router.split_adapter)

    def route_policy(self) -> RoutePolicy:
        """The route policy: the last `r2local calibrate` that fits this pool, else the one shipped
        for this pool's local models, else the default."""
        return active_policy(self.ledger.latest_calibration(), self.pool.tiers)

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
            offline = f"{OFFLINE}{why}; answering with local models only"
        return allowed, offline

    # -- one question ------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        local_only: bool = False,
        on_event: Listener | None = None,
        cancel: threading.Event | None = None,
        confirm: Confirm | None = None,
        strategy: Strategy | None = None,
        context: Context | None = None,
    ) -> AskResult:
        """Answer one question. Raises Cancelled if ``cancel`` is set meanwhile.

        Args:
            question: the user's question.
            local_only: never contact a non-local tier (also when [privacy] mode = "local-only").
            on_event: receives progress events (on engine threads).
            cancel: set it to stop; running calls end at their next token.
            confirm: for [privacy] mode = "confirm": called (on an engine thread) with a
                CloudRequest before each cloud call; True sends it. Without it, cloud
                subtasks stay local.
            strategy: the planner/allocator pair for this question (default: the engine's).
            context: the conversation it continues (``conversation.load``, or a caller's history):
                its turns reach every prompt as far as each tier's budget allows.
        """
        question = question.strip()
        if not question:
            raise R2Error("the question is empty", fix='ask something, e.g. r2local ask "What is 17 * 23?"')
        emit, cancel = on_event or ignore, cancel or threading.Event()
        strategy = strategy or self.strategy
        mode = self.settings.privacy.mode
        local_only = local_only or mode == "local-only" or bool(context and context.local_only)
        allowed, offline = self.allowed_tiers(local_only)
        qid = self.ledger.start_question(question, local_only=local_only, pool=self.settings.pool, strategy=strategy.name)
        emit(QuestionStarted(qid, question))
        if offline:
            emit(Notice(qid, offline))
        elif mode == "confirm" and confirm is None:
            emit(Notice(qid, "privacy: confirm mode and nobody to ask; cloud subtasks stay local"))
        start = time.perf_counter()
        try:
            if context is not None:  # link the turn, keep local-only sticky, summarise what no longer fits
                context = Summariser(self.pool, self.recorder, self.ledger).begin(
                    qid, context, allowed, question, local_only, cancel)
            job = Job(qid, question, cancel, emit, self.pool.tiers, allowed, self.router, self.thresholds()[0],
                      self.route_policy(), previous=context.previous if context is not None else "",
                      kind_before=context.kind_before if context is not None else None)
            result = self._answer(job, strategy, Consent(qid, confirm), context)
        except Cancelled:
            self.ledger.finish_question(qid, QuestionEnd(QuestionStatus.CANCELLED, _ms(start)))
            raise
        except Exception as exc:
            self.ledger.finish_question(qid, QuestionEnd(QuestionStatus.FAILED, _ms(start), error=str(exc)[:500]))
            raise
        result.offline, result.latency_ms, result.strategy, result.allowed = offline, _ms(start), strategy.name, allowed
        result.conversation_id = context.conversation_id if context is not None else None
        result.follow_up, result.local_only = bool(context and (context.turns or context.summary)), local_only
        self.ledger.finish_question(qid, QuestionEnd(
            result.status, result.latency_ms, result.answer, result.cost_usd, result.cloud_share, result.error))
        return result

    def _answer(self, job: Job, strategy: Strategy, consent: Consent, context: Context | None = None) -> AskResult:
        qid = job.question_id
        with self.router.burst(self.settings.runtime.threads):
            t0 = time.perf_counter()
            planned = strategy.planner.plan(job)
            plan, choice = planned.plan, planned.route
            t_plan = _ms(t0)
            nodes = self.nodes(plan, choice.route if choice else None)
            route = choice.route if choice else (Route.DECOMPOSE if len(nodes) > 1 else None)
            why = choice.reason if choice else None
            self.ledger.update_question(qid, plan_json=plan.model_dump_json(exclude={"note"}), plan_note=plan.note,
                                        route=route, route_reason=why)
            for n in nodes:
                self.ledger.save_node(qid, n)
            job.emit(PlanReady(qid, [n.snapshot() for n in nodes], plan.note, route, why))
            t1 = time.perf_counter()
            decisions = strategy.allocator.allocate(dataclasses.replace(job, route=choice), nodes)
            self._apply(job, nodes, decisions)
            t_alloc = _ms(t1)
        run = Run(qid, job.question, {n.id: n for n in nodes}, job.allowed, job.cancel, job.emit, nodes[-1].id,
                  decisions, consent, context=context)
        self.executor.run(run)  # escalation, up to the whole question on the cloud, is the executor's
        nodes, answer_node = list(run.nodes.values()), run.nodes[run.answer_node]
        cost = sum(r["cost_usd"] or 0.0 for r in self.ledger.question(qid)["calls"])
        answering = [n for n in nodes if n.kind != NodeKind.COMPOSE]  # composing calls no model
        cloud = sum(1 for n in answering if not n.is_local)
        status = QuestionStatus.FAILED if answer_node.status == Status.FAILED else QuestionStatus.DONE
        return AskResult(
            qid, job.question, answer_node.answer, status, cost, cloud / len(answering), 0.0, nodes,
            plan_note=plan.note, router_ms={"plan": t_plan, "allocate": t_alloc},
            error=answer_node.reason if status == QuestionStatus.FAILED else None, route=route, route_reason=why,
        )

    @staticmethod
    def nodes(plan: Plan, route: Route | None = None) -> list[Node]:
        """The DAG of a plan: its subtasks, then a final synthesis node when there are several;
        on the parts route, one independent node per part and the local composition of their answers."""
        if route == Route.PARTS:
            parts = [Node(s.id, s.text, [], kind=NodeKind.PART) for s in plan.subtasks]
            return parts + [Node(len(parts) + 1, COMPOSE_TEXT, [n.id for n in parts], kind=NodeKind.COMPOSE)]
        nodes = [Node(s.id, s.text, list(s.depends_on)) for s in plan.order()]
        if len(nodes) > 1:
            nodes.append(Node(len(nodes) + 1, FINAL_TEXT, [n.id for n in nodes], kind=NodeKind.FINAL))
        return nodes

    def _apply(self, job: Job, nodes: list[Node], decisions: dict[int, Decision]) -> None:
        """Put each decision on its node (and in the ledger); a forced tier must be usable."""
        usable = {t.index for t in job.allowed}
        for node in nodes:
            d = decisions[node.id]
            if d.source == DecisionSource.FORCED and d.tier not in usable:
                name = job.tiers[d.tier].name
                raise R2Error(f"tier {name!r} is not usable now", fix="set its key, or drop --local-only")
            node.difficulty = round(d.score, 4) if d.score is not None else None
            node.label_probs, node.features = d.probs, dict(d.features)
            node.decision_source, node.decided_tier = d.source, job.tiers[d.tier].name
            node.route_reason = d.reason
            self.ledger.save_node(job.question_id, node)
            job.emit(NodeUpdate(job.question_id, node.snapshot()))


def _with_active_adapter(settings: Settings, ledger: Ledger) -> tuple[Settings, str | None]:
    """The router runs with the adopted adapter (`r2local train adopt`) unless config.toml names one.

    Returns the settings to use and the adapter's id for the ledger ("router@v3"), or the
    configured adapter's file name, or None."""
    from pathlib import Path

    from r2local.store import adapters

    r = settings.router
    if r.adapter is not None:
        return settings, Path(r.adapter).name
    found = adapters.active(ledger, base_model=r.model)
    if found is None or not Path(found.path).is_file():
        return settings, None
    return settings.model_copy(update={"router": r.model_copy(update={"adapter": found.path})}), found.id


def _plan_adapter(settings: Settings, ledger: Ledger) -> tuple[str, Any] | None:
    """The adopted decomposer adapter (`r2local train run --decomposer`), applied while planning."""
    from pathlib import Path

    from r2local.store import adapters

    found = adapters.active(ledger, "decomposer", settings.router.model)
    return (found.id, Path(found.path)) if found and Path(found.path).is_file() else None


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
