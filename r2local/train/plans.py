"""Decomposer SFT from the ledger: plans that led to a right answer, at the lowest
cost seen for their question, distilled into a LoRA on the router.

Plans come from every decomposed question graded right (bench grades, user
feedback): the router's own (plan-local, cot-cloud, r2local's decompose
route) and any other planner's. The adapter is kept as ``decomposer@vN``;
adopted, it is applied around the router's planning calls only (llama.cpp
hot swap), so the allocator's adapter keeps rating. Decomposer GRPO (reward =
right - lam x cost - mu x steps) is not attempted: it would execute plans.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

from r2local.config import Settings
from r2local.errors import Cancelled
from r2local.store.ledger import Ledger, new_id
from r2local.pool import Pool
from r2local.routing.plan import plan_messages
from r2local.store import adapters, learning
from r2local.train.data import TextExample, TrainError
from r2local.train.labels import split

NAME = "decomposer"
MIN_PLANS = 8


def plan_examples(ledgers: list[Ledger], max_subtasks: int) -> list[tuple[str, TextExample]]:
    """(question, example) for the cheapest right plan of every question that has one."""
    best: dict[str, tuple[float, str]] = {}
    for ledger in ledgers:
        for r in learning.right_plans(ledger):
            try:
                subtasks = json.loads(r.plan_json)["subtasks"]
            except (ValueError, KeyError, TypeError):
                continue
            target = json.dumps({"subtasks": [{k: s[k] for k in ("id", "text", "depends_on")} for s in subtasks]})
            if r.question not in best or r.cost_usd < best[r.question][0]:
                best[r.question] = (r.cost_usd, target)
    return [(q, TextExample(plan_messages(q, max_subtasks), t)) for q, (_, t) in best.items()]


def train_plans(settings: Settings, steps: int, *, threads: int | None = None, cancel: threading.Event | None = None,
                progress: Any = None) -> dict[str, Any]:
    """Decomposer SFT on the ledgers' right plans; a candidate ``decomposer@vN`` (held-out target loss before/after)."""
    from r2local.train.common import load_router
    from r2local.train.decomposer import DecomposerArgs, train
    from r2local.train.export import peft_to_gguf
    from r2local.train.run import _ledgers

    ledgers = _ledgers()
    try:
        found = plan_examples(ledgers, settings.router.max_subtasks)
    finally:
        for ledger in ledgers:
            ledger.close()
    if len(found) < MIN_PLANS:
        raise TrainError(f"found {len(found)} plans that led to a right answer; decomposer training needs {MIN_PLANS}",
                         fix="run `r2local bench --strategies plan-local,cot-cloud,...` first, or give feedback on "
                             "decomposed answers")
    train_rows, held = split([_Q(q, ex) for q, ex in found], 0.25)
    train_ex, held_ex = [r.example for r in train_rows], [r.example for r in held] or [r.example for r in train_rows]
    gguf = Pool(settings, fetch=False).model_file(settings.router.model)
    router = load_router(gguf)
    main = Ledger()
    version = adapters.next_version(main, NAME)
    folder = adapters.root(NAME) / f"v{version}"
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        result = train(router, train_ex, DecomposerArgs(steps=steps, threads=threads or settings.runtime.threads),
                       tmp / "peft", eval_examples=held_ex, progress=progress, cancel=cancel)
        if result.cancelled:
            raise Cancelled("training was cancelled; nothing was kept")
        losses = result.curves["eval_target_loss"]  # step 0 is the router before training
        before, after = losses[0][1], losses[-1][1]
        peft_to_gguf(tmp / "peft", gguf, tmp / "adapter.gguf")
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        main.close()
        raise
    metrics = {"plans": len(found), "held_out": len(held), "target_loss_before": before, "target_loss_after": after}
    better = after < before
    adapter_id = adapters.register(main, version=version, kind="decomposer-lora", base_model=settings.router.model,
                                   folder=folder, metrics=metrics, run_id=new_id(),
                                   status=adapters.CANDIDATE if better else adapters.REJECTED, name=NAME)
    main.close()
    return {"adapter_id": adapter_id, "better": better, **metrics}


class _Q:
    """A question and its plan example, split like the allocator's rows (by question text)."""

    def __init__(self, question: str, example: TextExample) -> None:
        self.question, self.example = question, example


def active_plan_adapter(ledger: Ledger, base_model: str) -> Path | None:
    found = adapters.active(ledger, NAME, base_model)
    return Path(found.path) if found and Path(found.path).is_file() else None
