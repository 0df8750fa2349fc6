"""The split trainer's reward and reading of replies (benchmarks/split_train.py), without a model."""

from __future__ import annotations

import json

from benchmarks.split_train import (
    held_out,
    matched,
    parse,
    reward,
    right,
    target,
    train_messages,
)

TWO = ["What is 6 times 7?", "Who wrote Hamlet?"]


def test_a_reply_is_read_as_parts_whole_or_not_at_all():
    assert parse('{"parts": ["What is 6 times 7?", "Who wrote Hamlet?"]}') == TWO
    assert parse('Sure: {"parts": []}') == []
    assert parse('{"parts": ["one question only"]}') == []  # one part is the message kept whole
    assert parse('{"parts": "What"}') is None and parse("two parts") is None and parse('{"parts": [""]}') is None
    assert json.loads(target(["only one"])) == {"parts": []}


def test_parts_match_loosely_but_not_across_numbers():
    assert matched(["what's 6 times 7", "who wrote hamlet?"], TWO) == 2
    assert matched(["What is 6 times 8?", "Who wrote Hamlet?"], TWO) == 1  # another number is another part
    assert matched(["Who wrote Hamlet?", "Who wrote Hamlet?"], TWO) == 1  # one reply part counts once


def test_the_reward_ranks_a_full_split_over_a_partial_one_over_none():
    full, partial, whole = reward(TWO, TWO), reward([TWO[0], "Who painted it?"], TWO), reward([], TWO)
    assert full > partial > whole and whole < 0
    assert reward(TWO + ["What else?"], TWO) < full  # an invented part costs
    assert reward([], []) == 1.0 and reward(TWO, []) == 0.0  # a single question must stay whole


def test_training_messages_never_hold_a_held_out_one():
    held = {r["question"] for r in held_out(1000)}
    train = train_messages(200, seed=1)
    assert not held & {q for q, _ in train}
    assert sum(bool(p) for _, p in train) >= 100 and sum(not p for _, p in train) >= 80
    assert right({"n": 2, "want": None}, ["a", "b"]) and not right({"n": 1, "want": []}, ["a", "b"])
