"""The router model's own calls, plan and score, each through the recorder.

Planners and allocators reach the router through this client, so every router
call has its ledger row before it starts, names its prompt version and
adapter, and can be answered by the bench's call cache like any other call.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from r2local.backends import Completion, Usage, complete
from r2local.errors import BackendError, ContextOverflow
from r2local.engine.prompts import prompt_version
from r2local.store.records import CallRecord
from r2local.vocab import Role
from r2local.routing.thresholds import LABELS, Score, difficulty, score_messages
from r2local.routing.plan import Plan, parse_plan, plan_messages, plan_schema, single_plan

if TYPE_CHECKING:
    from r2local.config import RouterSection
    from r2local.pool import Pool
    from r2local.engine.recorder import Recorder


class RouterClient:
    def __init__(self, pool: "Pool", section: "RouterSection", recorder: "Recorder", adapter_id: str | None = None,
                 plan_adapter: tuple[str, Path] | None = None, split_adapter: Path | None = None) -> None:
        self.pool = pool
        self.section = section
        self.recorder = recorder
        self._burst = threading.local()
        self._adapter_id = adapter_id
        self.plan_adapter = plan_adapter  # (id, GGUF path) of an adopted decomposer adapter, applied while planning
        self.split_adapter = split_adapter  # the shipped adapter that finds parts the rules miss (splitter.py)

    @property
    def adapter(self) -> str | None:
        """What the ledger calls the adapter the router runs with: its version id, or its file name."""
        if self._adapter_id:
            return self._adapter_id
        return Path(self.section.adapter).name if self.section.adapter else None

    def _record(self, role: Role, qid: str | None, subtask_id: int | None, messages: list, **kw: object) -> CallRecord:
        r = self.section
        return CallRecord(role, "router", r.backend, r.model, qid, subtask_id, adapter=self.adapter,
                          prompt_version=prompt_version(messages), temperature=0.0, **kw)  # type: ignore[arg-type]

    @contextmanager
    def burst(self, threads: int) -> Iterator[None]:
        """Router calls from this thread use ``threads`` (routing runs before the DAG,
        when nothing else computes). Nothing is loaded until a router call is made."""
        self._burst.threads = threads
        try:
            yield
        finally:
            self._burst.threads = None

    def _backend(self) -> tuple[Any, Any]:
        backend = self.pool.router()
        threads = getattr(self._burst, "threads", None)
        burst = getattr(backend, "burst", None)
        return backend, (burst(threads) if burst and threads else nullcontext())

    def plan(self, qid: str, question: str, cancel: threading.Event) -> Plan:
        """A validated plan from the router; its failure gives the one-subtask plan, with a note."""
        from r2local.engine.recorder import CallSpec

        r = self.section
        backend, burst = self._backend()
        messages = plan_messages(question, r.max_subtasks)
        schema = plan_schema(r.max_subtasks) if backend.supports_json_schema else None
        swap = self.plan_adapter if self.plan_adapter and hasattr(backend, "set_adapter") else None
        record = self._record(Role.PLAN, qid, None, messages)
        if swap is not None:
            record = dataclasses.replace(record, adapter=swap[0])
        spec = CallSpec(record, messages, {"max_tokens": r.plan_max_tokens, "temperature": 0.0, "json_schema": schema})

        def invoke() -> Completion:
            return self._complete(backend, burst, swap[1] if swap else None, messages, r.plan_max_tokens, schema, cancel)

        try:
            result = self.recorder.call(spec, invoke)
        except ContextOverflow:
            return single_plan(question, "the question is longer than the router's context; answering it as one subtask")
        except BackendError as exc:
            return single_plan(question, f"the router failed ({type(exc).__name__}); answering the question as one subtask")
        return parse_plan(result.text, question, r.max_subtasks)

    def _complete(self, backend, burst, adapter: Path | None, messages, max_tokens: int, schema, cancel) -> Completion:
        """A greedy router call, under ``adapter`` for this call only when one is given."""
        with burst, self.applied(adapter):
            return complete(backend, messages, max_tokens=max_tokens, temperature=0.0, json_schema=schema,
                            cancel=cancel)

    @contextmanager
    def applied(self, adapter: Path | None) -> Iterator[None]:
        """The router model runs under ``adapter`` inside (None: as it is), its own adapter restored after."""
        if adapter is None:
            yield
            return
        backend = self.pool.router()
        backend.set_adapter(adapter)
        try:
            yield
        finally:
            backend.set_adapter(self.section.adapter)

    @property
    def can_split(self) -> bool:
        return self.split_adapter is not None and hasattr(self.pool.router(), "set_adapter")

    def split(self, qid: str, question: str, cancel: threading.Event) -> list[str]:
        """The message's independent parts as the split adapter reads them; ``[]`` keeps it whole
        (one question, a reply that is not the JSON asked for, a part not grounded in the message, a failure)."""
        from r2local.engine.recorder import CallSpec
        from r2local.routing.splitter import MAX_TOKENS, grounded, parse_split, split_messages

        backend, burst = self._backend()
        messages = split_messages(question)
        record = dataclasses.replace(self._record(Role.SPLIT, qid, None, messages), adapter=self.split_adapter.name)
        spec = CallSpec(record, messages, {"max_tokens": MAX_TOKENS, "temperature": 0.0})
        try:
            result = self.recorder.call(spec, lambda: self._complete(backend, burst, self.split_adapter, messages,
                                                                     MAX_TOKENS, None, cancel))
        except (ContextOverflow, BackendError):
            return []
        parts = parse_split(result.text) or []
        return parts if grounded(parts, question) else []

    def score(self, qid: str, subtask_id: int | None, question: str, text: str, role: Role = Role.ALLOCATE) -> Score | None:
        """Difficulty from one forward pass; None when the text does not fit the router (recorded)."""
        from r2local.engine.recorder import CallSpec

        backend, burst = self._backend()
        messages = score_messages(question, text)
        spec = CallSpec(self._record(role, qid, subtask_id, messages), messages, {"labels": list(LABELS)})

        def invoke() -> Completion:
            started = time.perf_counter()
            with burst:
                probs, n_tokens = backend.score_labels(messages, list(LABELS))
            ms = (time.perf_counter() - started) * 1000
            best = max(probs, key=probs.__getitem__)
            return Completion(best, "stop", Usage(n_tokens, 0), backend.model, ms, None, probs=probs)

        try:
            result = self.recorder.call(spec, invoke)
        except ContextOverflow:
            return None
        probs = result.probs or {}
        return Score(difficulty(probs), probs, result.latency_ms, result.usage.input_tokens)
