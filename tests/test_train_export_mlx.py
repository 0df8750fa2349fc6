"""MLX adapter formats on a tiny random llama built at test time (mlx[cpu] on
Linux): a PEFT LoRA exported for mlx-lm must give mlx-lm torch's logits, and an
adapter saved the way mlx-lm's trainer saves it must, once converted to GGUF,
give llama.cpp mlx-lm's logits. For the latter the tiny model is also written
as a GGUF base (float32, Q/K rows permuted as llama.cpp's converter does)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is not installed (pip install 'r2local[mlx]')")
pytest.importorskip("mlx_lm")

from r2local.backends.mlx import MlxBackend  # noqa: E402
from tests.support import adapter_check as ac  # noqa: E402
from r2local.train.export import GGUF_NAMES, mlx_to_gguf, peft_to_mlx, permute_rows  # noqa: E402

from .test_backend_mlx import build_tiny_llama  # noqa: E402

IDS = [1, 5, 9, 10, 11, 20, 3, 6, 14, 15]  # <s> then a few of the tiny vocabulary's words
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def write_tiny_gguf(folder: Path, out: Path) -> Path:
    """The tiny llama as a float32 GGUF base that llama.cpp loads."""
    import gguf

    cfg = json.loads((folder / "config.json").read_text())
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    weights = {k: np.array(v, dtype=np.float32) for k, v in mx.load(str(folder / "model.safetensors")).items()}
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_block_count(cfg["num_hidden_layers"]), w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"]), w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head), w.add_head_count_kv(n_kv), w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(10000.0), w.add_rope_dimension_count(cfg["hidden_size"] // n_head)
    tokens = sorted(vocab, key=vocab.get)
    w.add_tokenizer_model("llama"), w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens)), w.add_token_types([1] * len(tokens))
    w.add_bos_token_id(vocab["<s>"]), w.add_eos_token_id(vocab["</s>"])
    w.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])  # tied: no output.weight
    w.add_tensor("output_norm.weight", weights["model.norm.weight"])
    norms = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, name in {**norms, **GGUF_NAMES}.items():
            x = weights[f"model.layers.{i}.{hf}.weight"]
            if hf in ("self_attn.q_proj", "self_attn.k_proj"):
                x = permute_rows(x, n_head if hf == "self_attn.q_proj" else n_kv)
            w.add_tensor(f"blk.{i}.{name}.weight", np.ascontiguousarray(x))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _mlx_logits(model) -> np.ndarray:
    return np.array(model(mx.array(IDS)[None])[0, -1].astype(mx.float32), dtype=np.float64)


def test_peft_adapter_runs_in_mlx_lm_like_in_torch(tiny: Path, tmp_path: Path):
    import torch
    from mlx_lm import load
    from transformers import LlamaForCausalLM

    torch.set_num_threads(1)
    peft_model = ac.random_lora(LlamaForCausalLM.from_pretrained(str(tiny), dtype=torch.float32), tmp_path / "peft",
                                rank=4, modules=MODULES, std=0.3, seed=1)
    torch_base, torch_lora = ac.torch_pair(peft_model, [IDS])
    mlx_dir = peft_to_mlx(tmp_path / "peft", tmp_path / "mlx")
    mlx_lora = _mlx_logits(load(str(tiny), adapter_path=str(mlx_dir))[0])
    shift = np.abs(torch_lora[0] - torch_base[0]).max()
    print(f"tiny llama: PEFT adapter shift {shift:.3f}, mlx-lm vs torch {np.abs(mlx_lora - torch_lora[0]).max():.2e}")
    assert shift > 0.1  # the adapter matters
    assert np.abs(mlx_lora - torch_lora[0]).max() < 1e-3 * max(1.0, shift)
    # The backend's own load path takes the folder too.
    backend = MlxBackend(tiny, adapter=mlx_dir, n_ctx=128)
    probs, _ = backend.score_labels([{"role": "user", "content": "is the sky blue ?"}], ["easy", "medium", "hard"])
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    backend.close()


def _mlx_trained_adapter(tiny: Path, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """An adapter saved as mlx-lm's trainer saves one; returns (base, adapted) logits."""
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = load(str(tiny))
    base = _mlx_logits(model)
    model.freeze()
    params = {"rank": 4, "scale": 20.0, "dropout": 0.0}  # mlx-lm's defaults but the rank
    mx.random.seed(3)  # lora_a's initial values are random too
    linear_to_lora_layers(model, -1, params)  # no "keys": every linear layer of every block
    for _, layer in model.named_modules():
        if hasattr(layer, "lora_b"):
            layer.lora_b = mx.random.normal(layer.lora_b.shape) * 0.01
    out.mkdir(parents=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    (out / "adapter_config.json").write_text(json.dumps({"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": params}))
    return base, _mlx_logits(model)


def test_mlx_lm_adapter_converted_to_gguf_runs_in_llama_cpp(tiny: Path, tmp_path: Path):
    base_gguf = write_tiny_gguf(tiny, tmp_path / "tiny.gguf")
    mlx_base, mlx_lora = _mlx_trained_adapter(tiny, tmp_path / "mlx-adapter")
    adapter = mlx_to_gguf(tmp_path / "mlx-adapter", base_gguf, tmp_path / "adapter.gguf")
    plain, tuned = ac.open_llama(base_gguf, n_ctx=64), ac.open_llama(base_gguf, adapter, n_ctx=64)
    llama_base, llama_lora = ac.llama_logits(plain, IDS), ac.llama_logits(tuned, IDS)
    plain.close(), tuned.close()
    shift = np.abs(mlx_lora - mlx_base).max()
    floor = np.abs(llama_base - mlx_base).max()  # llama.cpp keeps its KV cache in f16
    err = np.abs(llama_lora - mlx_lora).max()
    print(f"tiny llama: adapter shift {shift:.3f}, base floor {floor:.2e}, adapter error {err:.2e}")
    assert shift > 0.5 and floor < 5e-3
    assert err < 5e-3 + 0.01 * shift
