"""Allocator SFT/GRPO on MLX with mlx-lm's own LoRA layers (Apple Silicon; mlx[cpu] on Linux).

The same one-token method as `allocator.py` and the same `AllocatorArgs`:
one forward per prompt serves all G sampled labels, sampling is over the label
tokens renormalised, rewards come from the example's table, advantages are
group-normalised and the objective is the clipped surrogate minus beta times
the exact KL to the reference. The reference is the model before the first
update: mlx-lm initialises LoRA B to zero, so that is the base router, and its
label distribution is computed once per prompt before training.

Not carried over from the torch path: the frozen-layer cache, the shared
prefix and head rows only (mlx-lm's model call returns full logits), and
thread control (MLX picks its own). The adapter is saved in mlx-lm's format
(`adapters.safetensors` + `adapter_config.json`), which `mlx_lm.load(...,
adapter_path=...)` and the MLX backend load directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r2local.train.allocator import AllocatorArgs, Reward, eval_metrics, table_reward
from r2local.train.common import (
    META_FILE,
    Progress,
    TrainResult,
    batches,
    cancelled,
    check_out_dir,
    record,
    save_atomically,
    to_json,
)
from r2local.train.data import AllocExample, Messages, TrainError, best_label, check_alloc_examples
from r2local.train.policy import label_token_ids


class MlxLabelPolicy:
    """Label log-probs after allocator prompts for an mlx-lm model."""

    def __init__(self, model: Any, tokenizer: Any, labels: tuple[str, ...]) -> None:
        self.model, self.tokenizer, self.labels = model, tokenizer, tuple(labels)
        self.label_ids = label_token_ids(tokenizer, self.labels)
        self._tokens: dict[str, list[int]] = {}
        self._ref: dict[str, list[float]] = {}

    def tokens(self, messages: Messages) -> list[int]:
        key = json.dumps(messages, sort_keys=True)
        if key not in self._tokens:  # as the MLX backend builds its prompt
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
            self._tokens[key] = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return self._tokens[key]

    def label_logprobs(self, batch: list[Messages]) -> Any:
        """[B, K] label log-probs; right padding is harmless under a causal mask."""
        import mlx.core as mx

        rows = [self.tokens(m) for m in batch]
        width = max(len(r) for r in rows)
        logits = self.model(mx.array([r + [0] * (width - len(r)) for r in rows]))
        last = logits[mx.arange(len(rows)), mx.array([len(r) - 1 for r in rows])]
        picked = last[:, mx.array(self.label_ids)].astype(mx.float32)
        return picked - mx.logsumexp(picked, axis=-1, keepdims=True)

    def full_logits(self, batch: list[Messages]) -> Any:
        import mlx.core as mx

        rows = [self.tokens(m) for m in batch]
        width = max(len(r) for r in rows)
        logits = self.model(mx.array([r + [0] * (width - len(r)) for r in rows]))
        return logits[mx.arange(len(rows)), mx.array([len(r) - 1 for r in rows])].astype(mx.float32)

    def prepare(self, prompts: list[Messages]) -> None:
        """Record the reference distribution; call before the first update."""
        import mlx.core as mx

        todo = [m for m in prompts if json.dumps(m, sort_keys=True) not in self._ref]
        for start in range(0, len(todo), 8):
            part = todo[start : start + 8]
            values = mx.stop_gradient(self.label_logprobs(part)).tolist()
            for m, v in zip(part, values):
                self._ref[json.dumps(m, sort_keys=True)] = v

    def reference_logprobs(self, batch: list[Messages]) -> Any:
        import mlx.core as mx

        try:
            return mx.array([self._ref[json.dumps(m, sort_keys=True)] for m in batch])
        except KeyError:
            raise TrainError(
                "a prompt has no reference distribution", fix="call prepare() on every prompt first"
            ) from None


def attach_lora(model: Any, args: AllocatorArgs) -> dict[str, Any]:
    """Freeze the model, put mlx-lm LoRA layers on the targets; returns mlx-lm's adapter config."""
    import mlx.core as mx
    from mlx_lm.tuner.utils import linear_to_lora_layers

    n_layers = len(model.layers)
    layers = n_layers if args.lora.layers is None else args.lora.layers
    if not 1 <= layers <= n_layers:
        raise TrainError(f"lora.layers={layers} but the model has {n_layers} layers", fix=f"use 1..{n_layers} or None")
    names = [name for name, _ in model.layers[0].named_modules()]
    keys = [name for name in names if name.rsplit(".", 1)[-1] in args.lora.targets]
    if len(keys) != len(args.lora.targets):
        raise TrainError(
            f"LoRA targets {list(args.lora.targets)} do not all exist in this model",
            fix="use q_proj,k_proj,v_proj,o_proj",
        )
    params = {
        "rank": args.lora.rank,
        "scale": args.lora.alpha / args.lora.rank,
        "dropout": args.lora.dropout,
        "keys": keys,
    }
    mx.random.seed(args.seed)  # LoRA A is random: same seed, same run
    model.freeze()
    linear_to_lora_layers(model, layers, params)
    return {"fine_tune_type": "lora", "num_layers": layers, "lora_parameters": params}


