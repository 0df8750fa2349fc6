"""How much of a sampled program is the greedy program's own prefix? Prints a table. Not a test.

    python -m benchmarks.greedy_prefix /tmp/so0.jsonl /tmp/so1.jsonl [...]

Reads the sample caches of ``benchmarks.sample_order collect`` (the greedy program
and five programs sampled at temperature 0.7 per question). A sampled program
follows the greedy one token for token up to its first different token. Were
the greedy pass to keep its logits at every position, that shared prefix could
be sampled without any decode (same sampler, same distribution), and a sample
equal to the greedy program would cost nothing and need no sandbox run. This
says how much of the vote's sampled-program decoding that would save: tokens
by the 0.5B's own tokenizer, seconds as the cache recorded them, scaled by the
share of each sample's tokens past its shared prefix.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmarks.perf import _model
from r2local.tables import table


def shared(greedy: list[int], sample: list[int]) -> int:
    """Tokens ``sample`` shares with ``greedy`` before the first one that differs."""
    k = 0
    while k < min(len(greedy), len(sample)) and greedy[k] == sample[k]:
        k += 1
    return k


def family(qid: str) -> str:
    return qid.rsplit("-", 1)[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("caches", nargs="+", type=Path, help="sample_order collect files")
    args = p.parse_args(argv)
    from llama_cpp import Llama

    vocab = Llama(str(_model("qwen2.5-coder-0.5b-instruct")), vocab_only=True, verbose=False)
    tok = lambda text: vocab.tokenize(text.encode(), add_bos=False, special=False)
    sums: dict[str, dict[str, list[float]]] = {}
    for path in args.caches:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            programs = row["samples"].get("P") or []
            if len(programs) < 2:
                continue
            greedy = tok(programs[0]["text"])
            s = sums.setdefault(family(row["id"]), {"same": [], "tokens": [], "kept": [], "s": [], "left_s": []})
            for sample in programs[1:]:
                mine = tok(sample["text"])
                k = shared(greedy, mine)  # all of it when the sample is the greedy program
                s["same"].append(float(mine == greedy))
                s["tokens"].append(float(len(mine)))
                s["kept"].append(float(k))
                s["s"].append(sample["s"])
                s["left_s"].append(sample["s"] * (1 - k / max(1, len(mine))))
    rows = []
    for name, s in sums.items():
        saved = 1 - sum(s["left_s"]) / max(1e-9, sum(s["s"]))
        rows.append([name, len(s["same"]), f"{statistics.mean(s['same']):.0%}", f"{statistics.median(s['kept']):.0f}",
                     f"{sum(s['kept']) / max(1.0, sum(s['tokens'])):.0%}", f"{statistics.median(s['s']):.2f}", f"{saved:.0%}"])
    print(table(["questions", "sampled programs", "equal to greedy", "median first new token", "tokens shared",
                 "median s a sample", "seconds saved"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
