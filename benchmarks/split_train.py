"""Can the router learn to find a message's parts better than the rules? SFT, then GRPO, judged held out.

    python -m benchmarks.split_train --sft-steps 80 --grpo-steps 30 --threads 2 --out bench-results/split

The parts route splits a message by rules (`routing/parts.py`). This trains the
router (Qwen2.5-Coder-0.5B, LoRA) as the decomposer instead: the existing
decomposer SFT (`train/decomposer.py`) on generated compound messages, single
questions and dependent ones, then decomposer GRPO (`train/decomposer_grpo.py`)
with a reward from what the parts route measured, and judges rules, the
untrained router, SFT and SFT+GRPO on messages none of them was built on:
compound_prose_b and compound_prose_c (written before any of this ran), plus
single questions of our held-out sets that must stay whole; `--judge` repeats
that on compound_prose_d (the confirmation) and `--runtime` judges the shipped
path on llama.cpp. A stage is adopted only if it splits more held-out compound
messages right than what is shipped, on both rounds, keeping at least 97 % of
single questions whole: SFT was (rules first, the router where they keep a
message whole: `routing/splitter.py`), GRPO on top of it was not
(docs/benchmarks.md, session 31).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from r2local.routing.parts import split_parts
from r2local.routing.splitter import parse_split as parse
from r2local.routing.splitter import split_messages as messages
from r2local.routing.splitter import split_reply as target
from r2local.tasks import compound
from r2local.tasks.wordproblems import generate as word_problems

SETS = Path(__file__).parent / "sets"
# What the parts route cost against all-cloud on the compound bench (n = 100, docs/benchmarks.md): split, 11.2 %;
# kept whole, 65.6 % (and right 15 % of the time against 90 %). A reply that loses parts pays the difference.
PARTS_COST, WHOLE_COST, LAMBDA = 0.112, 0.656, 0.5
HELD_SINGLES = ["one_step_b", "multi_step_b", "short_facts_b", "choice_b", "yes_no_b"]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower())) - {"also", "and", "first", "second", "then"}


def same_part(got: str, want: str) -> bool:
    """Loose text match: the gold part's numbers all there, and most words shared."""
    g, w = _words(got), _words(want)
    numbers = {x for x in w if x[0].isdigit()}
    return numbers <= g and len(g & w) / max(1, len(g | w)) >= 0.5


def matched(got: list[str], want: list[str]) -> int:
    left, hits = list(got), 0
    for w in want:
        hit = next((g for g in left if same_part(g, w)), None)
        if hit is not None:
            left.remove(hit)
            hits += 1
    return hits


def reward(got: list[str] | None, want: list[str]) -> float:
    """Share of the gold parts found, less λ times what the route then costs against all-cloud."""
    if not want:  # one question (or dependent ones): right only when kept whole
        return 1.0 if got == [] else 0.0
    if not got:
        return -LAMBDA * WHOLE_COST
    found = matched(got, want) / len(want)
    cost = PARTS_COST + (1 - found) * (WHOLE_COST - PARTS_COST)
    return found * len(want) / max(len(want), len(got)) - LAMBDA * cost


# -- training messages (generated; never the held-out sets) ------------------------------------------------


def _lc(q: str) -> str:
    return q[0].lower() + q[1:] if q[:2] != q[:2].upper() else q


def _bare(q: str) -> str:
    return q.rstrip("?. ")


JOINS = [
    lambda p: " ".join(f"({i}) {q}" for i, q in enumerate(p, 1)),
    lambda p: "\n".join(f"{i}. {q}" for i, q in enumerate(p, 1)),
    lambda p: " ".join(p),
    lambda p: "\n".join(p),
    lambda p: ", ".join(_bare(q) for q in p[:-1]) + ", and " + _lc(p[-1]),
    lambda p: p[0] + " " + " ".join("Also, " + _lc(q) for q in p[1:]),
    lambda p: "Answer these: " + " ".join(p),
    lambda p: "; ".join(_bare(q) for q in p[:-1]) + "; " + _lc(p[-1]),
]
DEPENDENT = ["What is {a} times {b}, and what is half of that?", "What is {a} plus {b}? Then double it.",
             "Take {a}, add {b}, and divide the result by 2. What do you get?",
             "What is {a} minus {b}, and is that number even?"]


