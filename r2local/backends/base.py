"""The one backend Protocol, its stream chunks, and the fold into a completion.

A backend streams chunks; the last chunk carries usage and finish reason, which
is what the ledger needs. ``complete`` folds a stream, timing it on the way.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

Message = dict[str, str]


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    # "reported" by the runtime or server, or "counted" by us when a server
    # streams no usage.
    source: str = "reported"


@dataclass(frozen=True)
class Chunk:
    text: str = ""
    logprob: float | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage
    model: str
    latency_ms: float
    ttft_ms: float | None
    confidence: float | None = None
    probs: dict[str, float] | None = None  # label probabilities, for a scoring call


@dataclass(frozen=True)
class BackendSpec:
    """What the pool knows when it builds a backend; each runtime takes what it needs."""

    model: str  # manifest name, file stem, or the endpoint's model id
    path: Path | None = None  # the model file or folder (runtimes that load one)
    n_ctx: int = 4096
    threads: int = 1
    budget: Any = None  # the pool's ThreadBudget
    adapter: str | None = None  # LoRA adapter (runtimes that support one)
    tier: str = ""
    is_local: bool = True
    base_url: str | None = None
    api_key: Callable[[], str] | None = None
    timeout_s: float = 60.0


class FileRuntime:
    """Capabilities and constructor shared by local runtimes that load a model file or folder."""

    is_local = True
    loads_file = True
    local_by_default = True
    uses_key = False
    supports_lora = True

    @classmethod
    def build(cls, spec: BackendSpec) -> Any:
        return cls(spec.path, model=spec.model, n_ctx=spec.n_ctx, threads=spec.threads,  # type: ignore[call-arg]
                   budget=spec.budget, adapter=spec.adapter)


@runtime_checkable
class Backend(Protocol):
    """What every runtime implements. Heavy libraries load on first use.

    Class-level capabilities the pool reads from the registry: ``loads_file``
    (a local runtime with a resident model file; else a remote endpoint),
    ``local_by_default`` (a tier on it counts as local unless configured),
    ``uses_key`` (needs an API key from the keyring), ``supports_lora``,
    ``supports_json_schema``; and ``build(spec)``, the constructor the pool calls.
    """

    model: str
    is_local: bool
    supports_json_schema: bool
    supports_lora: bool

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        cancel: threading.Event | None = None,
        seed: int | None = None,
    ) -> Iterator[Chunk]: ...

    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class LabelScorer(Protocol):
    """Backends that can score label tokens in one forward pass (the allocator).

    Returns the label probabilities and the number of prompt tokens.
    """

    def score_labels(self, messages: list[Message], labels: list[str]) -> tuple[dict[str, float], int]: ...


@dataclass
class _Fold:
    parts: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    usage: Usage | None = None
    finish: str | None = None
    model: str | None = None
    ttft: float | None = None


def complete(
    backend: Backend,
    messages: list[Message],
    *,
    on_text: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> Completion:
    """Run ``backend.stream`` to the end and fold it into one Completion.

    Args:
        backend: any Backend.
        messages: chat messages.
        on_text: called with each text piece as it arrives (live display).
        **kwargs: passed to ``stream`` (max_tokens, temperature, json_schema, cancel).
    """
    start = time.perf_counter()
    acc = _Fold()
    stream = backend.stream(messages, **kwargs)
    try:
        for chunk in stream:
            if chunk.text:
                if acc.ttft is None:
                    acc.ttft = (time.perf_counter() - start) * 1000
                acc.parts.append(chunk.text)
                if on_text is not None:
                    on_text(chunk.text)
            if chunk.logprob is not None:
                acc.logprobs.append(chunk.logprob)
            acc.usage = chunk.usage or acc.usage
            acc.finish = chunk.finish_reason or acc.finish
            acc.model = chunk.model or acc.model
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    text = "".join(acc.parts)
    usage = acc.usage or Usage(backend.count_tokens(flatten(messages)), backend.count_tokens(text), "counted")
    confidence = math.exp(sum(acc.logprobs) / len(acc.logprobs)) if acc.logprobs else None
    return Completion(
        text=text,
        finish_reason=acc.finish or "stop",
        usage=usage,
        model=acc.model or backend.model,
        latency_ms=(time.perf_counter() - start) * 1000,
        ttft_ms=acc.ttft,
        confidence=confidence,
    )


def flatten(messages: list[Message]) -> str:
    return "\n".join(m.get("content", "") for m in messages)
