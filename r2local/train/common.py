"""What every PyTorch trainer here shares: LoRA settings, loading the router
GGUF, thread scope, cancel/progress types and the atomic adapter save."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from r2local.train.data import TrainError

# progress(step, metrics): called after every optimiser step, and with eval
# figures every `eval_every` steps. It runs on the training thread.
Progress = Callable[[int, dict[str, float]], None]

META_FILE = "r2local_train.json"


@dataclass
class LoraArgs:
    rank: int = field(default=16, metadata={"help": "LoRA rank r."})
    alpha: float = field(default=32.0, metadata={"help": "LoRA alpha; the update is scaled by alpha / r."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input (0 keeps steps deterministic)."})
    targets: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        metadata={
            "help": "Linear layers that get LoRA: attention q,k,v,o and optionally gate/up/down_proj. "
            "Never the head: the GGUF exporter only maps per-layer linears."
        },
    )
    layers: int | None = field(
        default=None,
        metadata={
            "help": "LoRA only on the top N transformer layers (None: all). The frozen layers below "
            "then run once per prompt and are cached, which makes allocator steps several times cheaper."
        },
    )


def help_text(args_cls: type) -> dict[str, str]:
    """Field name -> help, for a CLI or a settings screen."""
    return {f.name: f.metadata.get("help", "") for f in fields(args_cls)}


def to_json(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_json(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


@dataclass
class Router:
    """A router model loaded for training: HF fp32 model and its tokenizer."""

    model: Any
    tokenizer: Any
    source: str


def load_router(gguf: Path) -> Router:
    """Dequantise a GGUF router into an fp32 transformers model and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    if not gguf.is_file():
        raise TrainError(f"router model {gguf} does not exist", fix="run `r2local models pull <router>` first")
    import torch

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The GGUF quantiser config stays attached after dequantising; trainers and
    # PEFT refuse a model that still claims to be quantised.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.eval()
    return Router(model, tokenizer, str(gguf))


def attach_lora(model: Any, lora: LoraArgs, seed: int = 0) -> Any:
    """Wrap ``model`` in a fresh PEFT LoRA adapter (the base weights stay frozen)."""
    import torch
    from peft import LoraConfig, get_peft_model

    n_layers = model.config.num_hidden_layers
    if lora.layers is not None and not 1 <= lora.layers <= n_layers:
        raise TrainError(
            f"lora.layers={lora.layers} but the model has {n_layers} layers", fix=f"use 1..{n_layers} or None"
        )
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = [t for t in lora.targets if t not in names]
    if unknown or not lora.targets:
        raise TrainError(
            f"LoRA targets {unknown or '()'} are not layers of this model", fix="use q_proj,k_proj,v_proj,o_proj"
        )
    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.targets),
        layers_to_transform=None if lora.layers is None else list(range(n_layers - lora.layers, n_layers)),
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)  # LoRA A matrices are random: same seed, same run
    return get_peft_model(model, config)


def detach_lora(peft_model: Any) -> Any:
    """The base model without the adapter, ready for another attach_lora."""
    return peft_model.unload()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` threads, restoring the previous count afterwards.

    Training shares the CPU with llama.cpp inference; oversubscribed threads were
    measured 20-40x slower, so the caller chooses and we do not grab every core.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def apply_gradients(loss: Any, opt: Any, max_grad_norm: float) -> None:
    """Backward, clip the gradient norm (0: no clip), one optimiser step."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        params = [p for group in opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()


def make_optimizer(model: Any, lr: float) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainError("the adapter has no trainable weights", fix="check lora.targets")
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def batches(n: int, size: int, seed: int) -> Iterator[list[int]]:
    """Endless shuffled batches of indices: a new shuffle of all n after each pass."""
    rng = random.Random(seed)
    size = min(size, n)
    order: list[int] = []
    while True:
        if len(order) < size:
            fresh = list(range(n))
            rng.shuffle(fresh)
            order += fresh
        yield order[:size]
        order = order[size:]


def cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def check_out_dir(out_dir: Path, overwrite: bool) -> Path:
    """Refuse an existing output directory before training, not after it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise TrainError(f"{out_dir} already exists", fix="pick a new output directory or pass overwrite=True")
    return out_dir


def save_atomically(out_dir: Path, write: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Write a directory under a temporary name, then rename it into place.

    A run killed mid-save leaves only a hidden ``.tmp-*`` sibling, never a half
    written adapter at ``out_dir``. When replacing an existing directory the
    old one is renamed aside first; the integrator should rather write each
    version to a fresh directory and flip a pointer (one rename, atomic).
    """
    out_dir = check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        _fsync_tree(tmp)
        if out_dir.exists():
            aside = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out_dir, aside)
            os.rename(tmp, out_dir)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _fsync_tree(folder: Path) -> None:
    # Flush file contents before the rename publishes them.
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META_FILE).write_text(json.dumps(to_json(meta), indent=1))


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / META_FILE).read_text())


@dataclass
class TrainResult:
    """What a training run returns: where the adapter went and the curves.

    ``out_dir`` is None when the run was cancelled (nothing is written then).
    ``curves`` maps a metric name to a list of (step, value) pairs.
    """

    out_dir: Path | None
    curves: dict[str, list[tuple[int, float]]]
    cancelled: bool = False
    steps: int = 0

    def last(self, name: str) -> float:
        return self.curves[name][-1][1]


def record(curves: dict[str, list[tuple[int, float]]], step: int, metrics: dict[str, float]) -> None:
    for name, value in metrics.items():
        curves.setdefault(name, []).append((step, float(value)))
