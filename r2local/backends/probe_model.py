"""A tiny GGUF model, written here, for the llama.cpp load probe.

One llama block with zero weights in the quantisation types llama.cpp's CPU
kernels specialise (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K): decoding a batch with
it runs the same matrix-multiply code (AMX, repacked AVX, ...) a real model
does, in a few milliseconds, without any downloaded model file. Its output is
meaningless; only whether the library survives it matters.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

N_EMBD, N_FF, N_HEAD = 256, 512, 4
TOKENS = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]

# ggml type id -> (elements per block, bytes per block)
_TYPES = {
    "F32": (0, 1, 4), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q8_0": (8, 32, 34),
    "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210),
}
_U32, _I32, _F32, _STR, _ARR = 4, 5, 6, 8, 9
ALIGN = 32


def _s(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, kind: int, value: object) -> bytes:
    out = _s(key) + struct.pack("<I", kind)
    if kind == _STR:
        return out + _s(str(value))
    if kind == _ARR:
        elem, items = value  # type: ignore[misc]
        body = b"".join(_s(i) if elem == _STR else struct.pack("<f" if elem == _F32 else "<i", i) for i in items)
        return out + struct.pack("<IQ", elem, len(items)) + body
    return out + struct.pack({_U32: "<I", _I32: "<i", _F32: "<f"}[kind], value)


def _tensors() -> list[tuple[str, list[int], str]]:
    v = len(TOKENS)
    return [
        ("token_embd.weight", [N_EMBD, v], "F32"),
        ("output_norm.weight", [N_EMBD], "F32"),
        ("output.weight", [N_EMBD, v], "Q8_0"),
        ("blk.0.attn_norm.weight", [N_EMBD], "F32"),
        ("blk.0.attn_q.weight", [N_EMBD, N_EMBD], "Q4_0"),
        ("blk.0.attn_k.weight", [N_EMBD, N_EMBD], "Q4_1"),
        ("blk.0.attn_v.weight", [N_EMBD, N_EMBD], "Q8_0"),
        ("blk.0.attn_output.weight", [N_EMBD, N_EMBD], "Q4_K"),
        ("blk.0.ffn_norm.weight", [N_EMBD], "F32"),
        ("blk.0.ffn_gate.weight", [N_EMBD, N_FF], "Q5_K"),
        ("blk.0.ffn_up.weight", [N_EMBD, N_FF], "Q6_K"),
        ("blk.0.ffn_down.weight", [N_FF, N_EMBD], "Q4_K"),
    ]


def _nbytes(shape: list[int], kind: str) -> int:
    _, block, size = _TYPES[kind]
    count = 1
    for n in shape:
        count *= n
    return count // block * size


def write(path: Path) -> Path:
    """Write the probe model to ``path`` (about 1 MB) and return it."""
    kvs = [
        _kv("general.architecture", _STR, "llama"),
        _kv("general.name", _STR, "r2local-probe"),
        _kv("llama.context_length", _U32, 256),
        _kv("llama.embedding_length", _U32, N_EMBD),
        _kv("llama.block_count", _U32, 1),
        _kv("llama.feed_forward_length", _U32, N_FF),
        _kv("llama.attention.head_count", _U32, N_HEAD),
        _kv("llama.attention.head_count_kv", _U32, N_HEAD),
        _kv("llama.rope.dimension_count", _U32, N_EMBD // N_HEAD),
        _kv("llama.attention.layer_norm_rms_epsilon", _F32, 1e-5),
        _kv("tokenizer.ggml.model", _STR, "llama"),
        _kv("tokenizer.ggml.tokens", _ARR, (_STR, TOKENS)),
        _kv("tokenizer.ggml.scores", _ARR, (_F32, [0.0] * len(TOKENS))),
        _kv("tokenizer.ggml.token_type", _ARR, (_I32, [2, 3, 3] + [6] * 256)),
        _kv("tokenizer.ggml.bos_token_id", _U32, 1),
        _kv("tokenizer.ggml.eos_token_id", _U32, 2),
        _kv("tokenizer.ggml.unknown_token_id", _U32, 0),
    ]
    infos, data, offset = [], [], 0
    for name, shape, kind in _tensors():
        size = _nbytes(shape, kind)
        infos.append(_s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", n) for n in shape)
                     + struct.pack("<IQ", _TYPES[kind][0], offset))
        pad = -size % ALIGN
        data.append(bytes(size + pad))
        offset += size + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(kvs)) + b"".join(kvs) + b"".join(infos)
    head += bytes(-len(head) % ALIGN)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")  # two first runs at once must not share it
    tmp.write_bytes(head + b"".join(data))
    tmp.replace(path)
    return path
