"""Identical model calls answered once: a call cache in the ledger.

Strategies in a bench share many calls (the same subtask on the same tier, the
whole question on one tier, the same plan). A call with the same model,
prompt and parameters is looked up in the ledger's ``call_cache`` table; a hit
is still a ``calls`` row, with ``cached = 1``, ``cost_usd = 0`` (nothing was
paid) and ``saved_usd`` what it would have cost, so a report can count cost
as if uncached. Only the bench turns this on: at temperature 0 the models are
deterministic, so a cached answer is the answer the call would have given.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from ..backends import Completion, Message, Usage
from ..errors import Cancelled
from ..events import AnswerDelta, Node
from ..executor import Executor, Run
from ..pool import Tier


def call_key(kind: str, model: str, messages: list[Message], **params: Any) -> str:
    blob = json.dumps({"kind": kind, "model": model, "messages": messages, "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def tier_key(tier: Tier, messages: list[Message]) -> str:
    # The model is named by its model id, not by the tier or the endpoint: two
    # tiers on one model give one answer, and a loopback server that comes
    # back on another port still hits the cache.
    return call_key(tier.backend, tier.model, messages, adapter=tier.config.adapter,
                    max_tokens=tier.config.max_tokens, temperature=0.0)


def completion_json(c: Completion) -> dict[str, Any]:
    return asdict(c)


def completion_from(data: dict[str, Any]) -> Completion:
    return Completion(**{**data, "usage": Usage(**data["usage"])})


class CachingExecutor(Executor):
    """The executor, with a cache lookup before each call (misses run as usual,
    through every gate the base class applies)."""

    def _call(self, run: Run, node: Node, tier: Tier, messages: list[Message], came_from: str | None) -> Completion:
        key = tier_key(tier, messages)
        hit = self.ledger.cache_get(key)
        if hit is None:
            result = super()._call(run, node, tier, messages, came_from)
            self.ledger.cache_put(key, tier.model, completion_json(result))
            return result
        if run.cancel.is_set():
            raise Cancelled("cancelled")
        result = completion_from(hit)
        self.ledger.record_call(
            question_id=run.question_id, subtask_id=node.id, role=node.kind if node.kind == "final" else "subtask",
            tier=tier.name, backend=tier.backend, model=tier.model, escalated_from=came_from, attempt=1,
            status="ok", cached=1, resolved_model=result.model, input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens, usage_source=result.usage.source, cost_usd=0.0,
            saved_usd=tier.cost(result.usage), latency_ms=result.latency_ms, ttft_ms=result.ttft_ms,
        )
        node.input_tokens += result.usage.input_tokens
        node.output_tokens += result.usage.output_tokens
        if node.id == run.answer_node:
            run.emit(AnswerDelta(run.question_id, result.text, restart=True))
        return result
