"""Decomposer GRPO: sampled replies per prompt, scored by a reward the caller passes in.

The decomposer's action is a whole reply (a plan, or a list of parts), not one
label token, so this is the sequence form of GRPO: for each prompt draw G
replies from the current adapter, score each with ``reward(prompt_index,
reply_text)``, and push up the log-probability of the replies that beat their
group's mean (advantage = reward − group mean, over the group's std). One
update per group, so the PPO ratio is 1 and needs no clip; an optional KL term
to the router without the adapter keeps the policy near it.

The reward never runs a model here: the caller scores a reply from what is
already known (for splits, the parts a message holds and what each part's
route costs), which is what makes a step cost only the sampling and one
forward/backward.
"""

from __future__ import annotations

import functools
import random
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from r2local.train.common import (
    Progress,
    apply_gradients,
    cancelled,
    make_optimizer,
    record,
    torch_threads,
)
from r2local.train.data import Messages
from r2local.train.policy import prompt_tokens

Reward = Callable[[int, str], float]


@dataclass
class DecomposerGrpoArgs:
    steps: int = field(default=40, metadata={"help": "GRPO steps (one prompt group each)."})
    group: int = field(default=4, metadata={"help": "Replies sampled per prompt (G)."})
    lr: float = field(default=5e-5, metadata={"help": "AdamW learning rate."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature for the group."})
    max_new_tokens: int = field(default=96, metadata={"help": "Longest sampled reply."})
    kl: float = field(default=0.0, metadata={"help": "Weight of the KL term to the router without the adapter."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient norm clip (0: off)."})
    seed: int = field(default=0, metadata={"help": "Seed for prompt order and sampling."})
    threads: int = field(default=2, metadata={"help": "Torch threads."})


@dataclass
class GrpoRun:
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    steps: int = 0
    skipped: int = 0  # groups whose replies all scored the same: no signal, no update
    cancelled: bool = False


def sample(model: Any, tokenizer: Any, messages: Messages, n: int, *, temperature: float, max_new_tokens: int,
           greedy: bool = False) -> tuple[list[int], list[list[int]]]:
    """(prompt ids, n sampled reply ids each ending at the end-of-turn token or the cap)."""
    import torch

    prompt = prompt_tokens(tokenizer, messages)
    ids = torch.tensor([prompt])
    eos = _stop_ids(tokenizer)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=not greedy,
                             temperature=temperature if not greedy else None, top_p=None, top_k=None,
                             num_return_sequences=1 if greedy else n, max_new_tokens=max_new_tokens,
                             eos_token_id=eos, pad_token_id=eos[0])
    replies = []
    for row in out.tolist():
        reply = row[len(prompt):]
        cut = next((i + 1 for i, t in enumerate(reply) if t in eos), len(reply))
        replies.append(reply[:cut])
    return prompt, replies


def _stop_ids(tokenizer: Any) -> list[int]:
    ids = [tokenizer.eos_token_id]
    turn = tokenizer.convert_tokens_to_ids("<|im_end|>")  # chat templates that end a turn on their own token
    if isinstance(turn, int) and turn != tokenizer.unk_token_id and turn not in ids:
        ids.append(turn)
    return [i for i in ids if i is not None]


def reply_logprobs(model: Any, prompt: list[int], replies: list[list[int]]) -> Any:
    """Mean log-probability per reply token, one value per reply (a tensor with grad)."""
    import torch

    rows = [prompt + r for r in replies]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    causal = model.get_base_model()
    hidden = causal.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    out = []
    for b, r in enumerate(replies):
        # Position t predicts token t + 1; the head runs at reply positions only (a 150k vocabulary at
        # every prompt position would be most of the step).
        pos = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(r))
        logits = causal.get_output_embeddings()(hidden[b, pos]).float()
        out.append(torch.log_softmax(logits, dim=-1).gather(-1, ids[b, pos + 1, None]).mean())
    return torch.stack(out)


def advantages(rewards: list[float]) -> list[float] | None:
    """Group-normalised advantages; None when every reply scored the same."""
    mean = statistics.fmean(rewards)
    spread = statistics.pstdev(rewards)
    if spread < 1e-9:
        return None
    return [(r - mean) / spread for r in rewards]


def train(model: Any, tokenizer: Any, prompts: list[Messages], reward: Reward, args: DecomposerGrpoArgs, *,
          progress: Progress | None = None, cancel: threading.Event | None = None) -> GrpoRun:
    """GRPO on a PEFT-wrapped router (for example the model an SFT run left attached)."""
    import torch

    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    opt = make_optimizer(model, args.lr)
    run = GrpoRun()
    with torch_threads(args.threads):
        for step in range(1, args.steps + 1):
            if cancelled(cancel):
                run.cancelled = True
                return run
            i = rng.randrange(len(prompts))
            metrics = _step(model, tokenizer, prompts[i], functools.partial(reward, i), args, opt, run)
            record(run.curves, step, metrics)
            run.steps = step
            if progress:
                progress(step, metrics)
    return run


def _step(model, tokenizer, messages, score, args, opt, run) -> dict[str, float]:
    import torch

    model.eval()
    prompt, replies = sample(model, tokenizer, messages, args.group, temperature=args.temperature,
                             max_new_tokens=args.max_new_tokens)
    rewards = [score(tokenizer.decode(r, skip_special_tokens=True)) for r in replies]
    adv = advantages(rewards)
    metrics = {"reward_mean": statistics.fmean(rewards), "reward_max": max(rewards)}
    if adv is None:
        run.skipped += 1
        return metrics
    model.train()
    logp = reply_logprobs(model, prompt, replies)
    loss = -(torch.tensor(adv) * logp).mean()
    if args.kl > 0:
        with torch.no_grad(), model.disable_adapter():
            ref = reply_logprobs(model, prompt, replies)
        loss = loss + args.kl * (logp - ref).pow(2).mean() / 2  # a cheap KL estimate on the sampled tokens
    apply_gradients(loss, opt, args.max_grad_norm)
    model.eval()
    metrics["loss"] = loss.item()
    return metrics
