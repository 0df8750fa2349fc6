"""LoRA adapters read from PEFT and mlx-lm folders into one neutral form.

The neutral form uses PEFT's (and llama.cpp's) layout: for each adapted linear
layer ``a`` is (rank, in), ``b`` is (out, rank), and the weight update is
``alpha / rank * b @ a`` with one ``alpha`` for the whole adapter, the rank
being each pair's own (that is how llama.cpp scales a GGUF LoRA). Per-module
PEFT scales that differ from that (``alpha_pattern``, rsLoRA with a
``rank_pattern``) are folded into ``b`` when reading.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from r2local.errors import AdapterError  # noqa: F401  (re-exported: every error type lives in r2local.errors)

# Linear layers of a llama-style decoder block that every supported runtime names
# the same way (HF, mlx-lm); export.py maps them to GGUF tensor names.
MODULES = (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
)
_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(\w+\.\w+)\.lora_([ABab])(?:\.weight)?$")




@dataclass(frozen=True)
class LoraPair:
    layer: int
    module: str  # one of MODULES
    a: np.ndarray  # (rank, in), float32
    b: np.ndarray  # (out, rank), float32


@dataclass(frozen=True)
class LoraAdapter:
    alpha: float
    pairs: list[LoraPair]

    @property
    def ranks(self) -> set[int]:
        return {p.a.shape[0] for p in self.pairs}

    @property
    def modules(self) -> list[str]:
        return sorted({p.module for p in self.pairs}, key=MODULES.index)


# -- safetensors ---------------------------------------------------------------
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": np.uint16}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as float32 arrays (bf16 included, which
    ``safetensors.numpy`` cannot read)."""
    raw = path.read_bytes()
    try:
        (n,) = struct.unpack_from("<Q", raw, 0)
        header = json.loads(raw[8 : 8 + n])
    except (struct.error, ValueError):
        raise AdapterError(f"{path} is not a safetensors file", fix="save the adapter again") from None
    body = memoryview(raw)[8 + n :]
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(spec["dtype"])
        if dtype is None:
            raise AdapterError(f"{path.name}: tensor {name} has dtype {spec['dtype']}", fix="save the adapter in float32")
        start, end = spec["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=dtype).reshape(spec["shape"])
        if spec["dtype"] == "BF16":  # bf16 is the top half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float32)
    return out


# -- pairing -------------------------------------------------------------------
def _pairs(tensors: dict[str, np.ndarray], source: str) -> dict[tuple[int, str], dict[str, np.ndarray]]:
    found: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name, arr in tensors.items():
        m = _KEY.search(name)
        if m is None or m.group(2) not in MODULES:
            what = m.group(2) if m else name
            raise AdapterError(
                f"{source} adapts {what}, which the export does not support (only {', '.join(MODULES)})",
                fix="train with target_modules limited to the attention and MLP projections; keep heads out of the adapter",
            )
        found.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3).lower()] = arr
    for (layer, module), ab in found.items():
        if set(ab) != {"a", "b"}:
            raise AdapterError(f"{source}: layer {layer} {module} lacks its lora_{'B' if 'a' in ab else 'A'}", fix="save the adapter again")
    return found


# -- PEFT ----------------------------------------------------------------------
def _check_peft_config(cfg: dict, folder: Path) -> None:
    if cfg.get("peft_type") != "LORA":
        raise AdapterError(f"{folder} holds a {cfg.get('peft_type')} adapter, not LoRA", fix="train a LoRA adapter")
    unsupported = {
        "use_dora": "DoRA", "modules_to_save": "full copies of extra modules (modules_to_save)",
        "trainable_token_indices": "trainable token embeddings", "lora_bias": "LoRA biases",
        "layer_replication": "layer replication", "target_parameters": "LoRA on raw parameters",
        "fan_in_fan_out": "fan_in_fan_out weights",
    }
    for key, what in unsupported.items():
        if cfg.get(key):
            raise AdapterError(
                f"{folder}: the adapter uses {what}, which GGUF/MLX LoRA cannot hold",
                fix=f"train without {key} (keep classifier heads outside the adapter)",
            )
    if cfg.get("bias", "none") != "none":
        raise AdapterError(f"{folder}: the adapter trains biases (bias={cfg['bias']!r})", fix="train with bias='none'")


