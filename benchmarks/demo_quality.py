"""How often the demo pool is right, on this build: `python -m benchmarks.demo_quality`.

The quality checks that used to be tests and depend on the exact greedy output of
llama.cpp (which moves with the build's SIMD kernels): the demo pool's answers to
simple arithmetic (whole question on Qwen2.5-Coder-0.5B, as a program), whether
the router's plan for a multi-step question makes sense, and whether its scores
rank a trivial step below a harder one. The tests keep what any correct build
satisfies (tests/test_answers_qwen.py, tests/test_router_qwen.py). Prints a
Markdown table; uses the models in $R2LOCAL_MODELS_DIR (or your model store).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

SIMPLE = [("What is 9 times 7?", "63"), ("How many minutes are there in 3 hours and 25 minutes?", "205"),
          ("What is 15% of 80?", "12"), ("What is 7 times 8?", "56"),
          ("A film starts at 13:40 and lasts 95 minutes. At what time does it end?", "15:15")]
TRAIN = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"


def arithmetic(home: Path) -> list[tuple[str, str, bool]]:
    """(check, what came out, passed) for each simple question, answered all-local."""
    from r2local.config import parse_settings
    from r2local.engine.core import Engine
    from r2local.tasks.graders import grade

    cfg = {"pool": "demo", "runtime": {"threads": 2}, "learning": {"shadow_local": 0.0}}
    engine = Engine(parse_settings(cfg, home / "config.toml"), ledger=None)
    try:
        rows = []
        for question, gold in SIMPLE:
            result = engine.ask(question, local_only=True)
            node = result.nodes[-1]
            rows.append((f"{question} = {gold}", f"{result.answer!r} ({node.status}, {node.confidence})",
                         grade("number", result.answer, gold)))
        return rows
    finally:
        engine.close()


class _OneRouter:
    """The pool's part the router client uses: its resident router model."""

    def __init__(self, backend) -> None:
        self.backend = backend

    def router(self):
        return self.backend


def router(home: Path) -> list[tuple[str, str, bool]]:
    """The plan for a multi-step question mentions its data and chains its steps; scores rank."""
    import threading

    from r2local import fetch
    from r2local.backends.llamacpp import LlamaCppBackend
    from r2local.config import RouterSection
    from r2local.engine.recorder import LedgerRecorder
    from r2local.manifests import load_manifests
    from r2local.routing.router import RouterClient
    from r2local.store.ledger import Ledger

    qwen = LlamaCppBackend(fetch.resolve(load_manifests()["qwen2.5-coder-0.5b-instruct"]), model="qwen",
                           n_ctx=2048, threads=1)
    ledger = Ledger(home / "router.db")
    section = RouterSection(model="qwen2.5-coder-0.5b-instruct", max_subtasks=6, plan_max_tokens=320)
    client = RouterClient(_OneRouter(qwen), section, LedgerRecorder(ledger))  # type: ignore[arg-type]
    try:
        plan = client.plan(None, TRAIN, threading.Event())
        texts = " ".join(s.text for s in plan.subtasks)
        sense = (2 <= len(plan.subtasks) <= 6 and any(s.depends_on for s in plan.subtasks)
                 and any(x in texts for x in ("9:40", "2 h 35", "35 min")))
        short = client.plan(None, "What is the capital of France?", threading.Event())
        trivial = client.score(None, 1, TRAIN, "What is 2 + 2?")
        harder = client.score(None, 2, TRAIN, "Compute the number of minutes between noon and 12:15.")
        ranked = trivial is not None and harder is not None and trivial.difficulty < harder.difficulty
        shown = f"{trivial.difficulty:.3f} < {harder.difficulty:.3f}" if trivial and harder else "not rated"
        return [("multi-step plan makes sense", f"{len(plan.subtasks)} steps: {texts[:60]!r}", sense),
                ("a simple question gets <= 2 steps", f"{len(short.subtasks)} steps", len(short.subtasks) <= 2),
                ("trivial step scored below a harder one", shown, ranked)]
    finally:
        ledger.close()
        qwen.close()


def main(argv: list[str] | None = None) -> None:
    """Run the demo pool's quality checks and print how many pass on this build."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.demo_quality", description=main.__doc__)
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="r2-demo-quality-") as home:
        rows = arithmetic(Path(home)) + router(Path(home))
    print("| check | got | pass |\n|---|---|---|")
    for check, got, ok in rows:
        print(f"| {check} | {got} | {'yes' if ok else 'no'} |")
    print(f"\n{sum(ok for *_, ok in rows)} of {len(rows)} pass on this build.")


if __name__ == "__main__":
    main()
