"""Short answers (a name, a place, a date, a term) as values two replies can be compared in.

"The capital of Australia is Canberra.", "**Canberra**" and "canberra" are one
answer: the reply's answer (after an explicit marker, else the first clause of
its first sentence that says something the question does not) loses case,
accents, punctuation, filler words and the words it repeats from the question,
and common aliases are folded ("USA" -> "united states", "Mt." -> "mount").
Two short answers agree when one's words are all in the other's and it is at
least half as long ("Shakespeare" and "William Shakespeare"; not "Sydney" and
"Sydney Opera House").
"""

from __future__ import annotations

import re

from r2local.tasks.graders import marked, without_accents

# Words that carry no answer: articles, copulas, prepositions, and how small models open a reply.
_FILLER = frozenset(
    "a an the is are was were be been it its it's this that these those of in on at to by for from with as and "
    "which who whom whose what where when called known named located situated answer final correct sure okay ok "
    "certainly yes well so i think believe would say has have had".split()
    # Nouns and verbs that frame an answer rather than state it ("the author ... is Jane Austen",
    # "Canberra is the capital city", "Pacific Ocean" and "Pacific").
    + "city town country nation state planet person author writer painter artist inventor scientist composer "
    "name word term year place language river mountain ocean sea element written wrote painted discovered "
    "invented composed founded".split()
)
_ALIASES = [  # (pattern on normalised words, replacement)
    (r"\b(u s a|usa|u s|us|united states of america|america)\b", "united states"),
    (r"\b(uk|u k|great britain|britain)\b", "united kingdom"),
    (r"\b(mt)\b", "mount"), (r"\b(st)\b", "saint"), (r"\b(ft)\b", "fort"), (r"\b(dr)\b", "doctor"),
    (r"\b(ussr|soviet union)\b", "soviet union"),
    (r"&", " and "),
]
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
# Where an answer's clause ends: "Canberra, which ...", "Canberra (the ACT)", "Canberra - a planned city".
_CLAUSE = re.compile(
    r"[,;:]\s+|[()\[\]]|\s[-\u2013\u2014]\s|\s(?:which|who|whom|whose|where|because|although|while|but)\s",
    re.IGNORECASE,
)
# Where a stated answer starts within a clause: after "is", "was", "by" ("... was written by Jane Austen").
_COPULA = re.compile(r"\s(?:is|are|was|were|by)\s", re.IGNORECASE)
# A sentence ends at ".!?" after two lower-case letters or digits, so "J. K. Rowling" and "Dr. Who" stay whole.
_SENTENCE_END = re.compile(r"(?<=[a-z0-9]{2}[.!?])\s+|(?<=[a-z0-9]{2}[.!?])$|[!?]\s+")


def words(text: str) -> list[str]:
    """Lower-case words without accents, possessives or punctuation, aliases folded."""
    text = without_accents(text).lower()
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"(?<=\b\w)\.(?=\s*\w\b)", "", text)  # initials: "j. k." -> "j k"
    text = re.sub(r"[^\w\s&]", " ", text)
    text = " ".join(text.split())
    for pattern, alias in _ALIASES:
        text = re.sub(pattern, alias, text)
    return [_NUMBER_WORDS.get(w, w) for w in text.split()]


def _kept(text: str, asked: set[str]) -> list[str]:
    return [w for w in words(text) if w not in _FILLER and w not in asked]


def answer_span(text: str, question: str = "") -> str:
    """Where a reply states its short answer: after a marker, else its first sentence
    that says something the question does not."""
    spot = marked(text)
    if spot:
        return spot
    asked = set(words(question))
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    for sentence in _SENTENCE_END.split(line):
        if sentence and _kept(sentence, asked):
            return sentence
    return line


def _clause_answer(clause: str, asked: set[str]) -> list[str]:
    """The words a clause states as its answer: its last part after "is" / "was" / "by"
    that says something new ("The capital of Canada is Ottawa"), else an earlier part
    ("Ottawa is the capital city of Canada")."""
    parts = [_kept(p, asked) for p in _COPULA.split(clause)]
    return next((p for p in reversed(parts) if p), [])


def short_value(text: str, question: str = "") -> str | None:
    """The normalised short answer ``text`` states (words kept in order), or None.

    The answer is the first clause of the answer span that says something the
    question does not: "Canberra, a vibrant city that ..." is "canberra"."""
    span = answer_span(text, question)
    asked = set(words(question))
    kept = next((k for k in (_clause_answer(c, asked) for c in _CLAUSE.split(span) if c) if k), None)
    if kept is None:  # the answer is made of the question's words ("Who wrote it?" "Its author.")
        kept = _kept(span, set())
    # "jk rowling" and "j k rowling" are one name: join runs of single letters.
    joined = re.sub(r"\b(\w) (?=\w\b)", r"\1", " ".join(kept))
    return joined or None


def same_short(a: str, b: str) -> bool:
    """Whether two normalised short answers name the same thing."""
    if a == b:
        return True
    x, y = set(a.split()), set(b.split())
    small, big = (x, y) if len(x) <= len(y) else (y, x)
    return bool(small) and small <= big and 2 * len(small) >= len(big)
