"""Does training pay? Train the router on one bench run's questions, judge it on another's.

    R2LOCAL_HOME=bench-results/home python -m benchmarks.train \\
        --train-seed 1 --held-seed 0 --n 200 [--grpo-steps 200] [--plot docs/training.png]

Both runs must already be in the bench ledger (``r2local bench --dataset
generated --n 200 --seed S`` with all-small, all-local, all-cloud and r2local,
or `python -m benchmarks.threetier`). The held-out questions are never
trained on. Prints the before/after table (untrained router, classifier head,
LoRA SFT+GRPO) at equal accuracy, the export check (llama.cpp + GGUF adapter
against PyTorch + PEFT) and the training time; ``--plot`` draws the reward
curve and each allocator's cost–accuracy curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from r2local.config import load_settings
from r2local.tasks.wordproblems import generate
from r2local.train.summary import report_text
from r2local.train.run import TrainArgs, labelled, run


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for name, points in report["curves"].items():
        if name in ("grpo_reward", "eval_greedy_reward", "sft_loss"):
            left.plot([p[0] for p in points], [p[1] for p in points], label=name)
    left.set_xlabel("step")
    left.set_title("training")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    for name, a in report["comparison"]["allocators"].items():
        curve = a["curve"]
        right.plot([p["cloud_cost_usd"] for p in curve], [100 * p["accuracy"] for p in curve], label=name)
    right.axhline(100 * report["comparison"]["accuracy"], color="gray", linestyle=":", linewidth=1)
    right.set_xlabel("cloud cost (USD)")
    right.set_ylabel("accuracy (%)")
    right.set_title("held-out questions: route by each allocator")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--held-seed", type=int, default=0)
    p.add_argument("--n", type=int, default=200, help="questions in each generated run")
    p.add_argument("--sft-steps", type=int, default=40)
    p.add_argument("--grpo-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cloud-share", type=float, default=0.3)
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="write the report here too")
    args = p.parse_args(argv)
    settings = load_settings()
    rows, _ = labelled(settings)
    train_q = {d["question"] for d in generate(args.n, args.train_seed)}
    held_q = {d["question"] for d in generate(args.n, args.held_seed)} - train_q
    train_rows = [r for r in rows if r.question in train_q]
    held = [r for r in rows if r.question in held_q]
    print(f"labelled: {len(train_rows)} training questions (seed {args.train_seed}), {len(held)} held out "
          f"(seed {args.held_seed})", file=sys.stderr, flush=True)
    report = run(settings, TrainArgs(sft_steps=args.sft_steps, grpo_steps=args.grpo_steps, threads=args.threads,
                                     cloud_share=args.cloud_share, adopt=False, min_examples=10),
                 rows=(train_rows, held)).to_json()
    print(report_text(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if args.plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
