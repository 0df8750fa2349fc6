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


@migration
def m006_learning(db: sqlite_utils.Database) -> None:
    # What router training needs, kept from every day of use.
    calls = db["calls"]
    calls.add_column("adapter", str)  # LoRA adapter that made the call ("name@version"), or null
    calls.add_column("prompt_version", str)  # short hash of the prompt template
    calls.add_column("output", str)  # the call's text (every attempt's answer is kept); label probs for allocate
    calls.add_column("temperature", float)
    calls.add_column("sample", int)  # index within an agreement group (0 = the greedy answer)
    calls.create_index(["question_id", "subtask_id"])
    subtasks = db["subtasks"]
    subtasks.add_column("label_probs", str)  # JSON: the allocator's label probabilities
    subtasks.add_column("features", str)  # JSON: what the allocator decided from
    subtasks.add_column("decision_source", str)  # policy, forced, exploration
    subtasks.add_column("decided_tier", str)  # the tier the allocator chose, before any escalation
    subtasks.add_column("working", str)  # the program behind a program-aided answer
    db["calibrations"].add_column("policy_json", str)  # the route policy: bands, tiers, agreement threshold
    db["questions"].add_column("route", str)  # how the question was answered: whole-local, decompose, whole-cloud
    db["questions"].add_column("route_reason", str)
    db["questions"].add_column("strategy", str)  # the planner/allocator pair that answered it
    db["feedback"].create(
        {"id": int, "created_at": str, "question_id": str, "subtask_id": int, "tier": str, "verdict": str,
         "source": str, "note": str},
        pk="id",
    )
    db["feedback"].create_index(["question_id"])
    db["training_runs"].create(
        {"id": str, "created_at": str, "finished_at": str, "kind": str, "status": str, "base_model": str,
         "examples": int, "params_json": str, "metrics_json": str, "adapter_id": str, "error": str},
        pk="id",
    )
    db["adapters"].create(
        {"id": str, "name": str, "version": int, "created_at": str, "kind": str, "base_model": str, "path": str,
         "peft_path": str, "mlx_path": str, "status": str, "metrics_json": str, "training_run_id": str,
         "adopted_at": str},
        pk="id",
    )


@migration
def m007_answer_kind(db: sqlite_utils.Database) -> None:
    # What each subtask's answer was read as (number, clock, yes/no, choice, short,
    # text: which kinds vote), and whether its local tier was asked for a program.
    db["subtasks"].add_column("answer_kind", str)
    db["subtasks"].add_column("programs", int)


@migration
def m008_conversations(db: sqlite_utils.Database) -> None:
    # A question may be one turn of a conversation: later turns see earlier
    # ones. A long history's oldest turns are summarised locally; the summary
    # and how many turns it covers are kept so the next turn reuses it.
    db["conversations"].create(
        {"id": str, "created_at": str, "title": str, "pool": str, "local_only": int, "summary": str,
         "summary_turns": int},
        pk="id",
    )
    db["conversations"].create_index(["created_at"])
    db["questions"].add_column("conversation_id", str)
    db["questions"].add_column("turn", int)  # 1, 2, ... within its conversation
    db["questions"].create_index(["conversation_id", "turn"])


@migration
def m009_subtask_route(db: sqlite_utils.Database) -> None:
    # A part of a compound question is rated and routed on its own: its route and
    # why (``whole-local on local: ...``) belong to the part, as the question's own
    # route_reason belongs to the question.
    db["subtasks"].add_column("route_reason", str)
