"""Allocator refinement with LoRA: SFT on the best label, then one-token GRPO.

Shaped like mlx-lm's tuner: an args dataclass with help text, loss and reward
functions passed in, a progress callback and a cancel event; the adapter is
saved with its settings and curves. The action is one label token, so a step
is one forward per prompt (all G samples read the same distribution) and no
model runs to score an action: rewards come from the ledger's per-label table.

Sampling is over the label tokens only, renormalised — the very distribution
the product routes with (`score_labels`). Sampling the full vocabulary would
spend most samples on tokens that have no tier and no reward.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r2local.routing.thresholds import LABELS
from r2local.train.common import (
    LoraArgs,
    Progress,
    Router,
    TrainResult,
    apply_gradients,
    attach_lora,
    batches,
    cancelled,
    check_out_dir,
    detach_lora,
    load_router,
    make_optimizer,
    record,
    save_atomically,
    torch_threads,
    write_meta,
)
from r2local.train.data import AllocExample, best_label, check_alloc_examples

Reward = Callable[[AllocExample, str], float]


def table_reward(example: AllocExample, label: str) -> float:
    """The ledger's reward for routing this subtask at ``label``'s tier."""
    return example.rewards[label]


@dataclass
class AllocatorArgs:
    sft_steps: int = field(default=0, metadata={"help": "SFT steps on the best label before GRPO."})
    grpo_steps: int = field(default=200, metadata={"help": "GRPO steps."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per step."})
    group_size: int = field(default=8, metadata={"help": "GRPO: labels sampled per prompt (G)."})
    lr: float = field(
        default=3e-4,
        metadata={
            "help": "AdamW learning rate. Top-4-layer LoRA learned at 3e-4 (SmolLM2, Qwen 0.5B); "
            "all-layer LoRA collapsed SmolLM2 at 5e-4 and wants ~1e-4."
        },
    )
    clip_eps: float = field(default=0.2, metadata={"help": "GRPO: PPO clip range for the ratio new/old policy."})
    beta: float = field(default=0.0, metadata={"help": "GRPO: weight of KL(policy || router without adapter)."})
    updates_per_batch: int = field(
        default=1, metadata={"help": "GRPO: optimiser updates per sampled batch (>1 makes the clip bite)."}
    )
    adv_eps: float = field(default=1e-4, metadata={"help": "GRPO: eps in (r - mean) / (std + eps)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient norm clip (0: off)."})
    seed: int = field(default=0, metadata={"help": "Seed for LoRA init, batch order and sampling."})
    threads: int = field(default=2, metadata={"help": "Torch threads; leave cores for inference."})
    eval_every: int = field(default=0, metadata={"help": "Evaluate every N steps (0: only before and after)."})
    cache_mb: float = field(default=1024.0, metadata={"help": "Memory for cached frozen-layer activations."})
    share_prefix: bool = field(
        default=True, metadata={"help": "Run the prompt prefix a batch shares (the system prompt) once per step."}
    )
    labels: tuple[str, ...] = field(default=LABELS, metadata={"help": "Label words, cheapest tier first."})
    lora: LoraArgs = field(default_factory=lambda: LoraArgs(layers=4), metadata={"help": "LoRA settings."})


def _weights(examples: list[AllocExample]) -> Any:
    import torch

    return torch.tensor([ex.weight for ex in examples], dtype=torch.float32)


def sft_loss(policy: Any, examples: list[AllocExample]) -> tuple[Any, dict[str, float]]:
    """Weighted cross-entropy (full vocabulary) on the best label's first token."""
    import torch

    targets = [policy.labels.index(best_label(ex.rewards, policy.labels)) for ex in examples]
    logits = policy.full_logits([ex.messages for ex in examples])
    token = torch.tensor([policy.label_ids[t] for t in targets])
    ce = torch.nn.functional.cross_entropy(logits, token, reduction="none")
    w = _weights(examples)
    loss = (w * ce).sum() / w.sum()
    picked = logits[:, policy.label_ids].argmax(-1)
    return loss, {"loss": loss.item(), "accuracy": float((picked == torch.tensor(targets)).float().mean())}