def train_messages(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """(message, gold parts): half compound in several layouts, half single or dependent questions."""
    rng = random.Random(seed)
    words = [w["question"] for w in word_problems(n, seed)]
    out = []
    for i in range(n):
        if i % 2 == 0:
            kinds = rng.sample(sorted(k for k in compound.MAKERS if k != "word"), rng.choice([2, 2, 3]))
            parts = [compound.MAKERS[k](rng)["question"] for k in kinds]
            out.append((rng.choice(JOINS)(parts), parts))
        elif i % 6 == 1:
            out.append((words[i], []))
        elif i % 6 == 3:
            out.append((compound.MAKERS[rng.choice(sorted(compound.MAKERS))](rng)["question"], []))
        else:
            out.append((rng.choice(DEPENDENT).format(a=rng.randint(10, 90), b=rng.randint(2, 30)), []))
    dev = [json.loads(x) for x in (SETS / "compound_prose.jsonl").read_text().splitlines() if x.strip()]
    for d in dev:  # our dev prose set: the rules split all 50 as its golds say, so their parts are the targets
        parts = split_parts(d["question"])
        out.append((d["question"], parts if len(parts) > 1 else []))
    return out


def held_out(singles_per_set: int, compound_sets: tuple[str, ...] = ("compound_prose_b", "compound_prose_c"),
             offset: int = 0) -> list[dict]:
    """{"set", "question", "want": gold parts ([] whole, None: count only), "n": number of parts}."""
    rows = []
    for name in compound_sets:
        for x in (SETS / f"{name}.jsonl").read_text().splitlines():
            d = json.loads(x)
            n = len(json.loads(d["answer"])) if d["grader"] == "parts" else 1
            rows.append({"set": name, "question": d["question"], "n": n,
                         "want": (d.get("meta") or {}).get("parts") if n > 1 else []})
    for name in HELD_SINGLES:
        for x in (SETS / f"{name}.jsonl").read_text().splitlines()[offset:offset + singles_per_set]:
            rows.append({"set": "singles", "question": json.loads(x)["question"], "n": 1, "want": []})
    return rows


def right(row: dict, got: list[str] | None) -> bool:
    if row["n"] == 1:
        return got == []
    if not got or len(got) != row["n"]:
        return False
    return row["want"] is None or matched(got, row["want"]) == row["n"]


# -- judging --------------------------------------------------------------------------------------------------


def judge_rules(rows: list[dict]) -> dict:
    t0, got = time.perf_counter(), []
    for r in rows:
        parts = split_parts(r["question"])
        got.append(parts if len(parts) > 1 else [])
    return _score(rows, got, (time.perf_counter() - t0) / len(rows))


def judge_model(model, tokenizer, rows: list[dict]) -> dict:
    from r2local.train.decomposer_grpo import sample

    t0, got = time.perf_counter(), []
    for r in rows:
        _, (reply,) = sample(model, tokenizer, messages(r["question"]), 1, temperature=1.0, max_new_tokens=96,
                             greedy=True)
        got.append(parse(tokenizer.decode(reply, skip_special_tokens=True)))
    return {**_score(rows, got, (time.perf_counter() - t0) / len(rows)), "unparsed": sum(g is None for g in got)}


def rules_then_model(rows: list[dict], rules: dict, model: dict) -> dict:
    """The rules' split where they find parts, the model's where they keep the message whole."""
    got = [g if g else m for g, m in zip(rules["got"], model["got"])]
    return {**_score(rows, got, model["ms"] / 1000), "unparsed": "-"}


def _score(rows: list[dict], got: list[list[str] | None], seconds: float) -> dict:
    out: dict = {"ms": round(seconds * 1000, 1), "got": got}
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [right(r, g) for r, g in zip(rows, got) if r["set"] == name]
        out[name] = (sum(mine), len(mine))
    return out


def table(results: dict[str, dict]) -> str:
    sets = [k for k in next(iter(results.values())) if k not in ("ms", "got", "unparsed")]
    lines = ["| splitter | " + " | ".join(sets) + " | per message | unparsed |", "|---" * (len(sets) + 3) + "|"]
    for name, r in results.items():
        cells = [f"{r[k][0]}/{r[k][1]}" for k in sets]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['ms']:.0f} ms | {r.get('unparsed', '-')} |")
    return "\n".join(lines)


def adopt(results: dict[str, dict], candidate: str) -> bool:
    def compound_right(r: dict) -> int:
        return sum(v[0] for k, v in r.items() if k.startswith("compound"))

    singles = results[candidate].get("singles", (0, 0))  # judged on compound sets alone: nothing to keep whole
    return compound_right(results[candidate]) > compound_right(results["rules"]) and singles[0] >= 0.97 * singles[1]


# -- the run ----------------------------------------------------------------------------------------------------


