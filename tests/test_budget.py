"""Budgets: reservations that concurrent callers cannot jointly overshoot, on the
real ledger, and on real concurrent cloud subtasks through the stand-in cloud."""

import sqlite3
import threading

import pytest
import sqlite_utils

from r2local import keys
from r2local.store import migrations
from r2local.budget import Budget, prompt_token_bound
from r2local.config import BudgetSection
from r2local.engine.core import Engine
from r2local.errors import BudgetExceeded
from r2local.store.ledger import Ledger
from r2local.engine.prompts import step_messages
from r2local.store.records import CallEnd, CallRecord
from r2local.routing.plan import Plan, Subtask
from r2local.routing.strategies import forced
from r2local.vocab import CallStatus, Role

from .conftest import CLOUD_KEY, plumbing_config, settings_from


def cloud_call(qid: str, reserved: float | None = None) -> CallRecord:
    return CallRecord(Role.SUBTASK, "cloud", "openai", "gpt", question_id=qid, reserved_usd=reserved)


def _reserve_many(path, qid: str, cap: float, estimate: float, workers: int, tries: int) -> list[str]:
    """``workers`` threads, each with its own connection (as two processes would have)."""
    won: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def worker():
        ledger = Ledger(path)
        budget = Budget(ledger, BudgetSection(daily_usd=cap))
        start.wait()
        for _ in range(tries):
            try:
                cid = ledger.open_call(cloud_call(qid, estimate), budget.admit(estimate))
            except BudgetExceeded:
                continue
            with lock:
                won.append(cid)
        ledger.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_concurrent_reservations_on_separate_connections_never_overshoot(tmp_path):
    path = tmp_path / "l.db"
    first = Ledger(path)
    qid = first.start_question("q", local_only=False, pool="demo")  # running, in this (live) process
    first.close()
    won = _reserve_many(path, qid, cap=1.0, estimate=0.3, workers=6, tries=5)
    assert len(won) == 3  # 3 x 0.3 fits in 1.0, a 4th would not
    ledger = Ledger(path)
    budget = Budget(ledger, BudgetSection(daily_usd=1.0))
    assert budget.state().reserved_usd == pytest.approx(0.9) and budget.state().daily_left == pytest.approx(0.1)
    # Settling replaces each reservation by the actual cost.
    for cid in won:
        ledger.close_call(cid, CallEnd(CallStatus.OK, cost_usd=0.2))
    state = budget.state()
    assert state.reserved_usd == 0 and state.today_usd == pytest.approx(0.6)
    assert ledger.open_call(cloud_call("q", 0.4), budget.admit(0.4))
    with pytest.raises(BudgetExceeded) as info:
        ledger.open_call(cloud_call("q", 0.01), budget.admit(0.01))
    assert "daily budget ($1.00)" in str(info.value) and "daily_usd" in info.value.fix
    rows = ledger.db.execute("select count(*) from calls").fetchone()[0]
    assert rows == 4  # a refused reservation writes nothing


def test_monthly_cap_counts_earlier_days(tmp_path):
    ledger = Ledger(tmp_path / "m.db")
    ledger.record_call(cloud_call("q"), CallEnd(CallStatus.OK, cost_usd=0.7))
    budget = Budget(ledger, BudgetSection(daily_usd=5.0, monthly_usd=1.0))
    assert budget.state().monthly_left == pytest.approx(0.3)
    with pytest.raises(BudgetExceeded, match="monthly budget"):
        budget.check(0.5)
    budget.check(0.25)
    assert Budget(ledger, BudgetSection()).admit(1e9) is None  # no caps: nothing to check


def test_interrupted_call_is_charged_its_reservation(tmp_path):
    path = tmp_path / "i.db"
    ledger = Ledger(path)
    qid = ledger.start_question("q", local_only=False, pool="demo")
    ledger.open_call(cloud_call(qid, 0.05))
    ledger.update_question(qid, pid=2**22 + 4321)  # a process that no longer exists
    ledger.close()
    again = Ledger(path)
    [call] = again.question(qid)["calls"]
    assert call["status"] == "interrupted" and call["cost_usd"] == 0.05 and call["usage_source"] == "reserved"
    assert Budget(again, BudgetSection(daily_usd=1)).state().today_usd == pytest.approx(0.05)


