"""The route policy a bench's r2local runs with: pinned, calibrated on a split
of its own, or the one the user routes with day to day."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from r2local import paths
from r2local.engine.core import Engine
from r2local.errors import R2Error
from r2local.store.ledger import Ledger
from r2local.routing.outcomes import read_rows, route_outcomes, votes
from r2local.routing.shipped import calibrated
from r2local.routing.policy import RoutePolicy, first_local, fit_agreement, fit_policy
from r2local.tasks.datasets import Item

CALIB_STRATEGIES = ["all-small", "all-local", "all-cloud", "r2local"]


def starting_policy(engine: Engine) -> RoutePolicy:
    """What r2local routes with day to day: the user's last `r2local calibrate`, else the engine's
    (the shipped policy for its local models, else the default)."""
    main = Ledger() if engine.ledger.path.resolve() != paths.db_path().resolve() else engine.ledger
    try:
        cal = main.latest_calibration()
    finally:
        if main is not engine.ledger:
            main.close()
    policy = calibrated(cal, engine.pool.tiers)
    if policy is not None:
        return replace(policy, source=f"your last `r2local calibrate` ({cal['created_at'][:10]})")
    return engine.route_policy()


def calibrate(engine: Engine, items: list[Item], share: float | None, names: list[str], *,
              seed: int = 0, confirm: Any = None, cancel: threading.Event | None = None,
              on_progress: Any = None) -> RoutePolicy:
    """Answer ``items`` (a split apart from the benched questions) whole on every tier, then
    fit the route policy's bands and the agreement threshold (at most ``share`` escalated)."""
    from r2local.bench.runner import run_bench

    extra = ["plan-local"] if "plan-local" in names else []
    run = run_bench(engine, items, CALIB_STRATEGIES + extra, seed=seed, confirm=confirm, cancel=cancel,
                    on_progress=on_progress)
    if not run.complete:
        raise R2Error("calibration was stopped", fix="run it again: answers so far are in the call cache")
    tiers = engine.pool.tiers
    local, cloud = first_local(tiers), [t for t in tiers if not t.is_local][-1]
    texts = {i.question for i in items}
    # The ratings this router (with its adapter, if any) just gave: a ledger may hold another's.
    rows = [r for r in read_rows([engine.ledger], local.name, engine.adapter_id) if r.question in texts]
    found = votes(rows, local.name, cloud.name)
    tau = fit_agreement(found, share)
    what = f"{share:.0%} cloud share" if share is not None else "best accuracy"
    return fit_policy(route_outcomes(rows), tiers, agree_below=tau, votes=found, cloud_share=share,
                      source=f"calibrated for {what} on {len(items)} other questions")
