import sqlite3

import sqlite_utils

from r2local.store import migrations
from r2local.store.ledger import Ledger, new_id
from r2local.store.records import CallEnd, CallRecord
from r2local.vocab import CallStatus, Role


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
        ledger.record_call(CallRecord(Role.SUBTASK, "t", "openai", model, question_id="q"),
                           CallEnd(CallStatus.OK, cost_usd=cost, input_tokens=1, output_tokens=2))
    s = ledger.spend()
    assert s["today_usd"] == 0.75 and s["month_usd"] == 0.75
    assert s["by_model"][0]["model"] == "gpt" and s["by_model"][0]["calls"] == 2
    assert s["by_day"][-1]["cost_usd"] == 0.75


def test_ids_sort_by_time():
    a = new_id()
    import time

    time.sleep(0.002)
    assert new_id() > a


def test_migration_numbers_are_unique_and_in_order():
    numbers = [int(fn.__name__[1:4]) for fn in migrations.MIGRATIONS]
    assert all(fn.__name__[0] == "m" and fn.__name__[4] == "_" for fn in migrations.MIGRATIONS)
    assert len(set(numbers)) == len(numbers) and numbers == sorted(numbers) == list(range(1, len(numbers) + 1))


def _ledger_at(path, upto: str) -> sqlite_utils.Database:
    """A ledger file as a release with migrations up to ``upto`` left it."""
    db = sqlite_utils.Database(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for fn in migrations.MIGRATIONS:
        fn(db)
        db["_migrations"].insert({"name": fn.__name__, "applied_at": "2026-10-01"})
        if fn.__name__ == upto:
            return db
    raise AssertionError(upto)


def test_a_ledger_from_before_the_learning_columns_upgrades_with_nothing_lost(tmp_path):
    path = tmp_path / "m005.db"
    db = _ledger_at(path, "m005_call_cache")
    db["questions"].insert({"id": "q1", "created_at": "2026-10-02T10:00:00+00:00", "question": "2+2?", "answer": "4",
                            "status": "done", "cost_usd": 0.01, "plan_json": '{"subtasks": []}'})
    db["subtasks"].insert({"question_id": "q1", "subtask_id": 1, "kind": "step", "text": "2+2?", "depends_on": "[]",
                           "difficulty": 0.2, "tier": "cloud", "answer": "4", "status": "escalated",
                           "escalated_from": "local", "prompt_json": "[]"})
    db["calls"].insert({"id": "c1", "created_at": "2026-10-02T10:00:01+00:00", "question_id": "q1", "subtask_id": 1,
                        "role": "subtask", "tier": "cloud", "model": "gpt", "cost_usd": 0.01, "status": "ok",
                        "reserved_usd": 0.02, "redactions": 1, "cached": 0, "saved_usd": 0.0})
    db["calibrations"].insert({"created_at": "2026-10-02", "target_cloud_share": 0.2, "thresholds": "[0.3, 0.7]",
                               "n_scores": 9})
    db["call_cache"].insert({"key": "k", "created_at": "2026-10-02", "model": "gpt", "completion": "{}"})
    before = {t: list(db[t].rows) for t in ("questions", "subtasks", "calls", "calibrations", "call_cache")}
    db.conn.close()

    ledger = Ledger(path)
    assert ledger.applied == [fn.__name__ for fn in migrations.MIGRATIONS[5:]]
    for table, rows in before.items():
        now = list(ledger.db[table].rows)
        assert len(now) == len(rows)
        for old, new in zip(rows, now):
            assert {k: new[k] for k in old} == old, table  # every old value kept, new columns null
    assert {"adapter", "prompt_version", "output", "sample"} <= set(ledger.db["calls"].columns_dict)
    assert {"label_probs", "features", "decision_source", "decided_tier"} <= set(ledger.db["subtasks"].columns_dict)
    assert {"feedback", "training_runs", "adapters"} <= set(ledger.db.table_names())
    assert ledger.question("q1")["subtasks"][0]["features"] == {}
    assert ledger.spend()["month_usd"] >= 0  # the old rows still add up


def test_a_ledger_from_before_answer_kinds_upgrades_with_nothing_lost(tmp_path):
    path = tmp_path / "m006.db"
    db = _ledger_at(path, "m006_learning")
    db["questions"].insert({"id": "q1", "created_at": "2026-10-02T10:00:00+00:00", "question": "2+2?", "status": "done"})
    db["subtasks"].insert({"question_id": "q1", "subtask_id": 1, "kind": "step", "text": "2+2?", "depends_on": "[]",
                           "answer": "4", "status": "done", "working": "answer = 2 + 2"})
    db.conn.close()
    ledger = Ledger(path)
    assert ledger.applied == ["m007_answer_kind", "m008_conversations", "m009_subtask_route"]
    [row] = ledger.db["subtasks"].rows
    assert (row["answer"], row["working"], row["answer_kind"], row["programs"]) == ("4", "answer = 2 + 2", None, None)


def test_a_ledger_from_before_conversations_upgrades_with_nothing_lost(tmp_path):
    path = tmp_path / "m006.db"
    db = _ledger_at(path, "m006_learning")
    db["questions"].insert({"id": "q1", "created_at": "2026-10-02T10:00:00+00:00", "question": "2+2?", "answer": "4",
                            "status": "done", "cost_usd": 0.01, "route": "whole-local", "strategy": "r2local"})
    db["feedback"].insert({"created_at": "2026-10-02", "question_id": "q1", "verdict": "good", "source": "user"})
    before = {t: list(db[t].rows) for t in ("questions", "feedback")}
    db.conn.close()

    ledger = Ledger(path)
    assert ledger.applied == ["m007_answer_kind", "m008_conversations", "m009_subtask_route"]
    for table, rows in before.items():
        now = list(ledger.db[table].rows)
        assert [{k: new[k] for k in old} for old, new in zip(rows, now)] == rows, table
    q = ledger.question("q1")
    assert q["conversation_id"] is None and q["turn"] is None  # an old question is no conversation's turn
    assert ledger.conversations() == []
    cid = ledger.start_conversation(pool="demo")
    ledger.link_turn("q1", cid)
    assert ledger.conversation(cid)["title"] == "2+2?"  # the first turn's question
    assert [t["id"] for t in ledger.turns(cid)] == ["q1"] and ledger.question("q1")["turn"] == 1
    assert ledger.conversations()[0]["turns"] == 1