def test_m003_upgrades_a_ledger_without_it_and_keeps_rows(tmp_path):
    # Also the case of a ledger that already has the later m004.
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for fn in [f for f in migrations.MIGRATIONS if f.__name__ != "m003_call_gates"]:
        fn(db)
        db["_migrations"].insert({"name": fn.__name__, "applied_at": "2026-01-01"})
    db["questions"].insert({"id": "q1", "question": "old", "status": "done"})
    db["calls"].insert({"id": "c1", "question_id": "q1", "tier": "cloud", "cost_usd": 0.5, "status": "ok",
                        "created_at": "2026-01-01T00:00:00.000+00:00"})
    db.conn.close()
    ledger = Ledger(path)
    assert ledger.applied == ["m003_call_gates"]
    [call] = ledger.question("q1")["calls"]
    assert call["cost_usd"] == 0.5 and call["reserved_usd"] is None and call["redactions"] is None
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_prompt_bound_is_not_below_real_token_counts(smol_path):
    from r2local.backends.llamacpp import LlamaCppBackend

    smol = LlamaCppBackend(smol_path, n_ctx=1024, threads=1)
    try:
        for text in ["What is 2 + 2?", "Ünïcødé ✓ 北京 " * 20, "0123456789" * 30, "a b c d e f " * 40]:
            msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
            assert prompt_token_bound(msgs) >= len(smol._chat_tokens(msgs)) + 1
    finally:
        smol.close()


# -- on real concurrent cloud subtasks -----------------------------------------------
QUESTION = "Add some numbers."
STEPS = [f"What is {i} + {i}?" for i in (1, 2, 3, 4)]  # same length: same cost bound


def test_concurrent_cloud_subtasks_never_overshoot_and_the_rest_run_local(r2home, proxy):
    keys.set_key("cloud", CLOUD_KEY)
    settings = settings_from(plumbing_config(proxy.url), r2home)
    engine = Engine(settings)
    cloud = engine.pool.tier("cloud")
    plan = Plan(subtasks=[Subtask(id=i, text=t) for i, t in enumerate(STEPS, 1)])
    nodes = engine.nodes(plan)
    bounds = [Budget.estimate(cloud, step_messages(QUESTION, n, [])) for n in nodes[:4]]
    assert len(set(bounds)) == 1
    cap = 2.5 * bounds[0]  # room for two reservations at once, not three
    engine.close()

    settings = settings_from(plumbing_config(proxy.url, budget={"daily_usd": cap}), r2home)
    engine = Engine(settings)
    proxy.faults[:] = ["delay:1.5"] * 4  # hold the admitted calls in flight while the others ask
    result = engine.ask(QUESTION, strategy=forced(plan, "cloud"))
    steps = result.nodes[:4]
    on_cloud = [n for n in steps if n.tier == "cloud"]
    held = [n for n in steps if n.status == "budget"]
    assert len(on_cloud) == 2 and len(held) == 2, [(n.tier, n.status, n.reason) for n in steps]
    for n in held:
        assert n.tier == "local" and n.is_local and n.answer and n.escalated_from == "cloud"
        assert n.reason.startswith("budget: this call may cost up to") and "ran on local" in n.reason
    assert result.answer
    calls = engine.ledger.question(result.question_id)["calls"]
    cloud_calls = [c for c in calls if c["tier"] == "cloud"]
    assert all(c["status"] == "ok" and c["reserved_usd"] >= c["cost_usd"] > 0 for c in cloud_calls)
    spent = sum(c["cost_usd"] for c in calls)
    assert spent <= cap  # overshoot 0
    assert len(proxy.completions) == len(cloud_calls)  # refused calls never left
    state = engine.budget_state()
    assert state.reserved_usd == 0 and state.today_usd == pytest.approx(spent)
    engine.close()
