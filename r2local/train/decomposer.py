"""Decomposer SFT with LoRA: teach the router the plan format from good plans.

Same conventions as the allocator trainer (args with help, loss function passed
in, progress callback, cancel between steps, atomic adapter save). The loss is
cross-entropy on the target reply's tokens only; the head runs only at those
positions, which for a 150k-word vocabulary is most of the saving over a
generic trainer's full logits. Decomposer GRPO (executing sampled plans) is
not implemented here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from r2local.train.data import TextExample, TrainError, check_text_examples
from r2local.train.policy import prompt_tokens


@dataclass
class DecomposerArgs:
    steps: int = field(default=100, metadata={"help": "SFT steps."})
    batch_size: int = field(default=2, metadata={"help": "Examples per step."})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate."})
    max_tokens: int = field(default=1024, metadata={"help": "Longest prompt + target kept; longer examples fail."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient norm clip (0: off)."})
    seed: int = field(default=0, metadata={"help": "Seed for LoRA init and batch order."})
    threads: int = field(default=2, metadata={"help": "Torch threads; leave cores for inference."})
    eval_every: int = field(default=0, metadata={"help": "Evaluate every N steps (0: only before and after)."})
    lora: LoraArgs = field(default_factory=LoraArgs, metadata={"help": "LoRA settings (all layers by default)."})


def encode(tokenizer: Any, example: TextExample) -> tuple[list[int], int]:
    """(token ids of prompt + reply, number of prompt tokens).

    The reply is the chat template's own rendering of an assistant turn (so it
    ends with the template's end-of-turn token, which teaches the model to stop);
    templates that do not extend the prompt text get target + EOS instead.
    """
    prompt_ids = prompt_tokens(tokenizer, example.messages)
    prompt = tokenizer.apply_chat_template(example.messages, add_generation_prompt=True, tokenize=False)
    turn = example.messages + [{"role": "assistant", "content": example.target}]
    full = tokenizer.apply_chat_template(turn, tokenize=False)
    if full.startswith(prompt) and example.target in full[len(prompt) :]:
        reply = full[len(prompt) :]
    else:
        reply = example.target + (tokenizer.eos_token or "")
    reply_ids = list(tokenizer(reply, add_special_tokens=False)["input_ids"])
    return prompt_ids + reply_ids, len(prompt_ids)


def target_loss(model: Any, rows: list[tuple[list[int], int]]) -> tuple[Any, int]:
    """Mean cross-entropy over the reply tokens of a batch; returns (loss, n tokens)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r, _ in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows])
    causal = model.get_base_model()
    hidden = causal.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    # Position t predicts token t+1: keep positions whose next token is reply.
    pos = [(b, t) for b, (r, n) in enumerate(rows) for t in range(n - 1, len(r) - 1)]
    rows_b, cols_t = torch.tensor([p[0] for p in pos]), torch.tensor([p[1] for p in pos])
    logits = causal.get_output_embeddings()(hidden[rows_b, cols_t]).float()
    loss = torch.nn.functional.cross_entropy(logits, ids[rows_b, cols_t + 1])
    return loss, len(pos)


def evaluate(model: Any, encoded: list[tuple[list[int], int]], batch_size: int = 4) -> dict[str, float]:
    """Token-weighted mean target loss (no gradient)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            loss, n = target_loss(model, encoded[start : start + batch_size])
            total, count = total + float(loss) * n, count + n
    return {"target_loss": total / count}


@dataclass
class DecomposerRun(TrainResult):
    """A finished run; ``model`` keeps the adapter attached until ``release()``."""

    model: Any = None

    def release(self) -> Any:
        base, self.model = detach_lora(self.model), None
        return base


def _encode_all(tokenizer: Any, examples: list[TextExample], max_tokens: int) -> list[tuple[list[int], int]]:
    out = []
    for i, ex in enumerate(examples):
        ids, n = encode(tokenizer, ex)
        if len(ids) > max_tokens:
            raise TrainError(
                f"text example {i} has {len(ids)} tokens, over max_tokens={max_tokens}",
                fix="raise max_tokens or drop that example",
            )
        out.append((ids, n))
    return out


def train(
    router: Router | Path,
    examples: list[TextExample],
    args: DecomposerArgs,
    out_dir: Path | None,
    *,
    eval_examples: list[TextExample] | None = None,
    loss: Callable = target_loss,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    overwrite: bool = False,
) -> DecomposerRun:
    """LoRA SFT on (prompt, plan) pairs; save the adapter to ``out_dir`` unless cancelled.

    Args mirror ``allocator.train``: a loaded router is wrapped in place until
    ``release()``; ``progress(step, metrics)``; ``cancel`` stops between steps
    and writes nothing; the save is atomic.
    """
    check_text_examples(examples)
    if out_dir is not None:
        check_out_dir(out_dir, overwrite)
    router = router if isinstance(router, Router) else load_router(Path(router))
    train_rows = _encode_all(router.tokenizer, examples, args.max_tokens)
    eval_rows = _encode_all(router.tokenizer, eval_examples, args.max_tokens) if eval_examples else train_rows
    with torch_threads(args.threads):
        model = attach_lora(router.model, args.lora, args.seed)
        try:
            run = _loop(model, train_rows, eval_rows, args, loss, progress, cancel)
            if not run.cancelled and out_dir is not None:
                meta = {
                    "kind": "decomposer",
                    "router": router.source,
                    "args": args,
                    "curves": run.curves,
                    "examples": len(examples),
                }
                run.out_dir = save_atomically(out_dir, lambda tmp: _write(model, tmp, meta), overwrite=overwrite)
        except BaseException:
            detach_lora(model)  # leave the caller's model as it was
            raise
    return run


def _write(model: Any, folder: Path, meta: dict) -> None:
    model.save_pretrained(str(folder), save_embedding_layers=False)  # LoRA weights only
    write_meta(folder, meta)


def _loop(model, train_rows, eval_rows, args, loss_fn, progress, cancel) -> DecomposerRun:
    opt = make_optimizer(model, args.lr)
    order = batches(len(train_rows), args.batch_size, args.seed)
    run = DecomposerRun(None, {}, model=model)
    _evaluate(run, model, eval_rows, 0, progress)
    for step in range(1, args.steps + 1):
        if cancelled(cancel):
            run.cancelled = True
            return run
        batch = [train_rows[i] for i in next(order)]
        value, n = loss_fn(model, batch)
        apply_gradients(value, opt, args.max_grad_norm)
        metrics = {"sft_loss": value.item(), "sft_tokens": float(n)}
        record(run.curves, step, metrics)
        run.steps = step
        if progress:
            progress(step, metrics)
        if args.eval_every and step % args.eval_every == 0 and step != args.steps:
            _evaluate(run, model, eval_rows, step, progress)
    _evaluate(run, model, eval_rows, args.steps, progress)
    return run


def _evaluate(run: DecomposerRun, model: Any, rows: list, step: int, progress: Progress | None) -> None:
    metrics = {f"eval_{k}": v for k, v in evaluate(model, rows).items()}
    record(run.curves, step, metrics)
    if progress:
        progress(step, metrics)