def grpo_loss(logp: Any, old: Any, actions: Any, adv: Any, ref: Any, w: Any, args: AllocatorArgs) -> tuple[Any, Any]:
    """The clipped surrogate minus beta * exact KL (same maths as allocator.grpo_loss); returns (loss, kl)."""
    import mlx.core as mx

    new = mx.take_along_axis(logp, actions, axis=1)
    ratio = mx.exp(new - old)
    clipped = mx.clip(ratio, 1 - args.clip_eps, 1 + args.clip_eps)
    surrogate = mx.minimum(ratio * adv, clipped * adv).mean(axis=1)
    kl = (mx.exp(logp) * (logp - ref)).sum(axis=1)
    return -(w * (surrogate - args.beta * kl)).sum() / w.sum(), kl.mean()


def _grpo_step(policy, examples, opt, args, rng, reward: Reward, loss_fn: Callable) -> dict[str, float]:
    import mlx.core as mx
    import numpy as np
    from mlx import nn

    batch = [ex.messages for ex in examples]
    ref = policy.reference_logprobs(batch)
    probs = np.exp(np.array(policy.label_logprobs(batch).tolist()))
    actions = np.stack([rng.choice(len(policy.labels), size=args.group_size, p=p / p.sum()) for p in probs])
    old = mx.array(np.log(np.take_along_axis(probs, actions, axis=1)), dtype=mx.float32)
    rewards = np.array([[reward(ex, policy.labels[a]) for a in row] for ex, row in zip(examples, actions)])
    adv = (rewards - rewards.mean(1, keepdims=True)) / (rewards.std(1, ddof=1, keepdims=True) + args.adv_eps)
    actions_mx, adv_mx = mx.array(actions), mx.array(adv, dtype=mx.float32)
    w = mx.array([ex.weight for ex in examples], dtype=mx.float32)

    def objective(batch):
        return loss_fn(policy.label_logprobs(batch), old, actions_mx, adv_mx, ref, w, args)

    step = nn.value_and_grad(policy.model, objective)
    for _ in range(args.updates_per_batch):
        (loss, kl), grads = step(batch)
        _update(policy.model, opt, grads, args.max_grad_norm)
    return {"loss": loss.item(), "kl": kl.item(), "reward": float(rewards.mean())}


def _sft_step(policy, examples, opt, args) -> dict[str, float]:
    import mlx.core as mx
    from mlx import nn

    batch = [ex.messages for ex in examples]
    target = mx.array([policy.label_ids[policy.labels.index(best_label(ex.rewards, policy.labels))] for ex in examples])
    w = mx.array([ex.weight for ex in examples], dtype=mx.float32)

    def objective(batch):
        ce = nn.losses.cross_entropy(policy.full_logits(batch), target)
        return (w * ce).sum() / w.sum()

    loss, grads = nn.value_and_grad(policy.model, objective)(batch)
    _update(policy.model, opt, grads, args.max_grad_norm)
    return {"loss": loss.item()}


