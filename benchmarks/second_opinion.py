"""Would a second local model's answer save cloud calls? Replayed from 3-tier bench JSONs. Not a test.

    python -m benchmarks.second_opinion A/short_facts_b.json A/yes_no.json B/multi_cd.json ...

A local answer's own samples tend to share its mistakes; a different model's
would not. The rule replayed: where r2local sent a whole-local answer up (its
samples split), keep it instead when the pool's cheapest tier (SmolLM2-135M,
the bench's all-small answer) states the same answer. Per bench file: right
answers and cloud cost (as a share of all-cloud's) as r2local ran, and with
the rule. The questions need all-small, all-local, all-cloud and r2local
answers (`benchmarks.threetier --strategies all-small,all-local,all-cloud,r2local`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from r2local.engine.answers import answer_kind, read_answer, same
from r2local.tables import table

NEEDED = {"all-small", "all-local", "all-cloud", "r2local"}


def _agree(question: str, small: str | None, local: str | None) -> bool:
    kind = answer_kind(question)
    a, b = read_answer(small or "", kind, question), read_answer(local or "", kind, question)
    return a is not None and b is not None and same(a, b)


def replay(path: Path) -> list[str]:
    items = [it for it in json.loads(path.read_text())["items"] if NEEDED <= set(it["results"])]
    before = after = up_before = up_after = 0
    cost_before = cost_after = all_cloud = 0.0
    kept_wrong = 0
    for it in items:
        r = it["results"]
        ours, local = r["r2local"], r["all-local"]
        all_cloud += r["all-cloud"]["cost_usd"]
        before += ours["correct"]
        cost_before += ours["cost_usd"]
        up_before += bool(ours["escalated"])
        # The local answer r2local sent up is all-local's (same tier, prompt and call cache).
        if ours["escalated"] and ours.get("route") == "whole-local" and _agree(
                it["question"], r["all-small"]["prediction"], local["prediction"]):
            after += local["correct"]
            kept_wrong += not local["correct"]
            continue
        after += ours["correct"]
        cost_after += ours["cost_usd"]
        up_after += bool(ours["escalated"])
    share = (lambda c: f"{c / all_cloud:.0%}") if all_cloud else (lambda c: "-")
    return [path.stem, str(len(items)), str(before), str(up_before), share(cost_before), str(after), str(up_after),
            share(cost_after), str(kept_wrong)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="bench JSON files (r2local bench --json)")
    args = ap.parse_args()
    rows = [replay(p) for p in args.runs]
    print(table(["set", "n", "right", "sent up", "cost", "right with the rule", "sent up", "cost",
                 "wrong ones it kept"], rows, right=set(range(1, 9))))


if __name__ == "__main__":
    main()