def _router_path() -> Path:
    from r2local.paths import models_dir

    return models_dir() / "qwen2.5-coder-0.5b-instruct.gguf"  # `r2local --pool demo models pull` puts it there


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=400, help="generated training messages (plus the 50 dev ones)")
    ap.add_argument("--sft-steps", type=int, default=80)
    ap.add_argument("--grpo-steps", type=int, default=30)
    ap.add_argument("--kl", type=float, default=0.05, help="GRPO KL weight to the untrained router")
    ap.add_argument("--singles", type=int, default=12, help="single questions per held-out set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench-results/split"))
    ap.add_argument("--judge", default="", help="only judge these saved adapters (comma-separated folders)")
    ap.add_argument("--compound", default="compound_prose_d", help="with --judge: compound sets to judge on")
    ap.add_argument("--offset", type=int, default=12, help="with --judge: first single question taken per set")
    ap.add_argument("--runtime", type=Path, help="judge the product's path (rules, then this GGUF split adapter "
                    "on llama.cpp where a message may hold several asks) on every held-out set")
    ap.add_argument("--from-sft", type=Path, help="skip SFT: run GRPO on this saved SFT adapter, then judge it")
    ap.add_argument("--grpo-pool", choices=["all", "compound"], default="all",
                    help="GRPO prompts: every training message, or only those with parts (where replies vary)")
    ap.add_argument("--grpo-temperature", type=float, default=1.0)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    return a


def main(argv: list[str] | None = None) -> None:
    a = _args(argv)
    if a.judge:
        return judge_saved(a)
    if a.from_sft:
        return grpo_again(a)
    if a.runtime:
        return judge_runtime(a)
    return train_and_judge(a)


def train_and_judge(a: argparse.Namespace) -> None:
    """Rules and the untrained router, then SFT, then GRPO on top, each judged on compound_prose_b/c and singles."""
    from r2local.train import decomposer
    from r2local.train.common import load_router
    from r2local.train.data import TextExample

    rows, train = held_out(a.singles), train_messages(a.train, seed=1)
    held = {r["question"] for r in rows}
    train = [t for t in train if t[0] not in held]
    router = load_router(_router_path())
    results = {"rules": judge_rules(rows), "router, untrained": judge_model(router.model, router.tokenizer, rows)}
    print(table(results), flush=True)
    examples = [TextExample(messages(q), target(parts)) for q, parts in train]
    t0 = time.perf_counter()
    sft = decomposer.train(router, examples, decomposer.DecomposerArgs(steps=a.sft_steps, threads=a.threads),
                           a.out / "sft", eval_examples=examples[:16], overwrite=True,
                           progress=lambda s, m: print(f"sft {s} {m}", flush=True) if s % 20 == 0 else None)
    sft_s = time.perf_counter() - t0
    results["router, SFT"] = judge_model(sft.model, router.tokenizer, rows)
    print(table(results), flush=True)
    grpo, grpo_s = _grpo(a, sft.model, router.tokenizer, train, a.out / "grpo")
    results["router, SFT + GRPO"] = judge_model(sft.model, router.tokenizer, rows)
    for name in ["router, SFT", "router, SFT + GRPO"]:
        results[f"rules, then {name}"] = rules_then_model(rows, results["rules"], results[name])
    _report(a, results, train, sft, grpo, sft_s, grpo_s)


def _grpo(a, model, tokenizer, train, out: Path):
    from r2local.train import decomposer_grpo

    pool = [t for t in train if t[1]] if a.grpo_pool == "compound" else train
    golds = [parts for _, parts in pool]
    t0 = time.perf_counter()
    run = decomposer_grpo.train(
        model, tokenizer, [messages(q) for q, _ in pool], lambda i, text: reward(parse(text), golds[i]),
        decomposer_grpo.DecomposerGrpoArgs(steps=a.grpo_steps, threads=a.threads, kl=a.kl,
                                           temperature=a.grpo_temperature),
        progress=lambda s, m: print(f"grpo {s} {m}", flush=True))
    model.save_pretrained(str(out), save_embedding_layers=False)
    return run, time.perf_counter() - t0


def grpo_again(a) -> None:
    """GRPO from a saved SFT adapter (other prompts or temperature), judged on the first held-out sets."""
    from peft import PeftModel

    from r2local.train.common import load_router

    rows, train = held_out(a.singles), train_messages(a.train, seed=1)
    held = {r["question"] for r in rows}
    train = [t for t in train if t[0] not in held]
    router = load_router(_router_path())
    model = PeftModel.from_pretrained(router.model, str(a.from_sft), is_trainable=True)
    run, seconds = _grpo(a, model, router.tokenizer, train, a.out / "grpo2")
    results = {"rules": judge_rules(rows), "router, SFT + GRPO again": judge_model(model, router.tokenizer, rows)}
    results["rules, then router, SFT + GRPO again"] = rules_then_model(rows, results["rules"],
                                                                       results["router, SFT + GRPO again"])
    print(table(results))
    curve = [v for _, v in run.curves.get("reward_mean", [])]
    print(f"GRPO {run.steps} steps {seconds / 60:.1f} min, {run.skipped} groups all alike; reward by step: "
          + " ".join(f"{v:.2f}" for v in curve))
    (a.out / "split_grpo2.json").write_text(json.dumps({"results": results, "grpo_curve": run.curves}, indent=1))


