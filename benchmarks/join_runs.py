"""One table from bench runs of the same questions made in separate homes (in parallel, to save wall time).

    python -m benchmarks.join_runs A/compound.json B/compound.json [--out joined.json] [--regrade]

Each run is `r2local bench --json` output (what `benchmarks.threetier` writes per dataset). The runs must hold
the same dataset, n and seed; a strategy in several runs is taken from the first. The joined run is measured
again by the bench's own report (paired McNemar, the headline, text to cloud, parts right), so the table reads
as if one `r2local bench` had run every strategy. `--regrade` grades the stored replies again with today's
graders and today's gold answers where the dataset still loads (after a grader or gold fix, an old run is read
anew without running a model). Not a test; prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from r2local.bench.report import text, to_json
from r2local.bench.runner import BenchRun, ItemResult
from r2local.bench.strategies import ORDER
from r2local.tasks.datasets import Item, load
from r2local.tasks.graders import grade, part_scores

META = ("dataset", "n", "seed", "router", "pool", "policy", "agree_below", "samples", "cache", "ledger", "privacy",
        "budget")


def regraded(outcome: dict[str, Any], item: Item) -> dict[str, Any]:
    """The outcome with its reply graded again (an answer counts only when the question ended done)."""
    done = outcome["status"] == "done"
    reply = outcome["prediction"] if done else ""
    if item.grader == "parts":  # grade_parts is all(part_scores): score the parts once
        scores = part_scores(reply, item.answer)
        return dict(outcome, correct=done and all(scores), parts_right=sum(scores))
    return dict(outcome, correct=done and grade(item.grader, reply, item.answer, list(item.choices or []) or None))


def _reload(run: dict[str, Any]) -> list[Item]:
    try:
        return load(run["dataset"], run["n"], run["seed"])[0]
    except Exception as exc:  # noqa: BLE001 - a set that moved or needs a download: keep the stored gold
        print(f"(kept the stored gold answers: {run['dataset']} did not load: {exc})", file=sys.stderr)
        return []


def join(runs: list[dict[str, Any]], regrade: bool = False) -> dict[str, Any]:
    first = runs[0]
    for other in runs[1:]:
        if [other[k] for k in ("dataset", "n", "seed")] != [first[k] for k in ("dataset", "n", "seed")]:
            raise SystemExit("the runs hold different questions (dataset, n and seed differ)")
    items = [Item(it["id"], it["question"], it["answer"], it["grader"], tuple(it.get("choices") or ()),
                  meta=it.get("meta") or {}) for it in first["items"]]
    by_id = {it.id: it for it in items}
    if regrade:  # today's gold for each question, matched by its text
        fresh = {it.question: it for it in _reload(first)}
        by_id = {i: fresh.get(it.question, it) for i, it in by_id.items()}
    owner: dict[str, int] = {}  # strategy -> the first run that has it
    for i, run in enumerate(runs):
        for s in run["strategies"]:
            if s["strategy"] != "oracle":
                owner.setdefault(s["strategy"], i)
    taken: dict[str, dict[str, dict]] = {s: {} for s in owner}  # strategy -> item id -> outcome
    for i, run in enumerate(runs):
        for it in run["items"]:
            for strategy, outcome in it["results"].items():
                if owner.get(strategy) == i:
                    taken[strategy][it["id"]] = regraded(outcome, by_id[it["id"]]) if regrade else outcome
    strategies = sorted(taken, key=lambda s: ORDER.index(s) if s in ORDER else len(ORDER))
    outcomes = [ItemResult(**taken[s][it.id]) for s in strategies for it in items if it.id in taken[s]]
    run = BenchRun(items, strategies, outcomes, complete=all(r["complete"] for r in runs),
                   seconds=sum(r["seconds"] for r in runs))
    return to_json(run, {k: first.get(k) for k in META})


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        # The bench writes its JSON when it ends: an empty file is a run still going, or one that was killed.
        raise SystemExit(f"{path}: not a finished bench run ({exc}); wait for the run to end, or pass its "
                         "partial JSON (SIGINT to the `r2local bench` process writes one)") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="bench JSON files")
    p.add_argument("--out", type=Path, default=None, help="write the joined JSON here")
    p.add_argument("--regrade", action="store_true", help="grade the stored replies again with today's graders")
    args = p.parse_args(argv)
    data = join([_read(path) for path in args.runs], regrade=args.regrade)
    if args.out:
        args.out.write_text(json.dumps(data, indent=1))
    print(text(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
