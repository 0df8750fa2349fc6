"""Numbered ledger migrations: functions appended to a list, applied in order,
recorded by name in the ``_migrations`` table. Never edit a shipped migration;
append a new one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]) -> Callable[[sqlite_utils.Database], None]:
    MIGRATIONS.append(fn)
    return fn


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.conn:
            fn(db)
            db["_migrations"].insert({"name": fn.__name__, "applied_at": datetime.now(timezone.utc).isoformat()})
        applied.append(fn.__name__)
    return applied


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["questions"].create(
        {
            "id": str,
            "created_at": str,
            "finished_at": str,
            "question": str,
            "answer": str,
            "status": str,  # running, done, failed, cancelled, interrupted
            "error": str,
            "local_only": int,
            "pool": str,
            "plan_json": str,
            "plan_note": str,
            "cost_usd": float,
            "cloud_share": float,
            "latency_ms": float,
            "pid": int,
        },
        pk="id",
    )
    db["subtasks"].create(
        {
            "question_id": str,
            "subtask_id": int,
            "kind": str,  # step or final
            "text": str,
            "depends_on": str,  # JSON list of subtask ids
            "difficulty": float,
            "tier": str,
            "model": str,
            "answer": str,
            "status": str,
            "escalated_from": str,
            "reason": str,
            "confidence": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "latency_ms": float,
        },
        pk=("question_id", "subtask_id"),
        foreign_keys=[("question_id", "questions", "id")],
    )
    db["calls"].create(
        {
            "id": str,
            "created_at": str,
            "question_id": str,
            "subtask_id": int,
            "role": str,  # plan, allocate, subtask, final
            "tier": str,
            "backend": str,
            "model": str,
            "resolved_model": str,
            "input_tokens": int,
            "output_tokens": int,
            "usage_source": str,
            "cost_usd": float,
            "latency_ms": float,
            "ttft_ms": float,
            "status": str,  # ok, error, cancelled
            "error": str,
            "error_class": str,
            "escalated_from": str,
            "attempt": int,
        },
        pk="id",
    )
    db["calls"].create_index(["created_at"])
    db["calls"].create_index(["question_id"])
    db["calls"].create_index(["model", "created_at"])
    db["calls"].create_index(["tier", "created_at"])


@migration
def m002_calibrations_and_indexes(db: sqlite_utils.Database) -> None:
    db["questions"].create_index(["created_at"])
    db["questions"].create_index(["status"])
    db["calibrations"].create(
        {"id": int, "created_at": str, "target_cloud_share": float, "thresholds": str, "n_scores": int}, pk="id"
    )


@migration
def m003_call_gates(db: sqlite_utils.Database) -> None:
    # A calls row is now written before the call (status "running") and closed
    # after it: the budget's reservation lives in the row, so concurrent calls,
    # even from two processes, see each other's reservations.
    db["calls"].add_column("reserved_usd", float)  # upper-bound estimate held while running
    db["calls"].add_column("redactions", int)  # items replaced by placeholders before a cloud call
    db["calls"].create_index(["status"])
    # Covers the budget's sum over this month before every cloud call (3-4x
    # faster at 30k calls a month than the created_at index alone).
    db["calls"].create_index(["created_at", "status", "cost_usd", "reserved_usd"], index_name="calls_budget")


@migration
def m004_subtask_prompts(db: sqlite_utils.Database) -> None:
    # What the last attempt of each subtask sent (for cloud tiers: exactly what
    # left the machine, after redaction), so the history can show it.
    db["subtasks"].add_column("prompt_json", str)


@migration
def m005_call_cache(db: sqlite_utils.Database) -> None:
    # Identical model calls (same model, prompt, parameters) answered from the
    # cache are still ledger rows: cached = 1, cost_usd = 0 (nothing was paid),
    # saved_usd = what the call would have cost.
    db["calls"].add_column("cached", int)
    db["calls"].add_column("saved_usd", float)
    db["call_cache"].create(
        {"key": str, "created_at": str, "model": str, "completion": str},  # completion: JSON
        pk="key",
    )
