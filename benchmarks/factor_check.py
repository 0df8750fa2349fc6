"""What the time-factor check (r2local/engine/timefactors.py) changes, replayed from cached samples. Not a test.

    python -m benchmarks.factor_check /tmp/so*.jsonl [--show]

The caches are ``benchmarks.sample_order collect`` files. Each question is
replayed through the product's Answerer twice on the same samples, with the
check and without it: per family, the answers kept, the wrong ones kept,
the right ones sent up, the seconds the samples cost, and where the check
fired, whether the local answer was right.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from unittest import mock

from benchmarks.sample_order import replay
from r2local.config import ExecutorSection
from r2local.tables import table


def _families(rows: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"all": list(range(len(rows)))}
    for i, row in enumerate(rows):
        out.setdefault(row["id"].rsplit("-", 1)[0], []).append(i)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache", nargs="+")
    ap.add_argument("--show", action="store_true", help="list the questions where the check fired")
    args = ap.parse_args()
    rows = [json.loads(line) for path in args.cache for line in Path(path).read_text().splitlines() if line]
    settings = ExecutorSection()
    on = replay(rows, "auto", settings)
    with mock.patch("r2local.engine.answering.missing_factor", lambda task, program: None):
        off = replay(rows, "auto", settings)
    lines = []
    for family, idx in _families(rows).items():
        for name, res in (("without", off), ("with the check", on)):
            picked = [res[i] for i in idx]
            fired = [i for i in idx if off[i]["kept"] and not on[i]["kept"]]
            lines.append([family, name, str(len(picked)), str(sum(r["kept"] for r in picked)),
                          str(sum(r["kept"] and not r["right"] for r in picked)),
                          str(sum(not r["kept"] and r["right"] for r in picked)),
                          "" if res is off else f"{len(fired)} ({sum(not on[i]['right'] for i in fired)} wrong)",
                          f"{statistics.mean(r['n'] for r in picked):.1f}", f"{statistics.median(r['s'] for r in picked):.2f}"])
    print("\n## Time-factor check, replayed (auto order, default bar; Qwen2.5-Coder-0.5B samples)\n")
    print(table(["questions", "check", "n", "kept", "kept wrong", "sent right", "it sent up", "samples", "median s"],
                lines, right={2, 3, 4, 5, 7, 8}))
    if args.show:
        for i, row in enumerate(rows):
            if off[i]["kept"] and not on[i]["kept"]:
                print(f"- {row['id']} ({'right' if on[i]['right'] else 'wrong'}): {row['question']}")


if __name__ == "__main__":
    main()