def grpo_loss(logp: Any, old: Any, actions: Any, adv: Any, ref: Any, w: Any, args: AllocatorArgs) -> tuple[Any, dict]:
    """Clipped surrogate on the sampled labels, minus beta * exact KL to the reference.

    logp/ref: [B, K] label log-probs (policy, reference); old: [B, G] old-policy
    log-probs of the G sampled actions [B, G]; adv: [B, G]; w: [B].
    With K labels the KL is summed exactly rather than estimated from samples.
    """
    import torch

    new = logp.gather(1, actions)
    ratio = (new - old).exp()
    clipped = ratio.clamp(1 - args.clip_eps, 1 + args.clip_eps)
    surrogate = torch.minimum(ratio * adv, clipped * adv).mean(1)
    kl = (logp.exp() * (logp - ref)).sum(1)
    loss = -(w * (surrogate - args.beta * kl)).sum() / w.sum()
    clip_frac = ((ratio - clipped).abs() > 1e-6).float().mean()
    return loss, {"loss": loss.item(), "kl": kl.mean().item(), "clip_frac": float(clip_frac)}


def _group_advantages(rewards: Any, eps: float) -> Any:
    return (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + eps)


def grpo_step(
    policy: Any,
    examples: list[AllocExample],
    opt: Any,
    args: AllocatorArgs,
    gen: Any,
    reward: Reward = table_reward,
    loss_fn: Callable = grpo_loss,
) -> dict[str, float]:
    """Sample G labels per prompt, score them from the table, update the adapter."""
    import torch

    batch = [ex.messages for ex in examples]
    ref = policy.reference_logprobs(batch)
    logp = policy.label_logprobs(batch)
    with torch.no_grad():
        actions = torch.multinomial(logp.exp(), args.group_size, replacement=True, generator=gen)
        old = logp.gather(1, actions)
    rewards = torch.tensor([[reward(ex, policy.labels[a]) for a in row] for ex, row in zip(examples, actions.tolist())])
    adv = _group_advantages(rewards, args.adv_eps)
    w = _weights(examples)
    metrics: dict[str, float] = {}
    for update in range(args.updates_per_batch):
        if update:
            logp = policy.label_logprobs(batch)
        loss, metrics = loss_fn(logp, old, actions, adv, ref, w, args)
        apply_gradients(loss, opt, args.max_grad_norm)
    metrics["reward"] = float(rewards.mean())
    return metrics


def eval_metrics(
    examples: list[AllocExample], labels: tuple[str, ...], logp: list[list[float]], ref: list[list[float]]
) -> dict[str, float]:
    """Greedy reward, label accuracy vs the best label, expected reward under sampling,
    mean probability of the best label and KL to the reference — all exact, from
    per-example label log-probs (plain lists, so the MLX trainer shares it)."""
    sums = {"greedy_reward": 0.0, "accuracy": 0.0, "sampled_reward": 0.0, "p_best": 0.0, "kl_ref": 0.0}
    for ex, lp, rf in zip(examples, logp, ref):
        p = [math.exp(v) for v in lp]
        table = [ex.rewards[label] for label in labels]
        greedy = max(range(len(p)), key=lambda k: (p[k], -k))  # ties: cheaper label
        best = labels.index(best_label(ex.rewards, labels))
        sums["greedy_reward"] += table[greedy]
        sums["accuracy"] += float(greedy == best)
        sums["sampled_reward"] += sum(pk * rk for pk, rk in zip(p, table))
        sums["p_best"] += p[best]
        sums["kl_ref"] += sum(pk * (a - b) for pk, a, b in zip(p, lp, rf))
    return {k: v / len(examples) for k, v in sums.items()}


def evaluate(policy: Any, examples: list[AllocExample], batch_size: int = 16) -> dict[str, float]:
    """``eval_metrics`` for a torch label policy (no gradient)."""
    import torch

    logp, ref = [], []
    for start in range(0, len(examples), batch_size):
        batch = [ex.messages for ex in examples[start : start + batch_size]]
        with torch.no_grad():
            logp += policy.label_logprobs(batch).tolist()
            ref += policy.reference_logprobs(batch).tolist()
    return eval_metrics(examples, policy.labels, logp, ref)


def make_policy(router: Router, args: AllocatorArgs) -> Any:
    """Attach a fresh LoRA to ``router.model`` (in place) and wrap it as a label policy."""
    from r2local.train.policy import LabelPolicy, label_token_ids

    label_token_ids(router.tokenizer, tuple(args.labels))  # fail before touching the model
    peft_model = attach_lora(router.model, args.lora, args.seed)
    n_layers = router.model.config.num_hidden_layers
    split = 0 if args.lora.layers is None else n_layers - args.lora.layers
    return LabelPolicy(
        peft_model,
        router.tokenizer,
        tuple(args.labels),
        split=split,
        cache_mb=args.cache_mb,
        share_prefix=args.share_prefix,
    )


