"""How a check should vote: a yes/no or choice question a program settles, under each sample order. Prints tables. Not a test.

    python -m benchmarks.check_order [--sets yes_no,unit_checks,unit_checks_b,choice] [--orders program-brief,programs]

A check (r2local/engine/kinds.computable: "Is 221 prime?", "Is 5 miles longer
than 8 km?", "Which is larger, A) 3/4 or B) 0.7?") gets a program that
computes the answer. Under "auto" its samples follow answering.CHECK_ORDER:
this script runs every computable question of the sets once per order (the
demo pool, local only, warm, one process per order, one thread) and reports
what matters for knowing when the local answer is wrong: answers right,
right answers kept (done), wrong answers kept, right ones marked unsure
(they would go to the cloud), and seconds. Only the checks are asked; the
other questions of a set do not take this path. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.perf import _demo_engine
from r2local.engine import answering
from r2local.engine.kinds import computable
from r2local.tables import table
from r2local.tasks.datasets import read_jsonl
from r2local.tasks.graders import grade

SETS = Path(__file__).parent / "sets"


def run_order(order: str, items: list, home: Path, threads: int) -> dict[str, tuple[bool, str, float]]:
    """question -> (right?, status, seconds) with checks voting in ``order``."""
    answering.CHECK_ORDER = order  # read at each question (answering.order_name)
    engine = _demo_engine(home, threads)
    engine.ask("What is 2 plus 2?", local_only=True)  # load the models before timing
    out = {}
    for it in items:
        start = time.perf_counter()
        r = engine.ask(it.question, local_only=True)
        out[it.question] = (grade(it.grader, r.answer, it.answer), r.to_json()["answer_status"], time.perf_counter() - start)
    engine.close()
    return out


def summary_row(name: str, order: str, res: list[tuple[bool, str, float]]) -> list[str]:
    kept = [r for r in res if r[1] == "done"]
    return [name, order, str(len(res)), f"{sum(r[0] for r in res)}", f"{sum(r[0] for r in kept)}",
            f"{sum(not r[0] for r in kept)}", f"{sum(r[0] for r in res if r[1] != 'done')}",
            f"{statistics.median(r[2] for r in res):.2f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="yes_no,unit_checks,unit_checks_b,choice")
    ap.add_argument("--orders", default="program-brief,programs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sets = {name: [it for it in read_jsonl(SETS / f"{name}.jsonl") if computable(it.question)]
            for name in args.sets.split(",")}
    orders = args.orders.split(",")
    for order in orders:
        if order not in answering.ORDERS:
            raise SystemExit(f"unknown order {order!r}: choose from {', '.join(answering.ORDERS)}")
    everything = [it for items in sets.values() for it in items]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for order in orders:
            (Path(tmp) / order).mkdir()
            results[order] = run_order(order, everything, Path(tmp) / order, args.threads)
    rows = []
    for name, items in [*sets.items(), ("all", everything)]:
        for order in orders:
            rows.append(summary_row(name, order, [results[order][it.question] for it in items]))
    print("\n## Checks by sample order (demo pool, local only, warm)\n")
    print(table(["set", "order", "checks", "right", "kept right", "kept wrong", "unsure right", "median s"], rows,
                right=set(range(2, 8))))
    if len(orders) == 2:
        a, b = orders
        differ = [(it.question[:60], results[a][it.question], results[b][it.question]) for it in everything
                  if results[a][it.question][:2] != results[b][it.question][:2]]
        print(f"\nQuestions where {a} and {b} differ (right?, status):\n")
        print(table(["question", a, b], [[q, f"{x[0]} {x[1]}", f"{y[0]} {y[1]}"] for q, x, y in differ]))


if __name__ == "__main__":
    main()
