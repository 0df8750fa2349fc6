"""Time one-token allocator GRPO on a real router: `python -m benchmarks.grpo`.

Prints a Markdown table per configuration: per-step time (mean/median),
total wall, peak RSS and the reward curve, for G=8, 8 prompts of ~100 tokens,
LoRA r16 on q,k,v,o. Configurations go from the naive step (all layers carry
LoRA, full-vocabulary logits at every position) to the speed-ups this package
uses (label rows only at the last position, LoRA on the top layers with the
frozen layers cached, the batch's shared prompt prefix run once).

Measured on the shared 2-core box (Qwen2.5-Coder-0.5B, 2 threads, quiet
spell): naive 24.7 s/step, label rows 12.9, top-4 cached 1.9, top-4 cached +
shared prefix 0.96 (0.27 s once per distinct prompt for the frozen layers and
the reference). At lr 3e-4 the top-4 adapter took greedy label accuracy on
the bench set from 0.34 to 1.00 in 40 steps.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r2local.routing.thresholds import LABELS, score_messages
from r2local.train.data import AllocExample

TOPICS = [
    "a train timetable",
    "a recipe for 12 people",
    "compound interest on a loan",
    "the area of a garden",
    "a chess opening",
    "a unit conversion",
    "the boiling point of water at altitude",
    "a tax bracket",
    "a proof that the square root of 2 is irrational",
    "the speed of a falling stone",
    "a shopping bill with discounts",
    "a tiling puzzle",
]


def bench_examples(n: int, seed: int = 0) -> list[AllocExample]:
    """Allocator prompts of ~100 tokens with a reward table whose best label
    follows a rule the router can learn (the step's wording)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        a, b = rng.randint(2, 999), rng.randint(2, 999)
        kind = i % 3
        step = [
            f"Write down the number {a}.",
            f"Compute {a} times {b} and round to the nearest ten.",
            f"Prove that the result for {topic} is optimal among all {a} possible arrangements.",
        ][kind]
        question = (
            f"I am working on {topic}. The numbers involved are {a} and {b}, and I need a careful answer "
            f"that explains every step and checks the result."
        )
        rewards = {label: (1.0 if k == kind else 0.2) - 0.1 * k for k, label in enumerate(LABELS)}
        out.append(AllocExample(score_messages(question, step), rewards))
    return out


@dataclass(frozen=True)
class Config:
    name: str
    layers: int | None
    naive: bool = False
    share_prefix: bool = False


CONFIGS = {
    "naive": Config("all 24 layers, full logits (naive)", None, naive=True),
    "rows": Config("all layers, label rows at last position", None),
    "top4": Config("top-4 LoRA, frozen layers cached", 4),
    "top4p": Config("top-4 LoRA, cached + shared prefix once", 4, share_prefix=True),
    "top2p": Config("top-2 LoRA, cached + shared prefix once", 2, share_prefix=True),
    "top8p": Config("top-8 LoRA, cached + shared prefix once", 8, share_prefix=True),
}


def naive_label_logprobs(policy: Any, batch: list) -> Any:
    """What a generic trainer does: the whole model, full logits at every position."""
    import torch

    rows = [policy.tokens(m) for m in batch]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    logits = policy.model(input_ids=ids, attention_mask=mask).logits
    last = logits[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])]
    return last[:, policy.label_ids].float().log_softmax(-1)


