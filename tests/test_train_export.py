"""Adapters where inference runs, on the real models: a PEFT LoRA trained in
torch on the GGUF's own (dequantised) weights, exported to a GGUF LoRA, must
give llama.cpp the same next-token distribution as torch+PEFT; the llama.cpp
backend swaps adapters on a loaded base; PEFT -> MLX -> GGUF keeps every tensor.

SmolLM2 is a llama-architecture model (llama.cpp permutes its Q/K rows, so the
adapter's must follow); Qwen2.5 is qwen2 (no permutation) and also gets LoRA on
its MLP projections.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from r2local.backends.llamacpp import LlamaCppBackend
from r2local.errors import ModelError
from r2local.routing.thresholds import LABELS
from tests.support import adapter_check as ac
from r2local.train import export
from r2local.train.export import mlx_to_gguf, peft_to_gguf, peft_to_mlx
from r2local.train.ggufinfo import read_gguf_info
from r2local.train.lora import AdapterError, read_peft

ALL = ac.ATTENTION + ["gate_proj", "up_proj", "down_proj"]
# std of the random lora_B: large enough that the adapter moves the labels,
# small enough that the model still makes sense (Qwen's MLP LoRA at 0.1 gives
# KL 16 nats: noise that no two runtimes reproduce alike).
CASES = {"smol": ("smol_path", ac.ATTENTION, 0.2), "qwen": ("qwen_path", ALL, 0.05)}


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, tmp_path_factory) -> ac.Reference:
    import torch

    torch.set_num_threads(1)
    fixture, modules, std = CASES[request.param]
    base = request.getfixturevalue(fixture)
    return ac.build_reference(base, tmp_path_factory.mktemp(request.param), modules=modules, std=std)


def test_gguf_adapter_gives_llama_cpp_the_torch_distribution(exported: ac.Reference):
    c = ac.check(exported)
    print(exported.base.name, c)
    # The Q4/Q5 base already differs from its dequantised torch twin by kl_floor;
    # the adapter may add little on top of that, and must move the model far more.
    assert c.kl_adapter < 0.02 and c.kl_adapter < c.kl_floor + 0.01, c
    assert c.kl_shift > 20 * c.kl_adapter, c
    # The adapter's own effect (log-prob change), where quantisation mostly
    # cancels, is reproduced to within 15% (measured 0.07 SmolLM2, 0.025 Qwen; a
    # wrong Q/K choice gives 0.29-0.38).
    assert c.delta_error < 0.15, c
    # Labels: the top label's lead moves between the adapted runtimes by at most a
    # few times what it already moves between the bases (measured 0.19 vs 0.21 on
    # SmolLM2, 0.31 vs 0.14 on Qwen; a wrong Q/K choice gives 2-3 nats), and every
    # prompt whose lead is well above that noise gets the same label. How many of
    # the six prompts clear the noise is the build's noise, not the export's
    # correctness (a native build had 2, the portable wheel 3+), so it is not asserted;
    # the adapter's effect on the labels is, on the torch side alone.
    assert c.label_error < 3 * c.label_floor + 0.05, c
    assert c.labels_agree == c.decisive and c.labels_changed >= 1, c


def test_the_qk_permutation_is_right_for_each_architecture(exported: ac.Reference, tmp_path: Path, monkeypatch):
    """Flipping the permutation choice (off for llama, on for qwen2) makes the
    adapter silently wrong, and the check above would catch it."""
    arch = read_gguf_info(exported.base).architecture
    monkeypatch.setitem(export.PERMUTE_QK, arch, not export.PERMUTE_QK[arch])
    wrong = peft_to_gguf(exported.peft_dir, exported.base, tmp_path / "flipped.gguf")
    c = ac.check(exported, wrong)
    print(arch, "flipped:", c)
    assert c.delta_error > 0.2 and c.kl_adapter > 0.05 and c.label_error > 1.0, c


def _probs(backend: LlamaCppBackend) -> np.ndarray:
    return np.array([list(backend.score_labels(p, list(LABELS))[0].values()) for p in ac.prompts()[:2]])


def test_hot_swap_matches_a_load_time_adapter_and_swaps_back(exported: ac.Reference):
    loaded = LlamaCppBackend(exported.base, threads=1, n_ctx=1024, adapter=exported.gguf)
    reference = _probs(loaded)
    # Memory snapshots only: the check compares against cold evaluations to 1e-4, and a prefix restored
    # from disk is decoded in two batches, which llama.cpp's CPU kernels round differently (up to 0.01 here).
    backend = LlamaCppBackend(exported.base, threads=1, n_ctx=1024, kv_disk=False)
    base = _probs(backend)  # also fills the prompt cache with KV computed without the adapter
    start = time.perf_counter()
    backend.set_adapter(exported.gguf)
    first = time.perf_counter() - start
    assert backend.active_adapter == (exported.gguf, 1.0)
    swapped = _probs(backend)
    assert np.abs(swapped - reference).max() < 1e-4  # stale KV from the base would show here
    assert np.abs(swapped - base).max() > 0.05
    backend.set_adapter(None)
    # Swapped back, the base's own snapshots serve again (kept per adapter state), never the adapter's: a
    # restored prefix is decoded in two batches (up to 0.01 of rounding, above), the adapter moves > 0.05.
    assert np.abs(_probs(backend) - base).max() < 0.02
    start = time.perf_counter()
    backend.set_adapter(exported.gguf)  # the handle is cached: no file read
    again = time.perf_counter() - start
    assert np.abs(_probs(backend) - reference).max() < 0.02  # the adapter's snapshots, kept while the base ran
    assert backend.prompt_cache.nbytes > 0
    backend.set_adapter(exported.gguf)  # already active: the cached KV stays valid and is kept
    assert backend.prompt_cache.nbytes > 0
    backend.set_adapter(exported.gguf, scale=0.0)
    assert backend.prompt_cache.nbytes == 0
    assert np.abs(_probs(backend) - base).max() < 1e-4
    loaded.set_adapter(None)  # a load-time adapter can be swapped off too
    assert np.abs(_probs(loaded) - base).max() < 1e-4
    print(f"{exported.base.name}: first swap {first * 1000:.1f} ms, cached swap {again * 1000:.2f} ms")
    assert again < 0.1
    backend.close(), loaded.close()
    assert backend.active_adapter == (None, 1.0) and loaded.active_adapter == (exported.gguf, 1.0)


def test_hot_swap_refuses_missing_or_foreign_adapters(exported: ac.Reference, tmp_path: Path, smol_path: Path, qwen_path: Path):
    other = qwen_path if exported.base == smol_path else smol_path
    backend = LlamaCppBackend(other, threads=1, n_ctx=512)
    with pytest.raises(ModelError, match="not found"):
        backend.set_adapter(tmp_path / "missing.gguf")
    with pytest.raises(ModelError, match="not a LoRA adapter for"):
        backend.set_adapter(exported.gguf)  # another architecture
    assert backend.active_adapter == (None, 1.0)
    backend.close()


def test_peft_to_mlx_to_gguf_keeps_every_tensor(exported: ac.Reference, tmp_path: Path):
    import gguf

    mlx_dir = peft_to_mlx(exported.peft_dir, tmp_path / "mlx")
    config = json.loads((mlx_dir / "adapter_config.json").read_text())
    assert config["fine_tune_type"] == "lora" and config["lora_parameters"]["rank"] == 8
    assert config["lora_parameters"]["scale"] == 2.0  # PEFT's lora_alpha / r
    via_mlx = mlx_to_gguf(mlx_dir, exported.base, tmp_path / "via-mlx.gguf")
    direct, roundtrip = gguf.GGUFReader(str(exported.gguf)), gguf.GGUFReader(str(via_mlx))
    assert roundtrip.fields["adapter.lora.alpha"].contents() == direct.fields["adapter.lora.alpha"].contents() == 16.0
    a = {t.name: np.array(t.data) for t in direct.tensors}
    b = {t.name: np.array(t.data) for t in roundtrip.tensors}
    assert a.keys() == b.keys() and len(a) == 2 * len(read_peft(exported.peft_dir).pairs)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


# -- errors, on small hand-written adapters (no model needed) ---------------------
def _write_peft(folder: Path, tensors: dict[str, np.ndarray], **cfg) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.astype(np.float32) for k, v in tensors.items()}, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none", **cfg}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def _lora(layer: int, module: str, n_in: int, n_out: int, rank: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    stem = f"base_model.model.model.layers.{layer}.{module}"
    return {f"{stem}.lora_A.weight": rng.standard_normal((rank, n_in)), f"{stem}.lora_B.weight": rng.standard_normal((n_out, rank))}


def test_export_refuses_what_llama_cpp_cannot_run(tmp_path: Path, smol_path: Path, qwen_path: Path):
    out = tmp_path / "out.gguf"
    good = _lora(0, "self_attn.q_proj", 576, 576)
    head = {"base_model.model.lm_head.lora_A.weight": np.ones((4, 576)), "base_model.model.lm_head.lora_B.weight": np.ones((49152, 4))}
    with pytest.raises(AdapterError, match="lm_head") as err:
        peft_to_gguf(_write_peft(tmp_path / "head", {**good, **head}), smol_path, out)
    assert "keep heads out" in err.value.fix
    with pytest.raises(AdapterError, match="modules_to_save"):
        peft_to_gguf(_write_peft(tmp_path / "mts", good, modules_to_save=["score"]), smol_path, out)
    with pytest.raises(AdapterError, match="DoRA"):
        peft_to_gguf(_write_peft(tmp_path / "dora", good, use_dora=True), smol_path, out)
    with pytest.raises(AdapterError, match="does not fit"):  # a SmolLM2 adapter on Qwen's 896-wide layers
        peft_to_gguf(_write_peft(tmp_path / "smol", good), qwen_path, out)
    with pytest.raises(AdapterError, match="does not have"):
        peft_to_gguf(_write_peft(tmp_path / "deep", _lora(40, "self_attn.q_proj", 576, 576)), smol_path, out)
    with pytest.raises(AdapterError, match="not a PEFT adapter folder"):
        peft_to_gguf(tmp_path / "nothing", smol_path, out)
    ok = _write_peft(tmp_path / "ok", good)
    adapter = peft_to_gguf(ok, smol_path, tmp_path / "ok.gguf")
    with pytest.raises(AdapterError, match="an adapter, not a base model"):
        peft_to_gguf(ok, adapter, out)
    assert not out.exists() and not list(tmp_path.glob(".out.gguf.*"))  # nothing half-written


def test_export_refuses_an_unknown_architecture(tmp_path: Path):
    import gguf

    base = tmp_path / "phi.gguf"
    writer = gguf.GGUFWriter(str(base), "phi2")
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    writer.write_header_to_file(), writer.write_kv_data_to_file(), writer.write_tensors_to_file(), writer.close()
    with pytest.raises(AdapterError, match="'phi2' architecture") as err:
        peft_to_gguf(_write_peft(tmp_path / "a", _lora(0, "self_attn.q_proj", 8, 8)), base, tmp_path / "x.gguf")
    assert "convert_lora_to_gguf" in err.value.fix


def test_peft_scales_fold_into_b(tmp_path: Path):
    """alpha_pattern and rsLoRA scale some modules differently from the file's one alpha."""
    tensors = {**_lora(0, "self_attn.q_proj", 8, 8), **_lora(0, "self_attn.v_proj", 8, 8, seed=1)}
    plain = read_peft(_write_peft(tmp_path / "plain", tensors))
    patterned = read_peft(_write_peft(tmp_path / "pat", tensors, alpha_pattern={"v_proj": 32}))
    rs = read_peft(_write_peft(tmp_path / "rs", tensors, use_rslora=True))
    assert plain.alpha == patterned.alpha == 8 and rs.alpha == 16  # 8 * sqrt(4)
    for adapter, v_scale in ((plain, 8 / 4), (patterned, 32 / 4), (rs, 8 / 2)):
        q, v = adapter.pairs[0], adapter.pairs[1]
        raw_b = tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]
        np.testing.assert_allclose(adapter.alpha / 4 * v.b, v_scale * raw_b, rtol=1e-6)
        assert np.array_equal(q.b, tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].astype(np.float32))


def test_bf16_adapters_are_read(tmp_path: Path):
    import torch
    from safetensors.torch import save_file

    from r2local.train.lora import read_safetensors

    t = torch.randn(4, 8).to(torch.bfloat16)
    save_file({"x": t}, str(tmp_path / "w.safetensors"))
    assert np.array_equal(read_safetensors(tmp_path / "w.safetensors")["x"], t.float().numpy())
