"""Can the vote's sampled programs be one line each? AUROC and seconds, replayed. Prints tables. Not a test.

    python -m benchmarks.compact_vote collect --out cv.jsonl [--shard 0/2] [--generated 40] [--sets multi_step]
    python -m benchmarks.compact_vote report cv.jsonl --programs so0.jsonl so1.jsonl [--route 0.9]

On multi-step problems the vote's cost is its sampled programs: the 0.5B writes
each step with named variables and comments (45-55 tokens, ~2 s a sample on one
core), as the greedy program does. A sampled program asked for one line
(``answer = <expression>``, prompts.ONE_LINE: ~15-25 tokens) would cost half that, if it still
tells right greedy programs from wrong ones. ``collect`` draws such one-line
programs at temperature 0.7 for every question: the program prompt as the
product sends it, with one more line after the question (so the prompt shares
the greedy program's prefix and its cached KV up to the question's end).
``report`` joins them with the greedy programs of ``sample_order collect``
caches and replays a vote: the greedy program, then one-line samples (k = 3,
up to 6 when the first split, stopping once settled, kept at 0.6 agreement),
against the same vote with full sampled programs from the caches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.sample_order import questions, replay
from r2local.backends import complete
from r2local.bench.analysis import auroc
from r2local.config import ExecutorSection
from r2local.engine.answers import answer_kind, read_answer, same
from r2local.engine.prompts import line_messages, program_messages, single_messages
from r2local.sandbox import Sandbox, extract_program
from r2local.tables import table
from r2local.tasks.graders import grade

DRAWS = 5
NOW = "program-brief-programs"  # the product's order for numbers


def one_line_messages(question: str) -> list[dict]:
    return line_messages(program_messages(single_messages(question)))


def _program(backend, box: Sandbox, messages: list[dict], temperature: float, seed: int | None, cap: int) -> dict:
    """One program drawn and run: its text, tokens, seconds (the draw and the run) and value (None: it failed)."""
    start = time.perf_counter()
    r = complete(backend, messages, max_tokens=cap, temperature=temperature, seed=seed)
    source = extract_program(r.text)
    ran = box.run(source) if source else None
    return {"text": r.text, "tokens": r.usage.output_tokens, "s": time.perf_counter() - start,
            "value": ran.value if ran and ran.ok else None}


def collect_one(backend, box: Sandbox, item: dict, greedy: bool = False) -> dict:
    """Five one-line programs for ``item`` (and, with ``greedy``, its greedy program as the product writes it)."""
    out = {**item}
    if greedy:
        out["greedy"] = _program(backend, box, program_messages(single_messages(item["question"])), 0.0, None, 384)
    out["one_line"] = [_program(backend, box, one_line_messages(item["question"]), 0.7, 2000 + i, 160)
                       for i in range(DRAWS)]
    return out


def collect(args) -> None:
    from benchmarks.perf import _demo_engine

    done = {json.loads(line)["question"] for path in args.skip for line in Path(path).read_text().splitlines()}
    items = [i for i in questions(args.generated, 0, args.sets)
             if answer_kind(i["question"]) in ("number", "clock") and i["question"] not in done]
    shard, shards = (int(x) for x in args.shard.split("/"))
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as box, open(args.out, "a") as fh:
        engine = _demo_engine(Path(tmp), 1)
        backend = engine.pool.backend(engine.pool.tier("local"))
        collect_one(backend, box, {"question": "What is 2 plus 2?"})  # load the model, start the sandbox
        for n, item in enumerate(items[shard::shards], 1):
            fh.write(json.dumps(collect_one(backend, box, item, args.greedy)) + "\n")
            fh.flush()
            print(f"{n} {item['id']}", flush=True)
        engine.close()


def vote(greedy, samples: list[tuple], question: str, kind: str, bar: float = 0.6) -> tuple[float, float, int]:
    """(agreement with the greedy value, seconds of the samples used, samples used), as the product's Answerer
    decides: k = 3 with the greedy one, up to 6 once the first three split, stopping when the outcome is settled."""
    mine = read_answer(str(greedy), kind, question) if greedy is not None else None
    agree, target = 1, 3  # the greedy program agrees with itself
    for n, (value, _) in enumerate(samples, 1):
        agree += mine is not None and value is not None and same(read_answer(str(value), kind, question), mine)
        taken = n + 1
        if taken == target and agree < taken:
            target = 6
        left = target - taken
        if left <= 0 or agree / target >= bar or (agree + left) / target < bar:
            return agree / taken, sum(x[1] for x in samples[:n]), n
    return agree / (len(samples) + 1), sum(x[1] for x in samples), len(samples)


def _row(fam: str, name: str, doubt: list[float], wrong: list[bool], kept: list[bool], vote_s: list[float],
         greedy_s: list[float], route: float) -> list[str]:
    au = auroc(doubt, wrong)
    shares = [v / (route + g + v) for g, v in zip(greedy_s, vote_s)]
    return [fam, name, str(len(wrong)), "-" if au is None else f"{au:.3f}",
            str(sum(k and w for k, w in zip(kept, wrong))), str(sum(not k and not w for k, w in zip(kept, wrong))),
            f"{statistics.median(vote_s):.2f}", f"{statistics.median(shares):.0%}"]


def _families(rows: list[dict], greedy: dict[str, list[dict]], bar: float) -> dict[str, list[tuple]]:
    """Family -> (greedy wrong?, greedy seconds, full-program vote, one-line vote, row) for the rows whose greedy
    program a cache holds (``greedy``) or that carry their own (``collect --greedy``: family + " (own greedy)")."""
    fams: dict[str, list[tuple]] = {}
    for row in rows:
        progs = greedy.get(row["id"]) or ([row["greedy"]] if "greedy" in row else None)
        if not progs:
            continue
        kind, g = answer_kind(row["question"]), progs[0]
        wrong = g["value"] is None or not grade(row["grader"], str(g["value"]), row["answer"])
        full = vote(g["value"], [(p["value"], p["s"]) for p in progs[1:]], row["question"], kind, bar)
        line = vote(g["value"], [(d["value"], d["s"]) for d in row["one_line"]], row["question"], kind, bar)
        fam = row["id"].rsplit("-", 1)[0] + ("" if row["id"] in greedy else " (own greedy)")
        fams.setdefault(fam, []).append((wrong, g["s"], full, line, row))
    return fams


def report(args) -> None:
    greedy, cached = {}, {}
    for path in args.programs:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            if row["samples"].get("P"):
                greedy[row["id"]], cached[row["id"]] = row["samples"]["P"], row
    rows = [json.loads(line) for path in args.cache for line in Path(path).read_text().splitlines()]
    fams = _families(rows, greedy, args.bar)
    own = [x for fam, got in fams.items() if fam.endswith("(own greedy)") for x in got]
    fams = {fam: got for fam, got in fams.items() if not fam.endswith("(own greedy)")}
    fams["all multi-step"] = [x for fam, got in fams.items() if not fam.startswith("one_step") for x in got]
    fams["all held out (b, c, d)"] = [x for fam, got in fams.items() if fam.startswith("multi_step_") for x in got]
    out = []
    for fam, got in fams.items():
        if not got:
            continue
        ys = [w for w, *_ in got]
        now = replay([cached[x[4]["id"]] for x in got], NOW, ExecutorSection())
        out.append(_row(fam, f"{NOW} (now)", [1 - x["conf"] for x in now], [not x["right"] for x in now],
                        [x["kept"] for x in now], [x["s"] - g for x, (_, g, *_) in zip(now, got)],
                        [g for _, g, *_ in got], args.route))
        for name, pick in (("full programs", 2), ("one-line programs", 3)):
            agree = [x[pick][0] for x in got]
            out.append(_row(fam, name, [1 - a for a in agree], ys, [a >= args.bar for a in agree],
                            [x[pick][1] for x in got], [g for _, g, *_ in got], args.route))
    gen = own + fams.get("gen-0", [])
    if own:  # every generated question collected: the one-line vote alone (no cache of full programs for most)
        agree = [x[3][0] for x in gen]
        out.append(_row(f"generated, seed 0 ({len(gen)})", "one-line programs", [1 - a for a in agree],
                        [x[0] for x in gen], [a >= args.bar for a in agree], [x[3][1] for x in gen],
                        [x[1] for x in gen], args.route))
    print(table(["questions", "vote samples", "n", "AUROC", "kept wrong", "sent right", "median vote s",
                 "median vote share"], out))
    toks = [d["tokens"] for r in rows for d in r["one_line"]]
    ok = sum(d["value"] is not None for r in rows for d in r["one_line"])
    print(f"one-line samples: median {statistics.median(toks)} tokens; {ok} of {len(toks)} ran to a value")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", required=True)
    c.add_argument("--shard", default="0/1")
    c.add_argument("--generated", type=int, default=40)
    c.add_argument("--sets", default="multi_step")
    c.add_argument("--greedy", action="store_true", help="also draw the greedy program (questions no cache holds)")
    c.add_argument("--skip", nargs="*", default=[], help="collect files whose questions are done")
    r = sub.add_parser("report")
    r.add_argument("cache", nargs="+")
    r.add_argument("--programs", nargs="+", required=True, help="sample_order collect files (greedy programs)")
    r.add_argument("--route", type=float, default=0.9, help="seconds of the router's rating, for the share")
    r.add_argument("--bar", type=float, default=0.6, help="keep the greedy answer at this agreement or above")
    args = p.parse_args(argv)
    collect(args) if args.cmd == "collect" else report(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
