"""Runs a plan as a DAG across tiers, escalating when a local answer is weak.

Everything whose dependencies are done runs at once (cloud calls beside local
work; each resident local model serialises its own calls). Every attempt is a
ledger row. A subtask climbs one tier at a time on low confidence, an empty
answer or an error, as far as policy allows; a failing cloud call falls back
to the strongest local tier.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from .backends import Completion, Message, complete
from .config import ExecutorSection
from .errors import BackendError, Cancelled
from .events import AnswerDelta, Listener, Node, NodeUpdate
from .ledger import Ledger
from .pool import Pool, Tier
from .prompts import final_messages, single_messages, step_messages

BACKOFF_S = 0.5
MAX_WAIT_S = 30.0


@dataclass
class Run:
    """What one question's execution needs to know."""

    question_id: str
    question: str
    nodes: dict[int, Node]
    allowed: list[Tier]  # tiers this question may use, cheapest first
    cancel: threading.Event
    emit: Listener
    answer_node: int
    wanted: dict[int, int] = field(default_factory=dict)  # node id -> tier index from the policy


class Executor:
    def __init__(self, pool: Pool, ledger: Ledger, settings: ExecutorSection) -> None:
        self.pool = pool
        self.ledger = ledger
        self.settings = settings

    # -- scheduling ------------------------------------------------------------
    def run(self, run: Run) -> None:
        """Run every node; raises Cancelled if the question was cancelled."""
        pending = dict(run.nodes)
        done: set[int] = set()
        with ThreadPoolExecutor(max_workers=self.settings.max_parallel, thread_name_prefix="r2-node") as workers:
            running: dict[Future[None], Node] = {}
            while pending or running:
                for node in [n for n in pending.values() if set(n.depends_on) <= done]:
                    del pending[node.id]
                    running[workers.submit(self._run_node, run, node)] = node
                if not running:  # unreachable for a validated plan; never spin
                    raise RuntimeError("plan has unsatisfiable dependencies")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    node = running.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        run.cancel.set()
                        self._drain(running)
                        self._cancel_rest(run, pending)
                        raise exc
                    done.add(node.id)

    @staticmethod
    def _drain(running: dict[Future[None], Node]) -> None:
        for fut in running:
            fut.exception()

    def _cancel_rest(self, run: Run, pending: dict[int, Node]) -> None:
        for node in run.nodes.values():
            if node.status in ("queued", "running"):
                node.status = "cancelled"
                self._publish(run, node)

    def _publish(self, run: Run, node: Node) -> None:
        self.ledger.save_subtask(
            run.question_id,
            node.id,
            tier=node.tier,
            model=node.model,
            answer=node.answer,
            status=node.status,
            escalated_from=node.escalated_from,
            reason=node.reason,
            confidence=node.confidence,
            input_tokens=node.input_tokens,
            output_tokens=node.output_tokens,
            cost_usd=node.cost_usd,
            latency_ms=node.latency_ms,
            prompt_json=node.sent or None,
        )
        run.emit(NodeUpdate(run.question_id, node.snapshot()))

    # -- one node --------------------------------------------------------------
    def _messages(self, run: Run, node: Node) -> list[Message]:
        deps = [run.nodes[d] for d in node.depends_on]
        if node.kind == "final":
            return final_messages(run.question, deps)
        if len(run.nodes) == 1:
            return single_messages(run.question)
        return step_messages(run.question, node, deps)

    def _initial_tier(self, run: Run, node: Node) -> Tier:
        wanted = run.wanted.get(node.id, 0)
        below = [t for t in run.allowed if t.index <= wanted]
        return below[-1] if below else run.allowed[0]

    def _next_tier(self, run: Run, tier: Tier, steps: int) -> Tier | None:
        if steps >= self.settings.max_escalations:
            return None
        above = [t for t in run.allowed if t.index > tier.index]
        return above[0] if above else None

    def _judge(self, tier: Tier, result: Completion) -> str | None:
        """Why an answer is not good enough to keep, or None."""
        if not result.text.strip():
            return "empty answer"
        conf = result.confidence
        if tier.is_local and conf is not None and conf < self.settings.escalate_below:
            return f"low confidence ({conf:.2f} < {self.settings.escalate_below:.2f})"
        return None

    def _run_node(self, run: Run, node: Node) -> None:
        tier = self._initial_tier(run, node)
        steps, fell_back, escalated_from = 0, False, None
        start = time.perf_counter()
        while True:
            node.status, node.tier, node.model, node.is_local = "running", tier.name, tier.model, tier.is_local
            self._publish(run, node)
            messages = self._messages(run, node)
            node.sent = messages
            result, failure = None, None
            try:
                result = self._call(run, node, tier, messages, escalated_from)
                failure = self._judge(tier, result)
            except Cancelled:
                node.status = "cancelled"
                self._publish(run, node)
                raise
            except BackendError as exc:
                failure = f"{type(exc).__name__}: {exc.message}"
            if result is not None:
                node.answer, node.confidence = result.text.strip(), result.confidence
            node.latency_ms = (time.perf_counter() - start) * 1000
            if failure is None:
                node.status = "escalated" if escalated_from else "done"
                break
            nxt = self._next_tier(run, tier, steps)
            if nxt is not None:
                escalated_from, node.escalated_from, node.reason = tier.name, node.escalated_from or tier.name, failure
                tier, steps = nxt, steps + 1
                continue
            if result is not None and result.text.strip():
                node.status, node.reason = "unsure", failure  # kept, and marked
                break
            if not tier.is_local and not fell_back:
                local = self._fallback(run)
                if local is not None:
                    escalated_from, node.escalated_from = tier.name, node.escalated_from or tier.name
                    node.reason, tier, fell_back = f"{failure}; fell back to {local.name}", local, True
                    continue
            node.status, node.reason = "failed", failure
            break
        node.latency_ms = (time.perf_counter() - start) * 1000
        self._publish(run, node)

    def _fallback(self, run: Run) -> Tier | None:
        local = [t for t in run.allowed if t.is_local]
        return local[-1] if local else None

    # -- one call, with retries ------------------------------------------------
    def _call(self, run: Run, node: Node, tier: Tier, messages: list[Message], escalated_from: str | None) -> Completion:
        backend = self.pool.backend(tier)
        attempts = 1 if tier.is_local else tier.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            on_text = self._streamer(run, node)
            row = dict(question_id=run.question_id, subtask_id=node.id, role=node.kind if node.kind == "final" else "subtask")
            row.update(tier=tier.name, backend=tier.backend, model=tier.model, escalated_from=escalated_from, attempt=attempt)
            started = time.perf_counter()
            try:
                result = complete(
                    backend, messages, max_tokens=tier.config.max_tokens, cancel=run.cancel, on_text=on_text
                )
            except Cancelled:
                self.ledger.record_call(**row, status="cancelled", latency_ms=_ms(started))
                raise
            except BackendError as exc:
                self.ledger.record_call(
                    **row, status="error", error=exc.message, error_class=type(exc).__name__, latency_ms=_ms(started)
                )
                if not exc.retryable or attempt == attempts:
                    raise
                self._sleep(run, getattr(exc, "retry_after", None) or BACKOFF_S * 2 ** (attempt - 1))
                continue
            cost = tier.cost(result.usage)
            self.ledger.record_call(
                **row,
                status="ok",
                resolved_model=result.model,
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                usage_source=result.usage.source,
                cost_usd=cost,
                latency_ms=result.latency_ms,
                ttft_ms=result.ttft_ms,
            )
            node.input_tokens += result.usage.input_tokens
            node.output_tokens += result.usage.output_tokens
            node.cost_usd += cost
            return result
        raise AssertionError("unreachable")

    def _streamer(self, run: Run, node: Node) -> Callable[[str], None] | None:
        """Stream the answer node's text; each attempt's first piece restarts the display."""
        if node.id != run.answer_node:
            return None
        first = [True]

        def on_text(text: str) -> None:
            run.emit(AnswerDelta(run.question_id, text, restart=first[0]))
            first[0] = False

        return on_text

    @staticmethod
    def _sleep(run: Run, seconds: float) -> None:
        if run.cancel.wait(min(seconds, MAX_WAIT_S)):
            raise Cancelled("cancelled")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
