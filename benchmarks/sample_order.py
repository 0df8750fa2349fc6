"""Which samples should vote, in what order: AUROC and seconds per order and answer kind. Not a test.

    python -m benchmarks.sample_order collect --out /tmp/so.jsonl [--shard 0/2] [--threads 1]
    python -m benchmarks.sample_order report /tmp/so*.jsonl [--agree-below 0.6]

``collect`` asks the demo pool's Qwen2.5-Coder-0.5B for every kind of sample
of every question once (the greedy program, prose and brief answer, and
sampled ones of each) and caches them with their seconds and tokens.
``report`` then replays each order of ``ORDERS`` through the product's own
Answerer (adaptive sampling and early stop included) from that cache, so
every order is judged on the same samples: AUROC of "the local answer is
wrong" (score: 1 - agreement), accuracy of the kept answer, wrong answers
kept at the threshold, and the seconds the samples it took cost.

Questions: our own one-step and multi-step sets (benchmarks/sets), generated
word problems (seed 0, the set the 0.905 AUROC was measured on), and single
parts made by the compound generator (facts, yes/no, choices). Two shards may
run at once on two cores (one thread each); the seconds are then a little
slower than on a quiet machine, alike for every order.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from r2local.backends import Completion, Usage, complete
from r2local.engine.answering import ORDERS, Answerer, uses_programs
from r2local.engine.answers import SHORT, answer_kind, read_answer, same
from r2local.engine.prompts import (
    BRIEF_MAX_TOKENS,
    BRIEF_SYSTEM,
    ONE_LINE,
    PROGRAM_SYSTEM,
    brief_messages,
    program_answer,
    program_messages,
    short_messages,
    single_messages,
)
from r2local.bench.analysis import auroc
from r2local.sandbox import ProgramResult, ProgramStatus, Sandbox, extract_program
from r2local.tables import table
from r2local.tasks.compound import MAKERS
from r2local.tasks.datasets import load, read_jsonl
from r2local.tasks.graders import grade

SETS = Path(__file__).parent / "sets"
BRIEF_HEAD = BRIEF_SYSTEM.partition("{")[0]
SAMPLED = {"P": 5, "Q": 1, "B": 5}  # sampled draws cached per way (prose is the dear one: 20-40 s a draw here)
SAMPLED_NO_PROGRAM = {"Q": 5, "B": 5}


def questions(generated: int, parts: int, sets: str = "one_step,multi_step") -> list[dict]:
    """Every family's questions, interleaved: a run stopped early still has some of each."""
    families = [[vars(i) for i in read_jsonl(SETS / f"{name}.jsonl")] for name in sets.split(",") if name]
    families.append([vars(i) for i in load("generated", generated, 0)[0]])
    rng = random.Random(7)
    for kind in ("fact", "yesno", "choice"):
        made: dict[str, dict] = {}
        for _ in range(parts * 4):
            p = MAKERS[kind](rng)
            if len(made) < parts:
                made.setdefault(p["question"], {"id": f"{kind}-{len(made) + 1}", **p})
        families.append(list(made.values()))
    items = [f[i] for i in range(max(map(len, families))) for f in families if i < len(f)]
    return [{k: it.get(k) for k in ("id", "question", "answer", "grader", "choices")} for it in items]


