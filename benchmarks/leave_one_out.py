"""Leave one family out: does a route policy fitted on some question families route
another family well? Replayed from 3-tier bench ledgers, no model runs.

    python -m benchmarks.leave_one_out --home B1/home --home B3/home \\
        --family short=benchmarks/sets/short_facts.jsonl --family one_step=benchmarks/sets/one_step.jsonl \\
        --family strategyqa --family elementary_math_qa [--cloud-share 0.3]

Every bench the homes hold answered each question whole on every tier (all-small,
all-local with its samples' agreement, all-cloud). For each family the route policy
is fitted (as `r2local calibrate` fits it) on the other families' questions, then
replayed on this family's: the band a question's router rating and answer kind fall
in says which tier answers; a local answer whose agreement is below the band's bar
is replaced by the cloud's answer, at the cloud's cost. The shipped policy is
replayed the same way (in distribution where it was fitted on that family).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r2local import paths
from r2local.config import ExecutorSection, load_settings
from r2local.engine.answering import threshold
from r2local.engine.kinds import answer_kind, computable
from r2local.pool import Pool
from r2local.routing.outcomes import Row, read_rows, route_outcomes, votes
from r2local.routing.policy import RoutePolicy, first_local, fit_policy
from r2local.routing.shipped import shipped_policy
from r2local.store.ledger import Ledger
from r2local.tables import table
from r2local.tasks import datasets
from r2local.vocab import Route

DEFAULTS = ExecutorSection()  # an untouched [executor] section: the bars a newcomer's answers are held to


def replay(rows: list[Row], policy: RoutePolicy, local: str, cloud: str) -> tuple[int, float, int]:
    """(right, cloud cost, questions that reached the cloud) when ``policy`` routes ``rows``."""
    right, cost, up = 0, 0.0, 0
    for r in rows:
        band, _ = policy.for_question(r.question, r.difficulty)
        first = r.tiers.get(band.tier if band.route == Route.WHOLE_LOCAL else local)
        goes_up = band.route == Route.WHOLE_CLOUD or first is None
        if not goes_up:  # the bar the product holds this answer to (the band's, else its kind's default)
            bar = threshold(answer_kind(r.question), DEFAULTS, policy.threshold(band), computable(r.question))
            goes_up = first.held or (first.confidence is not None and first.confidence < bar)
        got = r.tiers[cloud] if goes_up else first
        right += got.correct
        cost += r.tiers[cloud].cost_usd if goes_up else 0.0
        up += goes_up
    return right, cost, up


def families(specs: list[str]) -> dict[str, set[str]]:
    """Family name -> its question texts (``name=spec`` or a dataset name)."""
    out = {}
    for spec in specs:
        name, _, source = spec.partition("=")
        items, _ = datasets.load(source or name, 10**6, 0)
        out[name] = {i.question for i in items}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, action="append", required=True, help="a 3-tier bench's home; repeatable")
    p.add_argument("--family", action="append", required=True, help="NAME=DATASET or a dataset name; repeatable")
    p.add_argument("--cloud-share", type=float, default=0.3, help="the share of escalations a fit may spend")
    args = p.parse_args(argv)
    os.environ[paths.HOME_ENV] = str(args.home[0].resolve())
    tiers = Pool(load_settings(args.home[0] / "config.toml"), fetch=False).tiers
    local, cloud = first_local(tiers).name, [t for t in tiers if not t.is_local][-1].name
    ledgers = [Ledger(h / "bench.db") for h in args.home]
    try:
        every = [r for r in read_rows(ledgers, local) if r.difficulty is not None
                 and {local, cloud} <= set(r.tiers)]
    finally:
        for ledger in ledgers:
            ledger.close()
    groups = families(args.family)
    shipped = shipped_policy(tiers)
    out, sums = [], [0.0] * 6
    for name, texts in groups.items():
        mine = [r for r in every if r.question in texts]
        others = [r for r in every if r.question not in texts and any(r.question in t for t in groups.values())]
        if not mine or not others:
            continue
        fitted = fit_policy(route_outcomes(others), tiers, votes=votes(others, local, cloud),
                            cloud_share=args.cloud_share)
        n, all_cost = len(mine), sum(r.tiers[cloud].cost_usd for r in mine) or 1e-12
        lo = sum(r.tiers[local].correct for r in mine) / n
        hi = sum(r.tiers[cloud].correct for r in mine) / n
        loo = replay(mine, fitted, local, cloud)
        ship = replay(mine, shipped, local, cloud) if shipped else (0, 0.0, 0)
        oracle = sum(any(t.correct for t in r.tiers.values()) for r in mine) / n
        vals = [lo, hi, loo[0] / n, loo[1] / all_cost, ship[0] / n, ship[1] / all_cost]
        sums = [a + b for a, b in zip(sums, vals)]
        out.append([name, n, f"{lo:.1%}", f"{hi:.1%}", f"{vals[2]:.1%}", f"{vals[3]:.0%}", f"{vals[4]:.1%}",
                    f"{vals[5]:.0%}", f"{oracle:.1%}", f"{(vals[2] - hi) * 100:+.1f}"])
    if out:
        k = len(out)
        m = [s / k for s in sums]
        out.append(["mean", "", f"{m[0]:.1%}", f"{m[1]:.1%}", f"{m[2]:.1%}", f"{m[3]:.0%}", f"{m[4]:.1%}",
                    f"{m[5]:.0%}", "", f"{(m[2] - m[1]) * 100:+.1f}"])
    print(f"leave one family out, fits at most {args.cloud_share:.0%} escalated; cost as a share of all-cloud's")
    print(table(["family", "n", "all-local", "all-cloud", "r2local (fit on others)", "its cost", "shipped policy",
                 "its cost", "oracle", "vs all-cloud (pts)"], out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
