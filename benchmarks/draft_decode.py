"""Can a sampled program be drawn faster with the greedy program as its draft? Prints a table. Not a test.

    python -m benchmarks.draft_decode [--set multi_step] [--n 8] [--draft 3,12] [--threads 1]

The vote's sampled programs (temperature 0.7) often repeat much of the greedy
program of the same prompt. Exact speculative sampling: feed the greedy
program's next tokens (where the sample still follows it) as a draft in one
batch with logits at every position, sample each position from its own
logits with the same sampler, and keep the draft up to the first token the
sampler did not draw. The samples keep their distribution; what changes is
the number of llama_decode calls. It pays only where a batch of n tokens
costs much less than n single-token decodes, and where samples follow the
draft for long runs. This measures both on one machine: for each question,
the greedy program, a plain sample, and the same sample drawn with drafts of
each length. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from r2local.tables import table

SETS = Path(__file__).parent / "sets"


def _lookup(draft: list[int], out: list[int], n: int) -> list[int]:
    """The draft's next ``n`` tokens after what was sampled: where the sample follows it, else after the
    last 3 (then 2) sampled tokens' latest match in it."""
    if draft[: len(out)] == out:
        return draft[len(out): len(out) + n]
    for ngram in (3, 2):
        tail = out[-ngram:]
        for i in range(len(draft) - ngram, -1, -1):
            if draft[i: i + ngram] == tail:
                return draft[i + ngram: i + ngram + n]
    return []


def _plain(llm, is_eog, prompt: list[int], temp: float, seed: int, limit: int) -> list[int]:
    llm.set_seed(seed)
    out: list[int] = []
    tokens = llm.generate(prompt, temp=temp)
    for token in tokens:
        if is_eog(token) or len(out) >= limit:
            break
        out.append(token)
    tokens.close()
    return out


def _drafted(llm, is_eog, prompt: list[int], temp: float, seed: int, draft: list[int], n: int,
             limit: int) -> tuple[list[int], int]:
    """A sample drawn with ``draft`` as speculation: (tokens, llama_decode calls after the prompt)."""
    llm.set_seed(seed)
    sampler = llm._init_sampler(temp=temp)
    held = len(prompt) - 1  # the caller left the prompt (all but its last token) evaluated, as a warm vote finds it
    llm._ctx.kv_cache_seq_rm(-1, held, -1)
    llm.n_tokens = held
    llm.eval(prompt[held:])
    out: list[int] = []
    calls = 0
    token = sampler.sample(llm._ctx, -1)
    while not is_eog(token) and len(out) < limit:
        out.append(token)
        batch = [token] + _lookup(draft, out, n)
        past = llm.n_tokens
        llm._batch.set_batch(batch=batch, n_past=past, logits_all=True)
        llm._ctx.decode(llm._batch)
        calls += 1
        llm.input_ids[past: past + len(batch)] = batch
        llm.n_tokens += len(batch)
        for j in range(len(batch)):
            token = sampler.sample(llm._ctx, j)
            if j + 1 < len(batch) and token == batch[j + 1] and not is_eog(token) and len(out) < limit:
                out.append(token)  # the sampler drew the drafted token: its logits are already computed
                continue
            llm._ctx.kv_cache_seq_rm(-1, past + j + 1, -1)  # drop the draft after the first token not drawn
            llm.n_tokens = past + j + 1
            break
    return out, calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="multi_step")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--draft", default="3,12", help="draft lengths to try, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.7)
    args = ap.parse_args()
    from llama_cpp import llama_model_get_vocab, llama_vocab_is_eog

    from r2local import paths
    from r2local.backends.llamacpp import LlamaCppBackend
    from r2local.engine.prompts import program_messages, single_messages

    backend = LlamaCppBackend(paths.models_dir() / "qwen2.5-coder-0.5b-instruct.gguf", threads=args.threads,
                              kv_disk=False)
    llm = backend._load()
    vocab = llama_model_get_vocab(llm.model)

    def is_eog(token: int) -> bool:
        return bool(llama_vocab_is_eog(vocab, token))

    lengths = [int(x) for x in args.draft.split(",")]
    items = [json.loads(line) for line in (SETS / f"{args.set}.jsonl").read_text().splitlines() if line.strip()]
    rows, totals = [], {"plain": 0.0, **{n: 0.0 for n in lengths}}
    for seed, it in enumerate(items[: args.n], start=1):
        prompt = backend._chat_tokens(program_messages(single_messages(it["question"])))
        llm.reset()
        greedy = _plain(llm, is_eog, prompt, 0.0, 0, 256)
        # every timed sample below starts from the prompt evaluated (the greedy call left it in the KV)
        start = time.perf_counter()
        plain = _plain(llm, is_eog, prompt, args.temperature, seed, 256)
        t_plain = time.perf_counter() - start
        totals["plain"] += t_plain
        row = [it["id"], str(len(greedy)), str(len(plain)), f"{t_plain:.2f}"]
        for n in lengths:
            start = time.perf_counter()
            drawn, calls = _drafted(llm, is_eog, prompt, args.temperature, seed, greedy, n, 256)
            took = time.perf_counter() - start
            totals[n] += took
            row += [f"{took:.2f}", f"{calls}/{len(drawn)}", "yes" if drawn == plain else "no"]
        rows.append(row)
    head = ["question", "greedy tok", "sample tok", "plain s"]
    for n in lengths:
        head += [f"draft {n} s", f"decodes/tok ({n})", f"same ({n})"]
    print(f"\n## Sampled programs with the greedy program as draft (Qwen2.5-Coder-0.5B, {args.threads} thread(s),"
          f" T={args.temperature})\n")
    print(table(head, rows))
    print("\ntotal seconds: plain " + f"{totals['plain']:.2f}; "
          + "; ".join(f"draft {n}: {totals[n]:.2f} ({totals[n] / totals['plain']:.2f}x)" for n in lengths))


if __name__ == "__main__":
    main()
