"""The time-factor check: a program that skips a factor its question needs is not kept as done
(pure cases on the check; scripted engine for what the vote does with it)."""

from __future__ import annotations

import pytest

from r2local.engine.core import Engine
from r2local.engine.prompts import PROGRAM_SYSTEM
from r2local.engine.timefactors import missing_factor
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from r2local.vocab import Status
from tests.support.fake import Step
from tests.test_adaptive_sampling import Fixed
from tests.test_statuses import scripted_config, scripts  # noqa: F401  (scripts is a fixture)

from .conftest import settings_from

RUNNER = "A runner jogs 4 km every day for 3 weeks. How many kilometres does she jog in total?"
TRAIN = "A train travels at 80 km per hour. How many minutes does it take to travel 60 km?"
GYM = "A gym costs $30 per month plus a $45 joining fee. How much does the first year cost in dollars?"


@pytest.mark.parametrize("question, program, why", [
    (RUNNER, "total = 4 * 3", "days and weeks"),
    (TRAIN, "time_minutes = 60 / 80", "minutes and hours"),  # the question's "60 km" is no factor
    (GYM, "cost = 30 + 45", "months and years"),
    (RUNNER, "total = 4 * 3  # 7 days a week", "days and weeks"),  # a comment's 7 is no factor either
])
def test_a_skipped_factor_is_named(question, program, why):
    assert missing_factor(question, program) == f"the program never converts between {why}"


@pytest.mark.parametrize("question, program", [
    (RUNNER, "total = 4 * 3 * 7"),
    (TRAIN, "minutes = 60 / 80 * 60"),
    (GYM, "cost = 30 * 12 + 45"),
    (RUNNER, "from datetime import timedelta\ndays = timedelta(weeks=3).days\ntotal = 4 * days"),
    # The question ties its units itself: hours a day, days a week; shifts of hours, shifts a week.
    ("Ana earns $15 per hour and works 6 hours a day for 5 days. How much does she earn?", "answer = 15 * 6 * 5"),
    ("A nurse works 12-hour shifts, 3 shifts a week. How many hours does she work in 4 weeks?", "answer = 12 * 3 * 4"),
    ("A factory makes 120 toys an hour and runs 8 hours a day, 5 days a week. How many toys in a week?",
     "answer = 120 * 8 * 5"),
    ("A plane flies 600 km in 1 hour 30 minutes. What is its speed in km per hour?", "answer = 600 / 1.5"),
    ("A printer prints 20 pages per minute. How many pages does it print in a quarter of an hour?", "answer = 20 * 15"),
    # An ordinal "second" and a frame ("that day") name no unit to convert.
    ("A hiker climbs 450 m in the first hour and two thirds as much in the second hour. How far in all?",
     "answer = 450 + 2 / 3 * 450"),
    ("A worker earns $18 an hour for 8 hours. How much does she earn that day?", "answer = 18 * 8"),
    ("What is 120 divided by 8?", "answer = 120 / 8"),
])
def test_a_used_or_needless_factor_passes(question, program):
    assert missing_factor(question, program) is None


def test_a_shared_misreading_escalates_after_one_sample(r2home, scripts):
    # Every program and brief answer would say 12; the vote alone would keep it, done, at full agreement.
    def big(messages):
        return Step("```python\nanswer = 4 * 3\n```" if messages[0]["content"] == PROGRAM_SYSTEM else "12")

    scripts.by_model["big"] = big
    scripts.by_model["cloud"] = [Step("84")]
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6})
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(RUNNER, strategy=Strategy("scripted", FixedPlan(single_plan(RUNNER)), Fixed(1)))
    [node] = result.nodes
    assert (node.status, node.tier, node.answer) == (Status.ESCALATED, "cloud", "84")
    assert "never converts between days and weeks" in node.reason
    assert len(scripts.calls["big"]) == 1  # no vote is drawn for an answer that cannot be kept


def test_a_program_with_the_factor_is_kept(r2home, scripts):
    def big(messages):
        return Step("```python\nanswer = 4 * 7 * 3\n```" if messages[0]["content"] == PROGRAM_SYSTEM else "84")

    scripts.by_model["big"] = big
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6})
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(RUNNER, strategy=Strategy("scripted", FixedPlan(single_plan(RUNNER)), Fixed(1)))
    [node] = result.nodes
    assert (node.status, node.tier, node.confidence) == (Status.DONE, "big", 1.0)
    assert scripts.calls["cloud"] == []


def test_offline_the_answer_stands_unsure_and_says_why(r2home, scripts, capsys):
    from r2local.cli.ask import _print_result

    scripts.by_model["big"] = [Step("```python\nanswer = 4 * 3\n```")]
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6})
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(RUNNER, strategy=Strategy("scripted", FixedPlan(single_plan(RUNNER)), Fixed(1)),
                        local_only=True)
    [node] = result.nodes
    assert (node.status, node.answer) == (Status.UNSURE, "The answer is 12.")
    _print_result(result.to_json(), as_json=False)
    shown = capsys.readouterr().out
    assert "unsure because: the program never converts between days and weeks" in shown
    assert "no check" not in shown  # it was checked, and held back
