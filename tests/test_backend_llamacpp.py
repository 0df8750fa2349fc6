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
    # An adapter's KV is not the base's: its snapshots live in a folder of their own.
    assert tuned.prompt_cache.disk is not None and smol.prompt_cache.disk is not None
    assert tuned.prompt_cache.disk != smol.prompt_cache.disk
    tuned.close()
    folder = smol.prompt_cache.disk
    smol.set_adapter(adapter)  # swapped in: the adapter's folder, the same a load-time adapter gets
    assert smol.prompt_cache.disk == tuned.prompt_cache.disk
    smol.set_adapter(adapter, scale=0.5)  # another scale is another state
    assert smol.prompt_cache.disk not in (folder, tuned.prompt_cache.disk)
    smol.set_adapter(None)
    assert smol.prompt_cache.disk is not None and smol.prompt_cache.disk.name == folder.name
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


def test_prompt_snapshots_outlive_the_process_and_give_the_same_answer(smol_path: Path, r2home: Path):
    # A cold `r2local ask` spent most of its time re-evaluating a fixed prompt prefix a warm
    # process already held; the snapshot on disk serves the next process (here: a new backend).
    system = {"role": "system", "content": "You answer in one word. " * 30}
    a = [system, {"role": "user", "content": "Name a fruit."}]
    b = [system, {"role": "user", "content": "Name a colour."}]
    fresh = LlamaCppBackend(smol_path, threads=1, n_ctx=2048)
    complete(fresh, b, max_tokens=12)
    complete(fresh, a, max_tokens=12)  # the same family: no second file
    folder = fresh.prompt_cache.disk
    assert folder is not None and folder.is_relative_to(r2home) and len(list(folder.glob("*.kv"))) == 1
    # What a warm process answers when its memory snapshot of b serves b: the KV restored, the last
    # token replayed (a token decoded alone can round differently from the same token in a batch, so
    # the cold first answer may differ on this 135M model; the disk must match the warm path).
    complete(fresh, [{"role": "user", "content": "Something unrelated entirely."}], max_tokens=2)
    hits = fresh.prompt_cache.hits
    warm_b = complete(fresh, b, max_tokens=12).text
    assert fresh.prompt_cache.hits == hits + 1
    fresh.close()

    later = LlamaCppBackend(smol_path, threads=1, n_ctx=2048)  # a new process: nothing in memory
    again_b = complete(later, b, max_tokens=12).text
    assert later.prompt_cache.disk_hits == 1 and later.prompt_cache.hits == 0
    assert again_b == warm_b  # the restored KV gives the warm process's greedy answer
    later.close()

    other = LlamaCppBackend(smol_path, threads=1, n_ctx=1024)  # another context size: its own folder
    complete(other, b, max_tokens=2)
    assert other.prompt_cache.disk != folder and other.prompt_cache.disk_hits == 0
    other.close()


def test_a_damaged_snapshot_file_is_passed_over(smol_path: Path, r2home: Path):
    b = [{"role": "system", "content": "You answer in one word. " * 30}, {"role": "user", "content": "Name a colour."}]
    model = LlamaCppBackend(smol_path, threads=1, n_ctx=2048)
    want = complete(model, b, max_tokens=12).text  # a cold answer: no snapshot used
    [snap] = list(model.prompt_cache.disk.glob("*.kv"))
    model.close()
    snap.write_bytes(snap.read_bytes()[: snap.stat().st_size // 2])  # cut short (a full disk, a killed write)
    cut = LlamaCppBackend(smol_path, threads=1, n_ctx=2048)
    assert complete(cut, b, max_tokens=12).text == want and cut.prompt_cache.disk_hits == 0
    cut.close()
    snap.write_bytes(b"not a snapshot")
    junk = LlamaCppBackend(smol_path, threads=1, n_ctx=2048)
    assert complete(junk, b, max_tokens=12).text == want and junk.prompt_cache.disk_hits == 0
    junk.close()
