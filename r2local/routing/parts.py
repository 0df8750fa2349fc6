"""Independent parts of a question, found by its own punctuation, never by a model.

A compound message ("(1) Is 97 prime? (2) What is the capital of Canada?",
"Convert 5 miles to km, is 221 prime, and what is the capital of Canada?")
is split so that each part takes the single-question path on its own and
only a doubted part goes to the cloud. Splitting a question whose parts
depend on each other would lose the dependency, so the rules are
conservative: an explicit enumeration, or a message made only of questions
(no statement that sets up a problem) none of which points back ("it",
"that", "then"...). Everything else is one part. Rules, not the router
model: the 0.5B router found parts poorly in plans, and these rules cost
nothing and can be tested on every single-question set we have.
"""

from __future__ import annotations

import re

_ENUM = re.compile(r"(?:^|\s)(?:\((\d{1,2})\)|(\d{1,2})[.)]|Q(\d{1,2})[:.)])\s+(?=\S)", re.M)
_ASKS = ("what", "what's", "which", "who", "who's", "whom", "whose", "where", "where's", "when", "how", "why", "is",
         "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will", "convert", "calculate",
         "compute", "name", "list", "give", "tell", "find", "translate", "explain", "define", "spell")
# Asks that may end on a full stop ("Calculate 250 minus 75, and name the smallest prime number.").
_ORDERS = ("convert", "calculate", "compute", "name", "list", "give", "tell", "find", "translate", "spell")
# Words that only order the asks ("Also, ...", "Second, ...") and a list's marks ("- ", "b) "): not part of a part.
_LEAD = re.compile(r"^(?:[-*\u2022]\s+|\(?[a-h1-9][.)]\s+)?(?:(?:also|and|plus|first(?:ly)?|second(?:ly)?|third(?:ly)?|"
                   r"finally|lastly|next)\b[,:]?\s*)?", re.I)
# A question that points back at another needs it: such a message stays whole.
_BACK = re.compile(r"\b(it|its|that|this|those|these|they|them|then|there|he|she|his|her|the result|the answer)\b",
                   re.I)
_STARTERS = re.compile(r"^(?:answer (?:each|all|the following|these)[^:]*:|please answer[^:]*:|"
                       r"(?:[\w' ]{0,24}\s)?(?:two|three|four|a few|some|\d|quick|short) (?:quick |short )?"
                       r"(?:ones|questions|things)[^.:?!]{0,20}[:.!])\s*", re.I)
MAX_PARTS = 6


def _enumerated(text: str) -> list[str] | None:
    marks = list(_ENUM.finditer(text))
    numbers = [int(m.group(1) or m.group(2) or m.group(3)) for m in marks]
    if len(marks) < 2 or numbers != list(range(1, len(marks) + 1)):
        return None
    if _STARTERS.sub("", text[: marks[0].start()]).strip():
        return None  # a preamble that sets up the parts ("A shop sells ... (1) ... (2) ...") binds them
    ends = [m.start() for m in marks[1:]] + [len(text)]
    parts = [text[m.end():e].strip() for m, e in zip(marks, ends)]
    return parts if all(parts) else None


def _first_word(clause: str) -> str:
    first = re.match(r"[a-z']+", clause.strip().lower())
    return first.group(0) if first else ""


def _asks(clause: str) -> bool:
    return _first_word(clause) in _ASKS


def _own(clause: str) -> str:
    """A part's own words: without its list mark or ordering word, capitalised as a question of its own."""
    text = _LEAD.sub("", clause.strip(), count=1) or clause.strip()
    return text[0].upper() + text[1:]


def _clauses(sentence: str) -> list[str]:
    """'Convert 5 miles to km, is 221 prime, and what is ...?' -> its three asks (or the sentence whole)."""
    pieces = [_own(p) for p in re.split(r",\s*(?:and\s+)?|;\s*|\s+and\s+(?:also\s+)?(?=(?:what|which|who|how|is|"
                                        r"are|compute|calculate|convert|name|give|find|list|tell)\b)", sentence) if p.strip()]
    if len(pieces) > 1 and all(_asks(p) for p in pieces):
        return pieces
    return [sentence]


def _ends_an_ask(sentence: str) -> bool:
    return sentence.endswith("?") or (sentence.endswith((".", "!")) and _first_word(sentence) in _ORDERS)


def _question_list(text: str) -> list[str] | None:
    text = _STARTERS.sub("", text.strip(), count=1)
    sentences = [_own(s) for s in re.split(r"(?<=[?.!])\s+|\n+", text) if s.strip()]
    if not sentences or not all(_ends_an_ask(s) for s in sentences):
        return None  # a statement sets up the question(s): they belong together
    parts = [c for s in sentences for c in _clauses(s)]
    if len(parts) < 2 or not all(_asks(p) for p in parts) or any(_BACK.search(p) for p in parts[1:]):
        return None
    return parts


def split_parts(question: str) -> list[str]:
    """The question's independent parts, in order; ``[question]`` when it has one (or they depend)."""
    text = question.strip()
    parts = _enumerated(text) or _question_list(text) or [text]
    if len(parts) > MAX_PARTS:
        return [text]
    return [p if p.endswith(("?", ".", "!")) else p + "?" for p in parts] if len(parts) > 1 else [text]