def _peft_scale(cfg: dict, module_path: str, rank: int) -> float:
    """PEFT's scaling for one module: alpha / rank, or alpha / sqrt(rank) with rsLoRA."""
    alpha = float(cfg["lora_alpha"])
    for pattern, value in (cfg.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(?:.*\.)?(?:{pattern})", module_path):
            alpha = float(value)
            break
    return alpha / (math.sqrt(rank) if cfg.get("use_rslora") else rank)


def read_peft(folder: str | Path) -> LoraAdapter:
    """A LoRA adapter as saved by ``PeftModel.save_pretrained``."""
    folder = Path(folder)
    cfg_path, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise AdapterError(
            f"{folder} is not a PEFT adapter folder (needs adapter_config.json and adapter_model.safetensors)",
            fix="save it with PeftModel.save_pretrained(folder) (safe_serialization is the default)",
        )
    cfg = json.loads(cfg_path.read_text())
    _check_peft_config(cfg, folder)
    rank = int(cfg["r"])
    # One alpha for the file such that alpha / rank is PEFT's scale at the config's rank.
    alpha = float(cfg["lora_alpha"]) * (math.sqrt(rank) if cfg.get("use_rslora") else 1.0)
    pairs = []
    for (layer, module), ab in sorted(_pairs(read_safetensors(weights), f"PEFT adapter {folder}").items()):
        r_m = ab["a"].shape[0]
        factor = _peft_scale(cfg, f"model.layers.{layer}.{module}", r_m) * r_m / alpha
        b = ab["b"] if math.isclose(factor, 1.0, rel_tol=1e-6) else ab["b"] * np.float32(factor)
        pairs.append(LoraPair(layer, module, ab["a"], b))
    if not pairs:
        raise AdapterError(f"{folder}: the adapter holds no LoRA tensors", fix="train it before exporting")
    return LoraAdapter(alpha, pairs)


# -- mlx-lm --------------------------------------------------------------------
def read_mlx(folder: str | Path) -> LoraAdapter:
    """An mlx-lm LoRA adapter folder (adapters.safetensors + adapter_config.json).

    mlx-lm computes ``x @ lora_a @ lora_b * scale``: ``lora_a`` is (in, rank),
    ``lora_b`` (rank, out), and ``scale`` is not divided by the rank.
    """
    folder = Path(folder)
    cfg_path, weights = folder / "adapter_config.json", folder / "adapters.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise AdapterError(
            f"{folder} is not an mlx-lm adapter folder (needs adapter_config.json and adapters.safetensors)",
            fix="point at the --adapter-path folder mlx-lm trained into",
        )
    cfg = json.loads(cfg_path.read_text())
    kind = cfg.get("fine_tune_type", "dora" if cfg.get("use_dora") else "lora")
    if kind != "lora":
        raise AdapterError(f"{folder} holds a {kind} fine-tune, not a LoRA", fix="train with --fine-tune-type lora")
    params = cfg.get("lora_parameters") or {}
    if "rank" not in params or "scale" not in params:
        raise AdapterError(f"{folder}/adapter_config.json lacks lora_parameters.rank/scale", fix="save the adapter with mlx-lm")
    rank, scale = int(params["rank"]), float(params["scale"])
    pairs = [
        LoraPair(layer, module, np.ascontiguousarray(ab["a"].T), np.ascontiguousarray(ab["b"].T))
        for (layer, module), ab in sorted(_pairs(read_safetensors(weights), f"MLX adapter {folder}").items())
    ]
    if not pairs:
        raise AdapterError(f"{folder}: the adapter holds no LoRA tensors", fix="train it before exporting")
    odd = next((p for p in pairs if p.a.shape[0] != rank), None)
    if odd is not None:
        raise AdapterError(
            f"{folder}: layer {odd.layer} {odd.module} has rank {odd.a.shape[0]}, the config says {rank}",
            fix="save the adapter again with mlx-lm",
        )
    return LoraAdapter(scale * rank, pairs)
