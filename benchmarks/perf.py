"""Engine speed benchmarks; prints tables. Not a test.

    python -m benchmarks.perf [--only gen,router,dag,rss] [--reps 3]

- gen: local generation through r2local vs raw llama-cpp-python (same model, threads).
- router: routing (the router's rating, plus a plan when it decomposes) and the agreement samples
  as shares of end-to-end time, cold and warm.
- simple: one-step questions through r2local against the same local model answering directly.
- dag: independent cloud subtasks concurrently vs one after another.
- rss: peak resident memory with the demo pool loaded and one question answered.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from r2local.config import parse_settings
from r2local.fetch import resolve
from r2local.manifests import load_manifests
from r2local.tables import table
from r2local.routing.strategies import forced

EXAMPLE = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"
SECOND = "Sam reads 12 pages a day. How many days does he need for a 150-page book, and how many pages does he read on the last day?"
GEN_PROMPT = [{"role": "user", "content": "Explain in about 120 words why the sky is blue."}]


def _model(name: str) -> Path:
    return resolve(load_manifests()[name])


def bench_gen(reps: int, tokens: int = 128) -> None:
    from llama_cpp import Llama

    from r2local.backends import complete
    from r2local.backends.llamacpp import LlamaCppBackend

    path = _model("qwen2.5-coder-0.5b-instruct")
    raw = Llama(model_path=str(path), n_ctx=2048, n_threads=1, n_threads_batch=1, verbose=False)
    ours = LlamaCppBackend(path, n_ctx=2048, threads=1)
    rows, rates = [], {"raw": [], "r2local": []}
    for rep in range(reps):
        raw.reset()
        start, n = time.perf_counter(), 0
        for chunk in raw.create_chat_completion(GEN_PROMPT, max_tokens=tokens, temperature=0, stream=True):
            n += bool(chunk["choices"][0]["delta"].get("content"))
        rates["raw"].append(n / (time.perf_counter() - start))
        ours.prompt_cache.clear()
        if ours._llm is not None:
            ours._llm.reset()
        result = complete(ours, GEN_PROMPT, max_tokens=tokens)
        rates["r2local"].append(result.usage.output_tokens / (result.latency_ms / 1000))
    for name, values in rates.items():
        rows.append([name, f"{statistics.median(values):.1f}", " ".join(f"{v:.1f}" for v in values)])
    ratio = statistics.median(rates["r2local"]) / statistics.median(rates["raw"])
    print(f"\n## Local generation, Qwen2.5-Coder-0.5B Q4_K_M, 1 thread, {tokens} tokens, greedy, cold prompt\n")
    print(table(["path", "median tok/s", "runs"], rows))
    print(f"\nr2local / raw = {ratio:.3f} (target >= 0.95)")
    raw.close()
    ours.close()


def _demo_engine(home: Path, threads: int, by_path: bool = False, **executor):
    """The demo pool's engine; ``by_path``: its local models given as .gguf paths, not manifest names."""
    from r2local.engine.core import Engine
    from r2local.store.ledger import Ledger

    cfg = {"pool": "demo", "runtime": {"threads": threads, "threads_per_model": 1}, "executor": executor}
    if by_path:
        from r2local import paths

        gguf = {name: str(paths.models_dir() / f"{name}.gguf")
                for name in ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct")}
        cfg["router"] = {"model": gguf["qwen2.5-coder-0.5b-instruct"]}
        cfg["tiers"] = [{"name": "local-small", "backend": "llamacpp", "model": gguf["smollm2-135m-instruct"]},
                        {"name": "local", "backend": "llamacpp", "model": gguf["qwen2.5-coder-0.5b-instruct"]}]
    settings = parse_settings(cfg, home / "config.toml")
    return Engine(settings, ledger=Ledger(home / "r2local.db"))


def _overheads(engine, qid: str) -> dict[str, float]:
    """Milliseconds of one question spent routing, answering (greedy) and voting (extra samples)."""
    out = {"route": 0.0, "answer": 0.0, "vote": 0.0}
    for c in engine.ledger.question(qid)["calls"]:
        ms = c["latency_ms"] or 0.0
        if c["tier"] == "router":
            out["route"] += ms
        elif c["role"] == "sample" or (c["role"] == "program" and (c["sample"] or 0) > 0):
            out["vote"] += ms
        else:
            out["answer"] += ms
    return out


def bench_router(threads: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = _demo_engine(Path(tmp), threads)
        for label, question in (("cold (first question)", EXAMPLE), ("warm (next question)", SECOND), ("warm (example again)", EXAMPLE)):
            result = engine.ask(question, local_only=True)
            o = _overheads(engine, result.question_id)
            total = result.latency_ms
            rows.append([label, result.route, f"{o['route']:.0f}", f"{o['answer']:.0f}", f"{o['vote']:.0f}", f"{total:.0f}",
                         f"{o['route'] / total:.1%}", f"{(o['route'] + o['vote']) / total:.1%}"])
        engine.close()
    print(f"\n## Router and agreement overhead, demo pool, local-only, router threads {threads} (burst), tiers 1 thread\n")
    print(table(["run", "route", "routing ms", "answer ms", "vote ms", "end-to-end ms", "router share",
                 "router + vote share"], rows))
    print("\nrouting = the router's rating (and a plan, when it decomposes); answer = the greedy program or prose and")
    print("its sandbox run; vote = the extra samples the agreement signal costs. Cold includes loading both models.")


SIMPLE = [("What is 9 times 7?", "63"), ("What is 15% of 80?", "12"), ("What is 7 times 8?", "56"),
          ("How many minutes are there in 3 hours and 25 minutes?", "205"), ("What is 144 divided by 12?", "12"),
          ("What is 23 plus 58?", "81"), ("What is 1000 minus 357?", "643"), ("What is half of 96?", "48"),
          ("How many seconds are in 4 minutes?", "240"), ("What is 3 squared plus 4 squared?", "25")]


def bench_simple(threads: int) -> None:
    """One-step questions: r2local (route, program, vote) against Qwen answering them directly."""
    from r2local.backends import complete
    from r2local.engine.prompts import single_messages
    from r2local.tasks.graders import grade

    with tempfile.TemporaryDirectory() as tmp:
        engine = _demo_engine(Path(tmp), threads)
        engine.ask("What is 2 plus 2?", local_only=True)  # load the models before timing
        direct = engine.pool.backend(engine.pool.tier("local"))
        rows, ours, theirs = [], [], []
        for question, gold in SIMPLE:
            start = time.perf_counter()
            d = complete(direct, single_messages(question), max_tokens=384)
            t_direct = time.perf_counter() - start
            r = engine.ask(question, local_only=True)
            ours.append(r.latency_ms / 1000)
            theirs.append(t_direct)
            rows.append([question, gold, "ok" if grade("number", d.text, gold) else "wrong", f"{t_direct:.2f}",
                         "ok" if grade("number", r.answer, gold) else "wrong", f"{r.latency_ms / 1000:.2f}"])
        engine.close()
    print("\n## Simple questions: Qwen2.5-Coder-0.5B directly (prose) vs r2local (demo pool, local-only), warm\n")
    print(table(["question", "gold", "direct", "direct s", "r2local", "r2local s"], rows, right={3, 5}))
    ratio = statistics.median(ours) / statistics.median(theirs)
    right = sum(1 for row in rows if row[4] == "ok")
    print(f"\nmedian: direct {statistics.median(theirs):.2f} s, r2local {statistics.median(ours):.2f} s, "
          f"ratio {ratio:.2f} (target <= 1.5); r2local right {right}/{len(rows)}, "
          f"direct right {sum(1 for row in rows if row[2] == 'ok')}/{len(rows)}")


def _dag_once(tmp: str, url: str, parallel: int, delay: float, proxy) -> float:
    from r2local.engine.core import Engine
    from r2local.store.ledger import Ledger
    from r2local.routing.plan import Plan, Subtask

    plan = Plan(subtasks=[Subtask(id=i, text=f"What is {i * 7} + {i * 11}? Answer with the number.") for i in (1, 2, 3)])
    cfg = {
        "tiers": [
            {"name": "local", "backend": "llamacpp", "model": "smollm2-135m-instruct"},
            {"name": "cloud", "backend": "openai", "base_url": url, "model": "stand-in-cloud", "max_tokens": 48,
             "input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.6},
        ],
        "executor": {"max_parallel": parallel},
    }
    engine = Engine(parse_settings(cfg, Path(tmp) / "config.toml"), ledger=Ledger(Path(tmp) / "db.sqlite"))
    proxy.faults[:] = [f"delay:{delay}"] * 8 if delay else []
    start = time.perf_counter()
    engine.ask("Three sums.", strategy=forced(plan, "cloud"))
    elapsed = time.perf_counter() - start
    engine.close()
    return elapsed


def bench_dag(delays: list[float]) -> None:
    from contextlib import ExitStack

    from tests.support.faultproxy import FaultProxy
    from tests.support.standin import stand_in_server

    key = "sk-bench-0000"
    rows = []
    saved = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = key
    smol = _model("smollm2-135m-instruct")
    try:
        for servers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
                urls = [stack.enter_context(stand_in_server(smol, api_key=key)) for _ in range(servers)]
                proxy = FaultProxy(urls)
                stack.callback(proxy.close)
                for delay in delays:
                    seq = _dag_once(tmp, proxy.url, 1, delay, proxy)
                    conc = _dag_once(tmp, proxy.url, 4, delay, proxy)
                    rows.append([servers, f"{delay:.1f}", f"{seq:.2f}", f"{conc:.2f}", f"{conc / seq:.2f}"])
    finally:
        if saved is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = saved
    print("\n## DAG speed-up: 3 independent cloud subtasks + final synthesis (stand-in servers, SmolLM2)\n")
    print(table(["servers", "added latency s/request", "sequential s", "concurrent s", "ratio"], rows, right={0, 2, 3, 4}))
    print("\ntarget: ratio <= 0.6. Each stand-in server decodes one request at a time; the final")
    print("synthesis must wait for the three steps, so it is on the critical path either way.")


def bench_rss(threads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = _demo_engine(Path(tmp), threads)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        engine.ask(EXAMPLE, local_only=True)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        resident = ", ".join(sorted({b.model for b in engine.pool.resident()}))
        engine.close()
    print("\n## Peak RSS, demo pool loaded (" + resident + ")\n")
    print(table(["when", "peak RSS MiB"], [["process start + imports", f"{before:.0f}"], ["after one question", f"{after:.0f}"]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="gen,router,simple,dag,rss")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="thread budget")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if "rss" in parts:  # first, so peak RSS is not inflated by the other benchmarks
        bench_rss(args.threads)
    if "gen" in parts:
        bench_gen(args.reps)
    if "router" in parts:
        bench_router(args.threads)
    if "simple" in parts:
        bench_simple(args.threads)
    if "dag" in parts:
        bench_dag([0.0, 1.0])


if __name__ == "__main__":
    main()
