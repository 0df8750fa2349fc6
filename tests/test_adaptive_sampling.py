"""Votes on every comparable answer kind, and a split vote that draws more samples
(scripted backend: exact sample counts, no model runs)."""

from __future__ import annotations

import pytest


from r2local.engine.prompts import BRIEF_SYSTEM, PROGRAM_SYSTEM, SINGLE_SYSTEM

BRIEF = BRIEF_SYSTEM.format(what="the number, with its unit if it has one")

from r2local.engine.core import Engine
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from r2local.store.records import Decision
from r2local.vocab import Status
from tests.support.fake import Step
from tests.test_statuses import calls, scripted_config, scripts  # noqa: F401  (scripts is a fixture)

from .conftest import settings_from

AUSTRALIA = "What is the capital of Australia?"
SUM = "What is 6 times 7?"


class Fixed:
    """Allocator: one tier for every node; ``climb`` says whether a weak answer may move up."""

    def __init__(self, tier: int, climb: bool = True) -> None:
        self.tier, self.climb = tier, climb

    def allocate(self, job, nodes):
        return {n.id: Decision(self.tier, escalate=self.climb) for n in nodes}


def ask(r2home, question: str, tier: int, *, climb: bool = True, local_only: bool = False, **executor):
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6, "agree_below": 0.6, **executor})
    engine = Engine(settings_from(cfg, r2home))
    strategy = Strategy("scripted", FixedPlan(single_plan(question)), Fixed(tier, climb))
    result = engine.ask(question, strategy=strategy, local_only=local_only)
    return engine, result


def local_calls(engine, result, tier: str) -> list[dict]:
    return [c for c in calls(engine, result.question_id) if c["tier"] == tier]


def test_unanimous_stops_at_two(r2home, scripts):
    scripts.by_model["big"] = [Step("The answer is 42."), Step("6 x 7 = 42")]
    engine, result = ask(r2home, SUM, 1)
    [node] = result.nodes
    assert (node.status, node.confidence, node.answer_kind) == (Status.DONE, 1.0, "number")
    assert len(local_calls(engine, result, "big")) == 2


def test_a_split_vote_grows_until_the_decision_is_settled(r2home, scripts):
    # 42, 41, 42 would be kept at k=3 (2/3); it draws more: 4/5 agree, and a sixth could not change it.
    scripts.by_model["big"] = [Step("42"), Step("41"), Step("42"), Step("42"), Step("42")]
    engine, result = ask(r2home, SUM, 1)
    [node] = result.nodes
    assert (node.status, node.answer, node.confidence) == (Status.DONE, "42", 0.8)
    assert [c["sample"] for c in local_calls(engine, result, "big")] == [0, 1, 2, 3, 4]


def test_australia_split_escalates_to_the_cloud_and_stops_once_settled(r2home, scripts):
    # Sydney leads 2-1 after three samples; two more Canberras settle it: 2/6 can no longer reach 0.6.
    said = ["The capital of Australia is Sydney.", "Canberra.", "Sydney", "It is Canberra.", "Canberra"]
    scripts.by_model["big"] = [Step(t) for t in said]
    scripts.by_model["cloud"] = [Step("Canberra.")]
    engine, result = ask(r2home, AUSTRALIA, 1)
    [node] = result.nodes
    assert (node.status, node.tier, node.escalated_from, node.answer) == (Status.ESCALATED, "cloud", "big", "Canberra.")
    assert "low agreement (2/5 samples agree, below 0.60)" in node.reason
    assert len(local_calls(engine, result, "big")) == 5
    assert node.answer_kind == "short" and result.to_json()["answer_kind"] == "short"
    row = engine.ledger.question(result.question_id)["subtasks"][0]
    assert row["answer_kind"] == "short" and row["programs"] == 0


def test_australia_split_local_only_is_unsure_not_done(r2home, scripts):
    said = ["The capital of Australia is Sydney.", "Canberra.", "Sydney", "It is Canberra.", "Canberra"]
    scripts.by_model["big"] = [Step(t) for t in said]
    engine, result = ask(r2home, AUSTRALIA, 1, local_only=True)
    [node] = result.nodes
    assert (node.status, node.tier, node.answer) == (Status.UNSURE, "big", "The capital of Australia is Sydney.")
    assert scripts.calls["cloud"] == [] and len(local_calls(engine, result, "big")) == 5
    shown = result.to_json()  # `ask --json`: finished, but the answer stands unsure
    assert (shown["status"], shown["answer_status"], shown["confidence"]) == ("done", "unsure", 0.4)


