"""Splitting a message into independent parts: compound messages split, single questions stay whole."""

from __future__ import annotations

import json

import pytest

from r2local.routing.parts import split_parts
from r2local.tasks import compound
from r2local.tasks.wordproblems import generate


def test_generated_compound_questions_split_into_their_parts():
    for q in compound.generate(200, seed=2):
        parts = json.loads(q["answer"])
        assert split_parts(q["question"]) == [p["question"] for p in parts]


def test_single_word_problems_stay_whole():
    # Word problems set up their question with statements; splitting them would lose the setup.
    items = generate(400, seed=0)
    whole = sum(split_parts(it["question"]) == [it["question"].strip()] for it in items)
    assert whole == len(items)


@pytest.mark.parametrize("question, parts", [
    ("Convert 5 miles to km, is 221 prime, and what is the capital of Canada?",
     ["Convert 5 miles to km?", "is 221 prime?", "what is the capital of Canada?"]),
    ("What is the capital of Peru? How many legs does a spider have?",
     ["What is the capital of Peru?", "How many legs does a spider have?"]),
    ("1. Who wrote Hamlet?\n2. What is 17 times 3?", ["Who wrote Hamlet?", "What is 17 times 3?"]),
    ("Is 97 prime, and what is 12 times 3?", ["Is 97 prime?", "what is 12 times 3?"]),
])
def test_compound_messages_people_type(question, parts):
    assert split_parts(question) == parts


@pytest.mark.parametrize("question", [
    "What is the capital of Australia?",
    "What is 1,250 plus 3,400?",
    "Which is larger, 3/4 or 0.7?",
    "What is the capital of France, and what is its population?",  # the second needs the first
    "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?",
    "What is 120 divided by 8? Then add 5 to it?",
    "A shop has two offers. (1) 3 pens for $4 (2) 5 pens for $6. Which is cheaper per pen?",
    "Write a haiku about autumn, and explain its meaning.",
    "What is 2.5 times 4?",
    "Which is largest: A) 3^6, B) 9^3, C) 5^4? Answer with the letter.",
])
def test_single_or_dependent_questions_stay_whole(question):
    assert split_parts(question) == [question]
