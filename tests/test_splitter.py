"""Parts the rules miss, found by the router under the shipped split adapter (routing/splitter.py)."""

from __future__ import annotations

import json

import pytest

from r2local.routing.parts import split_parts
from r2local.routing.splitter import grounded, may_have_parts, parse_split, shipped_adapter, split_messages

RULES_MISS = [  # messages the rules keep whole although they hold two asks
    "Give me the chemical symbol for sodium and the square of 15.",
    "quick: 18% of 200? capital of Sweden?",
    "what's 99 plus 101\nwho wrote the Odyssey",
    "Need two answers: the capital of Argentina, and 25 times 4.",
]


@pytest.mark.parametrize("question", RULES_MISS)
def test_messages_the_rules_keep_whole_may_still_hold_parts(question):
    assert split_parts(question) == [question]
    assert may_have_parts(question)


@pytest.mark.parametrize("question", [
    "What is 15% of 80?",
    "Who wrote the novel War and Peace?",
    "Which is largest?\nA) 3^6\nB) 9^3\nC) 5^4",  # a choice's options are not parts
    "A box holds 12 eggs. How many boxes do I need for 60 eggs?",
])
def test_plain_single_questions_never_pay_the_model_call(question):
    assert not may_have_parts(question)


def test_a_reply_is_read_as_parts_or_whole():
    assert parse_split('{"parts": ["What is 6 times 7?", " Who wrote Hamlet? "]}') == ["What is 6 times 7?",
                                                                                         "Who wrote Hamlet?"]
    assert parse_split('{"parts": []}') == [] and parse_split('{"parts": ["the message"]}') == []
    assert parse_split("I think there are two parts") is None and parse_split('{"parts": [1, 2]}') is None


def test_parts_must_come_from_the_message():
    message = "Give me the chemical symbol for sodium and the square of 15."
    assert grounded(["What is the chemical symbol for sodium?", "What is the square of 15?"], message)
    assert not grounded(["What is the chemical symbol for sodium?", "What is the square of 16?"], message)
    assert not grounded(["What is the chemical symbol for sodium?", "Who wrote Hamlet?"], message)


def test_the_prompt_is_the_one_the_adapter_was_trained_on():
    turns = split_messages("x")
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert json.loads(turns[4]["content"]) == {"parts": []}
    assert shipped_adapter("qwen2.5-coder-0.5b-instruct") is not None  # the file ships in the package
    assert shipped_adapter("smollm2-135m-instruct") is None
