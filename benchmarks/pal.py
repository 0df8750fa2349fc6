"""Local accuracy with and without program-aided answers, from a bench ledger.

    R2LOCAL_HOME=bench-results/home python -m benchmarks.pal --dataset generated --n 200 --seed 0 [--ledger X]

The all-local and all-small answers of a bench keep every sample in the
ledger (``calls.output``): the greedy program and its sandbox result (sample
0 of a program-writing tier), the greedy prose answer (its sample 1, or sample
0 of a prose tier). Grading each on its own says what the program is worth,
per model and per difficulty, with no new model run. SmolLM2 writes no programs
by default; to measure it with them, bench ``all-small`` with ``programs = true``
on its tier into a ledger of its own and point ``--ledger`` at it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Any

from r2local.store import learning
from r2local.store.ledger import Ledger
from r2local.paths import user_dir
from r2local.tables import table
from r2local.tasks import datasets
from r2local.tasks.graders import grade


def _outputs(ledger: Ledger, qid: str) -> dict[str, str | None]:
    """The greedy program's result and the greedy prose answer of one whole-question answer."""
    calls = learning.call_outputs(ledger, qid)
    program = next((c.output for c in calls if c.role == "program" and (c.sample or 0) == 0
                    and c.status == "ok"), None)
    had_program = any(c.role == "program" and (c.sample or 0) == 0 for c in calls)
    prose = [c.output for c in calls if c.role in ("subtask", "sample") and c.temperature == 0.0
             and c.status == "ok" and not (c.output or "").lstrip().startswith("```")]
    return {"program": program if had_program else None, "had_program": had_program, "prose": prose[0] if prose else None}


def measure(ledger: Ledger, items: list[datasets.Item], strategy: str) -> dict[str, Any]:
    by_text = {i.question: i for i in items}
    rows = [{"id": qid, "question": q} for qid, q in learning.done_questions(ledger, strategy)]
    got: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    seen: set[str] = set()
    for r in rows:
        item = by_text.get(r["question"])
        if item is None or item.question in seen:  # benched again (a rerun, a calibration): count it once
            continue
        seen.add(item.question)
        out = _outputs(ledger, r["id"])
        level = str(item.meta.get("difficulty", "all"))
        for way in ("program", "prose"):
            if way == "program" and not out["had_program"]:
                continue
            ok = out[way] is not None and grade(item.grader, f"The answer is {out[way]}." if way == "program"
                                                else out[way], item.answer)
            got[way][level].append(ok)
            got[way]["all"].append(ok)
    return got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="generated")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ledger", default=None, help="default: bench.db under R2LOCAL_HOME")
    args = p.parse_args(argv)
    items, _ = datasets.load(args.dataset, args.n, args.seed)
    ledger = Ledger(args.ledger or (user_dir() / "bench.db"))
    rows = []
    for strategy in ("all-small", "all-local"):
        got = measure(ledger, items, strategy)
        levels = sorted(k for k in got.get("prose", {}) if k != "all")
        for way in ("prose", "program"):
            if way not in got:
                continue
            cells = [f"{sum(got[way][lv])}/{len(got[way][lv])}" for lv in [*levels, "all"]]
            share = sum(got[way]["all"]) / max(1, len(got[way]["all"]))
            rows.append([strategy, way, *cells, f"{share:.1%}"])
    ledger.close()
    level_names = [f"level {lv}" for lv in sorted({str(i.meta.get('difficulty')) for i in items if i.meta})] or []
    print(f"\n## Local accuracy, prose vs program-aided, {args.dataset} n={args.n} seed {args.seed} (greedy answers)\n")
    print(table(["strategy", "answer", *level_names, "all", "accuracy"], rows, right=set(range(2, len(level_names) + 4))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
