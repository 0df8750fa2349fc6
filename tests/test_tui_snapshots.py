"""SVG snapshots of the main screen with a finished plan, the key dialog, the
spend screen and the first-run screen. Data comes from a seeded ledger with
fixed dates, so the pictures do not depend on the day or on model timing."""

import time
from datetime import date

import pytest

from r2local.engine import Engine
from r2local.events import Node
from r2local.ledger import Ledger

from .conftest import plumbing_config, settings_from

TODAY = date(2026, 11, 20)
SIZE = (150, 42)
QUESTION = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


def seed(ledger: Ledger) -> str:
    qid = "019a0000000000000000aa"
    ledger.db["questions"].insert({
        "id": qid, "created_at": "2026-11-20T09:00:00.000+00:00", "finished_at": "2026-11-20T09:00:21.000+00:00",
        "question": QUESTION, "answer": "The train arrives at **12:15**, which is **15 minutes** after noon.",
        "status": "done", "local_only": 0, "pool": "demo", "cost_usd": 0.000213, "cloud_share": 1 / 3, "latency_ms": 21000.0,
    })
    nodes = [
        (1, "step", "Convert 2 h 35 min to minutes.", [], 0.18, "local-small", "smollm2-135m-instruct", "2 h 35 min = 155 min.", "done", None, None, 60, 14, 0.0, 900.0),
        (2, "step", "Add 155 minutes to 9:40.", [1], 0.52, "local", "qwen2.5-coder-0.5b-instruct", "9:40 + 155 min = 12:15.", "escalated", "local-small", "low confidence (0.21 < 0.35)", 120, 22, 0.0, 4100.0),
        (3, "final", "Combine the step results into the final answer.", [1, 2], 0.81, "cloud", "gpt-4o-mini", "The train arrives at 12:15, 15 minutes after noon.", "done", None, None, 410, 38, 0.000213, 2300.0),
    ]
    for (sid, kind, text, deps, diff, tier, model, answer, status, esc, reason, tin, tout, cost, ms) in nodes:
        sent = [{"role": "system", "content": "You answer one step of a larger question."}, {"role": "user", "content": f"Question: {QUESTION}\n\nStep to answer now: {text}"}]
        ledger.save_node(qid, Node(sid, text, deps, kind=kind, difficulty=diff, tier=tier, model=model, answer=answer,
                                   status=status, escalated_from=esc, reason=reason, input_tokens=tin, output_tokens=tout,
                                   cost_usd=cost, latency_ms=ms, sent=sent))
        ledger.db["calls"].insert({"id": f"019a00000000000000{sid:04d}", "created_at": f"2026-11-{17 + sid}T09:00:0{sid}.000+00:00",
                                   "question_id": qid, "subtask_id": sid, "role": "subtask", "tier": tier, "model": model,
                                   "input_tokens": tin, "output_tokens": tout, "cost_usd": cost * 40 + 0.001 * sid * (tier == "cloud"),
                                   "latency_ms": ms, "status": "ok"})
    return qid


def build_app(r2home, **kwargs):
    from tui.app import make_app

    engine = Engine(settings_from(plumbing_config("http://127.0.0.1:9/v1"), r2home))
    qid = seed(engine.ledger)
    return make_app(engine=engine, today=TODAY, **kwargs), qid


def test_main_screen_with_a_finished_plan(r2home, snap_compare):
    app, qid = build_app(r2home, first_run_check=False)

    async def reopen(pilot):
        await app._reopen(qid)
        app.screen.query_one("#plan").focus()
        await pilot.press("down", "down", "down", "down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=reopen)


def test_key_dialog(r2home, snap_compare):
    app, _ = build_app(r2home, first_run_check=False)
    assert snap_compare(app, terminal_size=SIZE, press=["f4", *"sk-abc"])


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
