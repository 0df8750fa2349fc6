"""Pilot test: conversations in the app on SmolLM2 (no cloud key: everything local).
A follow-up carries the earlier turn to the model, Ctrl+N starts afresh, and F2
reopens a conversation whose next question continues it."""

from __future__ import annotations

from textual.widgets import DataTable

from r2local.engine.core import Engine
from r2local.store.ledger import Ledger
from tui.app import make_app
from tui.widgets.transcript import Exchange

from .conftest import plumbing_config, settings_from
from .test_serve import FIRST, FOLLOW
from .test_tui import SIZE, ask


async def test_follow_up_new_conversation_and_reopening(r2home):
    engine = Engine(settings_from(plumbing_config("http://127.0.0.1:9/v1"), r2home))
    app = make_app(engine=engine, first_run_check=False)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, FIRST)
        await ask(pilot, FOLLOW)
        ledger = Ledger()
        [conv] = ledger.conversations()
        first, second = ledger.turns(conv["id"])
        sent = ledger.question(second["id"])["subtasks"][-1]["sent"]
        assert [m["content"] for m in sent][-3:] == [FIRST, first["answer"], FOLLOW]

        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        assert list(app.screen.query(Exchange)) == [] and app.screen.conversation_id is None
        await ask(pilot, "What is 10 - 4?")
        assert len(ledger.conversations()) == 2
        fresh = ledger.question(ledger.questions(1)[0]["id"])
        assert FIRST not in str(fresh["subtasks"][-1]["sent"])  # a new conversation carries nothing

        await pilot.press("f2")
        await pilot.pause(0.2)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        await pilot.press("down", "enter")  # the older conversation
        await pilot.pause(0.5)
        exchanges = list(app.screen.query(Exchange))
        assert [e.question_id for e in exchanges] == [first["id"], second["id"]]
        await ask(pilot, "And 2 boxes?")
        assert [t["turn"] for t in ledger.turns(conv["id"])] == [1, 2, 3]
