"""Router adapter versions: every trained adapter is kept (``adapters`` table +
its folder), one is active, adopting switches the active one in a single
transaction, and rollback brings back the one before.

A version's folder holds the PEFT adapter (``peft/``), its GGUF export for
llama.cpp (``adapter.gguf``), the mlx-lm export (``mlx/``), the classifier head
(``head.json``) and the evaluation (``report.json``). It is written completely
before its row exists, so a killed run leaves nothing half-made and the
active adapter untouched.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from r2local import paths
from r2local.errors import R2Error
from r2local.store.ledger import Ledger, now_utc

NAME = "router"
ACTIVE, CANDIDATE, RETIRED, REJECTED = "active", "candidate", "retired", "rejected"


def root(name: str = NAME) -> Path:
    path = paths.user_dir() / "adapters" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class AdapterVersion:
    """One trained version (a row of ``adapters``)."""

    id: str  # router@v3, decomposer@v1
    name: str  # router, decomposer
    version: int
    created_at: str
    kind: str
    base_model: str
    path: str  # the GGUF LoRA llama.cpp loads
    peft_path: str
    mlx_path: str
    status: str  # active, candidate, retired, rejected
    metrics: dict[str, Any] = field(default_factory=dict)
    training_run_id: str | None = None
    adopted_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def next_version(ledger: Ledger, name: str = NAME) -> int:
    rows = ledger._query("select coalesce(max(version), 0) as v from adapters where name = ?", (name,))
    on_disk = [int(p.name[1:]) for p in root(name).glob("v*") if p.name[1:].isdigit()]
    return max([rows[0]["v"], *on_disk]) + 1


def register(ledger: Ledger, *, version: int, kind: str, base_model: str, folder: Path, metrics: dict[str, Any],
             run_id: str, status: str = CANDIDATE, name: str = NAME) -> str:
    adapter_id = f"{name}@v{version}"
    row = {"id": adapter_id, "name": name, "version": version, "created_at": now_utc(), "kind": kind,
           "base_model": base_model, "path": str(folder / "adapter.gguf"), "peft_path": str(folder / "peft"),
           "mlx_path": str(folder / "mlx"), "status": status, "metrics_json": json.dumps(metrics),
           "training_run_id": run_id}
    with ledger._lock, ledger.db.conn:
        ledger.db["adapters"].insert(row)
    return adapter_id


def versions(ledger: Ledger, name: str = NAME) -> list[AdapterVersion]:
    rows = ledger._query("select * from adapters where name = ? order by version", (name,))
    return [AdapterVersion(r["id"], r["name"], r["version"], r["created_at"], r["kind"], r["base_model"], r["path"],
                           r["peft_path"], r["mlx_path"], r["status"], json.loads(r["metrics_json"] or "{}"),
                           r["training_run_id"], r["adopted_at"]) for r in rows]


def active(ledger: Ledger, name: str = NAME, base_model: str | None = None) -> AdapterVersion | None:
    """The active version (for ``base_model`` when given: an adapter only fits its own base)."""
    for r in reversed(versions(ledger, name)):
        if r.status == ACTIVE and (base_model is None or r.base_model == base_model):
            return r
    return None


def adopt(ledger: Ledger, adapter_id: str, name: str | None = None) -> AdapterVersion:
    """Make ``adapter_id`` (``router@v2``, ``decomposer@v1``, or ``vN`` / ``N`` of the router) the active
    version of its kind; the previous one is retired."""
    name = name or (adapter_id.split("@", 1)[0] if "@" in adapter_id else NAME)
    found = _find(ledger, adapter_id, name)
    if not Path(found.path).is_file():
        raise R2Error(f"{found.id}'s adapter file is gone ({found.path})", fix="train again: r2local train run")
    with ledger._lock, ledger.db.conn:
        ledger.db.execute("update adapters set status = ? where name = ? and status = ?", (RETIRED, name, ACTIVE))
        ledger.db.execute("update adapters set status = ?, adopted_at = ? where id = ?", (ACTIVE, now_utc(), found.id))
    return _find(ledger, found.id, name)


def reject(ledger: Ledger, adapter_id: str) -> None:
    """Discard a candidate: it stays on record, marked rejected, and is never adopted by default."""
    with ledger._lock, ledger.db.conn:
        ledger.db.execute("update adapters set status = ? where id = ?", (REJECTED, adapter_id))


def rollback(ledger: Ledger, name: str = NAME) -> AdapterVersion | None:
    """Back to the version adopted before the active one (None: back to the plain router)."""
    current = active(ledger, name)
    if current is None:
        raise R2Error("no adapter is active", fix="nothing to roll back; `r2local train status` lists the versions")
    earlier = [r for r in versions(ledger, name) if r.adopted_at and r.id != current.id
               and current.adopted_at and r.adopted_at < current.adopted_at]
    with ledger._lock, ledger.db.conn:
        ledger.db.execute("update adapters set status = ? where id = ?", (RETIRED, current.id))
    if not earlier:
        return None
    previous = max(earlier, key=lambda r: r.adopted_at or "")
    return adopt(ledger, previous.id, name)


def _find(ledger: Ledger, ref: str, name: str) -> AdapterVersion:
    ref = ref.strip()
    version = ref.rsplit("@v", 1)[-1].lstrip("v")
    for r in versions(ledger, name):
        if r.id == ref or str(r.version) == version:
            return r
    known = ", ".join(r.id for r in versions(ledger, name)) or "none yet"
    raise R2Error(f"no adapter version {ref!r}", fix=f"use one of: {known} (see `r2local train status`)")
