"""The allocator as a policy over label tokens, for a PEFT-wrapped router.

The router's action is one token, so every quantity the trainers need (the
label distribution, its log-probs for any number of sampled labels, the KL to
the reference) comes from ONE forward pass per prompt, read at the last prompt
position and restricted to the labels' first tokens — the same renormalised
distribution `LabelScorer.score_labels` serves in the product.

When LoRA sits only on the top layers, the frozen layers below give the same
activations at every step; they run once per prompt (with the adapter off,
which also yields the reference distribution) and are cached.
"""

from __future__ import annotations

import json
from typing import Any

from r2local.train.data import Messages, TrainError


def label_token_ids(tokenizer: Any, labels: tuple[str, ...]) -> list[int]:
    """First token of each label as the router tokenises it (no leading space)."""
    ids = []
    for label in labels:
        tokens = tokenizer.encode(label, add_special_tokens=False)
        if not tokens:
            raise TrainError(f"label {label!r} tokenises to nothing", fix="use non-empty label words")
        ids.append(tokens[0])
    if len(set(ids)) != len(ids):
        shared = [lab for lab, i in zip(labels, ids) if ids.count(i) > 1]
        raise TrainError(
            f"labels {shared} share a first token, so one forward pass cannot tell them apart",
            fix="choose label words whose first tokens differ (e.g. easy/medium/hard)",
        )
    return ids


