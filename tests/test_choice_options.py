"""Multiple choice answered open: a local tier answers the stem alone and its answer is matched to an
option (pure cases on parsing and matching; the scripted engine for what the vote does with it)."""

from __future__ import annotations

import pytest

from r2local.engine.core import Engine
from r2local.engine.kinds import CHOICE, answer_kind, computable
from r2local.engine.options import named_option, parse_options
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from r2local.vocab import Status
from tests.support.fake import Step
from tests.test_adaptive_sampling import Fixed
from tests.test_statuses import scripted_config, scripts  # noqa: F401  (scripts is a fixture)

from .conftest import settings_from

CANADA = "What is the capital of Canada?\nA. Toronto\nB. Vancouver\nC. Ottawa\nD. Montreal"
REPTILE = "Which of these is a reptile? (A) frog (B) lizard (C) salmon (D) bat"


@pytest.mark.parametrize("question, stem, texts", [
    (CANADA, "What is the capital of Canada?", ["Toronto", "Vancouver", "Ottawa", "Montreal"]),
    ("Which gas?\nA) oxygen\nB) carbon dioxide\nAnswer with the letter of the correct option.", "Which gas?",
     ["oxygen", "carbon dioxide"]),
    (REPTILE, "Which of these is a reptile?", ["frog", "lizard", "salmon", "bat"]),
    ("Which is largest: a) 2^10, b) 10^3, c) 3^6", "Which is largest:", ["2^10", "10^3", "3^6"]),
    ("Pick the odd one.\nOptions:\n(a) 3\n(b) 4", "Pick the odd one.", ["3", "4"]),
])
def test_options_are_read_in_every_usual_layout(question, stem, texts):
    options = parse_options(question)
    assert options is not None and options.stem == stem
    assert [t for _, t in options.texts] == texts
    assert answer_kind(question) == CHOICE


@pytest.mark.parametrize("question", [
    "a) Is 97 prime? b) What is the capital of Canada?",  # lettered parts of a compound question
    "Plan A. Save money\nB. Spend it",  # not lettered from A in order on their own lines
    "What is the capital of Canada?",
    "B) Ottawa\nC) Toronto",  # no A
])
def test_what_is_not_a_list_of_options(question):
    assert parse_options(question) is None


def test_a_request_for_writing_over_a_lettered_list_stays_open_text():
    assert answer_kind("Explain the difference between:\nA. TCP\nB. UDP") == "text"


def test_a_stem_with_its_options_still_decides_whether_a_program_settles_it():
    assert computable("What is 15% of 80?\nA. 10\nB. 12\nC. 15\nD. 8")
    assert not computable("How many continents are there?\nA. 5\nB. 6\nC. 7\nD. 8")


@pytest.mark.parametrize("reply, letter", [
    ("The capital of Canada is Ottawa.", "C"),
    ("**Ottawa**", "C"),
    ("Ottawa, which lies in Ontario.", "C"),
    ("The capital of Canada is Quebec City.", None),  # names no option
    ("Toronto or Ottawa", None),  # names two
])
def test_the_option_a_reply_names(reply, letter):
    assert named_option(reply, parse_options(CANADA)) == letter


def test_numbers_and_spelled_numbers_name_their_option():
    options = parse_options("How many sides does a hexagon have?\nA) 5\nB) 6\nC) 7\nD) 8")
    assert named_option("A hexagon has six sides.", options) == "B"
    assert named_option("It has 6 sides.", options) == "B"
    money = parse_options("A shirt costs $40 and is 25% off. What is the sale price?\nA) $10\nB) $30")
    assert named_option("The sale price is $30.", money) == "B"


def _engine(r2home):
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6, "agree_below": 0.6})
    return Engine(settings_from(cfg, r2home))


def _strategy(question: str) -> Strategy:
    return Strategy("scripted", FixedPlan(single_plan(question)), Fixed(1))


def test_the_local_tier_answers_the_stem_and_the_answer_is_its_option(r2home, scripts):
    scripts.by_model["big"] = lambda messages: Step("The capital of Canada is Ottawa.")
    result = _engine(r2home).ask(CANADA, strategy=_strategy(CANADA))
    [node] = result.nodes
    assert (node.status, node.tier, node.answer, node.confidence) == (Status.DONE, "big", "C) Ottawa", 1.0)
    asked = [m["content"] for call in scripts.calls["big"] for m in call if m["role"] == "user"]
    assert asked and all(a == "What is the capital of Canada?" for a in asked)  # the options stay out


def test_a_split_over_options_escalates_with_the_options(r2home, scripts):
    replies = iter(["Ottawa.", "Toronto.", "Montreal.", "Ottawa.", "Vancouver.", "Toronto."])
    scripts.by_model["big"] = lambda messages: Step(next(replies))
    scripts.by_model["cloud"] = [Step("C")]
    result = _engine(r2home).ask(CANADA, strategy=_strategy(CANADA))
    [node] = result.nodes
    assert (node.status, node.tier, node.answer) == (Status.ESCALATED, "cloud", "C")
    assert "low agreement" in node.reason
    [cloud] = scripts.calls["cloud"]
    assert "C. Ottawa" in cloud[-1]["content"]  # the tier above sees the question whole


def test_a_stem_that_needs_its_options_goes_up_after_one_sample(r2home, scripts):
    scripts.by_model["big"] = lambda messages: Step("The crocodile is a reptile.")
    scripts.by_model["cloud"] = [Step("B")]
    result = _engine(r2home).ask(REPTILE, strategy=_strategy(REPTILE))
    [node] = result.nodes
    assert (node.status, node.tier, node.answer) == (Status.ESCALATED, "cloud", "B")
    assert "names none of the options" in node.reason
    assert len(scripts.calls["big"]) == 1


def test_offline_an_unmatched_answer_stands_unsure(r2home, scripts):
    scripts.by_model["big"] = lambda messages: Step("The crocodile is a reptile.")
    result = _engine(r2home).ask(REPTILE, strategy=_strategy(REPTILE), local_only=True)
    [node] = result.nodes
    assert (node.status, node.answer) == (Status.UNSURE, "The crocodile is a reptile.")
