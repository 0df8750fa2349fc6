"""Compound questions: 2-4 independent parts of different kinds and difficulty.

People ask "convert 5 miles to km, is 221 prime, and what is the capital of
Canada?" as one message. Each part here has its own gold answer and grader, so
a reply is right only when every part is answered, and the report can score
the parts one by one (``parts`` grader in graders.py). The facts are our own
short list, the arithmetic and yes/no parts are computed, the word problems
come from the seeded generator's easy levels. Kept apart from calibration data:
the "compound" dataset is never a calibration split of another dataset.
"""

from __future__ import annotations

import json
import random
from typing import Callable

from r2local.tasks.wordproblems import LEVELS, fmt

Part = dict  # {"question", "answer", "grader", "kind", "difficulty", "choices"?}

# (question, answer): facts a small model often gets wrong and a larger one right. "a|b": either answer is right
# ("the Amazon River" names the Amazon).
FACTS = [
    ("What is the capital of Australia?", "Canberra"), ("What is the capital of Canada?", "Ottawa"),
    ("What is the capital of Turkey?", "Ankara"), ("What is the capital of Brazil?", "Brasilia"),
    ("What is the capital of Switzerland?", "Bern"), ("What is the capital of New Zealand?", "Wellington"),
    ("What is the capital of Nigeria?", "Abuja"), ("What is the capital of Morocco?", "Rabat"),
    ("What is the capital of Pakistan?", "Islamabad"), ("What is the capital of Vietnam?", "Hanoi"),
    ("What is the capital of Kenya?", "Nairobi"), ("What is the capital of Peru?", "Lima"),
    ("What is the capital of Norway?", "Oslo"), ("What is the capital of Egypt?", "Cairo"),
    ("What is the chemical symbol of gold?", "Au"), ("What is the chemical symbol of iron?", "Fe"),
    ("What is the chemical symbol of sodium?", "Na"), ("What is the chemical symbol of potassium?", "K"),
    ("What is the chemical symbol of silver?", "Ag"), ("What is the chemical symbol of lead?", "Pb"),
    ("Which planet is the largest in the solar system?", "Jupiter"),
    ("Which planet is closest to the Sun?", "Mercury"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("Who wrote the play Hamlet?", "Shakespeare"), ("Who painted the Mona Lisa?", "Leonardo da Vinci|da Vinci"),
    ("Who developed the theory of general relativity?", "Einstein"),
    ("What gas do plants take in for photosynthesis?", "carbon dioxide|CO2"),
    ("What is the largest ocean on Earth?", "Pacific|Pacific Ocean"),
    ("What is the longest river in South America?", "Amazon|Amazon River"),
    ("What is the hardest natural substance?", "diamond|diamonds"), ("In which country is the city of Kyoto?", "Japan"),
    ("What is the smallest prime number?", "2"), ("How many sides does a hexagon have?", "6"),
    ("How many continents are there?", "7"), ("What is the freezing point of water in degrees Fahrenheit?", "32"),
]

UNITS = [  # (from, to, factor, digits)
    ("miles", "kilometres", 1.609344, 1), ("kilograms", "pounds", 2.2046226, 1), ("inches", "centimetres", 2.54, 1),
    ("litres", "millilitres", 1000, 0), ("hours", "minutes", 60, 0), ("feet", "metres", 0.3048, 2),
]

Maker = Callable[[random.Random], Part]
MAKERS: dict[str, Maker] = {}


def maker(kind: str) -> Callable[[Maker], Maker]:
    def deco(fn: Maker) -> Maker:
        MAKERS[kind] = fn
        return fn

    return deco


@maker("fact")
def _fact(rng: random.Random) -> Part:
    q, a = rng.choice(FACTS)
    grader = "number" if a.isdigit() else "exact"
    return {"question": q, "answer": a, "grader": grader, "kind": "fact", "difficulty": 2}


@maker("arithmetic")
def _arithmetic(rng: random.Random) -> Part:
    a, b = rng.randint(12, 99), rng.randint(3, 29)
    op, value = rng.choice([("times", a * b), ("plus", a + b), ("minus", a - b)])
    if rng.random() < 0.3:  # a percentage: one step, but small models slip
        p, base = rng.choice([10, 15, 20, 25, 40]), rng.randint(2, 30) * 20
        return {"question": f"What is {p}% of {base}?", "answer": fmt(p * base / 100), "grader": "number",
                "kind": "arithmetic", "difficulty": 2}
    return {"question": f"What is {a} {op} {b}?", "answer": str(value), "grader": "number",
            "kind": "arithmetic", "difficulty": 1 if op != "times" else 2}


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))


@maker("yesno")
def _yesno(rng: random.Random) -> Part:
    if rng.random() < 0.5:
        want_prime = rng.random() < 0.5
        n = rng.choice([k for k in range(51, 300, 2) if _is_prime(k) == want_prime])
        return {"question": f"Is {n} a prime number?", "answer": "yes" if _is_prime(n) else "no",
                "grader": "exact", "kind": "yesno", "difficulty": 3}
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    x = round(rng.uniform(0.1, 0.99), 2)
    return {"question": f"Is {a}/{b + a} greater than {x}?", "answer": "yes" if a / (a + b) > x else "no",
            "grader": "exact", "kind": "yesno", "difficulty": 2}


@maker("choice")
def _choice(rng: random.Random) -> Part:
    values = rng.sample([(2 ** 10, "2^10"), (10 ** 3, "10^3"), (3 ** 6, "3^6"), (5 ** 4, "5^4"), (6 ** 4, "6^4"),
                         (9 ** 3, "9^3"), (4 ** 5, "4^5")], 3)
    gold = "ABC"[max(range(3), key=lambda i: values[i][0])]
    options = ", ".join(f"{letter}) {text}" for letter, (_, text) in zip("ABC", values))
    return {"question": f"Which is largest: {options}? Answer with the letter.", "answer": gold,
            "grader": "choice", "choices": [t for _, t in values], "kind": "choice", "difficulty": 3}


@maker("conversion")
def _conversion(rng: random.Random) -> Part:
    src, dst, factor, digits = rng.choice(UNITS)
    x = rng.randint(2, 40)
    value = round(x * factor, digits)
    return {"question": f"How many {dst} are in {x} {src}?", "answer": fmt(value) if digits else str(int(value)),
            "grader": "number", "kind": "conversion", "difficulty": 2}


@maker("word")
def _word(rng: random.Random) -> Part:
    level = rng.choice([1, 2])
    question, answer = rng.choice(LEVELS[level])(rng)
    return {"question": question, "answer": answer, "grader": "number", "kind": "word", "difficulty": level + 1}


def compound_question(parts: list[Part]) -> str:
    lines = [f"({i}) {p['question']}" for i, p in enumerate(parts, 1)]
    return "Answer each part:\n" + "\n".join(lines)


def generate(n: int, seed: int) -> list[dict]:
    """``n`` compound questions of 2-4 parts, no two parts of one question of the same kind."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kinds = rng.sample(sorted(MAKERS), rng.choice([2, 2, 3, 3, 4]))
        parts = [MAKERS[k](rng) for k in kinds]
        out.append({"id": f"compound-{seed}-{i}", "question": compound_question(parts),
                    "answer": json.dumps(parts), "grader": "parts",
                    "meta": {"parts": len(parts), "kinds": kinds, "difficulty": max(p["difficulty"] for p in parts)}})
    return out
