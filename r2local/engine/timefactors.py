"""Whether a program skipped a time factor its question needs.

A small model's programs and its brief answer can agree on the same
misreading, so the vote keeps it: "A runner jogs 4 km every day for 3
weeks" computed as 4 * 3, "$30 a month plus a $45 fee: the first year" as
30 + 45, "80 km per hour: how many minutes for 60 km?" as 60 / 80. Each time
the question names two time units that nothing in it ties together (no "8
hours a day") and the program holds no factor between them (7, 12, 60, ...).
That is cheap to check and needs no model: such an answer is not kept as
done. Measured in benchmarks/factor_check.py (docs/benchmarks.md, "A time factor
the program skipped").
"""

from __future__ import annotations

import re
from itertools import pairwise

# Time units, smallest first, with their length in seconds (a month as 1/12 year: programs use 30, 31 or 4
# weeks for it, all accepted below as factors to a month).
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2629800,
            "year": 31557600}
_WORDS = {
    # "second" alone only as a unit ("per second", "1 second"), not as an ordinal ("the second hour").
    "second": r"seconds|secs?|(?:(?<=per )|(?<=a )|(?<=each )|(?<=every )|(?<=1 )|(?<=one ))second",
    "minute": r"minutes?|mins?", "hour": r"hours?|hrs?|hourly",
    "day": r"days?|daily|nights?", "week": r"weeks?|weekly|fortnights?", "month": r"months?|monthly",
    "year": r"years?|yearly|annual(?:ly)?|annum",
}
_ANY_UNIT = "|".join(_WORDS.values())
_UNIT_RE = {unit: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for unit, words in _WORDS.items()}
# "that day", "the week": a unit named as the frame of the question, not as a quantity to convert.
_FRAME = re.compile(rf"\b(?:that|this|the|same)\s+(?:{_ANY_UNIT})\b", re.IGNORECASE)
# Factors a program may use between two units besides their exact ratio (month: 30 or 31 days, 4 weeks).
_LOOSE = {frozenset(("day", "month")): {28.0, 30.0, 30.4, 30.42, 31.0}, frozenset(("week", "month")): {4.0, 4.3, 4.33},
          frozenset(("day", "year")): {365.0, 365.25, 360.0}, frozenset(("week", "year")): {52.0, 52.14}}
# "8 hours a day", "$15 an hour ... 6 hours a day", "3 shifts a week", "12-hour shifts": a thing counted per unit.
_PER = re.compile(r"(\w+)\s+(?:a|an|per|each|every|/)\s+(\w+)", re.IGNORECASE)
_FUNCTION_WORDS = {"for", "in", "of", "to", "at", "on", "with", "by", "than", "from", "into", "over", "is", "was",
                   "and", "or", "about", "after", "before", "within", "during", "lasts", "takes"}
_HYPHEN = re.compile(r"\d+-(\w+)\s+(\w+)", re.IGNORECASE)
# "1 hour 30 minutes", "2 h 15 min": a duration stated in two units already ties them.
_COMPOUND = re.compile(rf"\d+\s*(?:{_ANY_UNIT}|h)\s*(?:and\s+)?\d+\s*(?:{_ANY_UNIT})\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
# A program that leaves the arithmetic to a library or the sandbox's convert() is not checked.
_DELEGATES = re.compile(r"\b(?:timedelta|datetime)\b|\bconvert\s*\(")


def _unit(word: str) -> str | None:
    return next((u for u, pattern in _UNIT_RE.items() if pattern.fullmatch(word)), None)


def _ties(question: str) -> dict[str, str]:
    """Union-find parents over the words the question ties together ("hours a day": hour ~ day)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    pairs = [(m.group(1), m.group(2)) for m in _PER.finditer(question)]
    pairs += [(m.group(1), m.group(2)) for m in _HYPHEN.finditer(question)]
    for m in _COMPOUND.finditer(question):
        units = [u for u in (_unit(w) for w in re.findall(r"[a-z]+", m.group(0), re.IGNORECASE)) if u]
        units += ["hour"] if re.search(r"\d\s*h\b", m.group(0)) else []
        pairs += list(pairwise(units))
    for a, b in pairs:
        if a.lower() in _FUNCTION_WORDS:
            continue
        a, b = _unit(a) or a.lower().rstrip("s"), _unit(b) or b.lower().rstrip("s")
        parent[root(a)] = root(b)
    return {x: root(x) for x in list(parent)}


def _accepted(a: str, b: str) -> set[float]:
    ratio = _SECONDS[b] / _SECONDS[a]  # a is the smaller unit
    out = {round(ratio, 2), round(ratio / 4, 2), round(ratio / 2, 2), round(ratio * 3 / 4, 2)}
    units = list(_SECONDS)
    for lo, hi in zip(units[units.index(a):], units[units.index(a) + 1:units.index(b) + 1]):
        out.add(round(_SECONDS[hi] / _SECONDS[lo], 2))  # a step on the way (weeks to minutes: 7, 24 or 60)
    return out | _LOOSE.get(frozenset((a, b)), set())


def _counts(text: str) -> dict[float, int]:
    out: dict[float, int] = {}
    for m in _NUMBER.finditer(text):
        value = round(float(m.group(0)), 2)
        out[value] = out.get(value, 0) + 1
    return out


def missing_factor(question: str, program: str) -> str | None:
    """Why ``program`` looks like it skipped a time factor ``question`` needs, or None.

    A pair of time units named in the question and not tied by it (see ``_ties``) needs a number between
    them in the program: a literal the question does not already state as often (its "60 km" is no factor).
    """
    counted = _FRAME.sub(" ", question)
    named = [u for u, pattern in _UNIT_RE.items() if pattern.search(counted)]
    if len(named) < 2 or _DELEGATES.search(program):
        return None
    roots = _ties(question)
    asked, used = _counts(question), _counts(_code(program))
    factors = {x for x, n in used.items() if n > asked.get(x, 0)}
    for i, a in enumerate(named):
        for b in named[i + 1:]:
            if roots.get(a, a) == roots.get(b, b):
                continue
            if not factors & _accepted(a, b):
                return f"the program never converts between {a}s and {b}s"
    return None


def _code(program: str) -> str:
    """The program without its comments and string literals (a comment's "24 hours" is no factor)."""
    lines = [line.split("#", 1)[0] for line in program.splitlines()]
    return re.sub(r"([\"']).*?\1", "", "\n".join(lines))
