"""Benchmark exported LoRA adapters: `python -m benchmarks.adapters`.

For each router model: a random PEFT LoRA (fixed seed) is exported to GGUF and
llama.cpp's next-token distribution is compared with torch+PEFT's on the
allocator's scoring prompts; then the llama.cpp backend's hot swap and the
decode speed with and without the (unmerged) adapter are timed. One thread
everywhere; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import adapter_check as ac

# name in the model manifests -> (LoRA target modules, std of the random lora_B)
MODELS = {
    "smollm2-135m-instruct": (ac.ATTENTION, 0.2),
    "qwen2.5-coder-0.5b-instruct": (ac.ATTENTION + ["gate_proj", "up_proj", "down_proj"], 0.05),
}


@dataclass(frozen=True)
class Row:
    model: str
    arch: str
    lora: str
    c: ac.Comparison
    export_s: float
    load_s: float
    load_lora_s: float
    first_swap_ms: float
    swap_ms: float
    score_warm_ms: float
    score_cold_ms: float
    tok_s: float
    tok_s_lora: float


def _timed_open(base: Path, lora: Path | None) -> tuple[object, float]:
    start = time.perf_counter()
    llm = ac.open_llama(base, lora)
    return llm, time.perf_counter() - start


def decode_rate(llm, prompt: list[int], n: int = 48, repeats: int = 3) -> float:
    """Tokens/s evaluating one token at a time after ``prompt`` (best of ``repeats``:
    the machine is shared, the minimum is the least disturbed run)."""
    feed = (prompt * (n // len(prompt) + 1))[:n]  # any tokens cost the same to decode
    best = float("inf")
    for _ in range(repeats):
        llm.reset()
        llm.eval(prompt)
        start = time.perf_counter()
        for token in feed:
            llm.eval([token])
        best = min(best, time.perf_counter() - start)
    return n / best


def swap_times(base: Path, adapter: Path, rounds: int = 10) -> tuple[float, float, float, float]:
    """On the backend, in ms: first set_adapter (reads the file), median cached swap,
    and a label score with the prompt's KV cached vs right after a swap (which
    drops the cache: the real price of a swap)."""
    from r2local.backends.llamacpp import LlamaCppBackend
    from r2local.routing.thresholds import LABELS

    backend = LlamaCppBackend(base, threads=1, n_ctx=1024)
    messages = ac.prompts()[0]

    def score_ms() -> float:
        start = time.perf_counter()
        backend.score_labels(messages, list(LABELS))
        return (time.perf_counter() - start) * 1000

    try:
        backend.count_tokens("load")  # loads the base
        start = time.perf_counter()
        backend.set_adapter(adapter)
        first = (time.perf_counter() - start) * 1000
        times, warm, cold = [], [], []
        for i in range(rounds):
            start = time.perf_counter()
            backend.set_adapter(None if i % 2 == 0 else adapter)
            times.append((time.perf_counter() - start) * 1000)
            cold.append(score_ms())
            warm.append(score_ms())
        return first, statistics.median(times), statistics.median(warm), statistics.median(cold)
    finally:
        backend.close()


def bench_model(name: str, base: Path, work: Path) -> Row:
    modules, std = MODELS[name]
    ref = ac.build_reference(base, work / name, modules=modules, std=std)
    c = ac.check(ref)
    plain, load_s = _timed_open(base, None)
    tuned, load_lora_s = _timed_open(base, ref.gguf)
    try:
        tok_s, tok_s_lora = decode_rate(plain, ref.tokens[0]), decode_rate(tuned, ref.tokens[0])
        arch = plain.metadata["general.architecture"]
    finally:
        plain.close(), tuned.close()
    first, swap, warm, cold = swap_times(base, ref.gguf)
    lora = f"r=8 on {'q,k,v,o' if len(modules) == 4 else 'q,k,v,o,gate,up,down'}"
    return Row(name, arch, lora, c, ref.export_s, load_s, load_lora_s, first, swap, warm, cold, tok_s, tok_s_lora)


def table(rows: list[Row]) -> str:
    head = (
        "| model | arch | LoRA | KL adapter (llama.cpp vs torch) | KL floor (bases) | KL shift (adapter on/off) "
        "| Δ error | label lead err / floor | labels agree | export | load / with lora_path | first swap | cached swap | label score: repeat / first after swap "
        "| decode tok/s | with LoRA |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        c = r.c
        lines.append(
            f"| {r.model} | {r.arch} | {r.lora} | {c.kl_adapter:.4f} | {c.kl_floor:.4f} | {c.kl_shift:.3f} "
            f"| {c.delta_error:.3f} | {c.label_error:.2f} / {c.label_floor:.2f} | {c.labels_agree}/{c.decisive} decisive ({c.n} prompts) | {r.export_s:.2f} s "
            f"| {r.load_s:.2f} s / {r.load_lora_s:.2f} s | {r.first_swap_ms:.1f} ms | {r.swap_ms:.3f} ms | {r.score_warm_ms:.0f} / {r.score_cold_ms:.0f} ms "
            f"| {r.tok_s:.1f} | {r.tok_s_lora:.1f} ({(r.tok_s_lora / r.tok_s - 1) * 100:+.0f}%) |"
        )
    return "\n".join(lines)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at start"


def main(argv: list[str] | None = None) -> None:
    """Benchmark GGUF LoRA export, hot swap and adapter decode cost on the router models."""
    import torch

    from r2local import fetch
    from r2local.manifests import load_manifests

    parser = argparse.ArgumentParser(prog="python -m benchmarks.adapters", description=main.__doc__)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated manifest names")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    manifests = load_manifests()
    machine = _machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="r2-adapter-bench-") as work:
        for name in args.models.split(","):
            rows.append(bench_model(name, fetch.resolve(manifests[name]), Path(work)))
    print(f"Adapter bench: 1 thread (torch, llama.cpp), on a shared machine: {machine}.")
    print("KL in nats, mean over the 6 allocator prompts; floor = torch base vs llama.cpp base (quantised);")
    print("Δ error = relative error of llama.cpp's adapter-induced log-prob change; label lead = top label's log-odds")
    print("over the second, err = torch+PEFT vs llama.cpp+LoRA, floor = between the bases; decisive = lead > max(0.2, 2x floor);")
    print("decode = 1 token per eval, best of 3; a swap drops the KV cache, so the next call evaluates the whole prompt.\n")
    print(table(rows))


if __name__ == "__main__":
    main()
