"""Answers as values: what a reply (prose, or a program's result) states, in a
form two replies can be compared in. The agreement among a model's samples is
r2local's escalation signal; it reads answers with the graders' own readers
(numbers with units, clock times, fractions, yes/no, option letters), and short
answers (a name, a place, a term) normalised in ``short``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from r2local.tasks.graders import (
    Quantity,
    _answer_of,
    answer_quantity,
    choice_letter,
    clocks,
    marked,
    normalise,
    polarity,
    same_quantity,
)

from r2local.engine.kinds import CHOICE, CLOCK, KIND_ORDER, NUMBER, POLAR, SHORT, TEXT, answer_kind
from r2local.engine.short import same_short, short_value

__all__ = ["CHOICE", "CLOCK", "KIND_ORDER", "NUMBER", "POLAR", "SHORT", "TEXT", "Agreement", "Answer", "agreement",
           "answer_kind", "majority_index", "read_answer", "same"]


@dataclass(frozen=True)
class Answer:
    kind: str  # number, clock, yes/no, choice, short, text
    value: Any  # Quantity, minutes after midnight, "yes"/"no", "B", normalised words
    twelve_hour: bool = False  # a clock time written without am/pm

    def show(self) -> str:
        if self.kind == NUMBER:
            q: Quantity = self.value
            text = f"{q.value:.10g}"
            return f"{text} {q.unit}" if q.unit and q.unit != "%" else text + ("%" if q.unit == "%" else "")
        if self.kind == CLOCK:
            return f"{self.value // 60:02d}:{self.value % 60:02d}"
        return str(self.value)


def read_answer(text: str, kind: str, question: str = "") -> Answer | None:
    """The answer ``text`` states, read as ``kind``; None when it states none.

    Args:
        text: a reply, or a program's printed value.
        kind: what the question asks for (see ``kinds``).
        question: the question; a short answer drops the words it repeats from it.
    """
    text = (text or "").strip()
    if not text:
        return None
    if kind == SHORT:
        value = short_value(text, question)
        return Answer(SHORT, value) if value else None
    if kind == CLOCK:
        got = _answer_of(text, clocks)
        if got is not None:
            # "2:15" may be 14:15; "14:15" and "2:15 am" are unambiguous.
            twelve = not re.search(r"\d\s*[ap]\.?\s*m\b", text, re.IGNORECASE) and int(got) % 1440 < 13 * 60
            return Answer(CLOCK, int(got) % 1440, twelve)
    if kind == POLAR:
        spot = marked(text)
        said = (polarity(spot) if spot else None) or polarity(text)
        return Answer(POLAR, said) if said else None
    if kind == CHOICE:
        spot = marked(text)
        letter = (choice_letter(spot) if spot else None) or choice_letter(text)
        return Answer(CHOICE, letter) if letter else None
    if kind in (NUMBER, CLOCK):
        got = answer_quantity(text)
        if got is not None:
            return Answer(NUMBER, got)
        if kind == NUMBER and clocks(text):  # a number was asked, a time was given: compare it as a time
            return read_answer(text, CLOCK)
    words = normalise(marked(text) or text.splitlines()[-1])
    return Answer(TEXT, words) if words else None


def same(a: Answer | None, b: Answer | None) -> bool:
    """Whether two answers state the same thing (units and rounding understood)."""
    if a is None or b is None or a.kind != b.kind:
        return False
    if a.kind == NUMBER:
        return same_quantity(a.value, b.value) or same_quantity(b.value, a.value)
    if a.kind == CLOCK:
        if a.value == b.value:
            return True
        return (a.twelve_hour or b.twelve_hour) and a.value % 720 == b.value % 720
    if a.kind == SHORT:
        return same_short(a.value, b.value)
    return bool(a.value == b.value)


@dataclass(frozen=True)
class Agreement:
    """How a group of samples agrees: with the answer given (the first) and among themselves."""

    with_answer: float  # share of samples that state the same as sample 0 (the answer given)
    majority: float  # share of the largest group of samples that agree
    samples: int
    read: int  # samples that stated an answer at all


def agreement(answers: list[Answer | None]) -> Agreement:
    """Agreement of ``answers``; the first is the answer that would be given."""
    n = len(answers)
    if n == 0:
        return Agreement(0.0, 0.0, 0, 0)
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if same(answers[g[0]], a):
                g.append(i)
                break
        else:
            groups.append([i])
    first = next((g for g in groups if 0 in g), [])
    biggest = max((len(g) for g in groups), default=0)
    return Agreement(len(first) / n, biggest / n, n, sum(1 for a in answers if a is not None))


def majority_index(answers: list[Answer | None]) -> int | None:
    """The index of a sample in the largest agreeing group (earliest wins ties), or None."""
    counts: Counter[int] = Counter()
    for i, a in enumerate(answers):
        if a is None:
            continue
        rep = next((j for j in range(i) if same(answers[j], a)), i)
        counts[rep] += 1
    return max(counts, key=lambda k: (counts[k], -k)) if counts else None
