"""A multiple-choice question's options, and which of them a free answer names.

Measured (benchmarks/sets/choice.jsonl, Qwen2.5-Coder-0.5B): shown the options, the small model
answers the same letter whatever they say (it said "B" for every rotation of the options), so its
letter is right a third of the time and agreement among its letters does not tell right from wrong
(AUROC 0.47). Asked the stem alone, as a short-answer question, and its answer matched to an option
afterwards, it was right on 17 of 32 and agreement separated right from wrong (AUROC 0.91). A stem
that means nothing without its options ("Which of these is a reptile?") gets an answer that names
no option, and that is the signal to send the question up with its options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from r2local.engine.short import same_short, short_value, words

LETTERS = "ABCDEFGH"
# One option per line: "A) Mars", "(A) Mars", "A. Mars", "A: Mars" (any case).
_LINE = re.compile(r"^[ \t]*\(?([A-Ha-h])[).:][ \t]+(\S.*?)[ \t]*$", re.MULTILINE)
# Options on one line: "A) Mars B) Venus" or "(a) Mars, (b) Venus".
_INLINE = re.compile(r"(?:^|[\s,;(])\(?([A-Ha-h])\)[ \t]*([^\n,;()?]+?)"
                     r"(?=[,;]?\s+(?:or\s+)?\(?[A-Ha-h]\)|[ \t]*[,;]?[ \t]*$|[ \t]*[.?](?:\s|$))", re.MULTILINE)
MAX_OPTION_WORDS = 12  # a longer "option" is a lettered part of a compound question, not an option
_LEAD = re.compile(r"\s*(options|choices|answers?)\s*:?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Options:
    stem: str  # the question without its options (and without "Answer with the letter ...")
    texts: tuple[tuple[str, str], ...]  # (upper-case letter, option text), in order

    def show(self, letter: str) -> str:
        return f"{letter}) {dict(self.texts)[letter]}"


def parse_options(question: str) -> Options | None:
    """The options of ``question`` when it lists two or more, lettered from A in order; else None."""
    for pattern in (_LINE, _INLINE):
        found = list(pattern.finditer(question))
        run = _lettered_run(found)
        if run:
            stem = _LEAD.sub("", question[: run[0].start()]).strip()
            texts = tuple((m.group(1).upper(), m.group(2).strip()) for m in run)
            if stem and all(_plausible(t) for _, t in texts):
                return Options(stem, texts)
    return None


def _lettered_run(found: list[re.Match[str]]) -> list[re.Match[str]]:
    """The first run of matches lettered A, B, C ... in order (two at least)."""
    for i, m in enumerate(found):
        if m.group(1).upper() != "A":
            continue
        run = [m]
        for nxt in found[i + 1:]:
            if nxt.group(1).upper() != LETTERS[len(run)]:
                break
            run.append(nxt)
        if len(run) >= 2:
            return run
    return []


def _plausible(text: str) -> bool:
    """An option is short and not itself a question (lettered questions are a compound question's parts)."""
    return bool(text) and not text.rstrip().endswith("?") and len(text.split()) <= MAX_OPTION_WORDS


def named_option(reply: str, options: Options) -> str | None:
    """The letter of the one option ``reply`` (an answer to the stem alone) names, or None when it
    names none or more than one."""
    said = short_value(reply, options.stem)
    if not said:
        return None
    exact, loose = [], []
    for letter, text in options.texts:
        value = " ".join(words(text))
        if not value:
            continue
        if value == said:
            exact.append(letter)
        elif same_short(said, value) or f" {value} " in f" {said} ":
            loose.append(letter)  # "Bee produce honey." names "honey"
    if len(exact) == 1:
        return exact[0]
    return loose[0] if not exact and len(loose) == 1 else None
