"""The route policy that ships with r2local: which pools it routes, what replaces it,
and what a measured cloud band does when the cloud cannot be used (no models)."""

from __future__ import annotations

import json
import threading

from r2local.config import TierSection
from r2local.pool import Tier
from r2local.routing.policy import NEVER_DONE, Band, GradedAnswer, RoutePolicy, default_policy, fit_policy
from r2local.routing.shipped import SHIPPED_DIR, active_policy, load, shipped_policy
from r2local.routing.strategies import Job, _choose
from r2local.vocab import Route

SMOL, QWEN = "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"


def pool(local_model: str = QWEN, *, adapter: str | None = None, known_as: str | None = None) -> list[Tier]:
    def t(i, name, model, local, **cfg_extra):
        cfg = TierSection(name=name, backend="llamacpp" if local else "openai", model=model, **cfg_extra)
        return Tier(i, name, cfg.backend, model, local, 0.0 if local else 0.15, 0.0 if local else 0.6, cfg,
                    local and "coder" in model, known_as if name == "local" else None)
    extra = {"adapter": adapter} if adapter else {}
    return [t(0, "local-small", SMOL, True), t(1, "local", local_model, True, **extra),
            t(2, "cloud", "gpt-4o-mini", False)]


def test_the_shipped_file_routes_the_demo_pools_local_models_and_names_itself():
    files = sorted(SHIPPED_DIR.glob("*.json"))
    assert files, "r2local ships at least one route policy"
    policy, data = load(files[0])
    assert data["measured_with"]["local"] == QWEN and data["questions"]
    assert policy.kinds, "a shipped policy has bands for the answer kinds it measured"
    found = shipped_policy(pool())
    assert found == policy and found.source.startswith("shipped with r2local")
    # Kinds it did not measure keep the unmeasured default: one band on the strongest local tier.
    assert [(b.route, b.tier, b.accuracy) for b in found.bands] == [(Route.WHOLE_LOCAL, "local", {})]


def test_another_local_model_or_an_adapter_gets_no_shipped_policy():
    assert shipped_policy(pool(local_model="/models/mistral-7b.gguf")) is None
    assert shipped_policy(pool(adapter="/loras/mine.gguf")) is None
    # A model given by path that r2local recognised as the measured one counts as that model.
    assert shipped_policy(pool(local_model="/x/q.gguf", known_as=f"{QWEN} (sha256)")) is not None


