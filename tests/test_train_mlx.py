"""Allocator SFT/GRPO on MLX (mlx[cpu] on Linux) with a tiny random llama built at test time."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is not installed (pip install 'r2local[mlx]')")
pytest.importorskip("mlx_lm")

from r2local.routing.thresholds import LABELS  # noqa: E402
from r2local.train import mlx_allocator  # noqa: E402
from r2local.train.allocator import AllocatorArgs  # noqa: E402
from r2local.train.common import LoraArgs  # noqa: E402
from r2local.train.data import AllocExample, TrainError  # noqa: E402
from tests.test_backend_mlx import build_tiny_llama  # noqa: E402

PROMPTS = ["is the sky blue ?", "one two three", "answer the question", "red green blue", "a step is one"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def examples(rewards: dict[str, float]) -> list[AllocExample]:
    return [AllocExample([{"role": "user", "content": p}], dict(rewards)) for p in PROMPTS]


def args(**kw) -> AllocatorArgs:
    lora = LoraArgs(rank=4, alpha=8)
    base = {"sft_steps": 0, "grpo_steps": 0, "batch_size": 5, "group_size": 8, "lr": 1e-2, "lora": lora}
    return AllocatorArgs(**{**base, **kw})


def test_mlx_sft_moves_the_greedy_label(folder: Path):
    run = mlx_allocator.train(folder, examples({"easy": 0.0, "medium": 0.0, "hard": 1.0}), args(sft_steps=15), None)
    acc = run.curves["eval_accuracy"]
    assert acc[0][1] < 1.0 and acc[-1] == (15, 1.0)
    assert run.curves["sft_loss"][-1][1] < run.curves["sft_loss"][0][1]


def test_mlx_grpo_raises_the_best_label_and_the_kl_term_holds_it_back(folder: Path):
    table = {"easy": 0.0, "medium": 1.0, "hard": 0.1}
    free = mlx_allocator.train(folder, examples(table), args(grpo_steps=20), None)
    p_best = free.curves["eval_p_best"]
    assert p_best[-1][1] > p_best[0][1] + 0.3
    assert free.last("eval_greedy_reward") == pytest.approx(1.0)
    held = mlx_allocator.train(folder, examples(table), args(grpo_steps=20, beta=2.0), None)
    assert held.last("eval_kl_ref") < 0.5 * free.last("eval_kl_ref")


def test_mlx_adapter_reloads_in_mlx_lm_with_the_same_logits(folder: Path, tmp_path: Path):
    from mlx_lm import load

    run = mlx_allocator.train(
        folder,
        examples({"easy": 1.0, "medium": 0.0, "hard": 0.0}),
        args(sft_steps=3, grpo_steps=3, lora=LoraArgs(rank=4, alpha=8, layers=1)),
        tmp_path / "adapter",
    )
    config = json.loads((run.out_dir / "adapter_config.json").read_text())
    assert config["num_layers"] == 1 and sorted(config["lora_parameters"]["keys"]) == [
        "self_attn.k_proj",
        "self_attn.o_proj",
        "self_attn.q_proj",
        "self_attn.v_proj",
    ]
    keys = list(mx.load(str(run.out_dir / "adapters.safetensors")))
    assert keys and all(k.startswith("model.layers.1.") and k.rsplit(".", 1)[-1] in ("lora_a", "lora_b") for k in keys)
    prompts = [ex.messages for ex in examples({})]
    trained = run.policy.label_logprobs(prompts)
    model, tokenizer = load(str(folder), adapter_path=str(run.out_dir))
    again = mlx_allocator.MlxLabelPolicy(model, tokenizer, LABELS).label_logprobs(prompts)
    assert mx.allclose(trained, again, atol=1e-5).item()
    base, _ = load(str(folder))
    before = mlx_allocator.MlxLabelPolicy(base, tokenizer, LABELS).label_logprobs(prompts)
    assert not mx.allclose(trained, before, atol=1e-3).item()


def test_mlx_cancel_writes_nothing(folder: Path, tmp_path: Path):
    cancel = threading.Event()
    out = tmp_path / "adapter"
    run = mlx_allocator.train(
        folder,
        examples({"easy": 1.0, "medium": 0.0, "hard": 0.0}),
        args(grpo_steps=30),
        out,
        progress=lambda step, m: cancel.set() if step == 1 else None,
        cancel=cancel,
    )
    assert run.cancelled and run.steps == 1 and not out.exists() and [p for p in tmp_path.iterdir() if p.name not in ("home", "xdg")] == []


def test_mlx_bad_targets_are_refused(folder: Path):
    with pytest.raises(TrainError) as err:
        mlx_allocator.train(
            folder,
            examples({"easy": 1.0, "medium": 0.0, "hard": 0.0}),
            args(grpo_steps=1, lora=LoraArgs(targets=("lm_head",))),
            None,
        )
    assert err.value.fix
