import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from r2local.backends import complete
from r2local.backends.llamacpp import LlamaCppBackend
from r2local.errors import Cancelled, ContextOverflow, ModelError
from r2local.routing.plan import parse_plan, plan_schema
from r2local.threads import ThreadBudget

MSG = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def smol(smol_path: Path):
    backend = LlamaCppBackend(smol_path, model="smollm2", n_ctx=1024, threads=1)
    yield backend
    backend.close()


def test_stream_ends_with_usage_and_finish(smol: LlamaCppBackend):
    chunks = list(smol.stream(MSG, max_tokens=24))
    last = chunks[-1]
    assert last.usage is not None and last.finish_reason in ("stop", "length")
    text_chunks = [c for c in chunks if c.text]
    assert text_chunks and all(c.logprob is not None and c.logprob <= 0 for c in chunks[:-1])
    assert last.usage.output_tokens == len(chunks) - 1
    assert last.usage.input_tokens > smol.count_tokens("Name three colours.")  # plus the chat template


def test_complete_folds_the_stream(smol: LlamaCppBackend):
    result = complete(smol, MSG, max_tokens=8)
    assert result.text and result.usage.output_tokens <= 8
    assert result.finish_reason == "length" or result.usage.output_tokens < 8
    assert 0 < result.confidence <= 1
    assert result.ttft_ms is not None and result.latency_ms >= result.ttft_ms


def test_greedy_is_deterministic(smol: LlamaCppBackend):
    a = complete(smol, MSG, max_tokens=16).text
    b = complete(smol, MSG, max_tokens=16).text
    assert a == b


def test_json_schema_is_enforced_by_grammar(smol: LlamaCppBackend):
    schema = plan_schema(3)
    msgs = [{"role": "user", "content": "Split 'what is 2+2 times 3' into steps, as JSON."}]
    result = complete(smol, msgs, max_tokens=160, json_schema=schema)
    data = json.loads(result.text)  # the grammar guarantees JSON (if not truncated)
    assert isinstance(data["subtasks"], list) and 1 <= len(data["subtasks"]) <= 3
    assert parse_plan(result.text, "q", 3).subtasks


def _greedy_run(llm, tokens_iter, limit: int = 120) -> tuple[list[int], list[float]]:
    from llama_cpp import llama_model_get_vocab, llama_vocab_is_eog

    vocab = llama_model_get_vocab(llm.model)
    out, logprobs = [], []
    try:
        for token, logprob in tokens_iter:
            if llama_vocab_is_eog(vocab, token) or len(out) >= limit:
                break
            out.append(token)
            logprobs.append(logprob)
    finally:
        tokens_iter.close()
    return out, logprobs


def test_fast_grammar_path_picks_the_same_tokens_as_the_full_mask(smol: LlamaCppBackend):
    """Greedy + grammar checks only greedy's own pick; the result must equal
    llama-cpp-python masking the whole vocabulary, including where the model's
    top token is not allowed (the prompt asks for prose, the grammar for JSON)."""
    from r2local.backends.grammar_decode import greedy_grammar_tokens
    from r2local.backends.llamacpp import _generated_tokens

    llm = smol._load()
    grammar = smol._grammar(plan_schema(3))
    prompt = smol._chat_tokens([{"role": "user", "content": "Split 'what is 2+2 times 3' into steps."}])

    with smol._lock:
        llm.reset()
        free_first = next(iter(llm.generate(prompt, temp=0.0)))
        llm.reset()
        slow, slow_lp = _greedy_run(llm, _generated_tokens(llm, prompt, 0.0, grammar))
        llm.reset()
        fast, fast_lp = _greedy_run(llm, greedy_grammar_tokens(llm, prompt, grammar))
        warm, _ = _greedy_run(llm, greedy_grammar_tokens(llm, prompt, grammar))  # reuses the held prefix
        llm.reset()
    assert free_first != slow[0]  # the model wanted prose first: the rejection path ran
    assert fast == slow == warm
    assert fast_lp == pytest.approx(slow_lp, abs=1e-4)
    assert llm.detokenize(fast).decode().lstrip().startswith("{")


def test_label_scoring_is_one_forward_pass_and_sums_to_one(smol: LlamaCppBackend):
    msgs = [{"role": "user", "content": "Is the sky blue? Answer yes or no."}]
    probs, n_prompt = smol.score_labels(msgs, ["yes", "no"])
    assert set(probs) == {"yes", "no"} and sum(probs.values()) == pytest.approx(1.0)
    assert n_prompt > 5
    again, _ = smol.score_labels(msgs, ["yes", "no"])
    assert again == pytest.approx(probs)  # no sampling involved


def test_context_overflow_is_typed(smol: LlamaCppBackend):
    long = [{"role": "user", "content": "word " * 2000}]
    with pytest.raises(ContextOverflow) as info:
        list(smol.stream(long, max_tokens=8))
    assert "n_ctx" in info.value.fix