def prompt_tokens(tokenizer: Any, messages: Messages) -> list[int]:
    # Rendered text tokenised with specials, as the llama.cpp backend does; the
    # GGUF's template already carries any BOS it wants.
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class LabelPolicy:
    """Label log-probs after allocator prompts, with frozen-layer and reference caches.

    Args:
        peft_model: the router wrapped by ``attach_lora``.
        tokenizer: its tokenizer.
        labels: label words, cheapest tier first.
        split: index of the first layer that may carry LoRA (0: all layers train).
        cache_mb: memory for cached frozen-layer activations; prompts beyond it
            run their frozen layers again (without autograd) each time.
        share_prefix: run the token prefix all prompts of a batch share (the
            system prompt) once per step instead of once per prompt.
    """

    def __init__(
        self,
        peft_model: Any,
        tokenizer: Any,
        labels: tuple[str, ...],
        *,
        split: int = 0,
        cache_mb: float = 1024.0,
        share_prefix: bool = True,
    ) -> None:
        self.model = peft_model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.label_ids = label_token_ids(tokenizer, self.labels)
        causal = peft_model.get_base_model()
        self.decoder = causal.get_decoder()
        self.head = causal.get_output_embeddings()
        self.config = causal.config
        self.split = split
        self._pad = tokenizer.pad_token_id or 0
        self.cache_bytes = int(cache_mb * 2**20)
        self._used = 0
        self._tokens: dict[str, list[int]] = {}
        self._lower: dict[str, Any] = {}
        self._ref: dict[str, Any] = {}
        self.share_prefix = share_prefix
        self._prefix: tuple[list[int], Any, Any] | None = None  # frozen: tokens, keys/values, states
        self._checked: set[bool] = set()  # split paths verified: without / with a shared prefix

    def _key(self, messages: Messages) -> str:
        return json.dumps(messages, sort_keys=True)

    def tokens(self, messages: Messages) -> list[int]:
        key = self._key(messages)
        if key not in self._tokens:
            self._tokens[key] = prompt_tokens(self.tokenizer, messages)
        return self._tokens[key]

    # -- frozen part: runs once per prompt ------------------------------------
    def _frozen_pass(self, batch: list[Messages]) -> list[tuple[Any, Any]]:
        """Per prompt: (input to layer `split`, reference label log-probs), adapter off.

        With the adapter off nothing changes between steps, so the prefix every
        prompt shares (the system prompt) runs once for the whole run: its
        keys/values and layer-`split` states are kept and each chunk runs only
        its own tokens on top.
        """
        import copy

        import torch

        rows = [self.tokens(m) for m in batch]
        n, cache, head = 0, None, None
        if self._prefix is not None and all(r[: len(self._prefix[0])] == self._prefix[0] for r in rows):
            tokens, kv, head = self._prefix
            n, cache = len(tokens), copy.deepcopy(kv)
            cache.batch_repeat_interleave(len(rows))
        lengths, mask, width = self._padded([r[n:] for r in rows])
        ids = torch.tensor([r[n:] + [self._pad] * (width - len(r) + n) for r in rows])
        if n:
            mask = torch.cat([torch.ones(len(rows), n, dtype=torch.long), mask], dim=1)
        with torch.no_grad(), self.model.disable_adapter():
            out = self.decoder(
                input_ids=ids,
                attention_mask=mask,
                output_hidden_states=True,
                cache=cache,
                use_cache=cache is not None,
                position_ids=(n + torch.arange(width))[None],
            )
            refs = self._label_logprobs(out.last_hidden_state[torch.arange(len(rows)), lengths - 1])
            lower = out.hidden_states[self.split]
        # clone: a view would keep the whole padded batch alive in the cache
        return [
            (torch.cat([head, lower[i, :k]]) if n else lower[i, :k].clone(), refs[i])
            for i, k in enumerate(lengths.tolist())
        ]

    def _keep_prefix(self, prompts: list[Messages]) -> None:
        """Run the prefix all these prompts share once, adapter off, and keep it."""
        import torch

        rows = [self.tokens(m) for m in prompts]
        n = self._common_prefix(rows)
        if not n:
            return
        with torch.no_grad(), self.model.disable_adapter():
            out = self.decoder(input_ids=torch.tensor([rows[0][:n]]), use_cache=True, output_hidden_states=True)
        self._prefix = (rows[0][:n], out.cache, out.hidden_states[self.split][0].clone())

    def prepare(self, prompts: list[Messages], cancel: Any = None, chunk: int = 8) -> None:
        """Run the frozen part for every new prompt now, batched, once each."""
        todo = list({self._key(m): m for m in prompts if self._key(m) not in self._ref}.values())
        if self._prefix is None and self.share_prefix and len(todo) > 1:
            self._keep_prefix(todo)
        for start in range(0, len(todo), chunk):
            if cancel is not None and cancel.is_set():
                return
            part = todo[start : start + chunk]
            for messages, (lower, ref) in zip(part, self._frozen_pass(part)):
                key = self._key(messages)
                self._ref[key] = ref
                if self._used + lower.numel() * 4 <= self.cache_bytes:
                    self._lower[key] = lower
                    self._used += lower.numel() * 4

    def reference_logprobs(self, batch: list[Messages]) -> Any:
        """[B, K] label log-probs of the router without the adapter (cached)."""
        import torch

        self.prepare(batch)
        return torch.stack([self._ref[self._key(m)] for m in batch])

    # -- trainable part --------------------------------------------------------
    def _label_logprobs(self, hidden: Any) -> Any:
        # Only the label rows of the head: the restricted softmax needs nothing else.
        rows = self.head.weight[self.label_ids]
        logits = hidden @ rows.T
        if getattr(self.head, "bias", None) is not None:
            logits = logits + self.head.bias[self.label_ids]
        return logits.float().log_softmax(-1)

    def last_hidden(self, batch: list[Messages]) -> Any:
        """[B, H] final-norm hidden state at each prompt's last token, adapter on."""
        if self.split == 0 and not self.share_prefix:
            return self._last_hidden_full(batch)
        self.prepare(batch)
        with_prefix = self._shared_prefix([self.tokens(m) for m in batch]) > 0
        if with_prefix not in self._checked:
            self._check_split(batch[:4])
            self._checked.add(with_prefix)
        return self._last_hidden_split(batch)

    def label_logprobs(self, batch: list[Messages]) -> Any:
        """[B, K] log-probs of the labels after each prompt (differentiable)."""
        return self._label_logprobs(self.last_hidden(batch))

    def full_logits(self, batch: list[Messages]) -> Any:
        """[B, V] next-token logits over the whole vocabulary (for SFT)."""
        return self.head(self.last_hidden(batch)).float()

    def _padded(self, rows: list[Any]) -> tuple[Any, Any, Any]:
        import torch

        lengths = torch.tensor([len(r) for r in rows])
        width = int(lengths.max())
        mask = torch.arange(width)[None, :] < lengths[:, None]
        return lengths, mask.long(), width

    def _last_hidden_full(self, batch: list[Messages]) -> Any:
        import torch

        rows = [self.tokens(m) for m in batch]
        lengths, mask, width = self._padded(rows)
        # Right padding: real tokens never attend to the pads after them.
        ids = torch.tensor([r + [self._pad] * (width - len(r)) for r in rows])
        out = self.decoder(input_ids=ids, attention_mask=mask)
        return out.last_hidden_state[torch.arange(len(rows)), lengths - 1]

    def _lower_states(self, messages: Messages) -> Any:
        key = self._key(messages)
        if key in self._lower:
            return self._lower[key]
        return self._frozen_pass([messages])[0][0]  # over the cache budget: recompute

    def _run_upper(self, hidden: Any, mask: Any, positions: Any, cache: Any = None) -> Any:
        """Layers split.. on ``hidden`` (the model's own layer modules, our loop)."""
        from transformers.masking_utils import create_causal_mask

        causal = create_causal_mask(self.config, hidden, mask, cache, position_ids=positions, layer_idx=self.split)
        rope = self.decoder.rotary_emb(hidden, positions)
        for layer in self.decoder.layers[self.split :]:
            hidden = layer(
                hidden,
                attention_mask=causal,
                position_embeddings=rope,
                position_ids=positions,
                cache=cache,
                use_cache=cache is not None,
            )
        return hidden

    def _shared_prefix(self, rows: list[list[int]]) -> int:
        return self._common_prefix(rows) if self.share_prefix else 0

    @staticmethod
    def _common_prefix(rows: list[list[int]]) -> int:
        """Tokens every prompt starts with, keeping >= 1 own token each (0 if short)."""
        if len(rows) < 2:
            return 0
        n = min(len(r) for r in rows) - 1
        first = rows[0]
        for r in rows[1:]:
            while n and r[:n] != first[:n]:
                n = next(i for i in range(n) if r[i] != first[i])
        return n if n >= 8 else 0  # a tiny prefix saves less than the cache costs

    def _last_hidden_split(self, batch: list[Messages]) -> Any:
        import torch
        from transformers import DynamicCache

        states = [self._lower_states(m) for m in batch]
        n = self._shared_prefix([self.tokens(m) for m in batch])
        cache = None
        if n:
            # The causal prefix is identical in every prompt: run it once and let
            # each suffix attend to its keys/values (gradients flow through them).
            cache = DynamicCache(config=self.config)
            self._run_upper(states[0][None, :n], torch.ones(1, n, dtype=torch.long), torch.arange(n)[None], cache)
            cache.batch_repeat_interleave(len(states))
        rest = [s[n:] for s in states]
        lengths, mask, width = self._padded(rest)
        hidden = torch.zeros(len(rest), width, rest[0].shape[-1], dtype=rest[0].dtype)
        for i, s in enumerate(rest):
            hidden[i, : len(s)] = s
        positions = (n + torch.arange(width))[None, :].expand(len(rest), -1)
        if n:
            mask = torch.cat([torch.ones(len(rest), n, dtype=torch.long), mask], dim=1)
        hidden = self._run_upper(hidden, mask, positions, cache)
        last = hidden[torch.arange(len(rest)), lengths - 1]
        return self.decoder.norm(last)  # RMSNorm is per position: norm only the rows we read

    def _check_split(self, batch: list[Messages]) -> None:
        """The hand-run upper layers must reproduce the model's own forward."""
        import torch

        with torch.no_grad():
            ours = self.head(self._last_hidden_split(batch)).float()
            theirs = self.head(self._last_hidden_full(batch)).float()
        gap = float((ours - theirs).abs().max())
        if gap > 1e-3 * max(1.0, float(theirs.abs().max())):
            raise TrainError(
                f"{type(self.decoder).__name__} does not run layer by layer as expected "
                f"(next-token logits differ by {gap:.2e})",
                fix="set lora.layers=None and share_prefix=False to train through the model's own forward",
            )