@dataclass
class AllocatorRun(TrainResult):
    """A finished run. ``policy`` keeps the trained adapter attached in memory;
    ``release()`` removes it and returns the bare router model."""

    policy: Any = None

    def release(self) -> Any:
        model, self.policy = detach_lora(self.policy.model), None
        return model


def train(
    router: Router | Path,
    examples: list[AllocExample],
    args: AllocatorArgs,
    out_dir: Path | None,
    *,
    eval_examples: list[AllocExample] | None = None,
    reward: Reward = table_reward,
    loss: Callable = grpo_loss,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    overwrite: bool = False,
) -> AllocatorRun:
    """SFT then GRPO on ``examples``; save the adapter to ``out_dir`` unless cancelled.

    Args:
        router: a loaded router or the path of its GGUF file. A loaded router's
            model is wrapped in place; call ``release()`` on the result to unwrap it.
        examples: training decisions; ``eval_examples`` (default: the same) are
            evaluated before, every ``args.eval_every`` steps, and after.
        reward: reward of a label for an example (default: the example's table).
        loss: GRPO loss, same signature as ``grpo_loss``.
        progress: called as ``progress(step, metrics)`` after every step.
        cancel: when set, the run stops after the current step and writes nothing.
        out_dir: where the PEFT adapter and ``r2local_train.json`` go, atomically
            (None: keep the adapter in memory only).
    """
    check_alloc_examples(examples, tuple(args.labels))
    if out_dir is not None:
        check_out_dir(out_dir, overwrite)
    evals = eval_examples or examples
    check_alloc_examples(evals, tuple(args.labels))
    router = router if isinstance(router, Router) else load_router(Path(router))
    with torch_threads(args.threads):
        policy = make_policy(router, args)
        try:
            run = _loop(policy, examples, evals, args, reward, loss, progress, cancel)
            if not run.cancelled and out_dir is not None:
                meta = {
                    "kind": "allocator",
                    "router": router.source,
                    "args": args,
                    "curves": run.curves,
                    "labels": list(args.labels),
                    "examples": len(examples),
                }
                run.out_dir = save_atomically(out_dir, lambda tmp: _write(policy, tmp, meta), overwrite=overwrite)
        except BaseException:
            detach_lora(policy.model)  # leave the caller's model as it was
            raise
    return run


def _write(policy: Any, folder: Path, meta: dict) -> None:
    policy.model.save_pretrained(str(folder), save_embedding_layers=False)  # LoRA weights only
    write_meta(folder, meta)


def _loop(policy, examples, evals, args, reward, loss, progress, cancel) -> AllocatorRun:
    import torch

    opt = make_optimizer(policy.model, args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    order = batches(len(examples), args.batch_size, args.seed)
    run = AllocatorRun(None, {}, policy=policy)
    policy.prepare([ex.messages for ex in examples + evals], cancel)
    total = args.sft_steps + args.grpo_steps
    if not cancelled(cancel):
        _evaluate(run, policy, evals, 0, progress)
    for step in range(1, total + 1):
        if cancelled(cancel):
            run.cancelled = True
            return run
        chunk = [examples[i] for i in next(order)]
        if step <= args.sft_steps:
            value, metrics = sft_loss(policy, chunk)
            apply_gradients(value, opt, args.max_grad_norm)
            metrics = {f"sft_{k}": v for k, v in metrics.items()}
        else:
            metrics = {f"grpo_{k}": v for k, v in grpo_step(policy, chunk, opt, args, gen, reward, loss).items()}
        record(run.curves, step, metrics)
        run.steps = step
        if progress:
            progress(step, metrics)
        if args.eval_every and step % args.eval_every == 0 and step != total:
            _evaluate(run, policy, evals, step, progress)
    if cancelled(cancel):  # set during the last step or the prepare pass
        run.cancelled = True
        return run
    _evaluate(run, policy, evals, total, progress)
    return run


def _evaluate(run: AllocatorRun, policy: Any, evals: list[AllocExample], step: int, progress: Progress | None) -> None:
    metrics = {f"eval_{k}": v for k, v in evaluate(policy, evals).items()}
    record(run.curves, step, metrics)
    if progress:
        progress(step, metrics)
