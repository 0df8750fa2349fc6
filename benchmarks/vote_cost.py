"""What the vote costs: r2local against the local model asked directly, per question. Prints tables. Not a test.

    python -m benchmarks.vote_cost [--sets one_step,multi_step] [--orders mixed,auto] [--n 0] [--cold 3] [--threads 1]

For each question of our own sets (benchmarks/sets/, never tuned on): the
demo pool's Qwen2.5-Coder-0.5B asked directly (prose, greedy, same prompt
r2local uses for a whole question) against r2local warm in one process
(local-only), with r2local's milliseconds split into routing (the router's
rating), answer (the greedy program or prose, and its sandbox run) and vote
(every further sample), and the samples taken and their output tokens, all
read from the ledger. ``--orders`` runs r2local once per sample order
([executor] sample_order; "mixed" is the order before orders were measured),
on the same questions against the same direct timings. ``--cold N`` also times N questions as a user's
``r2local ask`` (a new process each: model loading included) and prints the
extra over warm. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.perf import _demo_engine
from r2local.tables import table
from r2local.tasks.datasets import read_jsonl
from r2local.tasks.graders import grade

SETS = Path(__file__).parent / "sets"


def split_ms(engine, qid: str) -> dict[str, float]:
    """Routing / answer / vote milliseconds, samples and their output tokens of one question (from the ledger)."""
    out = {"route": 0.0, "answer": 0.0, "vote": 0.0, "samples": 0, "sample_tokens": 0}
    for c in engine.ledger.question(qid)["calls"]:
        ms = c["latency_ms"] or 0.0
        if c["tier"] == "router":
            out["route"] += ms
        elif (c["sample"] or 0) > 0:
            out["vote"] += ms
            out["samples"] += 1
            out["sample_tokens"] += c["output_tokens"] or 0
        else:
            out["answer"] += ms
    return out


def _direct(engine, question: str) -> tuple[str, float]:
    from r2local.backends import complete
    from r2local.engine.prompts import single_messages

    backend = engine.pool.backend(engine.pool.tier("local"))
    start = time.perf_counter()
    reply = complete(backend, single_messages(question), max_tokens=384)
    return reply.text, time.perf_counter() - start


def warm_rows(engine, items, direct: dict[str, tuple[str, float]]) -> tuple[list[list[str]], dict[str, list[float]]]:
    """One row per item; ``direct`` caches the model asked directly (filled on first use)."""
    rows, stats = [], {"direct": [], "r2local": [], "vote_share": [], "right_d": [], "right_r": []}
    for it in items:
        if it.question not in direct:
            direct[it.question] = _direct(engine, it.question)
        text, t_direct = direct[it.question]
        r = engine.ask(it.question, local_only=True)
        s = split_ms(engine, r.question_id)
        total = r.latency_ms
        ok_d, ok_r = grade(it.grader, text, it.answer), grade(it.grader, r.answer, it.answer)
        stats["direct"].append(t_direct)
        stats["r2local"].append(total / 1000)
        stats["vote_share"].append(s["vote"] / total if total else 0.0)
        stats["right_d"].append(ok_d)
        stats["right_r"].append(ok_r)
        rows.append([it.question[:48], "ok" if ok_d else "wrong", f"{t_direct:.2f}", "ok" if ok_r else "wrong",
                     r.to_json()["answer_status"], f"{total / 1000:.2f}", f"{s['route']:.0f}", f"{s['answer']:.0f}", f"{s['vote']:.0f}",
                     str(s["samples"]), str(s["sample_tokens"])])
    return rows, stats


def cold_seconds(question: str, home: str) -> tuple[float, float]:
    """A new `r2local ask` process: its wall seconds, and the seconds its answer took inside it."""
    env = {**os.environ, "R2LOCAL_HOME": home}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "r2local", "--pool", "demo", "ask", question, "--local-only",
                           "--json", "--no-server"], env=env, capture_output=True, stdin=subprocess.DEVNULL, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 2):  # 2: answered, but not marked done
        raise SystemExit(f"r2local ask failed: {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)["latency_ms"] / 1000


LOAD = """
import json, time
t0 = time.perf_counter()
from benchmarks.perf import _demo_engine
from pathlib import Path
import sys
t1 = time.perf_counter()
engine = _demo_engine(Path(sys.argv[1]), 1)
t2 = time.perf_counter()
engine.pool.backend(engine.pool.tier("local")).count_tokens("x")  # loads the model file
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "engine": t2 - t1, "model": t3 - t2}))
"""


def load_seconds(home: str) -> dict[str, float]:
    """What a new process pays before it can answer: interpreter start, imports, the engine, the model."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LOAD, home], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent.parent, env={**os.environ, "R2LOCAL_HOME": home})
    parts = json.loads(done.stdout.strip().splitlines()[-1])
    parts["interpreter"] = time.perf_counter() - start - sum(parts.values())
    return parts