def test_short_answers_in_different_words_agree(r2home, scripts):
    scripts.by_model["big"] = [Step("The capital of Australia is Canberra."), Step("**Canberra**")]
    engine, result = ask(r2home, AUSTRALIA, 1)
    [node] = result.nodes
    assert (node.status, node.confidence) == (Status.DONE, 1.0)
    assert len(local_calls(engine, result, "big")) == 2
    # A short-answer question asks for the answer first.
    assert "Start with the short answer" in scripts.calls["big"][0][0]["content"]


def test_open_text_has_one_answer_and_no_vote(r2home, scripts):
    scripts.by_model["big"] = [Step("Rain on the roof, soft.")]
    engine, result = ask(r2home, "Write a haiku about rain.", 1)
    [node] = result.nodes
    assert (node.status, node.confidence, node.answer_kind) == (Status.DONE, None, "text")
    assert len(local_calls(engine, result, "big")) == 1


def test_a_node_that_cannot_climb_keeps_k_samples_and_does_not_grow(r2home, scripts):
    scripts.by_model["big"] = [Step("42"), Step("42"), Step("41")]
    engine, result = ask(r2home, SUM, 1, climb=False)
    [node] = result.nodes
    assert len(local_calls(engine, result, "big")) == 3 and node.status == Status.DONE


def test_max_samples_equal_to_samples_means_no_extra_samples(r2home, scripts):
    scripts.by_model["big"] = [Step("42"), Step("41"), Step("42")]
    engine, result = ask(r2home, SUM, 1, max_samples=3)
    [node] = result.nodes
    assert len(local_calls(engine, result, "big")) == 3 and node.status == Status.DONE


def test_sample_orders_plan_each_way_once_greedy_and_fall_back_to_prose_without_programs():
    from r2local.config import ExecutorSection
    from r2local.engine.answering import BRIEF, ORDERS, PROGRAM, PROSE, plan_samples

    assert plan_samples("number", True, 6, "mixed") == [
        (PROGRAM, True), (PROSE, True), (PROGRAM, False), (PROSE, False), (PROGRAM, False), (PROSE, False)]
    assert plan_samples("number", True, 4, "program-brief") == [
        (PROGRAM, True), (BRIEF, True), (PROGRAM, False), (BRIEF, False)]
    assert plan_samples("number", True, 5, "program-brief-programs") == [
        (PROGRAM, True), (BRIEF, True), (PROGRAM, False), (PROGRAM, False), (PROGRAM, False)]
    # A tier that writes no programs (or a kind a program cannot answer) answers in prose instead.
    assert plan_samples("number", False, 3, "programs") == [(PROSE, True), (PROSE, False), (PROSE, False)]
    assert plan_samples("short", True, 3, "prose-brief") == [(PROSE, True), (BRIEF, False), (BRIEF, False)]
    assert plan_samples("text", True, 6, "brief") == [(PROSE, True)]
    # Every order config accepts is an order the answerer knows, and no other.
    names = set(ExecutorSection.model_fields["sample_order"].annotation.__args__)
    assert names == set(ORDERS) | {"auto"}


def test_a_failed_program_hands_over_to_prose_and_brief_answers_vote(r2home, scripts):
    # Program-brief order on a tier that writes programs: the greedy program is not a program,
    # so the greedy prose answer takes its place (and answers); brief answers and programs vote.
    programs = []

    def big(messages):
        system = messages[0]["content"]
        if system == PROGRAM_SYSTEM:
            programs.append(1)
            return Step("I cannot write that." if len(programs) == 1 else "```python\nanswer = 6 * 7\n```")
        return Step("42" if system.startswith("Reply with the final answer only") else "6 x 7 = 42, so the answer is 42.")

    scripts.by_model["big"] = big
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6, "agree_below": 0.6, "sample_order": "program-brief"})
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(SUM, strategy=Strategy("scripted", FixedPlan(single_plan(SUM)), Fixed(1)))
    [node] = result.nodes
    assert (node.status, node.answer, node.working) == (Status.DONE, "6 x 7 = 42, so the answer is 42.", None)
    systems = [m[0]["content"] for m in scripts.calls["big"]]
    assert systems == [PROGRAM_SYSTEM, SINGLE_SYSTEM, BRIEF, PROGRAM_SYSTEM, BRIEF]
    # The failed program splits the first three; 4 of 5 agree once a sixth could not change "keep".
    assert node.confidence == 0.8