def judge_runtime(a) -> None:
    """What `RoutePlanner` does, on llama.cpp at 1 thread: rules; where they keep a message whole and it may
    hold several asks, the router under the split adapter (grounded parts only). Generated word problems
    show how often a single question pays the extra call."""
    from r2local.backends import complete
    from r2local.backends.llamacpp import LlamaCppBackend
    from r2local.routing.splitter import MAX_TOKENS, grounded, may_have_parts

    rows = held_out(a.singles, ("compound_prose_b", "compound_prose_c", "compound_prose_d"))
    rows += [{"set": "generated word problems", "question": w["question"], "n": 1, "want": []}
             for w in word_problems(200, 0)]
    backend = LlamaCppBackend(_router_path(), threads=1)
    got, calls = [], []
    for r in rows:
        parts = split_parts(r["question"])
        if len(parts) == 1 and may_have_parts(r["question"]):
            t0 = time.perf_counter()
            backend.set_adapter(a.runtime)
            reply = complete(backend, messages(r["question"]), max_tokens=MAX_TOKENS, temperature=0.0).text
            backend.set_adapter(None)
            calls.append(time.perf_counter() - t0)
            found = parse(reply) or []
            parts = found if grounded(found, r["question"]) else []
        got.append(parts if len(parts) > 1 else [])
    results = {"rules, then the split adapter (llama.cpp)": _score(rows, got, sum(calls) / len(rows)),
               "rules": judge_rules(rows)}
    print(table(results))
    gated = {name: sum(1 for r in rows if r["set"] == name and len(split_parts(r["question"])) == 1
                       and may_have_parts(r["question"])) for name in dict.fromkeys(r["set"] for r in rows)}
    print("messages that paid the split call:", ", ".join(f"{k} {v}" for k, v in gated.items()),
          f"; median call {sorted(calls)[len(calls) // 2]:.2f} s" if calls else "")
    (a.out / "split_runtime.json").write_text(json.dumps(results, indent=1))


def judge_saved(a) -> None:
    """Saved adapters, the untrained router and the rules (alone and first) on other held-out messages."""
    from peft import PeftModel

    from r2local.train.common import load_router, torch_threads

    rows = held_out(a.singles, tuple(a.compound.split(",")), a.offset)
    router = load_router(_router_path())
    results = {"rules": judge_rules(rows)}
    with torch_threads(a.threads):
        results["router, untrained"] = judge_model(router.model, router.tokenizer, rows)
        for folder in a.judge.split(","):
            model = PeftModel.from_pretrained(router.model, folder)
            results[f"router + {Path(folder).name}"] = judge_model(model, router.tokenizer, rows)
            router.model = model.unload()
            results[f"rules, then router + {Path(folder).name}"] = rules_then_model(
                rows, results["rules"], results[f"router + {Path(folder).name}"])
            print(table(results), flush=True)
    for name in results:
        if name != "rules":
            print(f"{name}: {'adopt' if adopt(results, name) else 'not adopted'}")
    (a.out / "split_judge.json").write_text(json.dumps(results, indent=1))


def _report(a, results, train, sft, grpo, sft_s, grpo_s) -> None:
    print()
    print(table(results))
    print(f"\ntraining messages: {len(train)}; SFT {a.sft_steps} steps {sft_s / 60:.1f} min "
          f"(target loss {sft.curves['eval_target_loss'][0][1]:.3f} -> {sft.curves['eval_target_loss'][-1][1]:.3f}); "
          f"GRPO {a.grpo_steps} steps {grpo_s / 60:.1f} min, {grpo.skipped} groups all alike (no update)")
    curve = [v for _, v in grpo.curves.get("reward_mean", [])]
    tenth = max(1, len(curve) // 4)
    print("GRPO group reward, mean per quarter:",
          ", ".join(f"{sum(curve[i:i + tenth]) / len(curve[i:i + tenth]):.3f}" for i in range(0, len(curve), tenth)))
    for name in results:
        if name != "rules":
            print(f"{name}: {'adopt' if adopt(results, name) else 'not adopted'} (rule: more compound messages split "
                  f"right than the rules on both held-out sets together, singles kept whole >= 97 %)")
    (a.out / "split_train.json").write_text(json.dumps({"results": results, "grpo_curve": grpo.curves,
                                                        "sft_curve": sft.curves}, indent=1))


if __name__ == "__main__":
    main()
