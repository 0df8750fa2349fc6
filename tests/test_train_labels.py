"""Router training's labels and its held-out comparison, on made-up outcomes (no models)."""

from __future__ import annotations

import pytest

from r2local.routing.outcomes import Row, TierResult
from r2local.train.evaluate import at_share, compare, cost_at, curve, sign_test
from r2local.train.labels import complete, examples, label_tiers, rewards, split

from .test_route_policy import tiers

MAP = {"easy": "small", "medium": "local", "hard": "cloud"}


def row(q, small=None, local=None, cloud=None, cost=0.01, conf=None, probs=None):
    t = {}
    if small is not None:
        t["small"] = TierResult(small, 0.0)
    if local is not None:
        t["local"] = TierResult(local, 0.0, conf)
    if cloud is not None:
        t["cloud"] = TierResult(cloud, cost)
    return Row(q, None, probs, t)


def test_labels_stand_for_tiers():
    assert label_tiers(tiers()) == MAP  # easy: cheapest local, medium: the program writer, hard: the cloud


def test_missing_outcomes_are_filled_the_careful_way():
    assert complete(row("q", local=True), MAP) == {"easy": False, "medium": True, "hard": True}
    assert complete(row("q", small=True, cloud=False), MAP) is None  # nothing about the first tier: unusable


def test_rewards_weigh_the_cloud_by_its_cost():
    r = rewards(row("q", small=False, local=True, cloud=True, cost=0.02), MAP, lam=0.5, mean_cost=0.01)
    assert r == pytest.approx({"easy": 0.0, "medium": 0.98, "hard": 1.0 - 0.5 * 2})
    ex = examples([row("What is 2+2?", small=True, local=True, cloud=True)], MAP, 0.5)
    assert ex[0].messages[-1]["content"].endswith("Step: What is 2+2?") and ex[0].features["numbers"] == 2


def test_split_is_stable_by_question():
    rows = [row(f"q{i}", local=True) for i in range(200)]
    a, b = split(rows, 0.25)
    again_a, again_b = split(list(reversed(rows)), 0.25)
    assert {r.question for r in a} == {r.question for r in again_a} and 20 < len(b) < 80


def test_curve_cost_at_equal_accuracy_and_sign_test():
    rows = [row(f"easy{i}", small=False, local=True, cloud=True) for i in range(6)]
    rows += [row(f"hard{i}", small=False, local=False, cloud=True) for i in range(4)]
    good = [{"easy": 0.1, "medium": 0.8, "hard": 0.1}] * 6 + [{"easy": 0.1, "medium": 0.1, "hard": 0.8}] * 4
    blind = [{"easy": 0.1, "medium": 0.5, "hard": 0.4}] * 10
    g = curve(rows, good, MAP)
    assert g[0].accuracy == 0.6 and g[0].cloud_cost_usd == 0  # nothing to the cloud
    assert cost_at(g, 1.0) == pytest.approx(0.04)  # the 4 hard ones are enough
    assert cost_at(curve(rows, blind, MAP), 1.0) == pytest.approx(0.10)  # blind: all 10 must go
    assert at_share(g, 0.4).accuracy == 1.0
    ex = examples(rows, MAP, 0.5)
    report = compare(rows, ex, {"untrained": blind, "lora": good}, MAP, share=0.4)
    assert report["allocators"]["lora"]["cost_at_equal_accuracy_usd"] <= report["reference_cost_usd"]
    assert report["allocators"]["lora"]["greedy_reward"] > report["allocators"]["untrained"]["greedy_reward"]
    assert sign_test([1] * 8, [0] * 8)["p"] == pytest.approx(2 / 256) and sign_test([1], [1])["p"] == 1.0


def test_the_bar_is_never_below_all_cloud():
    """An untrained router that sends questions to a tier that gets nothing right sets a bar every
    allocator clears with no cloud at all; the bar is then all-cloud's accuracy."""
    rows = [row(f"easy{i}", small=False, local=True, cloud=True) for i in range(6)]
    rows += [row(f"hard{i}", small=False, local=False, cloud=True) for i in range(4)]
    to_small = [{"easy": 0.8, "medium": 0.1, "hard": 0.1}] * 10
    good = [{"easy": 0.1, "medium": 0.8, "hard": 0.1}] * 6 + [{"easy": 0.1, "medium": 0.1, "hard": 0.8}] * 4
    report = compare(rows, examples(rows, MAP, 0.5), {"untrained": to_small, "lora": good}, MAP, share=0.3)
    assert report["reference_at_share"] == 0.0 and report["all_cloud_accuracy"] == 1.0
    assert report["accuracy"] == 1.0 and report["reference_cost_usd"] == pytest.approx(0.10)
    lora = report["allocators"]["lora"]
    assert lora["cost_at_equal_accuracy_usd"] == pytest.approx(0.04) and lora["cost_change"] == pytest.approx(-0.6)


def test_agreement_after_the_route_is_r2local():
    rows = [row(f"q{i}", small=False, local=i < 5, cloud=True, conf=1.0 if i < 5 else 0.33) for i in range(10)]
    flat = [{"easy": 0.0, "medium": 1.0, "hard": 0.0}] * 10  # never sends anything to the cloud by itself
    alone = curve(rows, flat, MAP)
    with_vote = curve(rows, flat, MAP, tau=0.6)
    assert alone[0].accuracy == 0.5 and with_vote[0].accuracy == 1.0 and with_vote[0].cloud_share == 0.5


def test_adoption_needs_a_higher_reward_a_significant_test_and_no_higher_cost():
    from r2local.train.run import is_better, not_behind

    def a(reward, p, cost):
        return {"greedy_reward": reward, "vs_reference": {"p": p}, "cost_at_equal_accuracy_usd": cost}

    ref = a(0.3, 1.0, 0.0077)
    assert is_better(a(0.7, 1e-5, 0.0), ref)  # no cloud at all at equal accuracy is the best case, not a miss
    assert is_better(a(0.7, 1e-5, 0.0077), ref)
    assert not is_better(a(0.7, 1e-5, 0.0078), ref)  # dearer
    assert not is_better(a(0.7, 1e-5, None), ref)  # never reaches the reference's accuracy
    assert not is_better(a(0.7, 0.2, 0.0), ref)  # not significant
    assert not is_better(a(0.3, 1e-5, 0.0), ref)  # not a higher reward
    assert is_better(a(0.7, 1e-5, 0.001), a(0.3, 1.0, None))
    head = a(0.69, 1e-19, 0.0025)
    assert not_behind(a(0.70, 1e-5, 0.0020), head)
    assert not not_behind(a(0.70, 1e-5, 0.0062), head)  # better than untrained, dearer than the head
    assert not not_behind(a(0.60, 1e-5, 0.0), head)
