"""What kind of answer a question asks for, from its wording alone (cheap rules, no model).

The kind decides how replies are compared: numbers, clock times, yes/no,
option letters and short answers (a name, a place, a date, a term) are read
as values and voted on; open text (write, explain, describe...) has no vote.
Measured: a short answer that got one unvoted sample ("The capital of
Australia is Sydney.") could never escalate, so anything with one right
answer must land in a voted kind. Rules run from the most specific wording to
the least; what matches nothing is open text.
"""

from __future__ import annotations

import re

from r2local.engine.options import parse_options
from r2local.sandbox.units import asks_conversion

NUMBER, CLOCK, POLAR, CHOICE, TEXT, SHORT = "number", "clock", "yes/no", "choice", "text", "short"
COMPUTED = "computed"  # a route kind only (route_kind): a yes/no or choice question a program settles
# Index of each kind in the ``answer_kind`` feature: append only (recorded features keep their meaning).
KIND_ORDER = [NUMBER, CLOCK, POLAR, CHOICE, TEXT, SHORT]

_CHOICE = re.compile(r"\b(letter of the correct option|answer with the letter)\b|^\s*\(?[a-e]\)", re.M)
# Asking for writing, not for a fact: no one answer to compare replies against.
_OPEN_START = re.compile(
    r"^\s*(please\s+|can you\s+|could you\s+)?(write|explain|describe|summari[sz]e|translate|compose|draft|discuss|"
    r"compare|contrast|outline|elaborate|tell me|give (me )?(some|a few|\w+ tips|an? (overview|summary|example|"
    r"explanation|list))|list|suggest|create|generate|rewrite|paraphrase|brainstorm|why|how (do|does|can|should|"
    r"would|could|did|to)\b|what (are|were) (the )?(main|key|some|common|best|pros|benefits|advantages|causes|"
    r"effects|reasons|differences)|what is the (difference|relationship|meaning|purpose|role|point)\b|"
    r"what (happens|would happen|if)\b)"
)
_OPEN_ANYWHERE = re.compile(
    r"\b(explain|describe|summari[sz]e|essay|poem|story|in detail|pros and cons|step[- ]by[- ]step)\b"
)
_POLAR = re.compile(
    r"\banswer (with )?yes or no\b|^\s*(is|are|was|were|do|does|did|can|could|would|will|has|have|had|should|"
    r"must|may)\b"
)
_CLOCK = re.compile(r"\b(at )?what time\b|\bhh:mm\b|\bclock\b|\bwhen (does|will|did|do)\b")
_NUMBER_WORDS = re.compile(
    r"\bhow (many|much|long|far|tall|old|high|big|heavy|fast|deep|wide)\b|\b(sum|product|quotient|remainder|"
    r"percent|average) of\b|\b(plus|minus|times|divided by|multiplied by)\b|"
    r"\b(double|triple|twice|half|a third|a quarter|the square|the cube) (of )?(that|it|this|the (result|answer|number))\b"
)
# A definition or a life story ("What is photosynthesis?", "Who was Napoleon?"): an explanation, not a fact.
_DEFINITION = re.compile(r"^\s*(what|who)\s+(is|are|was|were)\s+(?!the\b)(an?\s+)?[\w'-]+(\s+[\w'-]+)?\s*\??\s*$")
_SHORT = re.compile(
    r"^\s*(who|whom|whose|what|what's|which|where|when|name|identify|in (what|which)|on (what|which)|"
    r"at (what|which)|from (what|which)|to (what|which)|give the name)\b"
)
# A question about a person or a named thing that mentions a number ("Who wrote 1984?", "Which element has
# atomic number 1?"): the number is part of the question, the answer is a name.
_NAMES_THING = re.compile(
    r"^\s*(who|whom|whose)\b|^\s*(which|what)\s+(?!(number|numbers|fraction|percentage|percent|value|integer|digit|"
    r"amount|sum|total|year|one|ones|is|are|was|were|of|do|does|did|has|have|had|can|will|would|time)\b)[a-z]+\s+"
)
SHORT_MAX_WORDS = 25  # a longer wh-question usually asks for more than a name or a term
# A follow-up that leans on the turn before ("And in miles?", "What about Brazil?", "Is that right?"):
# its own wording may say nothing of the answer's kind, the earlier turn's does.
_REFERS_BACK = re.compile(
    r"^\s*(and|so|then|now|ok(ay)?|what about|how about|same for|and what about)\b|"
    r"\b(that|it|this|those|these|them|the same|the result|the answer|the previous|instead)\b"
)
FOLLOW_UP_MAX_WORDS = 12  # a longer message stands on its own
# A yes/no question that is a check on numbers ("Is 221 a prime number?", "Is 3/8 greater than 0.4?"): a
# program settles it. Facts that mention a number ("Did the war end in 1945?") have none of these words.
_CHECKS = re.compile(
    r"\b(prime|divisible|even|odd|perfect square|square root|squared|cubed|power|multiple|factor|greater|less|"
    r"larger|smaller|bigger|more|fewer|equal|equals|times|plus|minus|divided|multiplied|sum|product|percent)\b|%|[*/+^=]"
)

