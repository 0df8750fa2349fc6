"""Fit the route policy r2local ships for the demo pool's local models.

    python -m benchmarks.threetier --datasets benchmarks/sets/short_facts.jsonl,... \\
        --strategies all-small,all-local,all-cloud,r2local --home H
    python -m benchmarks.ship_policy --home H [--home H2 ...]

Reads the graded whole-question answers 3-tier benches left in ``H/bench.db`` (every
tier's answer per question, the local answer's agreement) and fits bands per answer
kind, as `r2local calibrate` does. Only kinds measured on enough questions get bands
(``KIND_MIN``); every other question keeps the unmeasured default (the strongest local
tier, agreement deciding), since one kind's measurements say nothing about another's.
Writes r2local/routing/shipped/demo.json and prints the bands.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from r2local import paths
from r2local.config import load_settings
from r2local.pool import Pool
from r2local.routing.outcomes import read_rows, route_outcomes, votes
from r2local.routing.policy import RoutePolicy, default_policy, first_local, fit_policy
from r2local.routing.shipped import SHIPPED_DIR
from r2local.store.ledger import Ledger
from r2local.tasks import datasets

STAND_IN = "qwen2.5-coder-1.5b-instruct"


def fit(homes: list[Path], share: float | None, bands: int, held_out: set[str] = frozenset(),
        kinds: set[str] | None = None) -> tuple[RoutePolicy, dict[str, int], list]:
    os.environ[paths.HOME_ENV] = str(homes[0])
    tiers = Pool(load_settings(homes[0] / "config.toml"), fetch=False).tiers
    local, cloud = first_local(tiers), [t for t in tiers if not t.is_local][-1]
    ledgers = [Ledger(home / "bench.db") for home in homes]
    try:
        rows = [r for r in read_rows(ledgers, local.name) if r.difficulty is not None and r.question not in held_out]
    finally:
        for ledger in ledgers:
            ledger.close()
    outcomes, found = route_outcomes(rows), votes(rows, local.name, cloud.name)
    # Bands of at least 24 questions: with fewer, one or two answers decide which tier a band gets.
    fitted = fit_policy(outcomes, tiers, bands=bands, min_per_band=24, votes=found, cloud_share=share)
    if kinds is not None:
        fitted = RoutePolicy(fitted.bands, None, "", {k: b for k, b in fitted.kinds.items() if k in kinds})
    counts: dict[str, int] = {}
    for o in outcomes:
        if o.tier == local.name and o.kind:
            counts[o.kind] = counts.get(o.kind, 0) + 1
    policy = RoutePolicy(default_policy(tiers).bands, None, _source(counts, fitted.kinds), fitted.kinds)
    return policy, counts, tiers


def _source(counts: dict[str, int], kinds: dict) -> str:
    """How the shipped policy names what it was fitted on: the measured questions of each kind it has bands for."""
    what = ", ".join(f"{counts.get(k, '?')} {k}" for k in sorted(kinds))
    return f"shipped with r2local (fitted {datetime.date.today()} on {what} questions of its own sets)"


def _caps(before: dict, fitted: list[str], kept: list[str], share: float | None) -> dict[str, float | None]:
    """The cloud share each kind's bands were fitted at: ``share`` for the ``fitted`` kinds, the file's own
    figure for the ``kept`` ones (one number in a file written before kinds could differ)."""
    old = before.get("cloud_share")
    return {**{k: (old.get(k) if isinstance(old, dict) else old) for k in kept}, **{k: share for k in fitted}}


def keep(policy: RoutePolicy, counts: dict[str, int], shipped: Path, kinds: list[str],
         share: float | None) -> tuple[RoutePolicy, dict[str, int], dict[str, float | None]]:
    """``policy`` with the bands (and question counts) of ``kinds`` taken from the ``shipped`` file, and the
    cloud share each kind was fitted at (``share`` for the kinds just fitted)."""
    before = json.loads(shipped.read_text())
    old = RoutePolicy.from_json(before["policy"])
    missing = [k for k in kinds if k not in old.kinds]
    if missing:
        raise SystemExit(f"{shipped} has no bands for {', '.join(missing)} (--keep names kinds it ships)")
    caps = _caps(before, [k for k in sorted(policy.kinds) if k not in kinds], kinds, share)
    merged = {**policy.kinds, **{k: old.kinds[k] for k in kinds}}
    counts = {**counts, **{k: before["questions"][k] for k in kinds if k in before.get("questions", {})}}
    return RoutePolicy(policy.bands, policy.agree_below, _source(counts, merged), merged), counts, caps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, action="append", required=True,
                   help="a 3-tier bench's home (config.toml, bench.db); repeat it to fit on several")
    p.add_argument("--cloud-share", type=float, default=None,
                   help="at most this share escalated (default: best accuracy)")
    p.add_argument("--bands", type=int, default=2, help="difficulty bands per answer kind, at most")
    p.add_argument("--kinds", default=None,
                   help="comma-separated answer kinds to ship bands for (default: every kind measured enough). "
                        "Numbers measured on one-step sums alone would stop multi-step problems from ever climbing.")
    p.add_argument("--hold-out", action="append", default=[],
                   help="a dataset (name or .jsonl) never fitted on; repeatable")
    p.add_argument("--keep", default=None,
                   help="comma-separated answer kinds whose bands stay as --out ships them now (refit the others "
                        "without re-running their benches)")
    p.add_argument("--out", type=Path, default=SHIPPED_DIR / "demo.json")
    args = p.parse_args(argv)
    policy, counts, tiers = fit([h.resolve() for h in args.home], args.cloud_share, args.bands,
                                {i.question for spec in args.hold_out for i in datasets.load(spec, 10**6, 0)[0]},
                                set(args.kinds.split(",")) if args.kinds else None)
    share: float | None | dict[str, float | None] = args.cloud_share
    if args.keep:
        policy, counts, share = keep(policy, counts, args.out, args.keep.split(","), args.cloud_share)
    if not policy.kinds:
        print(f"no answer kind has enough measured questions: {counts}", file=sys.stderr)
        return 1
    measured = {t.name: (t.model if t.is_local else f"{STAND_IN} (stand-in cloud)") for t in tiers}
    body = {"fitted": str(datetime.date.today()), "measured_with": measured, "questions": counts,
            "cloud_share": share, "policy": policy.to_json()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(body, indent=1) + "\n")
    for kind, bands in policy.kinds.items():
        for b in bands:
            acc = ", ".join(f"{k} {v:.0%}" for k, v in b.accuracy.items())
            print(f"{kind:8} <= {b.upto:.2f}  {b.route} on {b.tier}  agree_below {b.agree_below}  n {b.n}  ({acc})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
