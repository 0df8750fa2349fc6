"""Conversations on the scripted backend (fast, exact): what each turn's prompts
carry, the budget cut and the local summary, redaction and the budget on a cloud
turn, local-only across a conversation, and the ledger's links between turns."""

from __future__ import annotations

import pytest

from r2local.engine import conversation
from r2local.engine.conversation import Context, Turn, history_budget, tokens, with_history
from r2local.engine.core import Engine
from r2local.engine.kinds import NUMBER
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from tests.support.fake import Step

from .conftest import settings_from
from .test_statuses import Decided, engine_for, scripted_config, scripts  # noqa: F401  (scripts is a fixture)

FIRST = "A box holds 12 eggs. A baker uses 3 boxes and then 5 more eggs. How many eggs did the baker use?"
FOLLOW = "And how many would 7 boxes hold?"


def on(tier: int, question: str) -> Strategy:
    return Strategy(f"scripted:{tier}", FixedPlan(single_plan(question)), Decided(tier))


def test_the_second_turn_sees_the_first_and_the_ledger_links_them(r2home, scripts):
    scripts.by_model["small"] = [Step("The answer is 41."), Step("The answer is 84.")]
    engine = engine_for(r2home)
    ctx = conversation.start(engine.ledger, engine.settings.pool)
    first = engine.ask(FIRST, strategy=on(0, FIRST), context=ctx)
    second = engine.ask(FOLLOW, strategy=on(0, FOLLOW), context=conversation.load(engine.ledger, ctx.conversation_id))
    sent = scripts.calls["small"][1]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert (sent[1]["content"], sent[2]["content"], sent[3]["content"]) == (FIRST, "The answer is 41.", FOLLOW)
    assert engine.ledger.question(second.question_id)["subtasks"][0]["sent"] == sent  # the ledger holds the prompt
    turns = engine.ledger.turns(ctx.conversation_id)
    assert [(t["id"], t["turn"]) for t in turns] == [(first.question_id, 1), (second.question_id, 2)]
    assert second.to_json()["conversation_id"] == ctx.conversation_id
    [row] = engine.ledger.conversations()
    assert row["turns"] == 2 and row["title"] == FIRST
    engine.close()


def test_a_program_prompt_carries_the_history_too(r2home, scripts):
    from r2local.engine.prompts import ONE_LINE

    scripts.by_model["small"] = lambda messages: Step("```python\nanswer = 7 * 12\n```")
    cfg = scripted_config(executor={"samples": 2})
    cfg["tiers"][0]["programs"] = True
    engine = Engine(settings_from(cfg, r2home))
    ctx = Context([Turn(FIRST, "The answer is 41.")])
    engine.ask(FOLLOW, strategy=on(0, FOLLOW), context=ctx)
    prompts = scripts.calls["small"]
    assert any("writing a short Python program" in p[0]["content"] for p in prompts)
    assert all(FIRST in [m["content"] for m in p] for p in prompts)
    # The greedy program is asked the question; the vote's one-line programs the question and one more line.
    assert [p[-1]["content"] for p in prompts] == [FOLLOW, FOLLOW + ONE_LINE]
    engine.close()


def test_oldest_turns_are_dropped_first_to_fit_the_tier():
    turns = [Turn(f"question {i} " + "x" * 300, f"answer {i}") for i in range(10)]
    ctx = Context(turns)
    summary, kept = ctx.fitting(500)
    assert summary is None and kept == turns[-len(kept):] and 0 < len(kept) < 10
    assert sum(t.cost() for t in kept) <= 500 < sum(t.cost() for t in turns[-len(kept) - 1:])

    class Cfg:
        n_ctx, max_tokens = 2048, 96

    class Tier:
        config = Cfg()

    assert history_budget(Tier(), "q") == 2048 - 96 - 512 - tokens("q")
    msgs = with_history([{"role": "system", "content": "S"}, {"role": "user", "content": "now"}], ctx, Tier(), "now")
    assert msgs[0]["content"] == "S" and msgs[-1]["content"] == "now" and msgs[-2]["content"] == "answer 9"


def test_a_long_history_is_summarised_locally_and_recorded(r2home, scripts):
    scripts.by_model["small"] = lambda messages: (
        Step("SUMMARY: eggs 41, boxes of 12") if "Summarise" in messages[0]["content"] else Step("The answer is 84."))
    engine = engine_for(r2home)
    engine.pool.tiers[0].config.__dict__["n_ctx"] = 1200  # room for ~1 long turn of history on the small tier
    ctx = conversation.start(engine.ledger, engine.settings.pool)
    for i in range(4):
        qid = engine.ledger.start_question(f"turn {i} " + "y" * 600, local_only=False, pool="demo")
        engine.ledger.link_turn(qid, ctx.conversation_id)
        engine.ledger.update_question(qid, answer=f"answer {i}", status="done")
    result = engine.ask(FOLLOW, strategy=on(0, FOLLOW), context=conversation.load(engine.ledger, ctx.conversation_id))
    conv = engine.ledger.conversation(ctx.conversation_id)
    assert conv["summary"] == "SUMMARY: eggs 41, boxes of 12" and conv["summary_turns"] >= 2
    roles = [c["role"] for c in engine.ledger.question(result.question_id)["calls"]]
    assert roles[0] == "summary"
    answer_prompt = scripts.calls["small"][-1]
    assert "SUMMARY: eggs 41" in answer_prompt[0]["content"] and "turn 0" not in str(answer_prompt)
    again = conversation.load(engine.ledger, ctx.conversation_id)  # the next turn reuses the summary
    assert again.summary == conv["summary"] and len(again.turns) == 5 - conv["summary_turns"]
    engine.close()


