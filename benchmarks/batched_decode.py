"""Does decoding k samples in one batch beat decoding them one after another? Prints a table. Not a test.

    python -m benchmarks.batched_decode [--k 3] [--tokens 96] [--threads 1,2,4] [--reps 2]

The vote draws k answers to one prompt. Sequentially, each sample reads the
prompt again (or restores its KV) and decodes its tokens alone: k matrix-vector
passes per step. Batched, the prompt is decoded once in sequence 0, its KV
copied to sequences 1..k-1 (``llama_memory_seq_cp``), and each step decodes the
k next tokens in one ``llama_decode`` (one matrix-matrix pass). Both paths
decode exactly ``--tokens`` tokens per sample (no stop at end-of-text), drawing
tokens at temperature 0.7 from the same seeded generator, so the work compared
is the same. A third column reads the prompt once and decodes the samples
one after another from copies of its KV (what a prompt-cache restore gives),
so the batch's own gain shows apart from prefix sharing. Run it on a quiet machine: one other busy process halves the
numbers.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time

import numpy as np

from benchmarks.perf import _model
from r2local.tables import table

PROMPT = ("<|im_start|>system\nYou are a careful assistant. End with 'The answer is X.'<|im_end|>\n"
          "<|im_start|>user\nA box holds 12 eggs. A baker uses 3 boxes and then 5 more eggs. "
          "How many eggs did the baker use?<|im_end|>\n<|im_start|>assistant\n")


def _quiet_logs(L) -> None:  # noqa: N803
    global _LOG_CB
    _LOG_CB = L.llama_log_callback(lambda level, text, data: None)  # kept alive: C holds the pointer
    L.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


_LOG_CB = None


class Model:
    """One model and one context with room for k sequences, through llama.cpp's C API."""

    def __init__(self, path: str, k: int, threads: int, n_ctx: int = 2048) -> None:
        import llama_cpp as L

        self.L = L
        _quiet_logs(L)
        L.llama_backend_init()
        self.model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
        params = L.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_seq_max = n_ctx, 512, k
        params.n_threads = params.n_threads_batch = threads
        self.ctx = L.llama_init_from_model(self.model, params)
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.batch = L.llama_batch_init(512, 0, k)

    def tokenize(self, text: str) -> list[int]:
        buf = (self.L.llama_token * 1024)()
        n = self.L.llama_tokenize(self.vocab, text.encode(), len(text.encode()), buf, 1024, False, True)
        return list(buf[:n])

    def clear(self) -> None:
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)

    def decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """items: (token, position, sequence, want logits)."""
        b = self.batch
        for i, (tok, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, logits
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        if self.L.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def logits(self, i: int) -> np.ndarray:
        ptr = self.L.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def close(self) -> None:
        self.L.llama_batch_free(self.batch)
        self.L.llama_free(self.ctx)
        self.L.llama_model_free(self.model)


def _draw(logits: np.ndarray, rng: np.random.Generator, temperature: float = 0.7) -> int:
    z = logits / temperature
    top = np.argpartition(z, -40)[-40:]  # top-40, as llama.cpp's default sampler chain
    p = np.exp(z[top] - z[top].max())
    return int(top[rng.choice(len(top), p=p / p.sum())])


def _prompt(m: Model, prompt: list[int], seq: int = 0) -> None:
    m.decode([(t, i, seq, i == len(prompt) - 1) for i, t in enumerate(prompt)])


def sequential(m: Model, prompt: list[int], k: int, tokens: int, seed: int) -> float:
    rng, start = np.random.default_rng(seed), time.perf_counter()
    for _ in range(k):
        m.clear()
        _prompt(m, prompt)
        last = len(prompt) - 1
        for step in range(tokens):
            tok = _draw(m.logits(last if step == 0 else 0), rng)
            m.decode([(tok, len(prompt) + step, 0, True)])
    return time.perf_counter() - start


def _shared_prompt(m: Model, prompt: list[int], k: int, rng: np.random.Generator) -> list[int]:
    """The prompt decoded once in sequence 0 and copied to the others; each sequence's first token."""
    m.clear()
    _prompt(m, prompt)
    mem = m.L.llama_get_memory(m.ctx)
    for s in range(1, k):
        m.L.llama_memory_seq_cp(mem, 0, s, -1, -1)
    first = m.logits(len(prompt) - 1).copy()
    return [_draw(first, rng) for _ in range(k)]


def shared(m: Model, prompt: list[int], k: int, tokens: int, seed: int) -> float:
    """The prompt read once, then each sample decoded alone (what a KV snapshot restore gives)."""
    rng, start = np.random.default_rng(seed), time.perf_counter()
    nxt = _shared_prompt(m, prompt, k, rng)
    for s in range(k):
        tok = nxt[s]
        for step in range(tokens):
            m.decode([(tok, len(prompt) + step, s, True)])
            tok = _draw(m.logits(0), rng)
    return time.perf_counter() - start


def batched(m: Model, prompt: list[int], k: int, tokens: int, seed: int) -> float:
    rng, start = np.random.default_rng(seed), time.perf_counter()
    nxt = _shared_prompt(m, prompt, k, rng)
    for step in range(tokens):
        m.decode([(nxt[s], len(prompt) + step, s, True) for s in range(k)])
        nxt = [_draw(m.logits(s), rng) for s in range(k)]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    path = str(_model(args.model))
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        m = Model(path, args.k, threads)
        prompt = m.tokenize(PROMPT)
        one = statistics.median(sequential(m, prompt, 1, args.tokens, r) for r in range(args.reps))
        seq = statistics.median(sequential(m, prompt, args.k, args.tokens, r) for r in range(args.reps))
        sha = statistics.median(shared(m, prompt, args.k, args.tokens, r) for r in range(args.reps))
        bat = statistics.median(batched(m, prompt, args.k, args.tokens, r) for r in range(args.reps))
        m.close()
        rows.append([threads, f"{one:.2f}", f"{seq:.2f}", f"{sha:.2f}", f"{bat:.2f}", f"{seq / one:.2f}x",
                     f"{sha / one:.2f}x", f"{bat / one:.2f}x", f"{sha / bat:.2f}x"])
    print(f"{args.model}, prompt {len(prompt)} tokens, k = {args.k} samples of {args.tokens} tokens, "
          f"median of {args.reps}")
    print(table(["threads", "1 sample s", f"{args.k} rereading s", f"{args.k} shared-prompt s", f"{args.k} batched s",
                 "rereading/one", "shared/one", "batched/one", "batched speed-up"], rows, right=set(range(1, 9))))


if __name__ == "__main__":
    main()
