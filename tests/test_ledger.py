import sqlite3

import sqlite_utils

from r2local import migrations
from r2local.ledger import Ledger, new_id


def test_blank_db_gets_every_migration(tmp_path):
    ledger = Ledger(tmp_path / "blank.db")
    assert ledger.applied == [fn.__name__ for fn in migrations.MIGRATIONS]
    tables = set(ledger.db.table_names())
    assert {"questions", "subtasks", "calls", "calibrations", "_migrations"} <= tables
    cols = set(ledger.db["calls"].columns_dict)
    assert {"tier", "backend", "model", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "ttft_ms",
            "status", "error"} <= cols
    assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Ledger(tmp_path / "blank.db").applied == []  # idempotent


def test_upgrade_keeps_rows(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    first = migrations.MIGRATIONS[0]
    first(db)
    db["_migrations"].insert({"name": first.__name__, "applied_at": "2026-01-01"})
    db["questions"].insert({"id": "q1", "question": "old question", "status": "done"})
    db["calls"].insert({"id": new_id(), "question_id": "q1", "tier": "cloud", "cost_usd": 0.5, "created_at": "2026-01-01T00:00:00+00:00"})
    db.conn.close()
    ledger = Ledger(path)
    assert ledger.applied == [fn.__name__ for fn in migrations.MIGRATIONS[1:]]
    assert ledger.question("q1")["question"] == "old question"
    assert ledger.question("q1")["calls"][0]["cost_usd"] == 0.5
    assert "calibrations" in ledger.db.table_names()


def test_running_question_of_a_dead_process_is_marked_interrupted(tmp_path):
    path = tmp_path / "l.db"
    ledger = Ledger(path)
    qid = ledger.start_question("q", local_only=False, pool="demo")
    ledger.update_question(qid, pid=2**22 + 12345)  # no such process
    live = ledger.start_question("q2", local_only=False, pool="demo")  # this process: alive
    ledger.close()
    again = Ledger(path)
    assert again.interrupted == 1
    assert again.question(qid)["status"] == "interrupted"
    assert again.question(live)["status"] == "running"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_spend_groups_by_model_and_day(tmp_path):
    ledger = Ledger(tmp_path / "s.db")
    for cost, model in [(0.25, "gpt"), (0.5, "gpt"), (0.0, "smol")]:
        ledger.record_call(question_id="q", role="subtask", tier="t", model=model, cost_usd=cost, input_tokens=1, output_tokens=2)
    s = ledger.spend()
    assert s["today_usd"] == 0.75 and s["month_usd"] == 0.75
    assert s["by_model"][0]["model"] == "gpt" and s["by_model"][0]["calls"] == 2
    assert s["by_day"][-1]["cost_usd"] == 0.75


def test_ids_sort_by_time():
    a = new_id()
    import time

    time.sleep(0.002)
    assert new_id() > a