def report(name: str, rows, stats) -> None:
    print(f"\n## {name}: Qwen2.5-Coder-0.5B directly vs r2local (demo pool, local-only, warm)\n")
    print(table(["question", "direct", "direct s", "r2local", "status", "r2local s", "route ms", "answer ms",
                 "vote ms", "samples", "sample tok"], rows, right=set(range(5, 11))))
    ratio = statistics.median(stats["r2local"]) / statistics.median(stats["direct"])
    print(f"\nmedian: direct {statistics.median(stats['direct']):.2f} s, r2local {statistics.median(stats['r2local']):.2f} s,"
          f" ratio {ratio:.2f}; vote share of r2local's time: median {statistics.median(stats['vote_share']):.0%};"
          f" right: direct {sum(stats['right_d'])}/{len(rows)}, r2local {sum(stats['right_r'])}/{len(rows)}")


def _summary(name: str, order: str, stats) -> list[str]:
    med = statistics.median
    n = len(stats["direct"])
    return [name, order, f"{med(stats['direct']):.2f}", f"{med(stats['r2local']):.2f}",
            f"{med(stats['r2local']) / med(stats['direct']):.2f}", f"{med(stats['vote_share']):.0%}",
            f"{sum(stats['right_d'])}/{n}", f"{sum(stats['right_r'])}/{n}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="one_step,multi_step")
    ap.add_argument("--n", type=int, default=0, help="first N questions of each set (0: all)")
    ap.add_argument("--cold", type=int, default=3, help="questions also timed as a new `r2local ask` process")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--orders", default="auto", help="sample orders to run r2local with, comma-separated")
    ap.add_argument("--by-path", action="store_true", help="give the local models as .gguf paths, not manifest names")
    args = ap.parse_args()
    direct: dict[str, tuple[str, float]] = {}
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for order in args.orders.split(","):
            (Path(tmp) / order).mkdir()
            engine = _demo_engine(Path(tmp) / order, args.threads, args.by_path, sample_order=order)
            engine.ask("What is 2 plus 2?", local_only=True)  # load the models before timing
            warm: dict[str, float] = {}
            for name in args.sets.split(","):
                items = read_jsonl(SETS / f"{name}.jsonl")
                items = items[: args.n] if args.n else items
                rows, stats = warm_rows(engine, items, direct)
                report(f"{name}, sample order {order}{', models by path' if args.by_path else ''}", rows, stats)
                warm.update(zip((it.question for it in items), stats["r2local"]))
                summary.append(_summary(name, order, stats))
            engine.close()
        print("\n## Summary (medians)\n")
        print(table(["set", "order", "direct s", "r2local s", "ratio", "vote share", "right direct", "right r2local"],
                    summary, right=set(range(2, 8))))
        if args.cold:
            home = Path(tmp) / "cold"
            home.mkdir()
            cold = []
            for q, w in list(warm.items())[: args.cold]:
                snaps = len(list(home.glob("cache/kv/*/*.kv")))  # the first ask in a new home finds none
                cold.append((q, snaps, *cold_seconds(q, str(home)), w))
            load = load_seconds(str(home))
            print("\n## Cold `r2local ask` (a new process, models loaded) vs the same question warm\n")
            print("Prompt snapshots: KV files an earlier process left under the cache dir; the first ask in a new"
                  " home (after install, or a new model or llama.cpp) evaluates every prompt's fixed prefix itself.\n")
            print(table(["question", "snapshots", "cold s", "answer inside s", "warm s", "extra s"],
                        [[q[:48], str(n), f"{c:.2f}", f"{i:.2f}", f"{w:.2f}", f"{c - w:.2f}"]
                         for q, n, c, i, w in cold], right={1, 2, 3, 4, 5}))
            print("\nWhat a new process pays before answering (timed alone): "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in load.items()))


if __name__ == "__main__":
    main()
