"""Call recorders: every model call goes through one, router calls included.

A recorder writes the call's ledger row before the call starts (``running``),
runs it, and closes the row with its outcome, whatever happens in between.
The bench's call cache is a recorder too: it answers a call it has seen
before from the ledger and records that as a cached row.

Gates come first: by the time a call reaches a recorder, privacy, redaction
and the budget check have passed, and ``CallSpec.messages`` is exactly what
the model will be sent.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from r2local.backends import Completion, Message, Usage
from r2local.errors import BackendError
from r2local.store.ledger import Ledger
from r2local.store.records import CallEnd, CallRecord

Invoke = Callable[[], Completion]
OnError = Callable[[BackendError, float], CallEnd]  # (error, latency ms) -> how the row closes
Admit = Callable[[dict[str, float]], None]


def _free(usage: Usage) -> float:
    return 0.0


@dataclass(frozen=True)
class CallSpec:
    """One model call: its ledger identity, what is sent, and what shapes the output."""

    record: CallRecord
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature, schema, labels, seed
    admit: Admit | None = None  # the budget check run in the row's opening transaction
    cost: Callable[[Usage], float] = _free

    def cache_key(self) -> str:
        """Same model, adapter, prompt and parameters: the same answer (the call is seeded)."""
        r = self.record
        blob = {"kind": r.backend, "model": r.model, "adapter": r.adapter, "messages": self.messages,
                "params": self.params, "role": "score" if "labels" in self.params else "text"}
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


class Recorder(Protocol):
    def call(self, spec: CallSpec, invoke: Invoke, on_error: OnError | None = None) -> Completion:
        """Record and run one call; errors are recorded, then raised."""
        ...


class LedgerRecorder:
    """The everyday recorder: a row before the call, closed after it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def call(self, spec: CallSpec, invoke: Invoke, on_error: OnError | None = None) -> Completion:
        call_id = self.ledger.open_call(spec.record, spec.admit)  # may raise BudgetExceeded: no row
        started = time.perf_counter()
        try:
            result = invoke()
        except BackendError as exc:
            ms = _ms(started)
            self.ledger.close_call(call_id, on_error(exc, ms) if on_error else CallEnd.failed(exc, ms))
            raise
        except BaseException as exc:  # cancelled, or a bug: the row must not stay 'running'
            self.ledger.close_call(call_id, CallEnd.failed(exc, _ms(started)))
            raise
        self.ledger.close_call(call_id, CallEnd.ok(result, spec.cost(result.usage)))
        return result


class CachingRecorder:
    """Answers a call seen before from the ledger's ``call_cache`` (the bench).

    A hit is still a ``calls`` row: ``cached = 1``, ``cost_usd = 0`` (nothing
    was paid) and ``saved_usd`` what it would have cost. Misses run through
    ``inner`` as usual and are remembered if they succeed.
    """

    def __init__(self, inner: LedgerRecorder) -> None:
        self.inner = inner
        self.ledger = inner.ledger

    def call(self, spec: CallSpec, invoke: Invoke, on_error: OnError | None = None) -> Completion:
        key = spec.cache_key()
        hit = self.ledger.cache_get(key)
        if hit is not None:
            result = completion_from(hit)
            self.ledger.record_call(spec.record, CallEnd.from_cache(result, spec.cost(result.usage)))
            return result
        result = self.inner.call(spec, invoke, on_error)
        self.ledger.cache_put(key, spec.record.model, asdict(result))
        return result


def completion_from(data: dict[str, Any]) -> Completion:
    return Completion(**{**data, "usage": Usage(**data["usage"])})


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
