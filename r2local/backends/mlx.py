"""MLX backend (mlx-lm) for Apple Silicon; also runs on Linux with ``mlx[cpu]``.

mlx-lm has no grammar-constrained decoding, so ``supports_json_schema`` is
False and callers validate the JSON they ask for in the prompt.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

from r2local.errors import Cancelled, ContextOverflow, ModelError
from r2local.threads import ThreadBudget
from r2local.backends import register
from r2local.backends.base import Chunk, FileRuntime, Message, Usage


@register("mlx")
class MlxBackend(FileRuntime):
    supports_json_schema = False

    def __init__(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        n_ctx: int = 4096,
        threads: int = 1,
        budget: ThreadBudget | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.model = model or self.path.name
        self.n_ctx = n_ctx
        self.threads = threads
        self.budget = budget or ThreadBudget(threads)
        self.adapter = Path(adapter) if adapter else None
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            try:
                from mlx_lm import load
            except ImportError:
                raise ModelError("the MLX runtime is not installed", fix="pip install 'r2local[mlx]'") from None
            if not self.path.is_dir():
                raise ModelError(f"MLX model folder not found: {self.path}", fix="point the tier at an mlx-lm model folder")
            try:
                self._loaded = load(str(self.path), adapter_path=str(self.adapter) if self.adapter else None)
            except (ValueError, FileNotFoundError, OSError) as exc:
                raise ModelError(f"cannot load MLX model {self.path}: {exc}", fix="re-convert it with mlx_lm.convert") from None
        return self._loaded

    def _prompt(self, messages: list[Message]) -> list[int]:
        _, tokenizer = self._load()
        tokens = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
        if len(tokens) >= self.n_ctx - 8:
            raise ContextOverflow(
                f"the prompt has {len(tokens)} tokens but {self.model} holds {self.n_ctx}",
                fix="shorten the question, or raise n_ctx for this model in config.toml",
            )
        return tokens

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        cancel: threading.Event | None = None,
        seed: int | None = None,
    ) -> Iterator[Chunk]:
        from mlx_lm import stream_generate
        from mlx_lm.sample_utils import make_sampler

        with self._lock, self.budget.hold(self.threads, cancel):
            model, tokenizer = self._load()
            prompt = self._prompt(messages)
            if temperature > 0 and seed is not None:
                import mlx.core as mx

                mx.random.seed(seed)
            finish, produced = "length", 0
            for resp in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens, sampler=make_sampler(temp=temperature)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                if resp.finish_reason == "stop":
                    # The closing response holds the end-of-sequence token, not text.
                    finish = "stop"
                    if resp.text:
                        yield Chunk(text=resp.text)
                    break
                produced += 1
                yield Chunk(text=resp.text, logprob=float(resp.logprobs[resp.token].item()))
                finish = resp.finish_reason or finish
            yield Chunk(finish_reason=finish, usage=Usage(len(prompt), produced), model=self.model)

    def score_labels(self, messages: list[Message], labels: list[str]) -> tuple[dict[str, float], int]:
        """Label probabilities from the logits after the prompt: one forward pass."""
        import mlx.core as mx

        with self._lock, self.budget.hold(self.threads):
            model, tokenizer = self._load()
            prompt = self._prompt(messages)
            ids = [tokenizer.encode(label, add_special_tokens=False)[0] for label in labels]
            if len(set(ids)) != len(ids):
                raise ValueError(f"labels {labels} share a first token; choose distinct labels")
            logits = model(mx.array(prompt)[None])[0, -1].astype(mx.float32)
            picked = logits[mx.array(ids)]
            probs = mx.softmax(picked).tolist()
            return dict(zip(labels, (float(p) for p in probs))), len(prompt)

    def count_tokens(self, text: str) -> int:
        _, tokenizer = self._load()
        return len(tokenizer.encode(text, add_special_tokens=False))

    def close(self) -> None:
        with self._lock:
            self._loaded = None
