"""A seeded generator of multi-step arithmetic, time and unit word problems.

Difficulty 1 is one small step (a 135M model gets many right); 2 adds a
second step, a clock or a unit; 3 chains conversions; 4 needs three or four
steps with decimals, percentages or rates (small models mostly fail). Every
answer is exact and graded as a number (clock times as hh:mm).
"""

from __future__ import annotations

import random
from typing import Callable

NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca", "Mei", "Noor"]
ITEMS = ["apple", "marble", "sticker", "pencil", "stamp", "card", "shell", "cookie", "coin", "button"]

Template = Callable[[random.Random], tuple[str, str]]  # rng -> (question, answer)
LEVELS: dict[int, list[Template]] = {1: [], 2: [], 3: [], 4: []}


def template(level: int) -> Callable[[Template], Template]:
    def deco(fn: Template) -> Template:
        LEVELS[level].append(fn)
        return fn

    return deco


def fmt(x: float) -> str:
    """12.0 -> "12", 15.850 -> "15.85"."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if round(x, 2) != int(round(x, 2)) else str(int(round(x, 2)))


def _who(rng: random.Random) -> tuple[str, str]:
    return rng.choice(NAMES), rng.choice(ITEMS)


# -- level 1: one small step -----------------------------------------------------
@template(1)
def add(rng: random.Random) -> tuple[str, str]:
    name, item = _who(rng)
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    return f"{name} has {a} {item}s and gets {b} more. How many {item}s does {name} have now?", str(a + b)


@template(1)
def take(rng: random.Random) -> tuple[str, str]:
    name, item = _who(rng)
    a = rng.randint(10, 30)
    b = rng.randint(2, a - 2)
    return f"There are {a} {item}s in a box. {name} takes {b} of them. How many {item}s are left in the box?", str(a - b)


@template(1)
def packs(rng: random.Random) -> tuple[str, str]:
    _, item = _who(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    return f"A bag holds {a} {item}s. How many {item}s are in {b} bags?", str(a * b)


# -- level 2: two steps, a clock or a unit ----------------------------------------
@template(2)
def packs_give(rng: random.Random) -> tuple[str, str]:
    name, item = _who(rng)
    a, b = rng.randint(3, 8), rng.randint(4, 12)
    c = rng.randint(2, a * b - 2)
    q = f"{name} buys {a} packs of {b} {item}s and gives {c} {item}s to a friend. How many {item}s does {name} have left?"
    return q, str(a * b - c)


@template(2)
def film_end(rng: random.Random) -> tuple[str, str]:
    h, m, d = rng.randint(13, 20), rng.randrange(0, 60, 5), rng.randint(85, 150)
    end = h * 60 + m + d
    q = f"A film starts at {h}:{m:02d} and lasts {d} minutes. At what time does it end? Give the time as hh:mm on a 24-hour clock."
    return q, f"{end // 60 % 24}:{end % 60:02d}"


@template(2)
def ribbon(rng: random.Random) -> tuple[str, str]:
    name, _ = _who(rng)
    a, b = rng.randint(2, 9), rng.randint(15, 95)
    q = f"A ribbon is {a} m long. {name} cuts off {b} cm. How many centimetres of ribbon are left?"
    return q, str(a * 100 - b)


# -- level 3: chained conversions ---------------------------------------------------
@template(3)
def train(rng: random.Random) -> tuple[str, str]:
    h, m = rng.randint(8, 11), rng.randrange(0, 60, 5)
    dur = rng.randint(12 * 60 - (h * 60 + m) + 10, 12 * 60 - (h * 60 + m) + 200)
    took = f"{dur // 60} h" + (f" {dur % 60} min" if dur % 60 else "")
    q = (f"A train leaves at {h}:{m:02d} in the morning and the trip takes {took}. "
         "How many minutes after noon does it arrive?")
    return q, str(h * 60 + m + dur - 12 * 60)


@template(3)
def flour(rng: random.Random) -> tuple[str, str]:
    g, n = rng.choice([150, 200, 250, 300, 350, 400]), rng.randint(3, 12)
    return f"A recipe needs {g} g of flour for one cake. How many kilograms of flour are needed for {n} cakes?", f"{fmt(g * n / 1000)} kg"


@template(3)
def drive(rng: random.Random) -> tuple[str, str]:
    v = rng.choice([48, 60, 72, 84, 90, 96, 120])
    t = rng.choice([t for t in range(15, 180, 5) if v * t % 60 == 0])
    return f"A car drives at {v} km/h for {t} minutes. How many kilometres does it travel?", f"{v * t // 60} km"


@template(3)
def wages(rng: random.Random) -> tuple[str, str]:
    name, _ = _who(rng)
    w, h, d = rng.randint(9, 25), rng.randint(3, 8), rng.randint(3, 6)
    q = f"{name} earns ${w} per hour and works {h} hours a day for {d} days. How many dollars does {name} earn in total?"
    return q, str(w * h * d)


# -- level 4: three or four steps, decimals, percentages, rates ---------------------
@template(4)
def change(rng: random.Random) -> tuple[str, str]:
    name, _ = _who(rng)
    while True:
        a, p = rng.randint(3, 9), rng.randrange(75, 255, 5) / 100
        b, q = rng.randint(2, 5), rng.randrange(120, 490, 10) / 100
        bill = 20 if a * p + b * q < 19 else 50
        if a * p + b * q < bill - 1:
            break
    text = (f"{name} buys {a} pens at ${p:.2f} each and {b} notebooks at ${q:.2f} each, and pays with a ${bill} note. "
            f"How much change, in dollars, does {name} get?")
    return text, fmt(round(bill - (a * p + b * q), 2))


@template(4)
def cyclist(rng: random.Random) -> tuple[str, str]:
    v1, v2 = rng.choice([12, 15, 18, 20, 24, 30]), rng.choice([12, 15, 18, 20, 24, 30])
    # Whole kilometres on both legs, so every step stays exact.
    t1 = rng.choice([t for t in range(20, 130, 5) if v1 * t % 60 == 0])
    t2 = rng.choice([t for t in range(20, 100, 5) if v2 * t % 60 == 0])
    rest = rng.randint(5, 25)
    q = (f"A cyclist rides {v1 * t1 // 60} km at {v1} km/h, rests for {rest} minutes, then rides {v2 * t2 // 60} km "
         f"at {v2} km/h. How many minutes does the whole trip take?")
    return q, str(t1 + rest + t2)


@template(4)
def sale(rng: random.Random) -> tuple[str, str]:
    p, x, y = rng.choice([40, 50, 60, 80, 120, 150, 200]), rng.choice([10, 15, 20, 25, 30]), rng.choice([5, 8, 10])
    q = (f"A jacket costs ${p}. It is on sale for {x}% off, and then {y}% sales tax is added to the sale price. "
         "What is the final price in dollars?")
    return q, fmt(round(p * (100 - x) * (100 + y) / 10000, 2))


@template(4)
def tank(rng: random.Random) -> tuple[str, str]:
    while True:
        size, full, rate = rng.choice([200, 300, 400, 600, 800, 1200]), rng.choice([10, 20, 25, 40, 50]), rng.choice([4, 5, 8, 10, 12])
        missing = size * (100 - full) // 100
        if size * (100 - full) % 100 == 0 and missing % rate == 0:
            break
    q = (f"A tank holds {size} litres and is {full}% full. A pump adds {rate} litres per minute. "
         "How many minutes until the tank is full?")
    return q, str(missing // rate)


def generate(n: int, seed: int) -> list[dict]:
    """``n`` problems, difficulties 1-4 in equal shares, the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        level = i % 4 + 1
        make = rng.choice(LEVELS[level])
        question, answer = make(rng)
        out.append({"id": f"gen-{seed}-{i}", "question": question, "answer": answer, "grader": "number",
                    "meta": {"difficulty": level, "template": make.__name__}})
    rng.shuffle(out)
    return out
