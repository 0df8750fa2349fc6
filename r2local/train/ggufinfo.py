"""What an adapter export needs from a base GGUF: its architecture, scalar
metadata and tensor shapes, read from the header alone.

``gguf.GGUFReader`` builds a numpy view per element of every metadata array,
which takes ~6 s on a 150k-token vocabulary; this skips arrays and reads a
0.5B model's header in well under a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from r2local.errors import ModelError

# GGUF value types: id -> struct format of a scalar (8 = string, 9 = array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    architecture: str
    metadata: dict[str, object]  # scalars and strings; arrays are skipped
    shapes: dict[str, tuple[int, ...]]  # tensor name -> ggml dims (ne0 = input size)

    def get_int(self, key: str) -> int | None:
        value = self.metadata.get(f"{self.architecture}.{key}")
        return int(value) if isinstance(value, (int, float)) else None


def _unpack(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack("<" + fmt, data)


def _string(f: BinaryIO) -> str:
    (n,) = _unpack(f, "Q")
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data.decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> object:
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        (item, count) = _unpack(f, "IQ")
        if item == _STRING:
            for _ in range(count):
                (n,) = _unpack(f, "Q")
                f.seek(n, 1)
        elif item in _SCALARS:
            f.seek(struct.calcsize("<" + _SCALARS[item]) * count, 1)
        else:  # arrays of arrays are legal but no base model uses them in its header
            for _ in range(count):
                _value(f, item)
        return None
    if kind not in _SCALARS:
        raise ValueError(f"unknown GGUF value type {kind}")
    return _unpack(f, _SCALARS[kind])[0]


def read_gguf_info(path: str | Path) -> GgufInfo:
    """Architecture, scalar metadata and tensor shapes of a GGUF file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"base model not found: {path}", fix="pass the .gguf file the adapter was trained on")
    try:
        with path.open("rb") as f:
            magic, version = _unpack(f, "4sI")
            if magic != b"GGUF" or version < 2:
                raise ValueError("not a GGUF v2+ file")
            n_tensors, n_kv = _unpack(f, "QQ")
            metadata: dict[str, object] = {}
            for _ in range(n_kv):
                key = _string(f)
                (kind,) = _unpack(f, "I")
                value = _value(f, kind)
                if value is not None:
                    metadata[key] = value
            shapes: dict[str, tuple[int, ...]] = {}
            for _ in range(n_tensors):
                name = _string(f)
                (n_dims,) = _unpack(f, "I")
                shapes[name] = _unpack(f, "Q" * n_dims)
                _unpack(f, "IQ")  # tensor type, data offset
    except (EOFError, ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ModelError(
            f"cannot read {path.name} as a GGUF model ({exc or 'truncated'})",
            fix="point at an intact .gguf base model",
        ) from None
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelError(f"{path.name} names no architecture", fix="point at a .gguf base model")
    return GgufInfo(path, arch, metadata, shapes)
