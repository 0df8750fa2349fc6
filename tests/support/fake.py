"""A scripted backend for fast, exact executor tests.

Each call takes the next ``Step`` of its model's script: the text to stream,
or an error to raise (before the stream or after some text), the per-token
confidence, a delay. Registered like any plugin backend, so a tier in a
config says ``backend = "scripted"`` and the pool builds it through the
registry. Real-model tests stay; this adds precision where a real model
cannot be made to fail on cue.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from r2local.backends import BackendSpec, Chunk, Message, Usage, register
from r2local.backends.base import flatten
from r2local.errors import BackendError, Cancelled


@dataclass(frozen=True)
class Step:
    """One scripted call."""

    text: str = "42"
    confidence: float | None = 0.9  # probability of every token (None: no logprobs)
    error: BackendError | None = None  # raised instead of answering ...
    error_after: int | None = None  # ... or after this many pieces of text (a cut stream)
    delay_s: float = 0.0  # before the first piece (cancel is checked meanwhile)


Script = list[Step] | Callable[[list[Message]], Step]


@dataclass
class Scripts:
    """Scripts by model name, and every call each model received."""

    by_model: dict[str, Script] = field(default_factory=dict)
    calls: dict[str, list[list[Message]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, model: str, messages: list[Message]) -> Step:
        with self.lock:
            self.calls[model].append(messages)
            script = self.by_model.get(model)
            if script is None:
                return Step()
            if callable(script):
                return script(messages)
            if not script:
                raise AssertionError(f"the script for {model!r} ran out")
            return script.pop(0)

    def reset(self) -> None:
        with self.lock:
            self.by_model.clear()
            self.calls.clear()


SCRIPTS = Scripts()


@register("scripted")
class ScriptedBackend:
    is_local = True
    supports_json_schema = False
    supports_lora = False
    loads_file = False  # nothing to load: built per tier, like an endpoint
    local_by_default = True
    uses_key = False

    @classmethod
    def build(cls, spec: BackendSpec) -> "ScriptedBackend":
        return cls(spec.model, is_local=spec.is_local)

    def __init__(self, model: str, *, is_local: bool = True, scripts: Scripts = SCRIPTS) -> None:
        self.model = model
        self.is_local = is_local
        self.scripts = scripts

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
               json_schema: dict[str, Any] | None = None, cancel: threading.Event | None = None,
               seed: int | None = None) -> Iterator[Chunk]:
        step = self.scripts.next(self.model, messages)
        _wait(step.delay_s, cancel)
        if step.error is not None and step.error_after is None:
            raise step.error
        logprob = math.log(step.confidence) if step.confidence else None
        pieces = step.text.split(" ")
        for i, piece in enumerate(pieces):
            if step.error is not None and i == step.error_after:
                raise step.error
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            yield Chunk(text=piece if i == 0 else " " + piece, logprob=logprob)
        usage = Usage(self.count_tokens(flatten(messages)), len(pieces) if step.text else 0)
        yield Chunk(finish_reason="stop", usage=usage, model=self.model)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass


def _wait(seconds: float, cancel: threading.Event | None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cancel is not None and cancel.wait(min(0.01, max(0.0, deadline - time.monotonic()))):
            raise Cancelled("cancelled")
        if cancel is None:
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