def _draw(backend, messages, temperature: float, salt: int, max_tokens: int) -> dict:
    start = time.perf_counter()
    seed = 1000 + salt if temperature else None
    r = complete(backend, messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
    return {"text": r.text, "s": time.perf_counter() - start, "tokens": r.usage.output_tokens, "prob": r.confidence}


def collect_one(backend, box: Sandbox, item: dict, ways: str = "PQB") -> dict:
    kind = answer_kind(item["question"])
    prose = single_messages(item["question"])
    prose = short_messages(prose) if kind == SHORT else prose
    programs = uses_programs(kind, True)
    counts = SAMPLED if programs else SAMPLED_NO_PROGRAM
    prompts = {"P": (program_messages(prose), 384), "Q": (prose, 384), "B": (brief_messages(prose, kind), BRIEF_MAX_TOKENS)}
    out = {**item, "kind": kind, "samples": {}}
    for way, extra in counts.items():
        if way not in ways:
            continue
        messages, cap = prompts[way]
        draws = [_draw(backend, messages, t, i, cap) for i, t in enumerate([0.0] + [0.7] * extra)]
        if way == "P":
            for d in draws:
                source = extract_program(d["text"])
                ran = box.run(source) if source else None
                d["program"] = source
                d["status"] = str(ran.status) if ran else "no-program"
                d["value"] = ran.value if ran else None
                d["s"] += (ran.ms / 1000) if ran else 0.0
        out["samples"][way] = draws
    return out


def collect(args) -> None:
    from benchmarks.perf import _demo_engine

    items = questions(args.generated, args.parts, args.sets)
    shard, shards = (int(x) for x in args.shard.split("/"))
    items = items[shard::shards]
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as box, open(args.out, "a") as fh:
        engine = _demo_engine(Path(tmp), args.threads)
        backend = engine.pool.backend(engine.pool.tier("local"))
        collect_one(backend, box, {"id": "warm-up", "question": "What is 2 plus 2?", "answer": "4", "grader": "number",
                                   "choices": None})  # load the model and start the sandbox before timing
        for n, item in enumerate(items, 1):
            fh.write(json.dumps(collect_one(backend, box, item, args.ways)) + "\n")
            fh.flush()
            print(f"{n}/{len(items)} {item['id']}", flush=True)
        engine.close()


class Replay:
    """Serves one question's cached samples to the Answerer, and adds up what they cost."""

    def __init__(self, cached: dict) -> None:
        self.cached = cached
        self.used = {"P": 0, "Q": 0, "B": 0, "L": 0}
        self.seconds = 0.0
        self.tokens = 0
        self.values: dict[int, dict] = {}

    def call(self, messages, temperature: float, i: int, stream: bool, max_tokens=None) -> Completion:
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        way = "P" if system.startswith(PROGRAM_SYSTEM) else "B" if system.startswith(BRIEF_HEAD) else "Q"
        way = "L" if way == "P" and messages[-1]["content"].endswith(ONE_LINE) else way
        draws = self.cached.get(way)
        if draws is None:  # a way not collected (--ways): a reply that states nothing
            return Completion("", "stop", Usage(0, 0), "cache", 0.0, None, None)
        if temperature == 0.0:
            d = draws[0]
        else:
            self.used[way] += 1
            d = draws[min(self.used[way], len(draws) - 1)]  # an order past the cache reuses the last draw
        self.seconds += d["s"]
        self.tokens += d["tokens"]
        self.values[i] = d
        return Completion(d["text"], "stop", Usage(0, d["tokens"]), "cache", d["s"] * 1000, None, d["prob"])

    def run(self, program: str, i: int) -> ProgramResult:
        d = self.values[i]
        return ProgramResult(ProgramStatus(d["status"]) if d["status"] != "no-program" else ProgramStatus.ERROR,
                             d.get("value"))


def _right(row: dict, text: str) -> bool:
    """Graded as the bench grades; a short answer (a name, a place) as the vote reads it, so "The
    capital of Brazil is Brasília." answers "Brasilia" (the exact grader wants the name alone)."""
    if row["kind"] == SHORT:
        got, want = read_answer(text, SHORT, row["question"]), read_answer(row["answer"], SHORT, row["question"])
        return got is not None and same(got, want)
    return grade(row["grader"], text, row["answer"], row.get("choices"))


def replay(rows: list[dict], order: str, settings) -> list[dict]:
    answerer = Answerer(settings.model_copy(update={"sample_order": order}))
    out = []
    for row in rows:
        r = Replay(row["samples"])
        res = answerer.answer(single_messages(row["question"]), row["question"], True, r.call, r.run)
        right = bool(res.answer) and _right(row, res.answer)
        out.append({"kind": row["kind"], "right": right, "conf": 1.0 if res.confidence is None else res.confidence,
                    "prob": res.features.get("mean_prob", 1.0), "family": row["id"].rsplit("-", 1)[0],
                    "program_ok": res.features.get("program_ok", -1.0),
                    "kept": res.failure is None, "s": r.seconds, "tokens": r.tokens, "n": len(res.samples)})
    return out


def report(args) -> None:
    from r2local.config import ExecutorSection

    rows = [json.loads(line) for path in args.cache for line in open(path)]
    settings = ExecutorSection(agree_below=args.agree_below)
    families = {"program kinds": lambda r: "P" in r["samples"], "others": lambda r: "P" not in r["samples"]}
    for kind in sorted({r["kind"] for r in rows}):
        families[kind] = lambda r, k=kind: r["kind"] == k
    lines = []
    for family, pick in families.items():
        subset = [r for r in rows if pick(r)]
        collected = {way for r in subset for way in r["samples"]}  # --ways may have left some out
        replayable = [o for o, (lead, cycle) in ORDERS.items() if {t[0] for t in lead + cycle} <= collected]
        for order in replayable if subset else []:
            res = replay(subset, order, settings)
            au = auroc([1 - x["conf"] for x in res], [not x["right"] for x in res])
            au_p = auroc([1 - x["prob"] for x in res], [not x["right"] for x in res])
            kept_wrong = sum(x["kept"] and not x["right"] for x in res)
            sent_right = sum(not x["kept"] and x["right"] for x in res)  # escalated, though the local answer was right
            lines.append([family, order, str(len(res)), f"{sum(x['right'] for x in res) / len(res):.0%}",
                          "-" if au is None else f"{au:.3f}", "-" if au_p is None else f"{au_p:.3f}",
                          f"{sum(x['kept'] for x in res)}", str(kept_wrong), str(sent_right),
                          f"{statistics.mean(x['n'] for x in res):.1f}", f"{statistics.median(x['s'] for x in res):.2f}",
                          f"{statistics.mean(x['s'] for x in res):.2f}"])
    print(f"\n## Sample orders replayed from cached samples (Qwen2.5-Coder-0.5B, agree_below {args.agree_below},"
          f" samples 3, max_samples 6)\n")
    print(table(["questions", "order", "n", "right", "AUROC", "prob AUROC", "kept", "kept wrong", "sent right",
                 "samples", "median s", "mean s"], lines, right=set(range(2, 12))))
    combined(rows, args.combined, settings)


def _fit_logistic(x, y, l2: float = 1.0, steps: int = 3000):
    import numpy as np

    w = np.zeros(x.shape[1])
    for _ in range(steps):  # plain gradient descent: a handful of features, a few hundred rows
        p = 1 / (1 + np.exp(-x @ w))
        w -= 0.5 * (x.T @ (p - y) / len(y) + l2 * w / len(y))
    return w


def _design(res: list[dict], kinds: list[str]):
    import numpy as np

    return np.array([[1.0, r["conf"], r["prob"], float(r["program_ok"] == 1.0), float(r["program_ok"] == 0.0)]
                     + [float(r["kind"] == k) for k in kinds] for r in res])


def combined(rows: list[dict], order: str, settings) -> None:
    """Agreement alone against one fitted probability of "wrong" from agreement, mean token
    probability, the program's status and the answer kind: leave-one-family-out AUROC."""
    import numpy as np

    res = replay(rows, order, settings)
    kinds = sorted({r["kind"] for r in res})
    lines = []
    for family in sorted({r["family"] for r in res}):
        train = [r for r in res if r["family"] != family]
        test = [r for r in res if r["family"] == family]
        if not train:
            continue
        w = _fit_logistic(_design(train, kinds), np.array([float(not r["right"]) for r in train]))
        score = list(_design(test, kinds) @ w)
        wrong = [not r["right"] for r in test]
        a, c = auroc([1 - r["conf"] for r in test], wrong), auroc(score, wrong)
        lines.append([family, str(len(test)), str(sum(wrong)), "-" if a is None else f"{a:.3f}",
                      "-" if c is None else f"{c:.3f}"])
    print(f"\n## One probability from all the signals vs agreement alone (order {order}; fitted on the other"
          f" families, scored on this one)\n")
    print(table(["held-out family", "n", "wrong", "agreement AUROC", "combined AUROC"], lines, right={1, 2, 3, 4}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", required=True)
    c.add_argument("--shard", default="0/1")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--generated", type=int, default=30)
    c.add_argument("--parts", type=int, default=20, help="single parts per kind (fact, yesno, choice)")
    c.add_argument("--sets", default="one_step,multi_step", help="our own sets to ask (benchmarks/sets)")
    c.add_argument("--ways", default="PQB", help="samples to draw: P programs, Q prose, B brief (a way left out "
                                                 "replays as a reply that states nothing)")
    r = sub.add_parser("report")
    r.add_argument("cache", nargs="+")
    r.add_argument("--agree-below", type=float, default=0.6)
    r.add_argument("--combined", default="auto", help="the order whose signals the combined probability uses")
    args = ap.parse_args()
    collect(args) if args.cmd == "collect" else report(args)


if __name__ == "__main__":
    main()
