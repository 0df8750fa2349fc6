"""Compound questions: the generator's golds and the ``parts`` grader (no models)."""

from __future__ import annotations

import json

import pytest

from r2local.tasks import compound, datasets
from r2local.tasks.graders import grade, part_scores, part_segments


def _parts(item) -> list[dict]:
    return json.loads(item.answer)


def test_generator_is_seeded_and_mixes_kinds():
    a, b = compound.generate(50, seed=3), compound.generate(50, seed=3)
    assert a == b != compound.generate(50, seed=4)
    for q in a:
        parts = json.loads(q["answer"])
        kinds = [p["kind"] for p in parts]
        assert 2 <= len(parts) <= 4 and len(set(kinds)) == len(kinds)
        assert q["question"].count("\n(") == len(parts) and q["grader"] == "parts"


def test_every_gold_is_right_under_its_own_grader():
    for q in compound.generate(300, seed=1):
        for p in json.loads(q["answer"]):
            assert grade(p["grader"], f"The answer is {p['answer']}.", p["answer"], p.get("choices")), p


def test_a_reply_is_right_only_when_every_part_is_answered():
    item = datasets.load("compound", 1, seed=5)[0][0]
    parts = _parts(item)
    full = "\n".join(f"({i}) The answer is {p['answer']}." for i, p in enumerate(parts, 1))
    assert grade("parts", full, item.answer) and part_scores(full, item.answer) == [True] * len(parts)
    one = "The answer is Toronto."  # what a question kept whole got: one part answered, and wrongly
    assert not grade("parts", one, item.answer)
    wrong_last = full.rsplit("The answer is", 1)[0] + "The answer is 123456789."
    assert part_scores(wrong_last, item.answer) == [True] * (len(parts) - 1) + [False]


@pytest.mark.parametrize("reply", [
    "(1) Canberra\n(2) 42",
    "1. Canberra\n2. 42",
    "**1.** Canberra\n**2.** 42",
    "Part 1: Canberra\nPart 2: 42",
    "Here you go:\n1) Canberra.\n2) It is 42.",
    "Canberra\n42",
])
def test_part_numbers_in_the_forms_models_write(reply):
    segments = part_segments(reply, 2)
    assert segments is not None and "Canberra" in segments[0] and "42" in segments[1]


def test_unnumbered_prose_counts_only_stated_values():
    gold = json.dumps([
        {"question": "capital?", "answer": "Ottawa", "grader": "exact"},
        {"question": "17 * 3?", "answer": "51", "grader": "number"},
        {"question": "is 97 prime?", "answer": "yes", "grader": "exact"},
    ])
    # No numbering and not one line per part: names and numbers may be found, a yes/no cannot be placed.
    assert part_scores("Ottawa is the capital, 17 times 3 makes 51, and yes it is prime, I think.", gold) == \
        [True, True, False]


def test_compound_dataset_is_a_builtin():
    items, calib = datasets.load("compound", 20, seed=0, calib=10)
    assert len(items) == 20 and len(calib) == 10 and not {i.id for i in items} & {i.id for i in calib}
    assert all(it.grader == "parts" and it.meta["parts"] >= 2 for it in items)
