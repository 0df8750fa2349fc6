"""Pilot tests: the Textual app driving the real engine (SmolLM2 pool, the
stand-in server as the cloud)."""

import keyring
import pytest
from keyring.backends import fail
from textual.widgets import Checkbox, DataTable, Input, Static

from r2local import keys
from r2local.engine.core import Engine
from r2local.store import adapters
from r2local.store.ledger import Ledger
from tui.app import make_app
from tui.screens.key_dialog import KeyDialog
from tui.widgets.plan_tree import PlanTree
from tui.widgets.transcript import Exchange

from .conftest import CLOUD_KEY, plumbing_config, settings_from, write_config

SIZE = (150, 45)


def app_for(r2home, proxy, **extra):
    engine = Engine(settings_from(plumbing_config(proxy.url, **extra), r2home))
    return make_app(engine=engine, first_run_check=False)


async def ask(pilot, question: str) -> None:
    await pilot.click("#ask")
    pilot.app.screen.query_one("#ask", Input).value = question
    await pilot.press("enter")
    await pilot.pause(0.2)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)


async def test_ask_fills_plan_tree_transcript_and_ledger(r2home, proxy):
    keys.set_key("cloud", CLOUD_KEY)
    app = app_for(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.45, 0.6]})
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Tom has 3 apples and buys 5 more. How many apples does he have?")
        records = app.screen.query_one(PlanTree).records()
        ledger = Ledger()
        q = ledger.questions(1)[0]
        stored = ledger.question(q["id"])
        assert q["status"] == "done"
        assert [(r["id"], r["tier"], r["status"]) for r in records] == [
            (s["subtask_id"], s["tier"], s["status"]) for s in stored["subtasks"]
        ]
        assert all(r["tier"] in ("local-small", "local", "cloud") and r["status"] in ("done", "escalated", "unsure") for r in records)
        assert any(r["kind"] == "final" for r in records) or len(records) == 1
        cloud_nodes = [r for r in records if r["tier"] == "cloud"]
        assert len(proxy.completions) >= len(cloud_nodes)
        exchange = app.screen.query_one(Exchange)
        assert exchange.markdown.source.strip() == (q["answer"] or "").strip()
        assert exchange.question_id == q["id"]
        # Highlighting a node shows its prompt and answer; cloud prompts are labelled as sent.
        tree = app.screen.query_one(PlanTree)
        tree.focus()
        await pilot.press("down")
        await pilot.pause()
        detail = str(app.screen.query_one("#detail-body").render())
        assert "Subtask 1" in detail and "Answer:" in detail and ("Sent to the cloud" in detail or "stayed on this machine" in detail)


async def test_local_only_toggle_keeps_everything_local(r2home, proxy):
    keys.set_key("cloud", CLOUD_KEY)
    app = app_for(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})  # every node would go to the cloud
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        assert app.local_only
        await app.workers.wait_for_complete()
        await pilot.pause()
        meter = str(app.screen.query_one("#meter-privacy").render())
        assert "local-only" in meter and "offline" in str(app.screen.query_one("#meter-online").render())
        await ask(pilot, "What is 2 + 2?")
        assert proxy.requests == []
        assert all(r["tier"] != "cloud" for r in app.screen.query_one(PlanTree).records())


async def test_key_dialog_stores_the_key_masked(r2home, proxy):
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "no key" in str(app.screen.query_one("#meter-key").render())
        await pilot.press("f4")
        assert isinstance(app.screen, KeyDialog)
        field = app.screen.query_one("#key-input", Input)
        assert field.password
        await pilot.press(*"sk-typed-in-dialog-9876")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, KeyDialog)
        assert keys.keyring_key("cloud") == "sk-typed-in-dialog-9876"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "…9876" in str(app.screen.query_one("#meter-key").render())


async def test_key_dialog_without_a_keyring_says_so_once(r2home, proxy):
    keyring.set_keyring(fail.Keyring())
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, KeyDialog)
        text = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert text.count("no keyring on this machine") == 1 and "r2local doctor" in text and "OPENAI_API_KEY" in text
        assert {"use-env", "copy-setup", "store-file"} <= {b.id for b in app.screen.query("Button")}  # see test_tui_truth
        await pilot.press("escape")
        assert not isinstance(app.screen, KeyDialog)


