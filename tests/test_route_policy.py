"""The route policy, the agreement threshold, answers as values, and the bench's
analysis, on made-up numbers (no models)."""

from __future__ import annotations

import pytest

from r2local.bench.analysis import auroc, mcnemar
from r2local.bench.runner import ItemResult
from r2local.config import TierSection
from r2local.pool import Tier
from r2local.routing.policy import (
    PLAN,
    GradedAnswer,
    RoutePolicy,
    Vote,
    default_policy,
    escalation_curve,
    fit_agreement,
    fit_policy,
)
from r2local.engine.answers import CLOCK, NUMBER, POLAR, agreement, answer_kind, read_answer, same
from r2local.vocab import Route


def tiers() -> list[Tier]:
    def t(i, name, local, programs=False):
        cfg = TierSection(name=name, backend="llamacpp" if local else "openai", model=name)
        return Tier(i, name, cfg.backend, name, local, 0.0 if local else 0.15, 0.0 if local else 0.6, cfg, programs)
    return [t(0, "small", True), t(1, "local", True, programs=True), t(2, "cloud", False)]


def test_without_measurements_the_strongest_program_writer_answers_first():
    policy = default_policy(tiers())
    assert [(b.route, b.tier) for b in policy.bands] == [(Route.WHOLE_LOCAL, "local")]
    assert policy.band(0.0) is policy.band(1.0) is policy.band(None)


def outcomes(rows):  # (difficulty, {tier: correct})
    return [GradedAnswer(d, tier, ok) for d, got in rows for tier, ok in got.items()]


def test_a_tier_gets_a_band_only_where_it_beats_every_cheaper_one():
    easy = [(0.1 + i / 1000, {"small": True, "local": True, "cloud": True}) for i in range(10)]
    mid = [(0.5 + i / 1000, {"small": i < 2, "local": True, "cloud": True}) for i in range(10)]
    hard = [(0.9 + i / 1000, {"small": False, "local": i < 1, "cloud": i < 9}) for i in range(10)]
    policy = fit_policy(outcomes(easy + mid + hard), tiers(), bands=3, min_per_band=10)
    assert [(b.route, b.tier) for b in policy.bands] == [
        (Route.WHOLE_LOCAL, "small"), (Route.WHOLE_LOCAL, "local"), (Route.WHOLE_CLOUD, "cloud")]
    assert policy.band(0.1).tier == "small" and policy.band(0.505).tier == "local" and policy.band(0.95).tier == "cloud"
    assert policy.bands[1].accuracy == {"small": 0.2, "local": 1.0, "cloud": 1.0} and policy.bands[1].n == 10
    again = RoutePolicy.from_json(policy.to_json())
    assert again == policy


def test_on_arithmetic_the_small_model_gets_nothing_and_bands_merge():
    rows = [(i / 30, {"small": i % 5 == 0, "local": True, "cloud": True}) for i in range(30)]
    policy = fit_policy(outcomes(rows), tiers(), bands=3, min_per_band=10)
    assert [(b.route, b.tier) for b in policy.bands] == [(Route.WHOLE_LOCAL, "local")]
    assert policy.bands[0].upto == 1.0


def test_decomposition_only_where_it_was_measured_to_pay():
    rows = [(0.2 + i / 100, {"local": False, "cloud": True, PLAN: True}) for i in range(10)]
    rows += [(0.5 + i / 100, {"local": True, "cloud": True, PLAN: True}) for i in range(10)]
    policy = fit_policy(outcomes(rows), tiers(), bands=2, min_per_band=10)
    assert [b.route for b in policy.bands] == [Route.DECOMPOSE, Route.WHOLE_LOCAL]


def test_agreement_threshold_is_the_best_accuracy_within_the_share():
    votes = [Vote(1.0, True, True)] * 6 + [Vote(0.5, False, True)] * 3 + [Vote(0.5, True, False)] + [Vote(0.0, False, True)]
    curve = escalation_curve(votes)
    assert curve[0]["cloud_share"] == 0 and curve[-1]["cloud_share"] == 1
    assert fit_agreement(votes) == pytest.approx(1.0)  # escalate everything below full agreement: 10/11 right
    assert fit_agreement(votes, cloud_share=0.1) == pytest.approx(0.5)  # only the 0.0 may go
    assert fit_agreement([]) is None


@pytest.mark.parametrize("question, kind", [
    ("What is 9 times 7?", NUMBER), ("A film starts at 13:40 and lasts 95 minutes. At what time does it end?", CLOCK),
    ("Is the sun a star? Answer yes or no.", POLAR), ("Is a whale a fish?", POLAR),
])
def test_answer_kind(question, kind):
    assert answer_kind(question) == kind


def test_answers_compare_as_values():
    n = lambda t: read_answer(t, NUMBER)  # noqa: E731
    assert same(n("The answer is 1,250."), n("1250"))
    assert same(n("It needs 1500 g of flour."), n("1.5 kg"))
    assert not same(n("63"), n("6"))
    c = lambda t: read_answer(t, CLOCK)  # noqa: E731
    assert same(c("It ends at 2:15 pm."), c("14:15")) and same(c("ends at 2:15"), c("14:15"))
    assert not same(c("2:15 am"), c("14:15"))
    p = lambda t: read_answer(t, POLAR)  # noqa: E731
    assert same(p("Yes, because ..."), p("true")) and not same(p("No."), p("yes"))
    a = agreement([n("63"), n("The answer is 63."), n("62")])
    assert a.with_answer == pytest.approx(2 / 3) and a.majority == pytest.approx(2 / 3) and a.read == 3
    b = agreement([n("62"), n("63"), n("63")])
    assert b.with_answer == pytest.approx(1 / 3) and b.majority == pytest.approx(2 / 3)


