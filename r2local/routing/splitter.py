"""Parts the rules miss, found by the router under a trained split adapter.

The rules (`parts.py`) cost nothing and never split a single question, but they
need an ask word or a mark to cut on: "Give me the chemical symbol for sodium
and the square of 15." or "quick: 18% of 200? capital of Sweden?" stay whole,
and a compound message kept whole was right 15 % of the time on the compound
bench against 90 % split. So where the rules keep a message whole and it still
looks as if it may hold several asks (`may_have_parts`), the router reads it
once more with a LoRA adapter trained for this (decomposer SFT, then GRPO:
`benchmarks/split_train.py`) and answers JSON parts. A reply is used only if
it names at least two parts and every part is grounded in the message (its
numbers there, most of its words there): the model may reword a part, never
invent one. Anything else keeps the message whole, as before.

The prompt below is the one the adapter was trained on; changing it means
training again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from r2local.engine.options import parse_options
from r2local.routing.parts import MAX_PARTS

SYSTEM = ("Split the user's message into the separate questions it asks. Reply with JSON only: "
          '{"parts": ["...", "..."]}, each part a question that can be answered on its own. If the message is '
          "one question, or its questions need each other or a set-up stated before them (numbers given first, "
          '"it", "that", "then"), reply {"parts": []}.')
SHOTS = [("What is 6 times 7, and who wrote Hamlet?", ["What is 6 times 7?", "Who wrote Hamlet?"]),
         ("A pen costs 2 dollars. How much do 5 pens cost, and what is half of that?", [])]
# No JSON grammar: the adapter learnt json.dumps' own spelling, and a grammar that tokenises the same text
# differently moved it off its training (measured: "Give me the chemical symbol for sodium and the square of 15."
# split in two free, kept whole under the grammar). A reply that is not the JSON asked for keeps the message whole.
MAX_TOKENS = 160
# Shipped adapters, by the router model they were trained on (files beside this module).
SHIPPED = {"qwen2.5-coder-0.5b-instruct": "split-qwen2.5-coder-0.5b-instruct.gguf"}

# A second ask after a first: another "?", a new line, a ";", or a joint followed by an ask or a noun phrase.
_ANOTHER = re.compile(r"(?:,|\band\b|\balso\b)\s*(?:and\s+)?(?:also\s+)?(?:the|tell|work|calculate|compute|give|"
                      r"name|what|what's|who|which|how|is|are|where|when)\b|,\s*and\s+\d", re.IGNORECASE)
_FILLER = {"what", "what's", "is", "are", "the", "a", "an", "of", "me", "tell", "give", "how", "much", "many", "do",
           "does", "please", "can", "you", "could"}


def split_messages(question: str) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": SYSTEM}]
    for q, parts in SHOTS:
        turns += [{"role": "user", "content": q}, {"role": "assistant", "content": split_reply(parts)}]
    return [*turns, {"role": "user", "content": question}]


def split_reply(parts: list[str]) -> str:
    """The reply the adapter learnt: the parts, or none when the message stays whole."""
    return json.dumps({"parts": parts if len(parts) > 1 else []})


def parse_split(reply: str) -> list[str] | None:
    """The parts a reply names ([] when it keeps the message whole); None when it is not the JSON asked for."""
    m = re.search(r"\{.*\}", reply, re.DOTALL)
    try:
        parts = json.loads(m.group(0))["parts"] if m else None
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(parts, list) or not all(isinstance(p, str) and p.strip() for p in parts):
        return None
    return [p.strip() for p in parts] if 1 < len(parts) <= MAX_PARTS else []


def may_have_parts(question: str) -> bool:
    """Cheap test before asking the model: could this message hold a second ask? A choice's options do not."""
    text = question.strip()
    if parse_options(text):
        return False
    return text.count("?") >= 2 or "\n" in text or ";" in text or bool(_ANOTHER.search(text))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.'][a-z0-9]+)?", text.lower())


def grounded(parts: list[str], question: str) -> bool:
    """Every part's numbers are in the message and most of its other words too (rewording, not invention)."""
    have = set(_words(question))
    for part in parts:
        words = [w for w in _words(part) if w not in _FILLER]
        if not words or any(w[0].isdigit() and w not in have for w in words):
            return False
        if sum(w in have for w in words) < 0.6 * len(words):
            return False
    return True


def split_adapter(section: Any, manifests: dict[str, Any]) -> Path | None:
    """The split adapter a router runs with: the one shipped for its model, unless ``find_parts`` is off."""
    return shipped_adapter(section.model, manifests) if section.find_parts else None


def shipped_adapter(router_model: str, manifests: dict[str, Any] | None = None) -> Path | None:
    """The split adapter shipped for this router model, if there is one: a manifest name, or a .gguf path
    that is a known model's file (same sha256 or GGUF names, with ``manifests`` given)."""
    if router_model.endswith(".gguf") and manifests:
        from r2local.modelfile import identify

        found = identify(Path(router_model), manifests)
        router_model = found.manifest.name if found is not None else router_model
    name = SHIPPED.get(router_model)
    path = Path(__file__).parent / "shipped" / name if name else None
    return path if path is not None and path.is_file() else None
