"""What r2local knows about a model file given by path (a tier's ``model = "/x/y.gguf"``).

A path names no manifest, so the file is matched to one: by its sha256 (only
hashed when its size equals a manifest's pinned size; the hash is kept in the
store's verified markers, so it is computed once), else by the GGUF header's
``general.name`` / ``general.basename`` + ``general.size_label`` naming a known
model. Measured: a coder tier given as a path lost its program-aided answers
(one-step questions 4/6 right instead of 5/6) because abilities came only
from a manifest looked up by name.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from r2local.manifests import Manifest

_NAME_KEYS = ("general.name", "general.basename", "general.size_label", "general.finetune")
# GGUF value types: fixed-size ones by their struct code; 8 = string, 9 = array.
_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 20  # a longer "string" means the header is not what we think: stop reading


@dataclass(frozen=True)
class Identity:
    """The manifest a file is, and how that was found (``sha256`` or ``gguf metadata``)."""

    manifest: Manifest
    how: str


class _BadHeader(Exception):
    pass


def _read(fh: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise _BadHeader("truncated")
    return struct.unpack(fmt, data)


def _string(fh: BinaryIO) -> str:
    (n,) = _read(fh, "<Q")
    if n > _MAX_STRING:
        raise _BadHeader("string too long")
    return fh.read(n).decode("utf-8", "replace")


def _skip(fh: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        fh.seek(struct.calcsize("<" + _FIXED[kind]), 1)
    elif kind == _STRING:
        (n,) = _read(fh, "<Q")
        fh.seek(n, 1)
    elif kind == _ARRAY:
        item, count = _read(fh, "<IQ")
        if item in _FIXED:
            fh.seek(count * struct.calcsize("<" + _FIXED[item]), 1)
        else:
            for _ in range(count):
                _skip(fh, item)
    else:
        raise _BadHeader(f"unknown value type {kind}")


def gguf_names(path: Path) -> dict[str, str]:
    """The ``general.*`` naming keys of a GGUF file's header ({} if it is not a readable GGUF v2+).

    Reads the key/value header only (the ``gguf`` package's reader maps every
    tensor too: 25 s for a 0.5B file on a busy 2-core machine, against
    milliseconds here), and stops once the naming keys are found."""
    found: dict[str, str] = {}
    try:
        with path.open("rb") as fh:
            magic, version = fh.read(4), _read(fh, "<I")[0]
            if magic != b"GGUF" or version < 2:
                return {}
            _, n_kv = _read(fh, "<QQ")
            for _ in range(n_kv):
                key = _string(fh)
                (kind,) = _read(fh, "<I")
                if key in _NAME_KEYS and kind == _STRING:
                    found[key] = _string(fh)
                    if len(found) == len(_NAME_KEYS):
                        break
                else:
                    _skip(fh, kind)
    except (OSError, _BadHeader, struct.error):
        return found
    return found


def _slug(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def by_metadata(names: dict[str, str], manifests: dict[str, Manifest]) -> Manifest | None:
    """The manifest the GGUF names point to: the longest manifest name that the file's
    full name, or its basename-size-finetune, starts with."""
    spelled = [_slug(names.get("general.name", ""))]
    parts = [names.get(k, "") for k in ("general.basename", "general.size_label", "general.finetune")]
    if parts[0] and parts[1]:
        spelled.append(_slug("-".join(p for p in parts if p)))
    hits = [m for m in manifests.values() if m.format == "gguf"
            and any(s and (s == m.name or s.startswith(m.name + "-")) for s in spelled)]
    return max(hits, key=lambda m: len(m.name)) if hits else None


def identify(path: Path, manifests: dict[str, Manifest]) -> Identity | None:
    """The known model ``path`` is, or None (a missing file is not known yet)."""
    from r2local import fetch

    path = path.expanduser()
    if not path.is_file():
        return None
    size = path.stat().st_size
    for manifest in manifests.values():
        if manifest.format == "gguf" and manifest.sha256 and manifest.size_bytes == size:
            if fetch.matches(path, manifest):
                return Identity(manifest, "sha256")
    found = by_metadata(gguf_names(path), manifests)
    return Identity(found, "gguf metadata") if found is not None else None