def _programs_and_briefs(scripts, program_says: list[str], brief_says: str) -> None:
    said = iter(program_says)

    def big(messages):
        if messages[0]["content"] == PROGRAM_SYSTEM:
            return Step(f"```python\nanswer = {next(said)}\n```")
        return Step(brief_says)

    scripts.by_model["big"] = big


@pytest.mark.parametrize("programs, agree_below, status, calls, confidence", [
    (["6 * 7"] * 6, None, Status.DONE, 5, 0.8),  # 4 of 5 at the default bar (0.6)
    (["6 * 7"] * 6, 0.5, Status.DONE, 4, 0.75),  # a user's looser bar: one program fewer, 3 of 4
    (["6 * 7", "40", "39", "38", "37", "36"], None, Status.ESCALATED, 4, None),  # the programs disagree
])
def test_numbers_vote_with_a_brief_answer_then_programs(r2home, scripts, programs, agree_below, status, calls,
                                                        confidence):
    # The order before one-line programs: the greedy program and one brief answer; when they split, only
    # programs are drawn (a brief answer to a multi-step problem is rarely right, so more of them would only
    # outvote a right program). Every brief answer here says 41.
    _programs_and_briefs(scripts, programs, "41")
    scripts.by_model["cloud"] = [Step("42")]
    executor = {"samples": 3, "max_samples": 6, "sample_order": "program-brief-programs"}
    executor |= {} if agree_below is None else {"agree_below": agree_below}
    cfg = scripted_config(executor=executor)
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(SUM, strategy=Strategy("scripted", FixedPlan(single_plan(SUM)), Fixed(1)))
    [node] = result.nodes
    assert node.status == status
    systems = [m[0]["content"] for m in scripts.calls["big"]]
    assert systems == [PROGRAM_SYSTEM, BRIEF] + [PROGRAM_SYSTEM] * (calls - 2)
    if status == Status.DONE:
        assert (node.answer, node.confidence, node.working) == ("The answer is 42.", confidence, "answer = 6 * 7")
    else:
        assert node.answer == "42" and "low agreement" in node.reason


def test_one_line_programs_vote_with_the_greedy_programs_prompt_and_one_more_line(r2home, scripts):
    """The "program-lines" order: the greedy program answers; sampled programs asked for one line vote. Their
    prompt is the program prompt with ONE_LINE after the question (the greedy program's prefix, reused)."""
    from r2local.engine.prompts import ONE_LINE

    def big(messages):
        one_line = messages[-1]["content"].endswith(ONE_LINE)
        return Step("```python\nanswer = 42\n```" if one_line else "```python\nx = 6\nanswer = x * 7\n```")

    scripts.by_model["big"] = big
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6, "sample_order": "program-lines"})
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(SUM, strategy=Strategy("scripted", FixedPlan(single_plan(SUM)), Fixed(1)))
    [node] = result.nodes
    assert (node.status, node.answer, node.working) == (Status.DONE, "The answer is 42.", "x = 6\nanswer = x * 7")
    sent = scripts.calls["big"]
    # The first line agrees: 2 of 3 would keep the answer whatever the third says, so it is not drawn.
    assert [m[0]["content"] for m in sent] == [PROGRAM_SYSTEM] * 2 and node.confidence == 1.0
    greedy, *lines = sent
    assert not greedy[-1]["content"].endswith(ONE_LINE)
    for line in lines:
        assert line[:-1] == greedy[:-1] and line[-1]["content"] == greedy[-1]["content"] + ONE_LINE


def test_under_the_auto_order_one_line_programs_that_compute_another_value_send_the_answer_up(r2home, scripts):
    from r2local.engine.prompts import ONE_LINE

    said = iter(["6 * 7", "40", "6 * 7", "39", "38", "37"])
    scripts.by_model["big"] = lambda messages: Step(f"```python\nanswer = {next(said)}\n```")
    scripts.by_model["cloud"] = [Step("42")]
    cfg = scripted_config(executor={"samples": 3, "max_samples": 6})  # sample_order auto: a number's is program-lines
    cfg["tiers"][1]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    result = engine.ask(SUM, strategy=Strategy("scripted", FixedPlan(single_plan(SUM)), Fixed(1)))
    [node] = result.nodes
    # greedy 42, lines 40 and 42 split the first three; more lines are drawn until keeping is out of reach
    # (at the order's bar 0.6: 2 agreeing of a possible 6 with one sample left).
    sent = scripts.calls["big"]
    assert node.status == Status.ESCALATED and len(sent) == 5
    assert [m[-1]["content"].endswith(ONE_LINE) for m in sent] == [False] + [True] * 4