# "Is 5 miles longer than 8 kilometres?": a comparison of measures (beyond _CHECKS' more/larger/...) is a check
# when the question states both in units a program converts (sandbox.units); "Is the Nile longer than 6000 km?"
# names one unit and is a fact.
_MEASURE_CHECKS = re.compile(r"\b(longer|shorter|taller|heavier|lighter|hotter|colder|warmer|cooler|faster|slower|"
                             r"farther|further|wider|narrower|deeper)\b")


def answer_kind(question: str, before: str | None = None) -> str:
    """The kind of answer ``question`` asks for: number, clock, yes/no, choice, short or text.

    ``before``: the kind of the conversation's previous turn. A short follow-up that refers back
    and whose own wording gives only open text ("What is double that?", "And in miles?") takes it;
    measured: such a turn got no vote and was marked done on a wrong answer. A follow-up that asks
    for writing ("Explain that") stays open text.
    """
    own = _own_kind(question)
    q = question.strip().lower()
    if (own == TEXT and before and before != TEXT and not _OPEN_START.search(q)
            and len(q.split()) <= FOLLOW_UP_MAX_WORDS and _REFERS_BACK.search(q)):
        return before
    return own


# An option that is a number or a power ("B) 144", "C) $30", "A) 2^10"); a choice is computable when every
# option is one and its stem computes something ("What is 12 times 12?", "Which is largest: ..."). A stem
# that asks a fact with numbers for options ("How many continents are there?") is not: a program guesses it.
_NUMERIC = re.compile(r"^\$?-?\d[\d.,]*(/\d+)?(\s*%|\^\d+)?$")  # "144", "$30", "2^10", "2/3"
# The largest or smallest option; between two, "Which is bigger? A) 2/3 B) 0.6".
_EXTREME = re.compile(r"\b(largest|smallest|greatest|least|biggest|highest|lowest|bigger|larger|greater|smaller|"
                      r"less|lower|higher)\b")


def _stem(q: str) -> str:
    """A choice question without its options."""
    options = parse_options(q)
    return options.stem if options else q


# A property of a number the options may have ("Which of these is even?"): a program tests each option. Only the
# properties the 0.5B tests right in one line (`value % 7 == 0`): on 12 such choices even, odd, divisible and
# multiple were 5/5 done and right; prime gave a wrong answer marked done and perfect squares no program that
# ran, so those stay open (where the stem alone names no option and the question climbs).
_PROPERTY = re.compile(r"\b(even|odd|divisible by|multiple of)\b")


def asks_extreme(question: str) -> bool:
    """Whether a choice asks for the largest or smallest option (rather than the one that matches)."""
    return bool(_EXTREME.search(_stem(question.lower())))


def asks_property(question: str) -> bool:
    """Whether a choice asks which option has a property a program can test ("Which of these is even?")."""
    return bool(_PROPERTY.search(_stem(question.lower())))


def computable(question: str) -> bool:
    """Whether a program can settle ``question``: a yes/no check on numbers it states ("Is 221 a prime
    number?"), or a choice between numbers that it computes ("What is 15% of 80? A) 10 B) 12 ...")."""
    q = question.strip().lower()
    kind = _own_kind(q)
    if kind == POLAR:
        if not re.search(r"\d", q):
            return False
        return bool(_CHECKS.search(q)) or (bool(_MEASURE_CHECKS.search(q)) and asks_conversion(question))
    if kind != CHOICE:
        return False
    options = parse_options(q)
    if options is None:
        return False
    stem = options.stem
    return (all(_NUMERIC.match(o.strip()) for _, o in options.texts)
            and (bool(_EXTREME.search(stem)) or bool(_PROPERTY.search(stem))
                 or (bool(re.search(r"\d", stem)) and bool(_CHECKS.search(stem)))))


def route_kind(question: str, before: str | None = None) -> str:
    """The kind whose route bands ``question`` takes: its answer kind, but COMPUTED for a yes/no or choice
    a program settles. Those are answered another way than the kind's other questions (a program, not a
    brief reply), so bands measured on one do not describe the other: a choice band fitted on facts (local
    right on a third) sent every "What is 15% of 80? A) ..." to the cloud."""
    kind = answer_kind(question, before)
    return COMPUTED if kind in (POLAR, CHOICE) and computable(question) else kind


def conversation_kind(questions: list[str]) -> str | None:
    """The kind of the last of a conversation's ``questions`` (oldest first), each read after the one
    before it; None for no questions."""
    kind: str | None = None
    for q in questions:
        kind = answer_kind(q, kind)
    return kind


def _own_kind(question: str) -> str:
    q = question.strip().lower()
    if _CHOICE.search(q) or (parse_options(question) and not _OPEN_START.search(q)):  # "Explain:\nA. TCP\nB. UDP"
        return CHOICE
    if _OPEN_START.search(q):
        return TEXT
    if _POLAR.search(q):
        return POLAR
    if _CLOCK.search(q):
        return CLOCK
    if _NUMBER_WORDS.search(q):
        return NUMBER
    if re.search(r"\d", q):
        return SHORT if _NAMES_THING.search(q) and len(q.split()) <= SHORT_MAX_WORDS else NUMBER
    if _OPEN_ANYWHERE.search(q) or _DEFINITION.search(q):
        return TEXT
    if _SHORT.search(q) and len(q.split()) <= SHORT_MAX_WORDS:
        return SHORT
    return TEXT