def _update(model: Any, opt: Any, grads: Any, max_norm: float) -> None:
    import mlx.core as mx
    import mlx.optimizers as optim

    if max_norm > 0:
        grads, _ = optim.clip_grad_norm(grads, max_norm)
    opt.update(model, grads)
    mx.eval(model.parameters(), opt.state)


def evaluate(policy: MlxLabelPolicy, examples: list[AllocExample]) -> dict[str, float]:
    batch = [ex.messages for ex in examples]
    return eval_metrics(
        examples, policy.labels, policy.label_logprobs(batch).tolist(), policy.reference_logprobs(batch).tolist()
    )


def _evaluate(
    run: TrainResult, policy: MlxLabelPolicy, evals: list[AllocExample], step: int, progress: Progress | None
) -> None:
    metrics = {f"eval_{k}": v for k, v in evaluate(policy, evals).items()}
    record(run.curves, step, metrics)
    if progress:
        progress(step, metrics)


@dataclass
class MlxRun(TrainResult):
    """A finished run; ``policy.model`` is the trained model (LoRA layers in place)."""

    policy: Any = None


def load(path: Path) -> tuple[Any, Any]:
    """An mlx-lm model folder (config.json + safetensors + tokenizer)."""
    from mlx_lm import load as mlx_load

    if not (Path(path) / "config.json").is_file():
        raise TrainError(f"{path} is not an MLX model folder", fix="point at a folder with config.json and weights")
    return mlx_load(str(path))


def train(
    model: Path | tuple[Any, Any],
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
) -> MlxRun:
    """SFT then GRPO with mlx-lm LoRA; conventions as in ``allocator.train``.

    ``model`` is an MLX model folder or a loaded ``(model, tokenizer)`` pair
    (then LoRA layers are put into that model in place).
    """
    import mlx.optimizers as optim
    import numpy as np

    check_alloc_examples(examples, tuple(args.labels))
    if out_dir is not None:
        check_out_dir(out_dir, overwrite)
    evals = eval_examples or examples
    mlx_model, tokenizer = load(Path(model)) if isinstance(model, (str, Path)) else model
    policy = MlxLabelPolicy(mlx_model, tokenizer, tuple(args.labels))
    adapter_config = attach_lora(mlx_model, args)
    policy.prepare([ex.messages for ex in examples + evals])
    opt, rng = optim.Adam(learning_rate=args.lr), np.random.default_rng(args.seed)
    order, run = batches(len(examples), args.batch_size, args.seed), MlxRun(None, {}, policy=policy)
    _evaluate(run, policy, evals, 0, progress)
    for step in range(1, args.sft_steps + args.grpo_steps + 1):
        if cancelled(cancel):
            run.cancelled = True
            return run
        chunk = [examples[i] for i in next(order)]
        if step <= args.sft_steps:
            metrics = {f"sft_{k}": v for k, v in _sft_step(policy, chunk, opt, args).items()}
        else:
            metrics = {f"grpo_{k}": v for k, v in _grpo_step(policy, chunk, opt, args, rng, reward, loss).items()}
        record(run.curves, step, metrics)
        run.steps = step
        if progress:
            progress(step, metrics)
        if args.eval_every and step % args.eval_every == 0:
            _evaluate(run, policy, evals, step, progress)
    if not (args.eval_every and run.steps % args.eval_every == 0):
        _evaluate(run, policy, evals, run.steps, progress)
    if out_dir is not None:
        meta = {"kind": "allocator-mlx", "args": args, "curves": run.curves, "labels": list(args.labels)}
        run.out_dir = save_atomically(
            out_dir, lambda tmp: _write(mlx_model, adapter_config, tmp, meta), overwrite=overwrite
        )
    return run


def _write(model: Any, adapter_config: dict, folder: Path, meta: dict) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    mx.save_safetensors(str(folder / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config, indent=1))
    (folder / META_FILE).write_text(json.dumps(to_json(meta), indent=1))
