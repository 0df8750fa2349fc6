"""Graders: is a model's free-text answer the gold answer?

Small models answer in prose, so each grader first finds the answer in the
text: the part after an explicit marker ("the answer is", "Answer:", bold,
\\boxed{}) if there is one, else the whole text. Then:

- ``number``: numbers with commas, fractions, mixed numbers, percentages,
  number words, clock times (9:40, 2:15 pm) and common units (a prediction in
  g is converted when the gold answer is in kg). The marked part's first
  quantity, else the text's last one.
- ``exact``: case, punctuation, articles and spacing do not matter; yes/no and
  true/false answers compare by polarity.
- ``choice``: an option letter (A, (b), "option C"), or the option's text
  when the item lists its choices.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from r2local.registry import registrar

GRADERS: dict[str, Callable[..., bool]] = {}


register = registrar(GRADERS)


# -- finding the answer in prose ------------------------------------------------
_MARKERS = [
    r"\\boxed\{([^{}]*)\}",
    r"^####\s*(.+)",  # GSM8K's answer line
    r"\b(?:final answer|answer)\s*(?:is|:|=)\s*:?\**\s*(.+)",
    r"\*\*([^*]+)\*\*",
]


def marked(text: str) -> str | None:
    """The text after the last explicit answer marker, or None."""
    for pattern in _MARKERS:
        hits = [h.strip(" *") for h in re.findall(pattern, text, flags=re.IGNORECASE | re.MULTILINE)]
        if pattern == _MARKERS[-1]:
            # Bold marks answers ("**24 buttons**") but also headings
            # ("**Step 2: Multiply 6 by 4**"); only short, colon-free spans count.
            hits = [h for h in hits if ":" not in h and len(h.split()) <= 5]
        hits = [h for h in hits if h]
        if hits:
            return hits[-1]
    return None


# -- numbers and units -----------------------------------------------------------
_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split()
)}
# Unit -> (dimension, factor to the dimension's base unit).
_UNITS: dict[str, tuple[str, float]] = {}
for _names, _dim, _factor in [
    ("s sec secs second seconds", "time", 1 / 60), ("min mins minute minutes", "time", 1.0),
    ("h hr hrs hour hours", "time", 60.0), ("day days", "time", 1440.0),
    ("mm millimetre millimetres millimeter millimeters", "length", 0.001),
    ("cm centimetre centimetres centimeter centimeters", "length", 0.01),
    ("m metre metres meter meters", "length", 1.0), ("km kilometre kilometres kilometer kilometers", "length", 1000.0),
    ("mg milligram milligrams", "mass", 0.001), ("g gram grams", "mass", 1.0), ("kg kilogram kilograms", "mass", 1000.0),
    ("ml millilitre millilitres milliliter milliliters", "volume", 0.001),
    ("l litre litres liter liters", "volume", 1.0),
    ("% percent", "percent", 1.0),
]:
    for _n in _names.split():
        _UNITS[_n] = (_dim, _factor)

_NUM = r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+"
_QTY = re.compile(
    rf"(?P<mixed>(?<![\w.])\d+\s+\d+/\d+)|(?P<frac>(?<![\w.])-?\d+\s*/\s*\d+(?!\d|\.\d))|(?P<num>{_NUM})"
    r"(?:\s*(?P<unit>%|[a-zA-Z]+\b))?"
)
_CLOCK = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?!\d)(?:\s*([ap])\.?\s*m\b\.?)?", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str | None = None  # a key of _UNITS, or None
    places: int = 0  # decimals as written: 35.7 -> 1
    fraction: bool = False  # written as a/b: its decimal form is rounded

    def base(self) -> tuple[str | None, float]:
        if self.unit is None:
            return None, self.value
        dim, factor = _UNITS[self.unit]
        return dim, self.value * factor


_DURATION = re.compile(
    r"(?<![\w.])(\d+)\s*(?:h|hrs?|hours?)\s*(?:and\s*)?(\d+)\s*(?:min|mins|minutes?)\b", re.IGNORECASE
)


def _prepare(text: str) -> str:
    text = text.replace("$", " ").replace("−", "-")
    # "2 h 35 min" is one duration, not two numbers.
    text = _DURATION.sub(lambda m: f"{int(m.group(1)) * 60 + int(m.group(2))} min", text)
    if not re.search(r"\d", text):  # "six apples"; never in prose that has digits
        pattern = r"\b(" + "|".join(_WORDS) + r")\b"
        text = re.sub(pattern, lambda m: str(_WORDS[m.group(1).lower()]), text, flags=re.IGNORECASE)
    return _CLOCK.sub(" ", text)


def quantities(text: str) -> list[Quantity]:
    """Every number in ``text`` (clock times excluded), with its unit when known."""
    out = []
    for m in _QTY.finditer(_prepare(text)):
        places, fraction = 0, True
        if m.group("mixed"):
            whole, frac = m.group("mixed").split(None, 1)
            value = float(int(whole) + Fraction(frac.replace(" ", "")))
        elif m.group("frac"):
            num, den = (int(x) for x in m.group("frac").replace(" ", "").split("/"))
            if den == 0:
                continue
            value = num / den
        else:
            raw = m.group("num").replace(",", "")
            value, places, fraction = float(raw), len(raw.partition(".")[2]), False
        unit = (m.group("unit") or "").lower()
        out.append(Quantity(value, unit if unit in _UNITS else None, places, fraction))
    return out


def clocks(text: str) -> list[int]:
    """Clock times in ``text`` as minutes after midnight (2:15 pm -> 855)."""
    out = []
    for h, m, ap in _CLOCK.findall(text):
        hour, minute = int(h), int(m)
        if hour > 23 or minute > 59:
            continue
        if ap and ap.lower() == "p" and hour < 12:
            hour += 12
        elif ap and ap.lower() == "a" and hour == 12:
            hour = 0
        out.append(hour * 60 + minute)
    return out


def _close(a: float, b: float, rounded_to: int | None = None) -> bool:
    """a == b up to float noise; ``rounded_to``: a is b rounded to that many decimals."""
    tol = max(1e-6, 1e-4 * abs(b))
    if rounded_to is not None and rounded_to >= 2:
        tol = max(tol, 0.5 * 10.0**-rounded_to + 1e-12)
    return abs(a - b) <= tol


def same_quantity(pred: Quantity, gold: Quantity) -> bool:
    # A gold written as a fraction (5/14) accepts its rounded decimal (0.357, 35.7 %).
    places = pred.places if gold.fraction else None
    if _rounds_to(pred, gold):
        return True
    (pd, pv), (gd, gv) = pred.base(), gold.base()
    if pd is not None and pd == gd:
        return _close(pv, gv, places)
    if pd == "percent" and gd is None:  # "35.7%" for a gold 0.357, or for a gold 35.7
        return _close(pred.value / 100, gold.value, places and places + 2) or _close(pred.value, gold.value, places)
    if gd == "percent" and pd is None:
        return _close(pred.value * 100, gold.value, places and max(0, places - 2)) or _close(pred.value, gold.value, places)
    return _close(pred.value, gold.value, places)


def _rounds_to(pred: Quantity, gold: Quantity) -> bool:
    """A gold rounded to decimals (27.4 km for 17 miles) is the answer of a finer value
    that rounds to it (27.36), said in the gold's unit or without one."""
    if gold.fraction or gold.places < 1 or pred.places <= gold.places:
        return False
    if pred.unit is not None and gold.unit is not None and pred.unit != gold.unit:
        return False
    return abs(pred.value - gold.value) <= 0.5 * 10.0 ** -gold.places + 1e-9


