"""SVG snapshots of the main screen with a finished plan (150 and 100 columns),
a cancelled plan, an answer below the confidence bar, the zoomed node detail,
the key dialog (plaintext keyring, no keyring), the spend screen and the
first-run screen (with and without a keyring). Data comes from a seeded ledger
with fixed dates, so the pictures do not depend on the day or on model timing."""

import time
from datetime import date

import keyring
import pytest
from keyring.backends import fail

from r2local.engine.core import Engine
from r2local.engine.events import Node
from r2local.store.ledger import Ledger

from .conftest import plumbing_config, settings_from

TODAY = date(2026, 11, 20)
SIZE = (150, 42)
QUESTION = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch):
    """Cursor blink off: a focused field always shows its cursor (Textual toggles it every
    0.5 s, so a picture taken a moment later differed)."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: setattr(self, "_cursor_visible", True))


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


def seed(ledger: Ledger, variant: str = "done") -> str:
    """A finished 3-node plan; "unsure": its final answer ran below the confidence bar;
    "cancelled": cancelled before any node ran."""
    qid = "019a0000000000000000aa"
    ledger.db["questions"].insert({
        "id": qid, "created_at": "2026-11-20T09:00:00.000+00:00", "finished_at": "2026-11-20T09:00:21.000+00:00",
        "question": QUESTION,
        "answer": None if variant == "cancelled" else "The train arrives at **12:15**, which is **15 minutes** after noon.",
        "status": "cancelled" if variant == "cancelled" else "done", "local_only": 0, "pool": "demo",
        "cost_usd": 0.0 if variant == "cancelled" else 0.000213, "cloud_share": 1 / 3, "latency_ms": 21000.0,
    })
    nodes = [
        (1, "step", "Convert 2 h 35 min to minutes.", [], 0.18, "local-small", "smollm2-135m-instruct", "2 h 35 min = 155 min.", "done", None, None, 60, 14, 0.0, 900.0),
        (2, "step", "Add 155 minutes to 9:40.", [1], 0.52, "local", "qwen2.5-coder-0.5b-instruct", "9:40 + 155 min = 12:15.", "escalated", "local-small", "low confidence (0.21 < 0.35)", 120, 22, 0.0, 4100.0),
        (3, "final", "Combine the step results into the final answer.", [1, 2], 0.81, "cloud", "gpt-4o-mini", "The train arrives at 12:15, 15 minutes after noon.", "done", None, None, 410, 38, 0.000213, 2300.0),
    ]
    if variant == "unsure":
        nodes[2] = (3, "final", "Combine the step results into the final answer.", [1, 2], 0.41, "local", "qwen2.5-coder-0.5b-instruct",
                    "The train arrives at 12:15, 15 minutes after noon.", "unsure", None, "low confidence (0.22 < 0.35); no higher tier allowed",
                    380, 30, 0.0, 3900.0)
    if variant == "cancelled":
        nodes = [(n[0], n[1], n[2], n[3], None, None, None, "", "queued", None, None, 0, 0, 0.0, 0.0) for n in nodes]
        nodes[0] = nodes[0][:4] + (0.18, "local-small", "smollm2-135m-instruct", "", "running") + nodes[0][9:]
    confidence = {1: 0.81, 2: 0.64, 3: 0.22 if variant == "unsure" else None}
    for (sid, kind, text, deps, diff, tier, model, answer, status, esc, reason, tin, tout, cost, ms) in nodes:
        sent = [{"role": "system", "content": "You answer one step of a larger question."}, {"role": "user", "content": f"Question: {QUESTION}\n\nStep to answer now: {text}"}]
        ledger.save_node(qid, Node(sid, text, deps, kind=kind, difficulty=diff, tier=tier, model=model, answer=answer,
                                   status=status, escalated_from=esc, reason=reason, input_tokens=tin, output_tokens=tout,
                                   cost_usd=cost, latency_ms=ms, sent=sent,
                                   confidence=confidence[sid] if variant != "cancelled" and tier != "cloud" else None))
        ledger.db["calls"].insert({"id": f"019a00000000000000{sid:04d}", "created_at": f"2026-11-{17 + sid}T09:00:0{sid}.000+00:00",
                                   "question_id": qid, "subtask_id": sid, "role": "subtask", "tier": tier, "model": model,
                                   "input_tokens": tin, "output_tokens": tout, "cost_usd": cost * 40 + 0.001 * sid * (tier == "cloud"),
                                   "latency_ms": ms, "status": "ok"})
    return qid


def seed_program(ledger: Ledger) -> str:
    """A whole-local answer written as a program the sandbox ran, with its route."""
    qid = "019a0000000000000000bb"
    q = "A recipe needs 250 g of flour for one cake. How many kilograms of flour are needed for 12 cakes?"
    ledger.db["questions"].insert({
        "id": qid, "created_at": "2026-11-20T10:00:00.000+00:00", "finished_at": "2026-11-20T10:00:04.000+00:00",
        "question": q, "answer": "The answer is 3.", "status": "done", "local_only": 0, "pool": "demo",
        "cost_usd": 0.0, "cloud_share": 0.0, "latency_ms": 4100.0, "route": "whole-local",
        "route_reason": "difficulty 0.21; no measurements yet (default): local answers, agreement decides if it climbs",
    })
    program = "grams = 250\ncakes = 12\nanswer = grams * cakes / 1000"
    ledger.save_node(qid, Node(1, q, [], difficulty=0.21, tier="local", model="qwen2.5-coder-0.5b-instruct",
                               answer="The answer is 3.", status="done", confidence=1.0, input_tokens=190,
                               output_tokens=61, latency_ms=4100.0, working=program,
                               sent=[{"role": "system", "content": "Answer the question."}, {"role": "user", "content": q}]))
    return qid


def test_program_answer_shows_its_route_and_working(r2home, snap_compare):
    from tui.app import make_app

    engine = Engine(settings_from(plumbing_config("http://127.0.0.1:9/v1"), r2home))
    qid = seed_program(engine.ledger)
    app = make_app(engine=engine, today=TODAY, first_run_check=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=reopened(app, qid, "down"))


def build_app(r2home, variant: str = "done", **kwargs):
    from tui.app import make_app

    engine = Engine(settings_from(plumbing_config("http://127.0.0.1:9/v1"), r2home))
    qid = seed(engine.ledger, variant)
    return make_app(engine=engine, today=TODAY, **kwargs), qid


def reopened(app, qid, *keys):
    async def run_before(pilot):
        await app.workers.wait_for_complete()
        await app._reopen(qid)
        app.screen.query_one("#plan").focus()
        await pilot.press(*keys)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def test_main_screen_with_a_finished_plan(r2home, snap_compare):
    app, qid = build_app(r2home, first_run_check=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=reopened(app, qid, "down", "down", "down", "down"))


def test_plan_tree_at_100_columns_cuts_no_figure(r2home, snap_compare):
    app, qid = build_app(r2home, first_run_check=False)
    assert snap_compare(app, terminal_size=(100, 40), run_before=reopened(app, qid, "down"))


def test_answer_below_the_confidence_bar_is_marked(r2home, snap_compare):
    app, qid = build_app(r2home, "unsure", first_run_check=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=reopened(app, qid))


def test_cancel_marks_unfinished_nodes(r2home, snap_compare):
    from tui.messages import QuestionFailed

    app, qid = build_app(r2home, "cancelled", first_run_check=False)
    before = reopened(app, qid)

    async def cancel(pilot):
        await before(pilot)
        app.screen.post_message(QuestionFailed("cancelled", cancelled=True))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=cancel)


def test_node_detail_zoomed_shows_the_answer_first(r2home, snap_compare):
    app, qid = build_app(r2home, first_run_check=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=reopened(app, qid, *["down"] * 9, "z"))


def test_key_dialog(r2home, snap_compare, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", "/home/you/.local/share")  # a fixed path in the picture; nothing is saved
    monkeypatch.delenv("R2LOCAL_ALLOW_PLAINTEXT_KEY")  # as a user sees it: not ticked
    app, _ = build_app(r2home, first_run_check=False)
    assert snap_compare(app, terminal_size=SIZE, press=["f4", *"sk-abc"])


def test_key_dialog_without_a_keyring(r2home, snap_compare):
    keyring.set_keyring(fail.Keyring())
    app, _ = build_app(r2home, first_run_check=False)

    async def open_dialog(pilot):
        # The dialog opens from a worker (no keyring read on the UI thread) and focuses its
        # field when mounted: picture it once both happened, or the cursor comes and goes.
        await pilot.press("f4")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_dialog)


def test_spend_screen(r2home, snap_compare):
    app, _ = build_app(r2home, first_run_check=False)
    assert snap_compare(app, terminal_size=SIZE, press=["f3"])


def test_first_run_screen(r2home, snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("R2LOCAL_MODELS_DIR", str(tmp_path / "empty-store"))
    app, _ = build_app(r2home)

    async def wait(pilot):
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=wait)


def test_first_run_screen_without_a_keyring(r2home, snap_compare):
    keyring.set_keyring(fail.Keyring())
    app, _ = build_app(r2home)

    async def wait(pilot):
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 30), run_before=wait)


REPORT = {
    "adapter_id": "router@v2", "adopted": False, "better": True,
    "why": "greedy reward 0.912 vs 0.781 (untrained), sign test p = 0.0039; cloud cost at equal accuracy $0.004210 vs "
           "$0.007930: better; kept as a candidate (--no-adopt)",
    "comparison": {"reference": "untrained", "share": 0.3, "accuracy": 0.81, "allocators": {
        "untrained": {"greedy_reward": 0.781, "label_accuracy": 0.52, "cost_at_equal_accuracy_usd": 0.00793,
                      "cost_change": 0.0, "vs_reference": {"wins": 0, "losses": 0, "p": 1.0}},
        "head": {"greedy_reward": 0.844, "label_accuracy": 0.66, "cost_at_equal_accuracy_usd": 0.00611,
                 "cost_change": -0.23, "vs_reference": {"wins": 9, "losses": 3, "p": 0.146}},
        "lora": {"greedy_reward": 0.912, "label_accuracy": 0.79, "cost_at_equal_accuracy_usd": 0.00421,
                 "cost_change": -0.469, "vs_reference": {"wins": 12, "losses": 1, "p": 0.0034}}}},
}


def test_training_screen_before_after(r2home, snap_compare):
    from tui.screens.training import TrainingScreen

    app, _ = build_app(r2home, first_run_check=False)

    async def run_before(pilot):
        await app.push_screen(TrainingScreen())
        await app.workers.wait_for_complete()
        app.screen.rewards = [0.4, 0.5, 0.55, 0.7, 0.72, 0.8, 0.85, 0.9]
        app.screen.query_one("#train-spark").data = app.screen.rewards
        app.screen.show_report(REPORT)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
