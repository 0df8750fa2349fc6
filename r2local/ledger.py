"""The local SQLite ledger: questions, their subtasks, and every model call.

Table and column names are a contract (people query the file with sqlite-utils
and Datasette); change them only by appending a migration.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from . import paths
from .migrations import migrate


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    """Sortable id: milliseconds since the epoch, then randomness."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else paths.db_path()
        self._lock = threading.RLock()
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self.applied = migrate(self.db)
        self.interrupted = self._mark_interrupted()

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def _write(self, sql: str, params: Any = ()) -> None:
        with self._lock, self.db.conn:
            self.db.execute(sql, params)

    def _query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, params)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def _mark_interrupted(self) -> int:
        """Questions left 'running' by a process that no longer exists were cut off."""
        rows = self._query("select id, pid from questions where status = 'running'")
        dead = [r["id"] for r in rows if not _pid_alive(r["pid"])]
        for qid in dead:
            self._write(
                "update questions set status = 'interrupted', finished_at = ? where id = ?", (now_utc(), qid)
            )
        return len(dead)

    # -- writes ----------------------------------------------------------------
    def start_question(self, question: str, *, local_only: bool, pool: str) -> str:
        qid = new_id()
        row = {"id": qid, "created_at": now_utc(), "question": question, "status": "running"}
        row.update({"local_only": int(local_only), "pool": pool, "pid": os.getpid(), "cost_usd": 0.0})
        with self._lock, self.db.conn:
            self.db["questions"].insert(row)
        return qid

    def update_question(self, qid: str, **fields: Any) -> None:
        with self._lock, self.db.conn:
            self.db["questions"].update(qid, fields)

    def finish_question(self, qid: str, *, status: str, **fields: Any) -> None:
        self.update_question(qid, status=status, finished_at=now_utc(), **fields)

    def save_subtask(self, qid: str, subtask_id: int, **fields: Any) -> None:
        if "depends_on" in fields and not isinstance(fields["depends_on"], str):
            fields["depends_on"] = json.dumps(fields["depends_on"])
        row = {"question_id": qid, "subtask_id": subtask_id, **fields}
        with self._lock, self.db.conn:
            self.db["subtasks"].upsert(row, pk=("question_id", "subtask_id"), alter=False)

    def record_call(self, **fields: Any) -> str:
        row = {"id": new_id(), "created_at": now_utc(), **fields}
        with self._lock, self.db.conn:
            self.db["calls"].insert(row)
        return row["id"]

    def save_calibration(self, share: float, thresholds: list[float], n_scores: int) -> None:
        row = {"created_at": now_utc(), "target_cloud_share": share, "thresholds": json.dumps(thresholds)}
        row["n_scores"] = n_scores
        with self._lock, self.db.conn:
            self.db["calibrations"].insert(row)

    def clear_calibrations(self) -> None:
        self._write("delete from calibrations")

    def cache_put(self, key: str, model: str, completion: dict[str, Any]) -> None:
        """Remember one model call's result under ``key`` (a hash of model, prompt, parameters)."""
        row = {"key": key, "created_at": now_utc(), "model": model, "completion": json.dumps(completion)}
        with self._lock, self.db.conn:
            self.db["call_cache"].upsert(row, pk="key")

    def cache_get(self, key: str) -> dict[str, Any] | None:
        rows = self._query("select completion from call_cache where key = ?", (key,))
        return json.loads(rows[0]["completion"]) if rows else None

    # -- reads -----------------------------------------------------------------
    def latest_calibration(self) -> dict[str, Any] | None:
        rows = self._query("select * from calibrations order by id desc limit 1")
        if not rows:
            return None
        row = rows[0]
        row["thresholds"] = json.loads(row["thresholds"])
        return row

    def difficulty_scores(self, limit: int = 5000) -> list[float]:
        rows = self._query(
            "select difficulty from subtasks where difficulty is not null order by rowid desc limit ?", (limit,)
        )
        return [r["difficulty"] for r in rows]

    def question(self, qid: str) -> dict[str, Any] | None:
        rows = self._query("select * from questions where id = ?", (qid,))
        if not rows:
            return None
        q = rows[0]
        q["subtasks"] = self._query("select * from subtasks where question_id = ? order by subtask_id", (qid,))
        for s in q["subtasks"]:
            s["depends_on"] = json.loads(s["depends_on"] or "[]")
        q["calls"] = self._query("select * from calls where question_id = ? order by id", (qid,))
        return q

    def questions(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._query("select * from questions order by id desc limit ?", (limit,))

    def calls(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._query("select * from calls order by id desc limit ?", (limit,))

    def iter_calls(self) -> Iterator[dict[str, Any]]:
        yield from self._query("select * from calls order by id")

    def spend(self, days: int = 30) -> dict[str, Any]:
        """Cloud and total spend: today, this month, by model, by day (local dates)."""
        day = "date(created_at, 'localtime')"
        today = self._query(f"select coalesce(sum(cost_usd), 0) as usd from calls where {day} = date('now', 'localtime')")
        month = self._query(
            "select coalesce(sum(cost_usd), 0) as usd from calls "
            "where strftime('%Y-%m', created_at, 'localtime') = strftime('%Y-%m', 'now', 'localtime')"
        )
        by_model = self._query(
            "select tier, model, count(*) as calls, sum(input_tokens) as input_tokens, "
            "sum(output_tokens) as output_tokens, round(sum(cost_usd), 6) as cost_usd "
            "from calls group by tier, model order by cost_usd desc, calls desc"
        )
        by_day = self._query(
            f"select {day} as day, count(*) as calls, round(sum(cost_usd), 6) as cost_usd from calls "
            f"where {day} >= date('now', 'localtime', ?) group by day order by day",
            (f"-{days - 1} days",),
        )
        return {"today_usd": today[0]["usd"], "month_usd": month[0]["usd"], "by_model": by_model, "by_day": by_day}
