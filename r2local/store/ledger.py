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
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlite_utils

from r2local import keys, paths
from r2local.errors import R2Error
from r2local.engine.events import Node
from r2local.store.migrations import migrate
from r2local.store.records import CallEnd, CallRecord, Feedback, QuestionEnd, subtask_row
from r2local.vocab import CallStatus, QuestionStatus

# What a calls row counts against the budget: its reservation while running,
# its actual cost once closed.
_CHARGE = "case when status = 'running' then coalesce(reserved_usd, 0) else coalesce(cost_usd, 0) end"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    """Sortable id: milliseconds since the epoch, then randomness."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Scrub any known API key out of text before it is stored."""
    return {k: keys.scrub(v) if isinstance(v, str) else v for k, v in fields.items()}


def _local_starts_utc() -> tuple[str, str]:
    """The start of today and of this month, local time, as UTC strings like created_at."""
    day = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    return tuple(t.astimezone(timezone.utc).isoformat(timespec="milliseconds") for t in (day, month))  # type: ignore[return-value]


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
        """Questions left 'running' by a process that no longer exists were cut off.

        Their calls still 'running' are closed as 'interrupted' and charged their
        reservation: the provider may have billed a call that was cut off.
        """
        rows = self._query("select id, pid from questions where status = 'running'")
        dead = [r["id"] for r in rows if not _pid_alive(r["pid"])]
        for qid in dead:
            self._write(
                "update questions set status = 'interrupted', finished_at = ? where id = ?", (now_utc(), qid)
            )
            self._write(
                "update subtasks set status = 'interrupted' where question_id = ? and status in ('queued', 'running')",
                (qid,),
            )
        self._write(
            "update calls set status = 'interrupted', error_class = 'Interrupted', "
            "error = 'the process ended during this call', cost_usd = coalesce(reserved_usd, 0), "
            "usage_source = case when coalesce(reserved_usd, 0) > 0 then 'reserved' else usage_source end "
            "where status = 'running' and (question_id is null or question_id not in "
            "(select id from questions where status = 'running'))"
        )
        return len(dead)

    # -- writes ----------------------------------------------------------------
    def start_question(self, question: str, *, local_only: bool, pool: str, strategy: str | None = None) -> str:
        qid = new_id()
        row = {"id": qid, "created_at": now_utc(), "question": keys.scrub(question), "status": QuestionStatus.RUNNING}
        row.update({"local_only": int(local_only), "pool": pool, "pid": os.getpid(), "cost_usd": 0.0})
        if strategy:
            row["strategy"] = strategy
        with self._lock, self.db.conn:
            self.db["questions"].insert(row)
        return qid

    def update_question(self, qid: str, **fields: Any) -> None:
        """Plan, route and strategy columns of a running question."""
        with self._lock, self.db.conn:
            self.db["questions"].update(qid, _clean(fields))

    def finish_question(self, qid: str, end: QuestionEnd) -> None:
        self.update_question(qid, finished_at=now_utc(), **end.row())

    def save_node(self, qid: str, node: Node) -> None:
        """The node's whole ``subtasks`` row, as it stands now."""
        row = _clean(subtask_row(qid, node))
        with self._lock, self.db.conn:
            self.db["subtasks"].upsert(row, pk=("question_id", "subtask_id"), alter=False)

    def record_call(self, record: CallRecord, end: CallEnd) -> str:
        """A call that is over as it is written (a call-cache hit: no model ran)."""
        row = _clean({"id": new_id(), "created_at": now_utc(), **record.row(), **end.row()})
        with self._lock, self.db.conn:
            self.db["calls"].insert(row)
        return row["id"]

    def open_call(self, record: CallRecord, admit: Callable[[dict[str, float]], None] | None = None) -> str:
        """Write a call's row before the call, status 'running'; returns its id.

        With ``admit``, the row (and the ``reserved_usd`` it carries) is written
        only if ``admit(charged)`` returns, where ``charged`` is what today and
        this month have cost so far, running reservations included; to refuse,
        ``admit`` raises, and nothing is written. The check and the insert are
        one IMMEDIATE transaction, so concurrent callers, threads or processes,
        cannot jointly overshoot.
        """
        row = _clean({"id": new_id(), "created_at": now_utc(), **record.row(), "status": CallStatus.RUNNING})
        cols = ", ".join(row)
        sql = f"insert into calls ({cols}) values ({', '.join('?' for _ in row)})"
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if admit is not None:
                    admit(self._charged())
                conn.execute(sql, list(row.values()))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return row["id"]

    def close_call(self, call_id: str, end: CallEnd) -> None:
        """Finish a row written by ``open_call``: status, cost and the rest."""
        with self._lock, self.db.conn:
            self.db["calls"].update(call_id, _clean(end.row()))

    def add_feedback(self, feedback: Feedback) -> int:
        if self.question(feedback.question_id) is None:
            raise R2Error(f"no question {feedback.question_id!r} in {self.path}", fix="see `r2local logs` for ids")
        row = _clean({"created_at": now_utc(), **feedback.row()})
        with self._lock, self.db.conn:
            return int(self.db["feedback"].insert(row).last_pk)

    def feedback(self, question_id: str | None = None) -> list[dict[str, Any]]:
        if question_id is None:
            return self._query("select * from feedback order by id")
        return self._query("select * from feedback where question_id = ? order by id", (question_id,))

    def _charged(self) -> dict[str, float]:
        # Bounds computed here in local time, compared as UTC strings: the
        # created_at index does the work, no per-row date functions.
        day, month = _local_starts_utc()
        rows = self._query(
            f"select coalesce(sum(case when created_at >= ? then {_CHARGE} end), 0) as today, "
            f"coalesce(sum({_CHARGE}), 0) as month, "
            "coalesce(sum(case when status = 'running' then coalesce(reserved_usd, 0) end), 0) as reserved "
            "from calls where created_at >= ?",
            (day, month),
        )
        return rows[0]

    def charged(self) -> dict[str, float]:
        """Today's and this month's cost, running reservations included (``reserved``)."""
        with self._lock:
            return self._charged()

    def save_calibration(self, share: float | None, thresholds: list[float], n_scores: int,
                         policy: dict[str, Any] | None = None) -> None:
        row = {"created_at": now_utc(), "target_cloud_share": share, "thresholds": json.dumps(thresholds)}
        row["n_scores"] = n_scores
        if policy is not None:
            row["policy_json"] = json.dumps(policy)
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
        row["policy"] = json.loads(row["policy_json"]) if row.get("policy_json") else None
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
            s["sent"] = json.loads(s.pop("prompt_json", None) or "[]")
            s["label_probs"] = json.loads(s["label_probs"]) if s.get("label_probs") else None
            s["features"] = json.loads(s["features"]) if s.get("features") else {}
        q["calls"] = self._query("select * from calls where question_id = ? order by rowid", (qid,))
        return q

    def find_question(self, ref: str) -> dict[str, Any]:
        """A question by id, a unique id suffix (as `r2local logs` shows), or `last`."""
        if ref == "last":
            rows = self._query("select id from questions order by id desc limit 1")
        else:
            rows = self._query("select id from questions where id = ? or id like ? limit 2", (ref, f"%{ref}"))
        if len(rows) != 1:
            what = "no questions yet" if ref == "last" else (f"no question {ref!r}" if not rows else f"{ref!r} is ambiguous")
            raise R2Error(f"{what} in {self.path}", fix="see `r2local logs` for question ids, or use `last`")
        return self.question(rows[0]["id"])  # type: ignore[return-value]

    def questions(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent questions, each with its answer node's (the last subtask's) status and confidence."""
        last = "from subtasks s where s.question_id = q.id order by s.subtask_id desc limit 1"
        return self._query(f"select q.*, (select s.status {last}) as answer_node_status, "
                           f"(select s.confidence {last}) as answer_confidence "
                           "from questions q order by q.id desc limit ?", (limit,))

    def calls(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent calls, each with the status and confidence its subtask ended with."""
        return self._query("select c.*, s.status as node_status, s.confidence as node_confidence from calls c "
                           "left join subtasks s on s.question_id = c.question_id and s.subtask_id = c.subtask_id "
                           "order by c.id desc limit ?", (limit,))

    def iter_calls(self) -> Iterator[dict[str, Any]]:
        yield from self._query("select * from calls order by id")

    def spend(self, days: int = 30, today: date | None = None) -> dict[str, Any]:
        """Spend: today, this month, by model, by day (local dates).

        Args:
            days: days in the per-day list, ending today.
            today: the reference day (default: the local date now).
        """
        ref = (today or date.today()).isoformat()
        day = "date(created_at, 'localtime')"
        today_usd = self._query(f"select coalesce(sum(cost_usd), 0) as usd from calls where {day} = ?", (ref,))
        month_usd = self._query(
            "select coalesce(sum(cost_usd), 0) as usd from calls where strftime('%Y-%m', created_at, 'localtime') = ?",
            (ref[:7],),
        )
        # Programs run in the sandbox are calls too (the ledger keeps them), but no model: counted apart.
        by_model = self._query(
            "select tier, model, count(*) as calls, sum(input_tokens) as input_tokens, "
            "sum(output_tokens) as output_tokens, round(sum(cost_usd), 6) as cost_usd "
            "from calls where backend is not 'sandbox' group by tier, model order by cost_usd desc, calls desc"
        )
        sandbox = self._query("select count(*) as runs from calls where backend = 'sandbox'")
        by_day = self._query(
            f"select {day} as day, count(*) as calls, round(sum(cost_usd), 6) as cost_usd from calls "
            f"where {day} between date(?, ?) and ? group by day order by day",
            (ref, f"-{days - 1} days", ref),
        )
        shadow = self._query(
            "select coalesce(sum(cost_usd), 0) as usd, count(*) as calls from calls where role = 'shadow' "
            "and strftime('%Y-%m', created_at, 'localtime') = ?", (ref[:7],),
        )
        return {"today_usd": today_usd[0]["usd"], "month_usd": month_usd[0]["usd"], "by_model": by_model, "by_day": by_day,
                "shadow_month_usd": shadow[0]["usd"], "shadow_month_calls": shadow[0]["calls"],
                "sandbox_runs": sandbox[0]["runs"]}

    # -- conversations -----------------------------------------------------------
    def start_conversation(self, *, pool: str, local_only: bool = False) -> str:
        """A new conversation; its title is its first turn's question (see ``link_turn``)."""
        cid = new_id()
        row = {"id": cid, "created_at": now_utc(), "pool": pool, "local_only": int(local_only), "summary_turns": 0}
        with self._lock, self.db.conn:
            self.db["conversations"].insert(row)
        return cid

    def update_conversation(self, cid: str, **fields: Any) -> None:
        """Its local-only mark (sticky) or its summary of the oldest turns."""
        with self._lock, self.db.conn:
            self.db["conversations"].update(cid, _clean(fields))

    def link_turn(self, qid: str, cid: str) -> int:
        """Make question ``qid`` the next turn of conversation ``cid``; returns its turn number."""
        with self._lock, self.db.conn:
            cur = self.db.execute("select coalesce(max(turn), 0) + 1 from questions where conversation_id = ?", (cid,))
            turn = int(cur.fetchone()[0])
            self.db.execute("update questions set conversation_id = ?, turn = ? where id = ?", (cid, turn, qid))
            # The title is copied from the stored question, which was scrubbed of keys when it was
            # written (a title taken earlier could hold a key this process had not read yet).
            self.db.execute("update conversations set title = (select substr(question, 1, 120) from questions "
                            "where id = ?) where id = ? and title is null", (qid, cid))
        return turn

    def conversation(self, cid: str) -> dict[str, Any] | None:
        rows = self._query("select * from conversations where id = ?", (cid,))
        return rows[0] if rows else None

    def turns(self, cid: str) -> list[dict[str, Any]]:
        """A conversation's questions, first turn first."""
        return self._query("select * from questions where conversation_id = ? order by turn", (cid,))

    def conversations(self, limit: int = 50) -> list[dict[str, Any]]:
        """Conversations, the most recently continued first, with their turn count and last activity."""
        return self._query(
            "select c.*, count(q.id) as turns, coalesce(max(q.created_at), c.created_at) as last_at, "
            "coalesce(sum(q.cost_usd), 0) as cost_usd from conversations c "
            "left join questions q on q.conversation_id = c.id group by c.id order by last_at desc limit ?", (limit,))

    def find_conversation(self, ref: str) -> dict[str, Any]:
        """A conversation by id, a unique id suffix, or `last` (the most recently continued)."""
        if ref == "last":
            rows = self.conversations(1)
        else:
            rows = self._query("select * from conversations where id = ? or id like ? limit 2", (ref, f"%{ref}"))
        if len(rows) != 1:
            what = "no conversations yet" if ref == "last" else (
                f"no conversation {ref!r}" if not rows else f"{ref!r} is ambiguous")
            raise R2Error(f"{what} in {self.path}", fix="see `r2local conversations` for ids")
        return self.conversation(rows[0]["id"])  # type: ignore[return-value]