def _answer_of(prediction: str, extract: Callable[[str], list]) -> object | None:
    """An explicit answer names its value first ("the answer is 15 minutes,
    because ..."); prose without one ends on its result."""
    spot = marked(prediction)
    found = extract(spot) if spot else []
    if found:
        return found[0]
    found = extract(prediction)
    return found[-1] if found else None


_RESULT_WORD = re.compile(
    r"=|≈|\b(?:is|are|was|were|equals?|equal to|makes?|gives?|comes? to|totals?|becomes?)\b", re.IGNORECASE
)
_SUM_OR_CLAUSE = re.compile(r"\s*[*×+/^,;]|\s*x\s*\d|\s*-\s*\d|.*\b(?:so|then|and|but|which)\b", re.IGNORECASE)


def answer_quantity(prediction: str) -> Quantity | None:
    """The quantity a reply gives as its answer. Prose without a marker ends on
    its result, but its closing sentence often restates the question's own
    number after it ("there are 9.144 metres in 30 feet"): there the value
    right after the sentence's last result word ("is", "are", "=", "equal to")
    is the answer, unless a sum or another clause follows it ("= 8 apples, so
    she has 6"), where the last value still is."""
    spot = marked(prediction)
    found = quantities(spot) if spot else []
    if found:
        return found[0]
    for sentence in reversed(re.split(r"(?<=[.!?])\s+|\n+", prediction)):
        found = quantities(sentence)
        if found:
            return _result_of(sentence, found)
    return None