def test_cancel_stops_generation(smol: LlamaCppBackend):
    cancel = threading.Event()
    seen = []

    def on_text(t):
        seen.append(t)
        if len(seen) == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        complete(smol, [{"role": "user", "content": "Write a long story."}], max_tokens=200, cancel=cancel, on_text=on_text)
    assert len(seen) == 3


def test_corrupt_and_missing_files_give_clear_errors(tmp_path: Path, smol_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(smol_path.read_bytes()[: 1 << 20])  # truncated
    with pytest.raises(ModelError) as info:
        complete(LlamaCppBackend(bad), MSG, max_tokens=4)
    assert "not a valid GGUF" in str(info.value) and info.value.fix
    with pytest.raises(ModelError, match="not found"):
        complete(LlamaCppBackend(tmp_path / "missing.gguf"), MSG, max_tokens=4)


class CountingBudget(ThreadBudget):
    """Records how many threads were held at once."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.active = self.peak = 0
        self._count = threading.Lock()

    @contextmanager
    def hold(self, threads, cancel=None):
        with super().hold(threads, cancel):
            with self._count:
                self.active += threads
                self.peak = max(self.peak, self.active)
            time.sleep(0.05)  # widen the window in which an overlap would show
            try:
                yield
            finally:
                with self._count:
                    self.active -= threads


@pytest.mark.parametrize("total, expected_peak", [(1, 1), (2, 2)])
def test_thread_budget_caps_concurrent_models(smol_path: Path, total: int, expected_peak: int):
    budget = CountingBudget(total)
    models = [LlamaCppBackend(smol_path, threads=1, budget=budget) for _ in range(2)]
    barrier = threading.Barrier(2)

    def go(backend):
        barrier.wait()
        complete(backend, MSG, max_tokens=16)

    threads = [threading.Thread(target=go, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.peak == expected_peak
    for m in models:
        m.close()


def test_burst_uses_the_whole_budget_for_one_caller(smol_path: Path):
    budget = CountingBudget(2)
    model = LlamaCppBackend(smol_path, threads=1, budget=budget)
    complete(model, MSG, max_tokens=4)
    assert budget.peak == 1
    with model.burst(2):
        complete(model, MSG, max_tokens=4)
    assert budget.peak == 2
    with model.burst(8):  # capped at the budget
        complete(model, MSG, max_tokens=4)
    assert budget.peak == 2
    model.close()


def test_prompt_cache_restores_a_shared_prefix_exactly(smol_path: Path):
    model = LlamaCppBackend(smol_path, threads=1, n_ctx=2048)
    system = {"role": "system", "content": "You are terse. " * 40}
    a = [system, {"role": "user", "content": "Name a fruit."}]
    b = [system, {"role": "user", "content": "Name a colour."}]
    first_b = complete(model, b, max_tokens=12).text
    complete(model, a, max_tokens=12)
    other = [{"role": "user", "content": "Something unrelated entirely."}]
    complete(model, other, max_tokens=4)  # the context now holds an unrelated prompt
    hits = model.prompt_cache.hits
    again_b = complete(model, b, max_tokens=12).text
    assert model.prompt_cache.hits == hits + 1
    assert again_b == first_b  # restored KV gives the same greedy answer
    model.close()


def test_lora_adapter_is_loaded_and_changes_the_model(smol_path: Path, tmp_path: Path, smol: LlamaCppBackend):
    from .loragen import make_lora

    adapter = make_lora(tmp_path / "router-lora.gguf", smol_path)
    tuned = LlamaCppBackend(smol_path, threads=1, n_ctx=1024, adapter=adapter)
    msgs = [{"role": "user", "content": "Name three colours."}]
    base_probs, _ = smol.score_labels(msgs, ["yes", "no"])
    tuned_probs, _ = tuned.score_labels(msgs, ["yes", "no"])
    assert abs(base_probs["yes"] - tuned_probs["yes"]) > 0.01
    tuned.close()
    with pytest.raises(ModelError, match="adapter not found"):
        complete(LlamaCppBackend(smol_path, adapter=tmp_path / "missing.gguf"), msgs, max_tokens=2)


def test_pool_keeps_an_adapted_router_apart_from_the_plain_tier(smol_path: Path, tmp_path: Path, r2home):
    from r2local.config import parse_settings
    from r2local.pool import Pool

    from .loragen import make_lora

    adapter = make_lora(tmp_path / "a.gguf", smol_path)
    cfg = {
        "router": {"model": "smollm2-135m-instruct", "adapter": str(adapter)},
        "tiers": [{"name": "local", "backend": "llamacpp", "model": "smollm2-135m-instruct"}],
    }
    pool = Pool(parse_settings(cfg, r2home / "config.toml"))
    assert pool.router() is not pool.backend(pool.tiers[0])
    assert pool.router().adapter == adapter and pool.backend(pool.tiers[0]).adapter is None
    plain = {"router": {"model": "smollm2-135m-instruct"}, "tiers": cfg["tiers"]}
    shared = Pool(parse_settings(plain, r2home / "config.toml"))
    assert shared.router() is shared.backend(shared.tiers[0])  # one resident model
    pool.close(), shared.close()
