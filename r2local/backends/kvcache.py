"""A small in-memory prompt cache for llama.cpp: KV state snapshots of recent
prompts, restored when a new prompt shares a longer prefix with one of them
than with what the context holds now.

The router alternates between its plan prompt, its scoring prompt and (when it
is also a tier) answers; without this each switch re-evaluates a shared prefix
of a few hundred tokens. A snapshot of sequence 0 costs milliseconds and about
12 KB per token for a 0.5B model. (llama-cpp-python's save_state also copies
the logits of every position: ~100x slower.)

With a ``disk`` folder the cache also outlives the process: each prompt that
starts a new family (no snapshot on disk would serve half of it) is written
there once, and a new process restores from those files. Measured on
the demo pool: a cold `r2local ask` spent ~14 s of its ~20 s evaluating the
program prompt's fixed prefix (~280 tokens at ~20-40 tokens/s on one laptop
core) that a warm process already held. The folder must be keyed on everything
the KV state depends on (model file, llama.cpp build, context size, and the
LoRA adapter applied with its scale: each adapter state has its own folder).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

MIN_GAIN = 32  # tokens a restore must save to be worth it
# From disk the other way round: a new process holds nothing, and reading ~1 MB costs less than
# evaluating 16 tokens on one core (brief-answer prompts share ~40 tokens of fixed prefix).
DISK_MIN_GAIN = 16
MAX_FILES = 16  # snapshots kept on disk per model (~3.5 MB each for 300 tokens of a 0.5B model)
_MAGIC = b"R2KV1"


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PromptCache:
    # One question can save 2n + 2 snapshots on the router's model (plan, n
    # scores, answers when it is also a tier); 24 keep the plan prompt of the
    # last few questions. Bytes bound the memory: ~3.5 MB per 300-token prompt.
    def __init__(self, max_entries: int = 24, max_bytes: int = 256 << 20, disk: Path | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.hits = 0
        self.disk_hits = 0
        self.disk: Path | None = None
        self._on_disk: dict[tuple[int, ...], Path] = {}
        self.use_disk(disk)

    def use_disk(self, folder: Path | None) -> None:
        """Read and write snapshots under ``folder`` from now on (None: memory only)."""
        self.disk, self._on_disk = folder, {}
        if folder is not None and folder.is_dir():
            for path in folder.glob("*.kv"):
                key = _read_key(path)
                if key:
                    self._on_disk[key] = path

    @property
    def nbytes(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def restore(self, llm: Any, prompt: Sequence[int]) -> int:
        """Load the snapshot sharing the longest prefix with ``prompt``, if it beats
        the context's own. Returns the tokens of prefix that will be reused."""
        live = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), prompt)
        best, best_len = None, live
        for key in self._entries:
            shared = common_prefix(key, prompt)
            if shared > best_len + MIN_GAIN:
                best, best_len = key, shared
        if best is not None:
            self._load(llm, best, self._entries[best])
            self._entries.move_to_end(best)
            self.hits += 1
            return best_len
        return self._restore_from_disk(llm, prompt, live)

    def _restore_from_disk(self, llm: Any, prompt: Sequence[int], live: int) -> int:
        best, best_len = None, live
        for key in self._on_disk:
            shared = common_prefix(key, prompt)
            if shared > best_len + DISK_MIN_GAIN:
                best, best_len = key, shared
        if best is None:
            return live
        path = self._on_disk[best]
        data = _read_state(path, len(best))
        if data is None or not self._load(llm, best, data):
            self._on_disk.pop(best, None)  # unreadable or refused: never tried again in this process
            return live
        path.touch()  # recently useful: the last to go when the folder is trimmed
        self.disk_hits += 1
        return best_len

    def save(self, llm: Any, prompt: Sequence[int]) -> None:
        """Snapshot the context; call when it holds exactly ``prompt``."""
        key = tuple(prompt)
        if key in self._entries or llm.n_tokens != len(key):
            return
        import llama_cpp

        size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_seq_get_data(llm.ctx, buf, size, 0)
        self._entries[key] = bytes(memoryview(buf)[:n])
        while len(self._entries) > self.max_entries or (self.nbytes > self.max_bytes and len(self._entries) > 1):
            self._entries.popitem(last=False)
        if self.disk is not None and len(key) > 2 * DISK_MIN_GAIN:
            self._persist(key, self._entries[key])

    def _persist(self, key: tuple[int, ...], data: bytes) -> None:
        """Write ``key``'s snapshot unless a file on disk already serves most of it (a prompt of the
        same family: the same fixed prefix, another question); trim the folder to MAX_FILES.
        A disk that refuses the write costs the next process its warm start, nothing more."""
        if any(2 * common_prefix(k, key) >= len(key) for k in self._on_disk):
            return
        assert self.disk is not None
        path = self.disk / (hashlib.sha1(struct.pack(f"<{len(key)}i", *key)).hexdigest()[:20] + ".kv")
        try:
            self.disk.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(_MAGIC + struct.pack(f"<I{len(key)}i", len(key), *key) + data)
            os.replace(tmp, path)  # whole or absent: another process may read it at once
            self._on_disk[key] = path
            for old in sorted(self.disk.glob("*.kv"), key=lambda p: p.stat().st_mtime)[:-MAX_FILES]:
                old.unlink(missing_ok=True)
        except OSError:
            return

    @staticmethod
    def _load(llm: Any, tokens: tuple[int, ...], data: bytes) -> bool:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), 0, -1, -1)
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llm.ctx, buf, len(data), 0) != len(data):
            llm.reset()
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        # The logits now belong to no live decode: generate() must replay a token.
        llm._requires_eval = True
        return True

    def clear(self) -> None:
        self._entries.clear()


def _read_key(path: Path) -> tuple[int, ...] | None:
    """The prompt tokens a snapshot file holds (its header), or None for a file not ours or cut short."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_MAGIC) + 4)
            if len(head) < len(_MAGIC) + 4 or not head.startswith(_MAGIC):
                return None
            (n,) = struct.unpack("<I", head[len(_MAGIC):])
            body = f.read(4 * n)
            return tuple(struct.unpack(f"<{n}i", body)) if len(body) == 4 * n else None
    except OSError:
        return None


def _read_state(path: Path, n: int) -> bytes | None:
    """The KV state after a snapshot file's header of ``n`` tokens."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    start = len(_MAGIC) + 4 + 4 * n
    return data[start:] if len(data) > start else None
