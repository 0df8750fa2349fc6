"""Decomposer GRPO on a real model (SmolLM2-135M): sampled replies, a reward from outside, one update per group."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch  # the test extra installs torch and peft: these tests never skip

from r2local.train import decomposer_grpo as dg
from r2local.train.common import LoraArgs, Router, attach_lora, load_router

ASK = [{"role": "system", "content": "Answer with one word."}, {"role": "user", "content": "Is the sky blue?"}]


@pytest.fixture(scope="module")
def base(smol_path: Path) -> Router:
    torch.set_num_threads(1)
    return load_router(smol_path)


@pytest.fixture
def model(base: Router):
    return attach_lora(copy.deepcopy(base.model), LoraArgs(layers=4), seed=0)


def test_advantages_are_group_normalised_and_none_without_a_spread():
    assert dg.advantages([1.0, 1.0, 1.0]) is None
    assert dg.advantages([0.0, 1.0]) == [-1.0, 1.0]


def test_sampled_replies_end_at_the_end_of_turn(model, base: Router):
    prompt, replies = dg.sample(model, base.tokenizer, ASK, 3, temperature=1.0, max_new_tokens=24)
    assert len(replies) == 3 and prompt == dg.prompt_tokens(base.tokenizer, ASK)
    stops = dg._stop_ids(base.tokenizer)
    for r in replies:
        assert 0 < len(r) <= 24
        assert not any(t in stops for t in r[:-1])  # nothing after a stop token is kept


def _logp(model, tokenizer, text: str) -> float:
    prompt = dg.prompt_tokens(tokenizer, ASK)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return float(dg.reply_logprobs(model, prompt, [ids])[0])


def test_grpo_moves_the_policy_toward_the_replies_the_reward_prefers(model, base: Router):
    # The reward prefers replies that open with "No": after a few groups "No" must be likelier than before.
    before = _logp(model, base.tokenizer, "No")
    args = dg.DecomposerGrpoArgs(steps=6, group=6, lr=2e-3, temperature=1.5, max_new_tokens=6, threads=1, seed=1)
    run = dg.train(model, base.tokenizer, [ASK], lambda i, text: float(text.strip().lower().startswith("no")), args)
    after = _logp(model, base.tokenizer, "No")
    print("log p(No)", before, "->", after, "skipped", run.skipped, run.curves["reward_mean"])
    assert run.steps == 6 and run.skipped < 6
    assert after > before + 0.1


def test_a_reward_that_never_differs_teaches_nothing(model, base: Router):
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = dg.DecomposerGrpoArgs(steps=2, group=3, max_new_tokens=4, threads=1)
    run = dg.train(model, base.tokenizer, [ASK], lambda i, text: 0.5, args)
    assert run.skipped == 2 and "loss" not in run.curves
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters() if p.requires_grad)