def test_a_damaged_shipped_file_routes_nothing(tmp_path):
    (tmp_path / "demo.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"policy": {"bands": []}}))
    assert shipped_policy(pool(), tmp_path) is None
    assert active_policy(None, pool()).source  # the engine's path still routes: shipped or default


def test_the_users_calibration_replaces_the_shipped_policy_and_one_for_another_pool_does_not():
    mine = RoutePolicy([Band(1.0, Route.WHOLE_CLOUD, "cloud")], 0.5, "calibrated on 40 graded questions")
    assert active_policy({"policy": mine.to_json()}, pool()) == mine
    other = RoutePolicy([Band(1.0, Route.WHOLE_LOCAL, "big-local")], None, "calibrated elsewhere")
    assert active_policy({"policy": other.to_json()}, pool()).source.startswith("shipped with r2local")
    assert active_policy(None, pool(local_model="/m/other.gguf")).source == "default"


def job(tiers: list[Tier], allowed: list[Tier], policy: RoutePolicy, question: str) -> Job:
    return Job("q1", question, threading.Event(), lambda e: None, tiers, allowed, None, [], policy)


def test_a_measured_cloud_band_without_a_cloud_answers_locally_and_never_calls_it_done():
    tiers = pool()
    facts = [GradedAnswer(i / 40, t, ok, "short") for i in range(20)
             for t, ok in (("local-small", False), ("local", i % 10 == 0), ("cloud", True))]
    fitted = fit_policy(facts, tiers, bands=1, min_per_band=10)
    policy = RoutePolicy(default_policy(tiers).bands, None, "shipped", fitted.kinds)  # as ship_policy writes it
    assert policy.kinds["short"][0].route == Route.WHOLE_CLOUD
    online = _choose(job(tiers, tiers, policy, "What is the capital of Peru?"), policy, None)
    assert online.route == Route.WHOLE_CLOUD and tiers[online.tier].name == "cloud"
    offline = _choose(job(tiers, tiers[:2], policy, "What is the capital of Peru?"), policy, None)
    assert offline.route == Route.WHOLE_LOCAL and tiers[offline.tier].name == "local"
    assert offline.agree_below == NEVER_DONE and "stays unsure" in offline.reason and "10%" in offline.reason
    # The unmeasured default has no cloud band: nothing changes there.
    sums = _choose(job(tiers, tiers[:2], policy, "What is 7 times 8?"), policy, None)
    assert sums.route == Route.WHOLE_LOCAL and sums.agree_below is None


def test_a_weak_local_tier_far_below_the_cloud_gets_no_vote():
    """Multiple choice on the demo pool: the 0.5B right on a third, the cloud on nine in ten, agreement
    at chance. The band goes straight to the cloud; a local tier right more often than not keeps its vote."""
    def rows(local_right):
        return [GradedAnswer(0.3, t, ok, "choice") for i in range(30)
                for t, ok in (("local", i < local_right), ("cloud", i < 27))]
    weak = fit_policy(rows(10), pool(), bands=1, min_per_band=10)
    assert [(b.route, b.tier) for b in weak.bands] == [(Route.WHOLE_CLOUD, "cloud")]
    fair = fit_policy(rows(16), pool(), bands=1, min_per_band=10)
    assert [(b.route, b.tier) for b in fair.bands] == [(Route.WHOLE_LOCAL, "local")]


def test_escalating_every_vote_is_a_threshold_no_agreement_reaches():
    """Where even unanimous local answers were wrong more often than the cloud, the fitted bar
    is above 1: the vote can no longer keep an answer (a bar of 1.0 kept every unanimous one)."""
    from r2local.routing.policy import Vote, fit_agreement
    votes = [Vote(1.0, i % 3 != 0, True, 0.2, "short") for i in range(12)]
    assert fit_agreement(votes) == NEVER_DONE
    rows = [GradedAnswer(0.2, t, ok, "short") for i in range(12)
            for t, ok in (("local", i % 3 != 0), ("cloud", True))]
    policy = fit_policy(rows, pool(), bands=1, min_per_band=4, votes=votes)
    band = policy.band(0.2)
    assert band.route == Route.WHOLE_LOCAL and policy.threshold(band) == NEVER_DONE


def test_a_choice_a_program_settles_does_not_take_the_bands_measured_on_other_choices():
    # The shipped choice band (local right on a third of fact choices) sends choices to the cloud; a choice between
    # numbers the question computes is answered by a program and takes the general bands instead.
    general = [Band(1.0, Route.WHOLE_LOCAL, "local")]
    policy = RoutePolicy(general, None, "test", {"choice": [Band(1.0, Route.WHOLE_CLOUD, "cloud")]})
    fact = "What is the capital of Canada?\nA) Toronto\nB) Ottawa\nAnswer with the letter of the correct option."
    computed = "What is 15% of 80?\nA) 10\nB) 12\nC) 15\nD) 8\nAnswer with the letter of the correct option."
    assert policy.for_question(fact, 0.3) == (Band(1.0, Route.WHOLE_CLOUD, "cloud"), "choice")
    assert policy.for_question(computed, 0.3) == (general[0], None)
    outcomes = [GradedAnswer(0.3, "local", True, "computed")] * 20 + [GradedAnswer(0.3, "cloud", True, "computed")] * 20
    fitted = fit_policy(outcomes, pool(), bands=1, min_per_band=8)
    assert "computed" in fitted.kinds and fitted.for_question(computed, 0.3)[1] == "computed"


def test_a_held_back_answer_climbs_at_any_threshold():
    """An answer a check other than the vote held back (it named no option, it skipped a time factor) goes up
    whatever the bar: a fit that counted it as kept at a low bar would price that bar too well."""
    from r2local.routing.policy import Vote, escalation_curve
    votes = [Vote(0.0, False, True, held=True)] * 4 + [Vote(1.0, True, True)] * 6
    curve = escalation_curve(votes)
    assert curve[0] == {"agree_below": 0.0, "accuracy": 1.0, "cloud_share": 0.4}


def test_a_weak_local_tier_whose_vote_is_measured_keeps_what_its_vote_trusts():
    """Multiple choice answered open: the 0.5B right on under half, but what it states unanimously is right
    and the rest it holds back. With votes the band is the local tier's, with a bar; without, straight up."""
    from r2local.routing.policy import Vote
    votes = ([Vote(1.0, True, True, 0.3, "choice")] * 12 + [Vote(0.0, False, True, 0.3, "choice", held=True)] * 12
             + [Vote(0.33, False, True, 0.3, "choice")] * 6)
    rows = [GradedAnswer(0.3, t, ok, "choice") for v in votes for t, ok in (("local", v.local_correct), ("cloud", True))]
    voted = fit_policy(rows, pool(), bands=1, min_per_band=10, votes=votes, cloud_share=0.7)
    [band] = voted.kinds["choice"]
    assert (band.route, band.tier) == (Route.WHOLE_LOCAL, "local") and 0.33 < band.agree_below <= 1.0
    blind = fit_policy(rows, pool(), bands=1, min_per_band=10)
    assert [(b.route, b.tier) for b in blind.kinds["choice"]] == [(Route.WHOLE_CLOUD, "cloud")]


def test_a_band_that_never_climbs_on_agreement_says_so_in_words():
    from r2local.routing.strategies import _why
    band = Band(1.0, Route.WHOLE_LOCAL, "local", {"local": 0.52, "cloud": 0.84}, 25, 0.0)
    assert "kept at any agreement (only an answer another check holds back climbs)" in _why(band, 0.3, "shipped")
    assert "climbs below" not in _why(band, 0.3, "shipped")


def test_the_shipped_policy_holds_yes_no_facts_to_its_own_stricter_bars_and_leaves_checks_alone():
    """The 0.5B is near chance on yes/no facts (right on 50-70 % of three sets of 40; agreement AUROC 0.36-0.63),
    so the shipped yes/no bands keep its answer only where (nearly) every sample agrees; the rest climbs, or
    stands unsure offline. A yes/no a program settles is another kind and keeps the general band."""
    from r2local.config import ExecutorSection
    from r2local.engine.answering import threshold
    from r2local.engine.kinds import POLAR

    tiers, policy = pool(), shipped_policy(pool())
    default = threshold(POLAR, ExecutorSection(), None)  # the bar a yes/no is held to where nothing was measured
    fact = "Is an octopus a kind of fish?"
    bars = [policy.threshold(policy.for_question(fact, d)[0]) for d in (0.0, 0.5, 1.0)]
    assert policy.for_question(fact, 0.5)[1] == "yes/no" and all(b > default for b in bars) and max(bars) >= 1.0
    online = _choose(job(tiers, tiers, policy, fact), policy, None)
    assert online.route == Route.WHOLE_LOCAL and online.agree_below in bars and "yes/no" in online.reason
    check = "Is 91 a prime number?"
    assert policy.for_question(check, 0.5) == (policy.bands[0], None)
