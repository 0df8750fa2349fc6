"""llama.cpp backend (llama-cpp-python): chat template from the GGUF, grammar
for JSON schemas, token log-probabilities for confidence, label scoring in one
forward pass, optional LoRA adapter, and calls gated by the shared thread budget.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from r2local.errors import Cancelled, ContextOverflow, ModelError
from r2local.threads import ThreadBudget
from r2local.backends import llamaprobe, register
from r2local.backends.base import Chunk, FileRuntime, Message, Usage
from r2local.backends.grammar_decode import greedy_grammar_tokens, logsumexp
from r2local.backends.kvcache import PromptCache

# llama.cpp's CPU backend runs on OpenMP. libgomp's idle threads spin ~300k
# rounds before they sleep: when the machine is busier than our thread budget
# (other apps, a second model process) the spinning threads steal the cores the
# working ones need and generation slows 10-100x. Never spinning
# (OMP_WAIT_POLICY=PASSIVE) is safe but halves 2-thread decoding on an idle
# machine; a short spin keeps most of both (Qwen 0.5B, 2 threads, 2 cores:
# 44 tok/s idle and 18-20 with one or two busy cores, against 23 and 11-23
# passive, and 12 with libgomp's default under load). A user's own setting
# wins. It must be set before libgomp loads (at `import llama_cpp`).
if "OMP_WAIT_POLICY" not in os.environ:
    if sys.platform == "win32":  # MSVC's OpenMP knows only the policy
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        os.environ.setdefault("GOMP_SPINCOUNT", "1000")


class _Capture:
    """Logits processor that remembers the distribution each token is drawn from."""

    def __init__(self) -> None:
        self.logits: Any = None
        self.lse: float = 0.0

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        self.lse = logsumexp(logits)
        self.logits = logits
        return logits


def _tokens(llm: Any, prompt: list[int], temperature: float, grammar: Any) -> Iterator[tuple[int, float]]:
    """(token, log-probability) pairs for a prompt; greedy grammar calls take the fast path."""
    if grammar is not None and temperature == 0:
        return greedy_grammar_tokens(llm, prompt, grammar)
    return _generated_tokens(llm, prompt, temperature, grammar)


def _generated_tokens(llm: Any, prompt: list[int], temperature: float, grammar: Any) -> Iterator[tuple[int, float]]:
    """llama-cpp-python's own sampling (a grammar masks the whole vocabulary)."""
    from llama_cpp import LogitsProcessorList

    capture = _Capture()
    tokens = llm.generate(prompt, temp=temperature, grammar=grammar, logits_processor=LogitsProcessorList([capture]))
    try:
        for token in tokens:
            yield token, float(capture.logits[token]) - capture.lse
    finally:
        tokens.close()