def test_a_cloud_turn_sends_its_history_redacted_and_reserves_for_it(r2home, scripts):
    scripts.by_model["cloud"] = [Step("84"), Step("84")]
    engine = engine_for(r2home, budget={"daily_usd": 100.0})
    engine.ask(FOLLOW, strategy=on(2, FOLLOW))
    ctx = Context([Turn("Mail the result to ann@example.com. " + FIRST, "The answer is 41.")])
    engine.ask(FOLLOW, strategy=on(2, FOLLOW), context=ctx)
    plain, with_ctx = scripts.calls["cloud"]
    assert "ann@example.com" not in str(with_ctx) and "[EMAIL_1]" in with_ctx[1]["content"]
    rows = [r for r in engine.ledger.calls(10) if r["tier"] == "cloud"]
    newest, oldest = rows[0], rows[-1]
    assert newest["reserved_usd"] > oldest["reserved_usd"] and newest["redactions"] == 1
    engine.close()


def test_local_only_stays_local_only_across_the_conversation(r2home, scripts):
    scripts.by_model["small"] = [Step("The answer is 41."), Step("The answer is 84.")]
    engine = engine_for(r2home)
    ctx = conversation.start(engine.ledger, engine.settings.pool)
    engine.ask(FIRST, strategy=on(0, FIRST), context=ctx, local_only=True)
    again = conversation.load(engine.ledger, ctx.conversation_id)
    assert again.local_only
    result = engine.ask(FOLLOW, strategy=on(0, FOLLOW), context=again)  # not asked local-only, but it is
    assert scripts.calls["cloud"] == [] and result.offline and "local-only" in result.offline
    assert engine.ledger.question(result.question_id)["local_only"] == 1
    engine.close()


def test_chat_messages_become_a_turn_and_its_context():
    question, ctx = conversation.from_messages([
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": FIRST}, {"role": "assistant", "content": "41"},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW}]},
    ])
    assert question == FOLLOW and ctx.turns == [Turn(FIRST, "41")] and ctx.conversation_id is None
    assert "Previous question: " + FIRST in ctx.previous
    with pytest.raises(Exception, match="last message must be the user's"):
        conversation.from_messages([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])


def test_a_follow_up_or_a_local_only_turn_is_never_shadowed(r2home, scripts):
    scripts.by_model["big"] = [Step("The answer is 41."), Step("The answer is 84."), Step("The answer is 6.")]
    scripts.by_model["cloud"] = [Step("The answer is 6.")]
    engine = engine_for(r2home, learning={"shadow_local": 0.0, "shadow_cloud": 1.0})
    ctx = conversation.start(engine.ledger, engine.settings.pool)
    first = engine.ask(FIRST, strategy=on(1, FIRST), context=ctx, local_only=True)
    assert first.local_only and not first.follow_up
    assert engine.shadow(first) is None  # local-only: the cloud never sees it, even for learning
    second = engine.ask(FOLLOW, strategy=on(1, FOLLOW), context=conversation.load(engine.ledger, ctx.conversation_id))
    assert second.follow_up and engine.shadow(second) is None
    assert "cloud" not in scripts.calls
    alone = engine.ask("What is 2 + 4?", strategy=on(1, "What is 2 + 4?"))
    assert engine.shadow(alone) is not None and len(scripts.calls["cloud"]) == 1  # the share is 1: it would
    engine.close()


def test_a_follow_up_that_leans_on_the_turn_before_is_voted_on_not_marked_done(r2home, scripts):
    # Measured on the demo pool: "And what is double that?" read as open text got one unvoted sample
    # ("The double of 2 is 4.") and was marked done. "Twice as many" leans on a turn that asked for a
    # number: the samples vote, and a split vote climbs.
    first, follow = "How many legs does a spider have?", "And what is twice as many?"
    scripts.by_model["small"] = [Step("A spider has 8 legs.")] * 2 + [Step("The double of 2 is 4."), Step("It is 16."),
                                 Step("The answer is 10.")]
    scripts.by_model["big"] = [Step("The answer is 16.")] * 3  # a local tier too: its samples agree
    engine = engine_for(r2home, executor={"samples": 3, "max_samples": 3})
    ctx = conversation.start(engine.ledger, engine.settings.pool)
    engine.ask(first, strategy=on(0, first), context=ctx)
    second = engine.ask(follow, strategy=on(0, follow), context=conversation.load(engine.ledger, ctx.conversation_id))
    [node] = second.nodes
    assert node.answer_kind == NUMBER and len(scripts.calls["small"]) == 2 + 3  # three samples, not one
    assert node.escalated_from == "small" and node.tier == "big" and second.answer == "The answer is 16."
    engine.close()