def _result_of(sentence: str, found: list[Quantity]) -> Quantity:
    """The value a sentence stating ``found`` gives as its result (see ``answer_quantity``)."""
    words = list(_RESULT_WORD.finditer(sentence))
    tail = sentence[words[-1].end():] if words else ""
    after = quantities(tail)
    if len(after) > 1:
        first = _QTY.search(tail)
        if first is not None and not _SUM_OR_CLAUSE.match(tail[first.end():]):
            return after[0]
    return found[-1]


@register("number")
def grade_number(prediction: str, gold: str, choices: list[str] | None = None) -> bool:
    gold_clock = clocks(gold)
    if gold_clock:
        got = _answer_of(prediction, clocks)
        if got is None:
            return False
        # "It ends at 2:15" (no am/pm) is right for a gold 14:15.
        twelve = not re.search(r"\d\s*[ap]\.?\s*m\b", prediction, re.IGNORECASE)
        return got == gold_clock[0] or (twelve and got % 720 == gold_clock[0] % 720)
    golds = quantities(gold)
    if not golds:
        return grade_exact(prediction, gold)
    got = answer_quantity(prediction)
    return got is not None and same_quantity(got, golds[0])


# -- exact text ------------------------------------------------------------------
_POLAR = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}


def without_accents(text: str) -> str:
    """``text`` with its accents dropped ("Brasília" -> "Brasilia")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise(text: str) -> str:
    """Lower case, no accents ("Brasília" is "brasilia"), no punctuation, no articles."""
    text = re.sub(r"[^\w\s]", " ", without_accents(text.lower()))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


# A place's name often carries its kind ("the Sahara Desert", "the Nile River"): the name still states it.
_KIND_WORDS = ("river", "desert", "ocean", "sea", "lake", "mountain", "mountains", "island", "islands", "city")


def _ends_with(sentence: str, want: str) -> bool:
    """Whether a sentence states ``want`` as its last words ("The capital of Brazil is Brasília.", "... is the
    Sahara Desert."), and does not deny it ("..., not Brasilia")."""
    words = " " + normalise(sentence)
    ends = any(words.endswith(f" {want}{tail}") for tail in ("", *(f" {w}" for w in _KIND_WORDS)))
    return bool(want) and ends and not _denies(words)


def _denies(text: str) -> bool:
    return bool(re.search(r"\b(not|no|never|nor)\b", normalise(text)))


def polarity(text: str) -> str | None:
    """The first yes/no (or true/false) word in ``text``."""
    m = re.search(r"\b(yes|no|true|false)\b", text, re.IGNORECASE)
    return _POLAR[m.group(1).lower()] if m else None


@register("exact")
def grade_exact(prediction: str, gold: str, choices: list[str] | None = None) -> bool:
    """Right when ``prediction`` states ``gold``, or one of its aliases ("Leo Tolstoy|Tolstoy")."""
    if "|" in gold:
        return any(_exact(prediction, g) for g in gold.split("|") if g.strip())
    return _exact(prediction, gold)


def _exact(prediction: str, gold: str) -> bool:
    want = normalise(gold)
    spot = marked(prediction)
    if want in _POLAR:
        said = (polarity(spot) if spot else None) or polarity(prediction)
        return said == _POLAR[want]
    lines = [ln for ln in prediction.strip().splitlines() if ln.strip()]
    candidates = [spot or "", lines[0] if lines else "", prediction]
    if any(normalise(c) == want for c in candidates):
        return True
    whole = normalise(spot or prediction)
    if bool(want) and (whole + " ").startswith(want + " "):
        return True
    first = re.split(r"(?<=[.!?])\s|\n", (spot or prediction).strip(), maxsplit=1)[0]
    # Its first clause may end on the answer ("... is located in Rome, Italy.", "... was Neil Armstrong, who ..."):
    # only the first, so "Sydney, near Canberra" does not state Canberra.
    clause = re.split(r"[,;:(]|\s[-\u2013\u2014]\s", first, maxsplit=1)[0]
    return _ends_with(first, want) or (_ends_with(clause, want) and not _denies(first))


# -- multiple choice -------------------------------------------------------------
_ANSWER_LETTER = r"\b(?i:answer|option|choice)\s*(?i:is|:)?\s*:?\s*\(?([A-J])\b(?!')"
_LETTER_PATTERNS = [r"\(([A-Ja-j])\)", r"(?<![\w.])([A-J])\)", r"^\s*([A-J])\s*(?:[.:)]|$)"]


def choice_letter(text: str) -> str | None:
    """The option letter a reply picks, or None. Replies often restate the
    options before choosing, so the last letter wins."""
    m = re.findall(_ANSWER_LETTER, text)
    if m:
        return m[-1].upper()
    hits = []
    for pattern in _LETTER_PATTERNS:
        hits += [(x.start(1), x.group(1)) for x in re.finditer(pattern, text, flags=re.MULTILINE)]
    return max(hits)[1].upper() if hits else None


def _gold_index(gold: str, choices: list[str] | None) -> int | None:
    g = gold.strip()
    if len(g) == 1 and g.isalpha():
        return ord(g.upper()) - ord("A")
    if choices:
        for i, c in enumerate(choices):
            if normalise(c) == normalise(g):
                return i
    return None


def _by_content(prediction: str, choices: list[str]) -> int | None:
    """The one option whose value the reply states, when it names no letter."""
    numeric = [quantities(c) for c in choices]
    if all(numeric):
        got = answer_quantity(prediction)
        hits = [i for i, q in enumerate(numeric) if got is not None and same_quantity(got, q[0])]
    else:
        text = " " + normalise(prediction) + " "
        hits = [i for i, c in enumerate(choices) if normalise(c) and f" {normalise(c)} " in text]
    return hits[0] if len(hits) == 1 else None


@register("choice")
def grade_choice(prediction: str, gold: str, choices: list[str] | None = None) -> bool:
    if normalise(gold) in _POLAR:
        return grade_exact(prediction, gold)
    want = _gold_index(gold, choices)
    if want is None:
        return grade_exact(prediction, gold)
    spot = marked(prediction)
    letter = (choice_letter(spot) if spot else None) or choice_letter(prediction)
    if letter is not None:
        return ord(letter) - ord("A") == want
    return choices is not None and _by_content(prediction, choices) == want


def default_grader(gold: str) -> str:
    """The grader a JSONL line gets when it names none."""
    g = gold.strip()
    if len(g) == 1 and g.isupper():
        return "choice"
    if re.match(r"[$-]?\.?\d", g):
        return "number"
    return "exact"


def grade(kind: str, prediction: str, gold: str, choices: list[str] | None = None) -> bool:
    """Whether ``prediction`` answers ``gold``; ``kind`` names a grader."""
    if kind not in GRADERS:
        raise ValueError(f"unknown grader {kind!r}; use one of {', '.join(GRADERS)}")
    return GRADERS[kind](prediction or "", str(gold), choices)


# -- compound questions (several independent parts) -----------------------------------
_PART_MARK = r"^[\s*#>-]*(?:\(|\*\*)?(?:part\s*)?{n}(?:\)|\.|:|\*\*)+\s*"


def part_segments(prediction: str, n: int) -> list[str] | None:
    """The reply cut at its part numbers ("(1) ...", "1. ...", "Part 2: ..."), or None if it has not all n."""
    starts = []
    for i in range(1, n + 1):
        pos = starts[-1][1] if starts else 0
        m = re.compile(_PART_MARK.format(n=i), re.IGNORECASE | re.MULTILINE).search(prediction, pos)
        if not m:
            break
        starts.append((m.start(), m.end()))
    if len(starts) == n:
        ends = [s for s, _ in starts[1:]] + [len(prediction)]
        return [prediction[b:e].strip() for (_, b), e in zip(starts, ends)]
    lines = [ln for ln in prediction.splitlines() if ln.strip()]
    return lines if len(lines) == n else None


def _stated(part: dict, text: str) -> bool:
    """Whether an unnumbered reply states this part's answer somewhere (numbers and names only)."""
    if part["grader"] == "number":
        golds = quantities(part["answer"])
        return bool(golds) and any(same_quantity(q, golds[0]) for q in quantities(text))
    want = normalise(part["answer"])
    return part["grader"] == "exact" and want not in _POLAR and f" {want} " in f" {normalise(text)} "


def part_scores(prediction: str, gold: str) -> list[bool]:
    """Per part of a compound question (gold: the JSON list of parts), whether the reply answers it."""
    parts = json.loads(gold)
    segments = part_segments(prediction or "", len(parts))
    if segments is None:
        return [_stated(p, prediction or "") for p in parts]
    return [grade(p["grader"], seg, p["answer"], p.get("choices")) for p, seg in zip(parts, segments)]


@register("parts")
def grade_parts(prediction: str, gold: str, choices: list[str] | None = None) -> bool:
    return all(part_scores(prediction, gold))