@register("llamacpp")
class LlamaCppBackend(FileRuntime):
    supports_json_schema = True

    def __init__(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        n_ctx: int = 4096,
        threads: int = 1,
        budget: ThreadBudget | None = None,
        adapter: str | Path | None = None,
        seed: int = 0,
        kv_disk: bool = True,
    ) -> None:
        self.path = Path(path)
        self.kv_disk = kv_disk  # prompt snapshots outlive the process (kvcache); False: memory only
        self.model = model or self.path.stem
        self.n_ctx = n_ctx
        self.threads = threads
        self.budget = budget or ThreadBudget(threads)
        self.adapter = Path(adapter) if adapter else None
        self.seed = seed
        self._lock = threading.Lock()
        self._llm: Any = None
        self._formatter: Any = None
        self._grammars: dict[str, Any] = {}
        self.prompt_cache = PromptCache()
        self._burst = threading.local()
        self._ctx_threads = threads
        # LoRA hot swap (set_adapter): handles per adapter file, freed on close.
        self._lora_handles: dict[Path, Any] = {}
        self._swapped: tuple[Path | None, float] | None = None
        self._caches: dict[tuple[Path | None, float], PromptCache] = {}  # snapshots of the states not active now

    # -- loading -------------------------------------------------------------
    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        verdict = llamaprobe.ensure()  # before this process loads llama.cpp: a crashing build becomes a message
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise ModelError(
                "the llama.cpp runtime is not installed",
                fix="pip install 'r2local[llamacpp]'",
            ) from None
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}", fix="check the path, or run `r2local models pull`")
        if self.adapter is not None and not self.adapter.is_file():
            raise ModelError(f"LoRA adapter not found: {self.adapter}", fix="fix the adapter path in config.toml")
        try:
            with llamaprobe.load_options(verdict):
                llm = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    lora_path=str(self.adapter) if self.adapter else None,
                    seed=self.seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"cannot load {self.path.name}: not a valid GGUF file, or truncated ({exc})", fix=self._reload_fix()
            ) from None
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ModelError(
                f"{self.path.name} has no chat template (a base model?)",
                fix="use an instruction-tuned GGUF that embeds tokenizer.chat_template",
            )
        eos = llm.token_eos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else "",
            stop_token_ids=[eos],
        )
        self._llm = llm
        self.prompt_cache.use_disk(self._kv_folder())
        return llm

    def _kv_folder(self) -> Path | None:
        """Where this model's prompt snapshots outlive the process (None: memory only). The name holds
        all the state depends on: the file (path, size, time), the llama.cpp build, the context size and
        the LoRA adapter applied (its file and scale), so each adapter state has its own folder."""
        if not self.kv_disk:
            return None
        import llama_cpp

        from r2local import paths

        adapter, scale = self.active_adapter
        try:
            st = self.path.resolve().stat()
            ast = adapter.resolve().stat() if adapter is not None else None
        except OSError:
            return None
        ident = f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{llama_cpp.__version__}|{self.n_ctx}"
        if adapter is not None and ast is not None:
            ident += f"|{adapter.resolve()}|{ast.st_size}|{ast.st_mtime_ns}|{scale}"
        return paths.cache_dir() / "kv" / f"{self.path.stem[:40]}-{hashlib.sha1(ident.encode()).hexdigest()[:16]}"

    def _reload_fix(self) -> str:
        from r2local import paths

        if self.path.parent == paths.models_dir():  # ours: the store can fetch it again
            return f"delete {self.path} and fetch it again with `r2local models pull {self.model}`"
        return f"replace {self.path} with an intact copy, or point config.toml at another .gguf file"

    @contextmanager
    def burst(self, threads: int) -> Iterator[None]:
        """Calls from this thread use ``threads`` (still held from the shared budget).

        For phases where nothing else computes, like routing before the DAG starts.
        """
        self._burst.threads = max(1, threads)
        try:
            yield
        finally:
            self._burst.threads = None

    def _call_threads(self) -> int:
        return min(getattr(self._burst, "threads", None) or self.threads, self.budget.total)

    def _use_threads(self, llm: Any, threads: int) -> None:
        if threads != self._ctx_threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(llm.ctx, threads, threads)
            self._ctx_threads = threads

    def _chat_tokens(self, messages: list[Message]) -> list[int]:
        llm = self._load()
        result = self._formatter(messages=messages)
        return llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return self._grammars[key]

    def _check_fit(self, n_prompt: int, max_tokens: int) -> int:
        if n_prompt >= self.n_ctx - 8:
            raise ContextOverflow(
                f"the prompt has {n_prompt} tokens but {self.model} holds {self.n_ctx}",
                fix="shorten the question, or raise n_ctx for this model in config.toml",
            )
        return min(max_tokens, self.n_ctx - n_prompt)

    # -- Protocol ------------------------------------------------------------
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
        threads = self._call_threads()
        with self._lock, self.budget.hold(threads, cancel):
            llm = self._load()  # first: the load probe runs before llama_cpp is imported
            from llama_cpp import llama_model_get_vocab, llama_vocab_is_eog

            self._use_threads(llm, threads)
            prompt = self._chat_tokens(messages)
            limit = self._check_fit(len(prompt), max_tokens)
            grammar = self._grammar(json_schema) if json_schema else None
            vocab = llama_model_get_vocab(llm.model)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            produced, finish = 0, "length"
            if temperature > 0 and seed is not None:
                llm.set_seed(seed)  # a sample is the same sample whenever it is drawn (the vote, the cache)
            self.prompt_cache.restore(llm, prompt)
            tokens = _tokens(llm, prompt, temperature, grammar)
            try:
                for token, logprob in tokens:
                    if produced == 0:
                        self.prompt_cache.save(llm, prompt)
                    if llama_vocab_is_eog(vocab, token):
                        finish = "stop"
                        break
                    produced += 1
                    text = decoder.decode(llm.detokenize([token]))
                    yield Chunk(text=text, logprob=logprob)
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("cancelled")
                    if produced >= limit:
                        break
            finally:
                tokens.close()
            tail = decoder.decode(b"", final=True)
            yield Chunk(text=tail, finish_reason=finish, usage=Usage(len(prompt), produced), model=self.model)

    def score_labels(self, messages: list[Message], labels: list[str]) -> tuple[dict[str, float], int]:
        """Probabilities of each label's first token after the prompt: one forward pass.

        The prompt prefix shared with earlier calls stays in the KV cache, so a
        batch of subtasks pays only for their own tokens.
        """
        threads = self._call_threads()
        with self._lock, self.budget.hold(threads):
            llm = self._load()  # first: the load probe runs before llama_cpp is imported
            import numpy as np
            from llama_cpp import LogitsProcessorList

            self._use_threads(llm, threads)
            prompt = self._chat_tokens(messages)
            self._check_fit(len(prompt), 1)
            ids = [llm.tokenize(label.encode("utf-8"), add_bos=False, special=False)[0] for label in labels]
            if len(set(ids)) != len(ids):
                raise ValueError(f"labels {labels} share a first token; choose distinct labels")
            capture = _Capture()
            self.prompt_cache.restore(llm, prompt)
            tokens = llm.generate(prompt, temp=0.0, logits_processor=LogitsProcessorList([capture]))
            try:
                next(tokens)
                self.prompt_cache.save(llm, prompt)
            finally:
                tokens.close()
            picked = np.array([capture.logits[i] for i in ids], dtype=np.float64)
            probs = np.exp(picked - picked.max())
            probs /= probs.sum()
            return {label: float(p) for label, p in zip(labels, probs)}, len(prompt)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            llm = self._load()
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # -- LoRA hot swap ----------------------------------------------------------
    @property
    def active_adapter(self) -> tuple[Path | None, float]:
        """(adapter file, scale) applied now: the last ``set_adapter``, else the constructor's."""
        return self._swapped or (self.adapter, 1.0)

    def set_adapter(self, path: str | Path | None, scale: float = 1.0) -> None:
        """Apply a GGUF LoRA adapter to the loaded base without reloading it; None runs the base alone.

        Adapter handles stay loaded per file, so swapping back costs milliseconds.
        Prompt snapshots are kept per (adapter, scale): a snapshot taken under one
        state is restored only under the same state, so a router that swaps to an
        adapter for one call and back finds its own prompts' prefixes again (the
        live context's KV is stale after a swap and is reset). ``close()`` forgets
        the swap: a reload applies the constructor's ``adapter``.
        """
        import ctypes

        import llama_cpp

        target = Path(path) if path is not None else None
        with self._lock:
            llm = self._load()
            if (target, scale) == self.active_adapter:
                return
            if target is not None and target not in self._lora_handles:
                if not target.is_file():
                    raise ModelError(f"LoRA adapter not found: {target}", fix="export the adapter first, or fix its path")
                handle = llama_cpp.llama_adapter_lora_init(llm.model, str(target).encode("utf-8"))
                if not handle:
                    raise ModelError(
                        f"{target.name} is not a LoRA adapter for {self.path.name}",
                        fix="export the adapter against this base model (r2local.train.export.peft_to_gguf)",
                    )
                self._lora_handles[target] = handle
            if target is None:
                failed = llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
            else:
                handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._lora_handles[target])
                failed = llama_cpp.llama_set_adapters_lora(llm.ctx, handles, 1, (ctypes.c_float * 1)(scale))
            if failed:
                raise ModelError(f"llama.cpp refused the adapter {target}", fix="export the adapter against this base model")
            self._caches[self.active_adapter] = self.prompt_cache
            llm.reset()  # the live context's KV was computed under the previous state
            self._swapped = (target, scale)
            self.prompt_cache = self._caches.pop(self.active_adapter, None) or PromptCache()
            self.prompt_cache.use_disk(self._kv_folder())

    def _free_adapters(self, llm: Any) -> None:
        # Detach first, then free: the model must outlive its adapters.
        import llama_cpp

        if self._lora_handles:
            llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
            for handle in self._lora_handles.values():
                llama_cpp.llama_adapter_lora_free(handle)
        self._lora_handles.clear()
        self._swapped = None
        self._caches.clear()

    def close(self) -> None:
        with self._lock:
            self.prompt_cache.clear()
            if self._llm is not None:
                self._free_adapters(self._llm)
                self._llm.close()
                self._llm = None
