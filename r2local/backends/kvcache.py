"""A small in-memory prompt cache for llama.cpp: KV state snapshots of recent
prompts, restored when a new prompt shares a longer prefix with one of them
than with what the context holds now.

The router alternates between its plan prompt, its scoring prompt and (when it
is also a tier) answers; without this each switch re-evaluates a shared prefix
of a few hundred tokens. A snapshot of sequence 0 costs milliseconds and about
12 KB per token for a 0.5B model. (llama-cpp-python's save_state also copies
the logits of every position: ~100x slower.)
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Any, Sequence

MIN_GAIN = 32  # tokens a restore must save to be worth it


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
    def __init__(self, max_entries: int = 24, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.hits = 0

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
        if best is None:
            return live
        self._load(llm, best, self._entries[best])
        self._entries.move_to_end(best)
        self.hits += 1
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

    @staticmethod
    def _load(llm: Any, tokens: tuple[int, ...], data: bytes) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), 0, -1, -1)
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llm.ctx, buf, len(data), 0) != len(data):
            llm.reset()
            return
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        # The logits now belong to no live decode: generate() must replay a token.
        llm._requires_eval = True

    def clear(self) -> None:
        self._entries.clear()