def test_mcnemar_and_auroc():
    def o(item, ok):
        return ItemResult("s", item, None, "", ok, "done", 0, 0, 0, 1, 0, 0)
    a = [o(str(i), True) for i in range(10)]
    b = [o(str(i), i >= 9) for i in range(10)]  # 9 discordant, all for a
    m = mcnemar(a, b)
    assert (m["only_a"], m["only_b"], m["n"]) == (9, 0, 10) and m["p"] == pytest.approx(2 / 2 ** 9)
    assert mcnemar(a, a)["p"] == 1.0
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5 and auroc([1.0], [True]) is None


def test_each_band_gets_the_threshold_that_buys_the_most_right_answers():
    """Escalations go where the cloud fixes local mistakes, not where it is no better."""
    def v(d, conf, local, cloud):
        return Vote(conf, local, cloud, d)
    easy = [v(0.1 + i / 1000, 0.33, False, True) for i in range(8)] + [v(0.1 + i / 1000, 1.0, True, True) for i in range(12)]
    hard = [v(0.8 + i / 1000, 0.33, False, False) for i in range(8)] + [v(0.8 + i / 1000, 1.0, True, True) for i in range(12)]
    rows = [(x.difficulty, {"local": x.local_correct, "cloud": x.cloud_correct}) for x in easy + hard]
    policy = fit_policy(outcomes(rows), tiers(), bands=2, min_per_band=10, votes=easy + hard, cloud_share=0.3)
    low, high = policy.bands
    assert low.agree_below is not None and low.agree_below > 0.33  # the cloud fixes these: escalate
    assert high.agree_below == 0.0  # the cloud is no better here: never escalate
    assert policy.threshold(low) == low.agree_below
    tight = fit_policy(outcomes(rows), tiers(), bands=2, min_per_band=10, votes=easy + hard, cloud_share=0.1)
    assert all(b.agree_below == 0.0 for b in tight.bands)  # 8 escalations would exceed the 10 % share
    assert RoutePolicy.from_json(policy.to_json()) == policy


def test_an_answer_kind_with_enough_measurements_gets_its_own_bands():
    # Sums: the local tier is right; capital cities: it is right one time in ten, the cloud nearly always.
    sums = [GradedAnswer(i / 40, t, ok, NUMBER) for i in range(20)
            for t, ok in (("small", False), ("local", True), ("cloud", True))]
    facts = [GradedAnswer(i / 40, t, ok, "short") for i in range(20)
             for t, ok in (("small", False), ("local", i % 10 == 0), ("cloud", i != 7))]
    few = [GradedAnswer(0.3, t, ok, POLAR) for t, ok in (("small", False), ("local", False), ("cloud", True))]
    policy = fit_policy(sums + facts + few, tiers(), bands=2, min_per_band=10)
    assert set(policy.kinds) == {NUMBER, "short"}  # yes/no has one measured question: it uses the general bands
    assert [(b.route, b.tier) for b in policy.kinds["short"]] == [(Route.WHOLE_CLOUD, "cloud")]
    assert [(b.route, b.tier) for b in policy.kinds[NUMBER]] == [(Route.WHOLE_LOCAL, "local")]
    assert policy.for_question("What is the capital of Peru?", 0.1) == (policy.kinds["short"][0], "short")
    assert policy.for_question("What is 7 times 8?", 0.9) == (policy.kinds[NUMBER][0], NUMBER)
    assert policy.for_question("Is 91 a prime number?", 0.1) == (policy.band(0.1), None)
    assert RoutePolicy.from_json(policy.to_json()) == policy
    # A policy saved before answer kinds existed still loads, with none.
    old = policy.to_json()
    del old["kinds"]
    assert RoutePolicy.from_json(old).kinds == {}


def test_the_bench_reports_agreement_auroc_per_answer_kind():
    from r2local.bench.analysis import signals
    from r2local.bench.runner import BenchRun
    from r2local.tasks.datasets import Item

    def local(i, conf, ok):
        return ItemResult("all-local", f"q{i}", None, "", ok, "done", 0.0, 0.0, 0, 1, 0, 1.0, confidence=conf,
                          mean_prob=0.9)

    items = [Item(f"q{i}", q, "", "number") for i, q in enumerate(
        ["What is 6 times 7?", "What is 9 plus 5?", "What is the capital of Peru?", "What is the capital of Chad?"])]
    # Sums: agreement separates (the wrong one agreed less); capitals: it does not (the wrong one agreed fully).
    run = BenchRun(items, ["all-local"], [local(0, 1.0, True), local(1, 0.33, False),
                                          local(2, 0.67, True), local(3, 1.0, False)])
    found = signals(run)
    assert found["n"] == 4 and found["wrong"] == 2
    assert found["kinds"][NUMBER]["agreement_auroc"] == 1.0 and found["kinds"]["short"]["agreement_auroc"] == 0.0


def test_the_bar_an_answer_is_shown_against_is_the_one_it_was_held_to():
    from tui.widgets.plan_tree import below_bar

    kept = {"status": "done", "confidence": 0.5, "is_local": True, "features": {"agree_below": 0.5}}
    assert not below_bar(kept, 0.6)  # a number kept at its own bar (0.5) is not flagged against the policy's 0.6
    assert below_bar({**kept, "features": {}}, 0.6)  # one recorded before the bar was kept: the policy's bar
