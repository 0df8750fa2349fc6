"""Labels that need no gold answer: feedback from the shell and the app, and
shadow runs one tier up (agreement is the label), on the scripted backend."""

from __future__ import annotations

import subprocess
import sys

import pytest

from r2local.engine.core import Engine
from r2local.store.ledger import Ledger
from r2local.tables import spend_text
from tests.support.fake import SCRIPTS, Step

from .conftest import settings_from, to_toml, write_config
from .test_statuses import QUESTION, on, scripted_config


@pytest.fixture
def scripts():
    SCRIPTS.reset()
    yield SCRIPTS
    SCRIPTS.reset()


def test_shadow_one_local_tier_up_records_agreement(r2home, scripts):
    scripts.by_model["small"] = [Step("The answer is 42.")] * 2
    scripts.by_model["big"] = [Step("6 x 7 = 42")] + [Step("It is 41.")]
    engine = Engine(settings_from(scripted_config(learning={"shadow_local": 1.0}), r2home))
    first = engine.ask(QUESTION, strategy=on(0))
    outcome = engine.shadow(first)
    assert outcome is not None and (outcome.tier, outcome.upper, outcome.agreed) == ("small", "big", True)
    second = engine.ask(QUESTION, strategy=on(0))
    assert engine.shadow(second).agreed is False
    rows = engine.ledger.feedback()
    assert [(r["question_id"], r["source"], r["verdict"], r["tier"], r["note"]) for r in rows] == [
        (first.question_id, "shadow", "good", "small", "vs big"), (second.question_id, "shadow", "bad", "small", "vs big")]
    roles = [c["role"] for c in engine.ledger.question(first.question_id)["calls"]]
    assert roles == ["subtask", "shadow"]


def test_cloud_shadow_is_off_by_default_and_gated_when_on(r2home, scripts):
    scripts.by_model["big"] = [Step("42")] * 4
    scripts.by_model["cloud"] = [Step("42")] * 4
    engine = Engine(settings_from(scripted_config(), r2home))
    assert engine.shadow(engine.ask(QUESTION, strategy=on(1))) is None  # shadow_cloud = 0 by default
    engine.close()
    on_cloud = Engine(settings_from(scripted_config(learning={"shadow_cloud": 1.0}), r2home))
    assert on_cloud.shadow(on_cloud.ask(QUESTION, strategy=on(1)), local_only=True) is None  # never in local-only
    done = on_cloud.shadow(on_cloud.ask(QUESTION, strategy=on(1)))
    assert done is not None and done.upper == "cloud" and done.cost_usd > 0
    spend = on_cloud.ledger.spend()
    assert spend["shadow_month_calls"] == 1 and spend["shadow_month_usd"] == pytest.approx(done.cost_usd)
    spend["budget"] = None
    assert "of which shadow runs for learning" in spend_text(spend)
    on_cloud.close()
    capped = Engine(settings_from(scripted_config(learning={"shadow_cloud": 1.0}, budget={"daily_usd": 0.0}), r2home))
    assert capped.shadow(capped.ask(QUESTION, strategy=on(1))) is None  # the budget refuses: no call, no label
    assert scripts.calls["cloud"] and len(scripts.calls["cloud"]) == 1


def test_feedback_from_the_shell(r2home, scripts):
    scripts.by_model["small"] = [Step("42")]
    write_config(r2home, to_toml(scripted_config()))
    engine = Engine(settings_from(scripted_config(), r2home))
    result = engine.ask(QUESTION, strategy=on(0))
    engine.close()

    def r2(*args):
        return subprocess.run([sys.executable, "-m", "r2local", *args], capture_output=True, text=True)

    out = r2("feedback", "last", "needed-the-cloud", "--note", "it was 41")
    assert out.returncode == 0, out.stderr
    assert f"needed-the-cloud: the answer of question {result.question_id}" in out.stdout
    assert r2("feedback", result.question_id[-6:], "good", "--subtask", "1").returncode == 0
    rows = Ledger().feedback(result.question_id)
    assert [(r["verdict"], r["subtask_id"], r["tier"], r["source"], r["note"]) for r in rows] == [
        ("needed-the-cloud", None, "small", "user", "it was 41"), ("good", 1, "small", "user", None)]
    bad = r2("feedback", result.question_id, "good", "--subtask", "7")
    assert bad.returncode == 1 and "has no subtask 7" in bad.stderr and "fix:" in bad.stderr
    missing = r2("feedback", "nope", "bad")
    assert missing.returncode == 1 and "r2local logs" in missing.stderr
    wrong = r2("feedback", "last", "meh")
    assert wrong.returncode == 2 and "good" in wrong.stderr


def test_learning_reads_skip_follow_up_turns(r2home, scripts):
    """A follow-up was answered with earlier turns in its prompts: read alone it is another
    question, so it gives no label, grade or escalation pair (the first turn does)."""
    from r2local.engine import conversation
    from r2local.routing.plan import single_plan
    from r2local.routing.strategies import FixedPlan, Strategy
    from r2local.store import learning
    from r2local.store.records import Feedback

    from .test_statuses import Decided

    follow = "And how many would 7 boxes hold?"
    scripts.by_model["small"] = [Step(""), Step("")]  # empty: both turns climb to "big"
    scripts.by_model["big"] = [Step("The answer is 41."), Step("The answer is 84.")]
    engine = Engine(settings_from(scripted_config(), r2home))
    ctx = conversation.start(engine.ledger, engine.settings.pool)
    asked = []
    for text in (QUESTION, follow):
        strategy = Strategy("scripted:0", FixedPlan(single_plan(text)), Decided(0))
        result = engine.ask(text, strategy=strategy, context=conversation.load(engine.ledger, ctx.conversation_id))
        assert result.nodes[0].escalated_from == "small"
        engine.ledger.add_feedback(Feedback(result.question_id, "good"))
        asked.append(result.question_id)
    assert [t["turn"] for t in engine.ledger.turns(ctx.conversation_id)] == [1, 2]
    assert [g.question_id for g in learning.graded(engine.ledger)] == [asked[0]]
    assert [e.question_id for e in learning.escalated_from(engine.ledger, "small")] == [asked[0]]
    engine.close()