class NaivePolicy:
    """The same policy, scored the naive way (for the 'before' row). At beta=0 a
    naive trainer keeps no reference, so the KL metric reads 0 here."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.labels = inner, inner.labels

    def label_logprobs(self, batch: list) -> Any:
        return naive_label_logprobs(self.inner, batch)

    def reference_logprobs(self, batch: list) -> Any:
        import torch

        with torch.no_grad():
            return self.label_logprobs(batch)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_config(router: Any, examples: list[AllocExample], cfg: Config, steps: int, threads: int, lr: float) -> dict:
    import torch

    from r2local.train.allocator import AllocatorArgs, batches, evaluate, grpo_step, make_policy
    from r2local.train.common import LoraArgs, torch_threads

    args = AllocatorArgs(
        grpo_steps=steps,
        batch_size=8,
        group_size=8,
        lr=lr,
        threads=threads,
        share_prefix=cfg.share_prefix,
        lora=LoraArgs(rank=16, alpha=32, layers=cfg.layers),
    )
    times, rewards = [], []
    with torch_threads(threads):
        inner = make_policy(router, args)
        policy = NaivePolicy(inner) if cfg.naive else inner
        try:
            opt = torch.optim.AdamW([p for p in inner.model.parameters() if p.requires_grad], lr=args.lr)
            gen = torch.Generator().manual_seed(0)
            order = batches(len(examples), args.batch_size, 0)
            start = time.perf_counter()
            if not cfg.naive:
                inner.prepare([e.messages for e in examples])
            prepare = time.perf_counter() - start
            before = evaluate(policy, examples)  # not timed
            for _ in range(steps):
                t = time.perf_counter()
                metrics = grpo_step(policy, [examples[i] for i in next(order)], opt, args, gen)
                times.append(time.perf_counter() - t)
                rewards.append(metrics["reward"])
            wall = prepare + sum(times)
            final = evaluate(policy, examples)
        finally:
            inner.model.unload()
    return {
        "times": times,
        "wall": wall,
        "rewards": rewards,
        "final": final,
        "rss": rss_mb(),
        "prepare": prepare / len(examples),
        "prompts": len(examples),
        "before": before,
    }


def table(cfg: Config, res: dict, steps: int, threads: int, lr: float) -> str:
    t = res["times"]
    steady = t[1:] or t  # step 1 also pays one-off allocations and the split-path check
    r = res["rewards"]
    k = max(1, len(r) // 4)
    final = res["final"]
    steps_200 = t[0] + 199 * statistics.mean(steady)
    few = (res["prompts"] * res["prepare"] + steps_200) / 60
    fresh = (1600 * res["prepare"] + steps_200) / 60
    return "\n".join(
        [
            f"### {cfg.name} ({steps} steps, {threads} threads, lr {lr:g})",
            "",
            "| metric | value |",
            "|---|---|",
            f"| step time mean / median (s) | {statistics.mean(t):.2f} / {statistics.median(t):.2f} |",
            f"| steady step mean (s, steps 2..) | {statistics.mean(steady):.2f} |",
            f"| frozen layers + reference, once per distinct prompt (s) | {res['prepare']:.2f} |",
            f"| total wall, {res['prompts']} prompts prepared + {steps} steps (s) | {res['wall']:.1f} |",
            f"| 200 steps over {res['prompts']} distinct prompts, extrapolated (min) | {few:.1f} |",
            f"| 200 steps, every prompt new (1600 distinct), extrapolated (min) | {fresh:.1f} |",
            f"| peak RSS (MB) | {res['rss']:.0f} |",
            f"| sampled reward first / last {k} steps | {statistics.mean(r[:k]):.3f} / {statistics.mean(r[-k:]):.3f} |",
            f"| eval greedy reward / accuracy before | {_fmt(res['before'])} |",
            f"| eval greedy reward / accuracy after | {_fmt(final)} |",
            "",
        ]
    )


def _fmt(ev: dict | None) -> str:
    return "n/a" if ev is None else f"{ev['greedy_reward']:.3f} / {ev['accuracy']:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="router manifest name or .gguf path")
    parser.add_argument("--steps", type=int, default=15, help="GRPO steps per configuration")
    parser.add_argument(
        "--slow-steps",
        type=int,
        default=None,
        help="steps for the all-layer configurations (default: --steps); they take minutes each",
    )
    parser.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--prompts", type=int, default=32, help="distinct prompts (batches of 8 cycle through)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {','.join(CONFIGS)}")
    opts = parser.parse_args(argv)
    from r2local.train.common import load_router

    path = Path(opts.model)
    if path.suffix != ".gguf":
        from r2local.fetch import resolve
        from r2local.manifests import load_manifests

        path = resolve(load_manifests()[opts.model], fetch=False)
    router = load_router(path)
    examples = bench_examples(opts.prompts)
    tokens = [
        len(router.tokenizer.apply_chat_template(e.messages, add_generation_prompt=True)["input_ids"]) for e in examples
    ]
    print(
        f"# one-token allocator GRPO on {path.name}: G=8, batch 8, LoRA r16 q,k,v,o, "
        f"prompts {min(tokens)}-{max(tokens)} tokens (mean {statistics.mean(tokens):.0f})\n"
    )
    for key in opts.configs.split(","):
        cfg = CONFIGS[key]
        steps = opts.slow_steps if opts.slow_steps and cfg.layers is None else opts.steps
        res = run_config(router, examples, cfg, steps, opts.threads, opts.lr)
        print(table(cfg, res, steps, opts.threads, opts.lr), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
