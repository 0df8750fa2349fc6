"""Training runs in the ledger (``training_runs``): a row when a run starts,
closed with its status, adapter and metrics when it ends."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from r2local.store.ledger import Ledger, now_utc


@dataclass(frozen=True)
class TrainingRun:
    id: str
    created_at: str
    kind: str  # allocator, decomposer
    status: str  # running, done, failed, cancelled
    base_model: str
    examples: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    adapter_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def start(ledger: Ledger, run_id: str, kind: str, base_model: str, examples: int, params: dict[str, Any]) -> None:
    """The run's row, written as it starts (status ``running``)."""
    row = {"id": run_id, "created_at": now_utc(), "kind": kind, "status": "running", "base_model": base_model,
           "examples": examples, "params_json": json.dumps(params, default=str)}
    with ledger._lock, ledger.db.conn:
        ledger.db["training_runs"].insert(row)


def finish(ledger: Ledger, run_id: str, status: str, *, adapter_id: str | None, metrics: dict[str, Any],
           error: str | None = None) -> None:
    fields = {"finished_at": now_utc(), "status": status, "adapter_id": adapter_id, "error": error,
              "metrics_json": json.dumps(metrics, default=str)}
    with ledger._lock, ledger.db.conn:
        ledger.db["training_runs"].update(run_id, fields)


def runs(ledger: Ledger, limit: int = 5) -> list[TrainingRun]:
    """The latest runs, newest first."""
    rows = ledger._query("select * from training_runs order by created_at desc limit ?", (limit,))
    return [TrainingRun(r["id"], r["created_at"], r["kind"], r["status"], r["base_model"], r["examples"],
                        json.loads(r["params_json"] or "{}"), r["finished_at"], r["adapter_id"],
                        json.loads(r["metrics_json"] or "{}"), r["error"]) for r in rows]
