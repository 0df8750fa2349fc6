"""Runs a plan as a DAG across tiers, escalating when a local answer is weak.

Everything whose dependencies are done runs at once (cloud calls beside local
work; each resident local model serialises its own calls). Every attempt is a
ledger row, written before the call and closed after it. A subtask climbs one
tier at a time on low confidence, an empty answer or an error, as far as
policy allows. Each cloud attempt first passes the gates (privacy, redaction,
budget); a refused or failing cloud call moves the subtask to the strongest
local tier, marked (``kept-local``, ``budget``, ``fallback``), and the cloud
stays closed to it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from r2local.engine.answering import Answerer, LocalAnswer
from r2local.engine.answers import answer_kind
from r2local.engine.compose import compose
from r2local.backends import Completion, Message, complete
from r2local.backends.base import flatten
from r2local.config import ExecutorSection
from r2local.errors import (
    BackendError,
    Cancelled,
    CloudRefused,
    CloudTimeout,
    ConnectionFailed,
    StreamCut,
)
from r2local.engine.conversation import Context, with_history
from r2local.engine.events import AnswerDelta, Listener, Node, NodeUpdate
from r2local.gates import Consent, Gates, Ticket
from r2local.store.ledger import Ledger
from r2local.pool import Pool, Tier
from r2local.engine.programs import ProgramRunner
from r2local.engine.prompts import final_messages, prompt_version, single_messages, step_messages
from r2local.engine.recorder import CallSpec, Recorder
from r2local.engine.standing import LOW_CONFIDENCE
from r2local.store.records import CallEnd, CallRecord, Decision
from r2local.sandbox import ProgramResult
from r2local.vocab import DecisionSource, NodeKind, Role, Status

BACKOFF_S = 0.5
MAX_WAIT_S = 30.0


@dataclass
class _Path:
    """Where one node has been: its tier now, the moves so far, and why."""

    tier: Tier
    steps: int = 0
    came_from: str | None = None  # tier of the previous attempt (the ledger's escalated_from)
    mark: str | None = None  # fallback, budget or kept-local: the cloud is closed to this node
    answered_on: Tier | None = None  # the tier whose answer node.answer holds
    notes: list[str] = field(default_factory=list)

    def note(self, text: str | None) -> None:
        if text and (not self.notes or self.notes[-1] != text):
            self.notes.append(text)

    def reason(self) -> str | None:
        return "; ".join(self.notes) or None


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
    decisions: dict[int, Decision] = field(default_factory=dict)  # node id -> the allocator's decision
    consent: Consent = field(default_factory=Consent)  # the confirm callback, for privacy mode "confirm"
    # Cloud tiers found unreachable in this question (after their retries): the
    # other subtasks go local at once instead of each waiting out the retries.
    down: dict[str, str] = field(default_factory=dict)
    context: Context | None = None  # the conversation's earlier turns, fitted to each tier's budget


class Executor:
    def __init__(self, pool: Pool, settings: ExecutorSection, gates: Gates, recorder: Recorder, ledger: Ledger) -> None:
        self.pool = pool
        self.settings = settings
        self.gates = gates
        self.recorder = recorder
        self.ledger = ledger
        self.answerer = Answerer(settings)
        self.programs = ProgramRunner(recorder, settings.program_timeout_s)

    def close(self) -> None:
        self.programs.close()

    # -- scheduling ------------------------------------------------------------
    def run(self, run: Run) -> None:
        """Run every node, then the whole question where a doubted plan sends it
        (``Decision.whole_to``); raises Cancelled if the question was cancelled."""
        self._run_dag(run)
        whole = self._whole(run)
        if whole is not None:
            self._run_node(run, whole)

    def _whole(self, run: Run) -> Node | None:
        """The node that answers the question whole when a node of its plan came out unsure
        or failed and the allocator named a tier for that, else None."""
        to = {d.whole_to for d in run.decisions.values()} - {None}
        usable = {t.index: t for t in run.allowed}
        if not to or not any(n.status in (Status.UNSURE, Status.FAILED) for n in run.nodes.values()):
            return None
        target = usable.get(max(i for i in to if i is not None))
        if target is None:
            return None
        whole = Node(max(run.nodes) + 1, run.question, [], kind=NodeKind.WHOLE)
        whole.decision_source, whole.decided_tier = DecisionSource.POLICY, target.name
        run.nodes[whole.id], run.answer_node = whole, whole.id
        run.decisions[whole.id] = Decision(target.index, DecisionSource.POLICY, escalate=False)
        self._publish(run, whole)
        return whole

    def _run_dag(self, run: Run) -> None:
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
            if node.status in (Status.QUEUED, Status.RUNNING):
                node.status = Status.CANCELLED
                self._publish(run, node)

    def _publish(self, run: Run, node: Node) -> None:
        self.ledger.save_node(run.question_id, node)
        run.emit(NodeUpdate(run.question_id, node.snapshot()))

    # -- one node --------------------------------------------------------------
    def _messages(self, run: Run, node: Node, tier: Tier) -> list[Message]:
        """The node's prompt on ``tier``, with as much of the conversation as fits that tier."""
        return with_history(self._prompt(run, node), run.context, tier, run.question)

    def _prompt(self, run: Run, node: Node) -> list[Message]:
        deps = [run.nodes[d] for d in node.depends_on]
        if node.kind == NodeKind.WHOLE:
            return single_messages(run.question)
        if node.kind == NodeKind.PART:  # its own text only: the other parts never travel with it
            return single_messages(node.text)
        if node.kind == NodeKind.FINAL:
            return final_messages(run.question, deps)
        if len(run.nodes) == 1:
            return single_messages(run.question)
        return step_messages(run.question, node, deps)

    def _initial_tier(self, run: Run, node: Node) -> Tier:
        decision = run.decisions.get(node.id)
        wanted = decision.tier if decision is not None else 0
        below = [t for t in run.allowed if t.index <= wanted]
        return below[-1] if below else run.allowed[0]

    def _next_tier(self, run: Run, node: Node, path: _Path) -> Tier | None:
        decision = run.decisions.get(node.id)
        if decision is not None and not decision.escalate:
            return None  # a forced or drawn tier stays where it was put
        if path.mark is not None or path.steps >= self.settings.max_escalations:
            return None  # the cloud is closed to this node, or it has climbed enough
        ceiling = decision.ceiling if decision is not None and decision.ceiling is not None else len(self.pool.tiers)
        above = [t for t in run.allowed if path.tier.index < t.index <= ceiling]
        jump = [t for t in above if decision is not None and t.index == decision.escalate_to]
        return (jump or above or [None])[0]

    def _judge(self, tier: Tier, text: str, mean_prob: float | None) -> str | None:
        """Why an answer is not good enough to keep, or None (the agreement check is the answerer's)."""
        if not text.strip():
            return "empty answer"
        floor = self.settings.escalate_below
        if tier.is_local and floor is not None and mean_prob is not None and mean_prob < floor:
            return f"{LOW_CONFIDENCE} ({mean_prob:.2f} < {floor:.2f})"
        return None

    @staticmethod
    def _task(run: Run, node: Node) -> str:
        """The text whose wording says what kind of answer the node gives."""
        own = node.kind == NodeKind.PART or (len(run.nodes) > 1 and node.kind == NodeKind.STEP)
        return node.text if own else run.question

    def _kind(self, run: Run, node: Node) -> str:
        """The answer kind of a node: its own wording, or for the whole question of a follow-up turn,
        the earlier turn's kind where the wording leans on it."""
        task = self._task(run, node)
        before = run.context.kind_before if run.context is not None and task == run.question else None
        return answer_kind(task, before)

    def _run_node(self, run: Run, node: Node) -> None:
        if node.kind == NodeKind.COMPOSE:
            return self._compose(run, node)
        path = _Path(self._initial_tier(run, node))
        node.answer_kind = self._kind(run, node)  # recorded whichever tier answers
        start = time.perf_counter()
        while True:
            tier = path.tier
            if tier.name in run.down and path.mark is None:
                if self._divert(run, node, path, Status.FALLBACK, run.down[tier.name]):
                    continue
                break
            node.status, node.tier, node.model, node.is_local = Status.RUNNING, tier.name, tier.model, tier.is_local
            self._publish(run, node)
            try:
                failure = self._attempt(run, node, path)
            except CloudRefused as exc:
                if self._divert(run, node, path, exc.mark, exc.message):
                    continue
                break
            node.latency_ms = (time.perf_counter() - start) * 1000
            if failure is None:
                node.status = path.mark or (Status.ESCALATED if node.escalated_from else Status.DONE)
                break
            nxt = self._next_tier(run, node, path)
            if nxt is not None:
                path.note(failure)
                path.came_from, node.escalated_from = tier.name, node.escalated_from or tier.name
                path.tier, path.steps = nxt, path.steps + 1
                continue
            if not tier.is_local and path.mark is None:
                if self._divert(run, node, path, Status.FALLBACK, failure):
                    continue
                break
            self._settle(node, path, failure)
            break
        node.reason = path.reason()
        node.latency_ms = (time.perf_counter() - start) * 1000
        self._publish(run, node)

    def _compose(self, run: Run, node: Node) -> None:
        """The parts' answers joined locally: no model call, no ledger call row."""
        compose(node, [run.nodes[d] for d in node.depends_on])
        self._publish(run, node)
        run.emit(AnswerDelta(run.question_id, node.answer, restart=True))

    def _attempt(self, run: Run, node: Node, path: _Path) -> str | None:
        """One answer on the node's current tier: None if it is kept, else why not."""
        try:
            if path.tier.is_local:
                return self._local(run, node, path)
            result = self.call(run, node, path.tier, self._messages(run, node, path.tier), path.came_from)
        except Cancelled:
            node.status = Status.CANCELLED
            self._publish(run, node)
            raise
        except BackendError as exc:
            if isinstance(exc, (ConnectionFailed, CloudTimeout)) and not path.tier.is_local:
                run.down.setdefault(path.tier.name, f"{path.tier.name} unreachable earlier in this question")
            fix = f" (fix: {exc.fix})" if exc.fix and not exc.retryable else ""
            return f"{type(exc).__name__}: {exc.message}{fix}"
        if result.text.strip():
            node.answer, node.confidence, node.working, path.answered_on = result.text.strip(), None, None, path.tier
        return self._judge(path.tier, result.text, None)

    def _local(self, run: Run, node: Node, path: _Path) -> str | None:
        """A local tier answers: a program where it fits, samples that vote (see answering)."""
        tier = path.tier
        task = self._task(run, node)

        def call(messages: list[Message], temperature: float, sample: int, stream: bool,
                 max_tokens: int | None) -> Completion:
            return self.call(run, node, tier, messages, path.came_from, temperature=temperature, sample=sample,
                             stream=stream, max_tokens=max_tokens)

        def program(source: str, sample: int) -> ProgramResult:
            return self.programs.run(source, CallRecord(Role.PROGRAM, tier.name, "sandbox", "asteval", run.question_id,
                                                        node.id, path.came_from, sample=sample))

        decision = run.decisions.get(node.id)
        may_climb = decision is None or decision.escalate
        out: LocalAnswer = self.answerer.answer(
            self._messages(run, node, tier), task, tier.writes_programs, call, program, kind=node.answer_kind,
            agree_below=decision.agree_below if decision is not None else None,
            early_stop=may_climb,  # a node that cannot climb keeps every sample: the record is all it is for
        )
        node.programs = out.programs
        if out.answer:
            node.answer, node.confidence, node.working, path.answered_on = out.answer, out.confidence, out.working, tier
            node.features.update(out.features)
            if node.id == run.answer_node:
                run.emit(AnswerDelta(run.question_id, out.answer, restart=True))
        return out.failure or self._judge(tier, out.answer, out.features.get("mean_prob"))

    def _divert(self, run: Run, node: Node, path: _Path, mark: str, why: str) -> bool:
        """Send the node to the strongest local tier, marked; False if it already has that tier's answer."""
        local = self._fallback(run)
        path.mark = mark
        path.note(f"{why}; {'fell back to' if mark == Status.FALLBACK else 'ran on'} {local.name}")
        node.escalated_from = node.escalated_from or path.tier.name
        if path.answered_on is not None and path.answered_on.index == local.index:
            # It escalated from there: keep that answer rather than ask the same model again.
            self._settle(node, path, None)
            return False
        path.came_from, path.tier = path.tier.name, local
        return True

    def _settle(self, node: Node, path: _Path, failure: str | None) -> None:
        """Nowhere better to go: keep the last answer (marked) if there is one, else fail."""
        path.note(failure)
        kept = path.answered_on
        if kept is not None and node.answer:
            node.tier, node.model, node.is_local = kept.name, kept.model, kept.is_local
            node.status = path.mark or Status.UNSURE
        else:
            node.status = Status.FAILED

    def _fallback(self, run: Run) -> Tier:
        local = [t for t in run.allowed if t.is_local]
        return local[-1] if local else self.pool.strongest_local

    # -- one call, with retries ------------------------------------------------
    def call(self, run: Run, node: Node, tier: Tier, messages: list[Message], came_from: str | None, *,
             temperature: float = 0.0, sample: int | None = None, stream: bool = True,
             role: Role | None = None, max_tokens: int | None = None) -> Completion:
        """One call through the gates and the recorder; a cloud call retries transient errors.

        The one path every answering call takes (subtask, sample, final, shadow): its ledger
        rows, retries and the partial charge of a cut stream are the same whoever asks.
        Tokens and cost add up on ``node``. Raises CloudRefused (the gates) or the last
        BackendError once the retries are spent."""
        attempts = 1 if tier.is_local else tier.config.max_retries + 1
        if role is None:
            role = Role.FINAL if node.kind == NodeKind.FINAL else Role.SUBTASK
            role = Role.SAMPLE if sample else role
        for attempt in range(1, attempts + 1):
            ticket = self.gates.admit(run.consent, node.id, tier, messages)  # may raise CloudRefused
            node.sent = ticket.messages  # exactly what left (redacted)
            record = CallRecord(
                role, tier.name, tier.backend, tier.model, run.question_id, node.id, came_from, attempt,
                adapter=tier.config.adapter, prompt_version=prompt_version(messages), temperature=temperature,
                sample=sample, reserved_usd=ticket.estimate if ticket.cloud else None,
                redactions=ticket.redaction.total if ticket.cloud else None,
            )
            cap = min(max_tokens or tier.config.max_tokens, tier.config.max_tokens)
            params = {"max_tokens": cap, "temperature": temperature, "sample": sample}
            spec = CallSpec(record, ticket.messages, params, self.gates.admission(ticket), tier.cost)
            try:
                result = self.recorder.call(
                    spec, lambda: self._complete(run, node, tier, ticket, temperature, stream, sample or 0, cap),
                    lambda exc, ms: self._failed(tier, ticket, exc, ms),
                )
            except BackendError as exc:
                if not exc.retryable or attempt == attempts:
                    raise
                self._sleep(run, getattr(exc, "retry_after", None) or BACKOFF_S * 2 ** (attempt - 1))
                continue
            if run.cancel.is_set():
                raise Cancelled("cancelled")
            if stream and ticket.pieces == 0 and node.id == run.answer_node and result.text:
                run.emit(AnswerDelta(run.question_id, result.text, restart=True))  # answered without a stream (cache)
            node.input_tokens += result.usage.input_tokens
            node.output_tokens += result.usage.output_tokens
            node.cost_usd += tier.cost(result.usage) if ticket.ran else 0.0  # a cache hit paid nothing
            node.redactions += ticket.redaction.total
            return result
        raise AssertionError("unreachable")

    def _complete(self, run: Run, node: Node, tier: Tier, ticket: Ticket, temperature: float,
                  stream: bool, sample: int, max_tokens: int) -> Completion:
        on_text, flush = ticket.stream(self._streamer(run, node) if stream else None)
        backend = self.pool.backend(tier)
        seed = _seed(ticket.messages, sample) if temperature > 0 else None
        result = complete(backend, ticket.messages, max_tokens=max_tokens, temperature=temperature,
                          cancel=run.cancel, on_text=on_text, seed=seed)
        flush()
        ticket.ran = True
        return ticket.restore(result)

    def _failed(self, tier: Tier, ticket: Ticket, exc: BackendError, ms: float) -> CallEnd:
        """How a failed attempt's row closes. A stream cut mid-answer is charged
        for what arrived (counted): the provider may bill it."""
        if isinstance(exc, StreamCut) and ticket.cloud and ticket.pieces:
            prompt = self.pool.backend(tier).count_tokens(flatten(ticket.messages))
            cost = tier.cost(input_tokens=prompt, output_tokens=ticket.pieces)
            return CallEnd.failed(exc, ms, input_tokens=prompt, output_tokens=ticket.pieces, usage_source="partial",
                                  cost_usd=cost)
        return CallEnd.failed(exc, ms)

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


def _seed(messages: list[Message], salt: int) -> int:
    """A sampled call's seed from what it asks: the same prompt draws the same sample."""
    import hashlib
    import json

    return int(hashlib.sha256(json.dumps([messages, salt]).encode()).hexdigest()[:8], 16)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