async def test_key_dialog_needs_a_tick_for_a_plaintext_keyring(r2home, proxy, monkeypatch):
    monkeypatch.delenv("R2LOCAL_ALLOW_PLAINTEXT_KEY")
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        box = app.screen.query_one("#plaintext", Checkbox)
        assert box.value is False
        await pilot.press(*"sk-plain-text-4321", "enter")
        await pilot.pause()
        assert isinstance(app.screen, KeyDialog) and keys.keyring_key("cloud") is None
        error = str(app.screen.query_one("#key-error").render())
        assert "the key was not stored" in error and "--plaintext" in error
        box.value = True
        await pilot.click("#save")
        await pilot.pause()
        assert not isinstance(app.screen, KeyDialog) and keys.keyring_key("cloud") == "sk-plain-text-4321"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "…4321 (PLAINTEXT file)" in str(app.screen.query_one("#meter-key").render())


async def test_escape_cancels_a_running_question(r2home, proxy):
    cfg = plumbing_config(proxy.url)
    for tier in cfg["tiers"]:
        tier["max_tokens"] = 1500  # long enough to still be writing when Esc comes
    app = make_app(engine=Engine(settings_from(cfg, r2home)), first_run_check=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#ask")
        app.screen.query_one("#ask", Input).value = "Write a long essay about rivers."
        await pilot.press("enter")
        for _ in range(400):  # wait until a model is answering
            await pilot.pause(0.05)
            q = Ledger().questions(1)
            if q and any(c["role"] == "subtask" for c in Ledger().question(q[0]["id"])["calls"]):
                break
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert Ledger().questions(1)[0]["status"] == "cancelled"
        assert "cancelled" in str(app.screen.query_one(Exchange).query_one(".meta").render())
        assert not app.screen.busy
        # No node is left looking as if it were still going to run.
        statuses = {r["status"] for r in app.screen.query_one(PlanTree).records()}
        assert "cancelled" in statuses and not statuses & {"queued", "running"}


async def test_history_reopens_a_past_question(r2home, proxy):
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is 10 - 4?")
        qid = Ledger().questions(1)[0]["id"]
        await pilot.press("f2")  # its conversation
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1
        await pilot.press("enter")
        await pilot.pause(0.3)
        exchanges = list(app.screen.query(Exchange))
        assert len(exchanges) == 1 and exchanges[-1].question_id == qid  # the conversation replaces the transcript
        assert exchanges[-1].markdown.source == Ledger().question(qid)["answer"]
        records = app.screen.query_one(PlanTree).records()
        assert [r["id"] for r in records] == [s["subtask_id"] for s in Ledger().question(qid)["subtasks"]]
        assert all(r["sent"] for r in records)  # prompts come back from the ledger


async def test_spend_screen_and_palette_commands(r2home, proxy):
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Toggle local-only", "Set API key", "History", "Spend", "Cancel question"} <= titles
        await pilot.press("f3")
        assert app.screen.id == "spend"
        await pilot.press("escape")
        assert app.screen.id == "main"


async def test_bad_config_shows_a_screen_not_a_traceback(r2home):
    write_config(r2home, "[router\n")
    app = make_app(first_run_check=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.id == "startup-error"
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "invalid TOML" in text and "fix:" in text


async def test_first_run_lists_missing_models_and_key(r2home, proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("R2LOCAL_MODELS_DIR", str(tmp_path / "empty-store"))
    engine = Engine(settings_from(plumbing_config(proxy.url), r2home))
    app = make_app(engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert app.screen.id == "first-run"
        text = str(app.screen.query_one("#first-run-text").render())
        assert "smollm2-135m-instruct" in text and "r2local models pull" in text
        assert "No API key for the cloud tier 'cloud'" in text and "r2local doctor" in text
        await pilot.press("c")
        assert app.screen.id == "main"


async def first_screen(r2home, proxy) -> str:
    app = make_app(engine=Engine(settings_from(plumbing_config(proxy.url), r2home)))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        shown = app.screen.id
        if shown == "first-run":
            await pilot.press("c")
            await app.workers.wait_for_complete()
        return shown


async def test_continue_offline_is_remembered_until_a_key_appears(r2home, proxy):
    assert await first_screen(r2home, proxy) == "first-run"  # no key: asked once
    assert await first_screen(r2home, proxy) == "main"  # "continue offline" remembered
    keys.set_key("cloud", CLOUD_KEY)
    assert await first_screen(r2home, proxy) == "main"
    keys.delete_key("cloud")
    assert await first_screen(r2home, proxy) == "first-run"  # the key went away: ask again


async def test_slash_returns_to_the_question_box_and_z_zooms_the_detail(r2home, proxy):
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is 10 - 4?")
        tree = app.screen.query_one(PlanTree)
        tree.focus()
        await pilot.press("down")
        await pilot.press("z")
        assert app.screen.maximized is app.screen.query_one("#detail") and app.focused.id == "detail"
        await pilot.press("escape")
        assert app.screen.maximized is None
        tree.focus()
        await pilot.press("slash")
        assert app.focused.id == "ask"
        await pilot.press(*"a/b")
        assert app.screen.query_one("#ask", Input).value == "a/b"  # in the box, / is just a character


@pytest.mark.parametrize("answer, sent", [("y", True), ("n", False)])
async def test_confirm_mode_asks_with_the_redacted_text(r2home, proxy, answer, sent):
    from tui.screens.confirm import ConfirmCloud

    keys.set_key("cloud", CLOUD_KEY)
    app = app_for(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]}, privacy={"mode": "confirm"})
    question = "Write one line to ana.lopez@example.com saying the meeting moved."
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#ask")
        app.screen.query_one("#ask", Input).value = question
        await pilot.press("enter")
        for _ in range(600):
            await pilot.pause(0.05)
            if isinstance(app.screen, ConfirmCloud):
                break
        assert isinstance(app.screen, ConfirmCloud)
        shown = app.screen.text
        assert "ana.lopez@example.com" not in shown and "[EMAIL_1]" in shown
        assert app.screen.redactions >= 1 and app.screen.cost > 0
        assert proxy.requests == []  # nothing left before the answer
        await pilot.press(answer)
        while app.screen.busy if hasattr(app.screen, "busy") else True:
            await pilot.pause(0.1)
            if isinstance(app.screen, ConfirmCloud):
                await pilot.press(answer)
        await app.workers.wait_for_complete()
        bodies = " ".join(str(r["body"]) for r in proxy.completions)
        assert bool(proxy.completions) == sent
        assert "ana.lopez@example.com" not in bodies
        statuses = {r["status"] for r in app.screen.query_one(PlanTree).records()}
        if not sent:
            assert "kept-local" in statuses


async def test_feedback_keys_mark_the_answer_and_a_node(r2home, proxy):
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is 2 plus 3?")
        qid = Ledger().questions(1)[0]["id"]
        await pilot.press("+")  # still in the question box: typing, not feedback
        assert Ledger().feedback(qid) == []
        tree = app.screen.query_one(PlanTree)
        tree.focus()
        tree.move_cursor(tree.root)
        await pilot.press("u")  # on the plan's title: the whole answer
        await pilot.press("down", "-")  # on node 1
        await app.workers.wait_for_complete()
        await pilot.pause()
        rows = [(r["verdict"], r["subtask_id"], r["source"]) for r in Ledger().feedback(qid)]
        assert rows == [("needed-the-cloud", None, "user"), ("bad", 1, "user")]
        assert Ledger().feedback(qid)[0]["tier"] is not None


async def test_training_screen_trains_and_adopts(r2home, proxy):
    """F5, t: a short real training run in a worker, its before/after table, then adopt."""
    from tui.screens.training import TrainingScreen

    from .test_train_run import bench_ledger

    bench_ledger(r2home)
    app = app_for(r2home, proxy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        assert isinstance(app.screen, TrainingScreen)
        app.screen.steps = (6, 4)  # a short run
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "labelled questions to learn from: 48" in str(app.screen.query_one("#train-status").render())
        await pilot.press("t")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        screen = app.screen
        assert screen.report is not None and screen.query_one("#train-table").row_count == 3
        assert "router@v1" in str(screen.query_one("#train-why").render())
        assert not screen.query_one("#adopt").disabled
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.engine.engine.adapter_id == "router@v1"
        assert adapters.versions(Ledger())[0].status == "active"
