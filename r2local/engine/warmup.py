"""Load the local models and evaluate every prompt's fixed prefix before the first question.

Measured on one laptop core (Qwen2.5-Coder-0.5B): a model loads in ~1 s, but its
first question spent ~14 s evaluating the fixed prefixes of the prompts every
question uses (the program prompt with its worked example, the router's rating
prompt, the brief vote prompt, and the split prompt under its adapter). Those states are kept in memory and written to
``cache/kv/`` (backends/kvcache.py), so after a warm-up neither this process nor a
later one evaluates them again. `r2local serve` warms at start, and `models pull`
after fetching, so the first `ask` after install is not the slow one.

The warm-up answers no question: each prompt is decoded for one token with a
placeholder question and nothing is recorded in the ledger (it costs nothing, and
the ledger is the record of answers). Only local tiers are warmed: the cloud is
never called.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from r2local.backends import Backend, Message
from r2local.engine.kinds import CHOICE, NUMBER, POLAR, SHORT
from r2local.engine.prompts import brief_messages, program_messages, short_messages, single_messages
from r2local.routing.splitter import split_messages
from r2local.routing.thresholds import score_messages

if TYPE_CHECKING:
    from r2local.engine.core import Engine

PLACEHOLDER = "What is 2 plus 2?"
EXTREME = "Which is largest: A) 2, B) 3? Answer with the letter."  # a choice's other program prompt


def prompts_for(writes_programs: bool) -> list[list[Message]]:
    """The prompts a local tier answers with, for a placeholder question (their fixed prefixes are the point)."""
    prose = single_messages(PLACEHOLDER)
    out = [prose, short_messages(prose)] + [brief_messages(prose, k) for k in (NUMBER, POLAR, SHORT)]
    programs = [program_messages(prose, kind) for kind in (NUMBER, POLAR, CHOICE)]
    return out + (programs + [program_messages(single_messages(EXTREME), CHOICE)] if writes_programs else [])


def described(seconds: dict[str, float]) -> str:
    """One line for the console: what the warm-up took per model."""
    return "warm: " + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items())


def warm(engine: "Engine") -> dict[str, float]:
    """Load the router and every local tier and prefill their prompts; seconds per model, in order."""
    jobs: dict[int, tuple[str, Backend, list[list[Message]]]] = {}
    router = engine.pool.router()
    jobs[id(router)] = (engine.settings.router.model, router, [score_messages(PLACEHOLDER, PLACEHOLDER)])
    for tier in engine.pool.tiers:
        if not tier.is_local:
            continue
        backend = engine.pool.backend(tier)
        _, _, prompts = jobs.setdefault(id(backend), (tier.model, backend, []))
        prompts.extend(prompts_for(tier.writes_programs and engine.settings.executor.programs))
    seconds: dict[str, float] = {}
    for name, backend, prompts in jobs.values():
        start = time.perf_counter()
        for messages in prompts:
            for _ in backend.stream(messages, max_tokens=1):
                pass
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
    if engine.router.can_split:  # the split prompt, under its adapter (snapshots are kept per adapter state)
        start = time.perf_counter()
        with engine.router.applied(engine.router.split_adapter):
            for _ in router.stream(split_messages(PLACEHOLDER), max_tokens=1):
                pass
        seconds[engine.settings.router.model] += time.perf_counter() - start
    return seconds
