"""Adapters where inference runs: a PEFT LoRA (what the CPU/CUDA trainer saves)
becomes a GGUF LoRA for llama.cpp or an mlx-lm adapter folder, and an mlx-lm
adapter (what Apple Silicon trains) becomes a GGUF LoRA.

Every file is written to a temporary name next to its target and renamed into
place, so a reader never sees half an adapter.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from r2local.train.ggufinfo import GgufInfo, read_gguf_info
from r2local.train.lora import AdapterError, LoraAdapter, LoraPair, read_mlx, read_peft

# HF/mlx-lm module -> GGUF tensor stem within blk.N (llama.cpp's tensor names).
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
# Architectures checked against llama.cpp (KL vs torch in tests/test_train_export.py).
# True: llama.cpp's HF converter reorders the rows of Q and K (rotary pairs
# interleaved instead of split in halves), so the rows of lora_B must follow.
PERMUTE_QK = {"llama": True, "qwen2": False}


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path in ``path``'s folder, renamed to ``path`` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def permute_rows(b: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's Q/K permutation (convert_hf_to_gguf.py LlamaModel.permute) on lora_B's rows."""
    out, rank = b.shape
    return b.reshape(n_head, 2, out // n_head // 2, rank).swapaxes(1, 2).reshape(out, rank)


def _base_arch(base: GgufInfo) -> bool:
    """Whether Q/K rows need permuting for this base; refuses what cannot be served."""
    if base.metadata.get("general.type") == "adapter":
        raise AdapterError(f"{base.path.name} is an adapter, not a base model", fix="pass the base model's .gguf")
    if base.architecture not in PERMUTE_QK:
        raise AdapterError(
            f"no LoRA export for the {base.architecture!r} architecture (supported: {', '.join(PERMUTE_QK)})",
            fix="use llama.cpp's convert_lora_to_gguf.py for this model",
        )
    return PERMUTE_QK[base.architecture]


def _gguf_tensor(pair: LoraPair, base: GgufInfo, permute: bool) -> tuple[str, np.ndarray, np.ndarray]:
    stem = f"blk.{pair.layer}.{GGUF_NAMES[pair.module]}.weight"
    shape = base.shapes.get(stem)
    if shape is None:
        raise AdapterError(
            f"the adapter touches layer {pair.layer} {pair.module}, which {base.path.name} does not have ({stem})",
            fix="export against the GGUF of the model the adapter was trained on",
        )
    n_in, n_out = shape[0], shape[1]
    rank = pair.a.shape[0]
    if pair.a.shape != (rank, n_in) or pair.b.shape != (n_out, rank):
        raise AdapterError(
            f"layer {pair.layer} {pair.module}: adapter A{pair.a.shape} B{pair.b.shape} does not fit "
            f"{base.path.name}'s {n_out}x{n_in} weight",
            fix="export against the GGUF of the model the adapter was trained on",
        )
    b = pair.b
    if permute and pair.module in ("self_attn.q_proj", "self_attn.k_proj"):
        n_head = base.get_int("attention.head_count")
        n_kv = base.get_int("attention.head_count_kv") or n_head
        if not n_head:
            raise AdapterError(f"{base.path.name} lacks attention.head_count", fix="re-convert the base model")
        b = permute_rows(b, n_head if pair.module == "self_attn.q_proj" else n_kv)
    return stem, pair.a.astype(np.float32), np.ascontiguousarray(b, dtype=np.float32)


def write_gguf_lora(adapter: LoraAdapter, base_gguf: str | Path, out_path: str | Path, dtype: Any = np.float32) -> Path:
    """Write ``adapter`` as a GGUF LoRA for ``base_gguf`` (float32 tensors; float16 halves a shipped file)."""
    import gguf

    base = read_gguf_info(base_gguf)
    permute = _base_arch(base)
    tensors = [_gguf_tensor(pair, base, permute) for pair in adapter.pairs]  # validate before writing
    out = Path(out_path)
    with _atomic(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), base.architecture)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(adapter.alpha))
        for stem, a, b in tensors:
            writer.add_tensor(f"{stem}.lora_a", a.astype(dtype))
            writer.add_tensor(f"{stem}.lora_b", b.astype(dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out


def peft_to_gguf(adapter_dir: str | Path, base_gguf: str | Path, out_path: str | Path, dtype: Any = np.float32) -> Path:
    """A PEFT LoRA folder -> a GGUF LoRA that llama.cpp loads on ``base_gguf``.

    Args:
        adapter_dir: folder written by ``PeftModel.save_pretrained``.
        base_gguf: the GGUF base model the adapter will run on (its architecture
            decides the tensor layout; its shapes are checked).
        out_path: the .gguf adapter to write (replaced atomically).
    """
    return write_gguf_lora(read_peft(adapter_dir), base_gguf, out_path, dtype)


def mlx_to_gguf(mlx_adapter_dir: str | Path, base_gguf: str | Path, out_path: str | Path) -> Path:
    """An mlx-lm LoRA adapter folder -> a GGUF LoRA for ``base_gguf`` (transposes both
    matrices; alpha = scale x rank)."""
    return write_gguf_lora(read_mlx(mlx_adapter_dir), base_gguf, out_path)


def peft_to_mlx(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """A PEFT LoRA folder -> an mlx-lm adapter folder for ``mlx_lm.load(..., adapter_path=)``.

    ``num_layers`` is -1 (every block gets LoRA layers; blocks the adapter does
    not cover keep mlx-lm's zero lora_b, so they are unchanged).
    """
    from safetensors.numpy import save_file

    adapter = read_peft(adapter_dir)
    if len(adapter.ranks) != 1:
        raise AdapterError(
            f"{adapter_dir}: modules have ranks {sorted(adapter.ranks)}; an mlx-lm adapter has one rank",
            fix="train with a single r (no rank_pattern) for MLX",
        )
    (rank,) = adapter.ranks
    weights: dict[str, np.ndarray] = {}
    for p in adapter.pairs:
        prefix = f"model.layers.{p.layer}.{p.module}"
        weights[f"{prefix}.lora_a"] = np.ascontiguousarray(p.a.T, dtype=np.float32)
        weights[f"{prefix}.lora_b"] = np.ascontiguousarray(p.b.T, dtype=np.float32)
    config = {
        "fine_tune_type": "lora",
        "num_layers": -1,
        "lora_parameters": {"rank": rank, "scale": adapter.alpha / rank, "dropout": 0.0, "keys": adapter.modules},
    }
    out = Path(out_dir)
    # Weights first, config last: a new folder has its weights once it has a config.
    with _atomic(out / "adapters.safetensors") as tmp:
        save_file(weights, str(tmp))
    with _atomic(out / "adapter_config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2))
    return out
