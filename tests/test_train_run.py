"""`r2local train` end to end on SmolLM2 as the router: labels from a bench
ledger, head + SFT + GRPO, GGUF/MLX export, held-out comparison through
llama.cpp, versions kept, adopt and rollback, and the engine routing with the
adopted adapter (every router call names it)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from r2local.config import parse_settings
from r2local.engine.core import Engine
from r2local.errors import Cancelled
from r2local.store.ledger import Ledger
from r2local.store import adapters, training
from r2local.train.data import TrainError
from r2local.train.run import TrainArgs, run

from .conftest import plumbing_config, to_toml, write_config
from .test_calibrate_policy import graded



def bench_ledger(home, n=48):
    """Short questions the local tier gets right; long ones only the cloud does."""
    bench = Ledger(home / "bench.db")
    for i in range(n):
        hard = i % 2 == 1
        text = (f"A train leaves at {8 + i % 4}:{10 + i % 40} and stops {3 + i % 5} times for {5 + i} minutes each, "
                f"then waits {i} minutes. How many minutes after noon does it arrive?" if hard else f"What is {i} plus {i + 1}?")
        probs = {"easy": 0.5, "medium": 0.3, "hard": 0.2}
        graded(bench, text, "r2local", "local", not hard, conf=1.0, probs=probs)
        graded(bench, text, "all-small", "local-small", False)
        graded(bench, text, "all-local", "local", not hard, conf=1.0)
        graded(bench, text, "all-cloud", "cloud", True)
    bench.close()


def settings(home):
    cfg = plumbing_config("http://127.0.0.1:9/v1")
    write_config(home, to_toml(cfg))
    return parse_settings(cfg, home / "config.toml")


def test_too_few_labels_names_the_fix(r2home):
    with pytest.raises(TrainError) as info:
        run(settings(r2home), TrainArgs(sft_steps=1, grpo_steps=1))
    assert "found 0 labelled questions" in info.value.message and "r2local bench" in info.value.fix
    out = subprocess.run([sys.executable, "-m", "r2local", "train", "run"], capture_output=True, text=True)
    assert out.returncode == 1 and "r2local bench --dataset generated" in out.stderr


def test_cancel_keeps_nothing(r2home):
    bench_ledger(r2home)
    cancel = threading.Event()

    def progress(phase, step, total, metrics):
        if phase == "train" and step >= 1:
            cancel.set()

    with pytest.raises(Cancelled):
        run(settings(r2home), TrainArgs(sft_steps=4, grpo_steps=4, threads=1), progress=progress, cancel=cancel)
    ledger = Ledger()
    assert adapters.versions(ledger) == [] and not list(adapters.root().glob("v*"))
    assert [r.status for r in training.runs(ledger)] == ["cancelled"]


@pytest.mark.slow
def test_train_export_compare_adopt_rollback_and_route_with_it(r2home):
    bench_ledger(r2home)
    s = settings(r2home)
    report = run(s, TrainArgs(sft_steps=12, grpo_steps=8, threads=1, min_examples=20, adopt=False))
    folder = adapters.root() / f"v{report.version}"
    assert {p.name for p in folder.iterdir()} >= {"peft", "adapter.gguf", "mlx", "head.json", "report.json"}
    assert report.counts["train"]["questions"] + report.counts["held_out"]["questions"] == 48
    names = set(report.comparison["allocators"])
    assert names == {"untrained", "head", "lora"}
    # llama.cpp with the exported GGUF adapter reproduces PyTorch with the PEFT one.
    assert report.export_check["mean_kl"] < 0.02 and report.export_check["label_agreement"] >= 0.9
    assert report.curves and "eval_greedy_reward" in report.curves
    ledger = Ledger()
    [version] = adapters.versions(ledger)
    assert version.status in ("candidate", "rejected") and adapters.active(ledger) is None
    assert [(r.status, r.adapter_id) for r in training.runs(ledger)][-1] == ("done", version.id)
    ledger.close()
    status = subprocess.run([sys.executable, "-m", "r2local", "train", "status", "--json"], capture_output=True, text=True)
    assert status.returncode == 0 and json.loads(status.stdout)["labelled_questions"] == 48

    adopted = subprocess.run([sys.executable, "-m", "r2local", "train", "adopt", "v1"], capture_output=True, text=True)
    assert adopted.returncode == 0 and "router@v1 is active" in adopted.stdout
    engine = Engine(s)
    assert engine.adapter_id == "router@v1" and engine.settings.router.adapter.endswith("v1/adapter.gguf")
    result = engine.ask("What is 2 plus 3?", local_only=True)
    route = [c for c in engine.ledger.question(result.question_id)["calls"] if c["role"] == "route"]
    assert route and route[0]["adapter"] == "router@v1"
    engine.close()
    back = subprocess.run([sys.executable, "-m", "r2local", "train", "rollback"], capture_output=True, text=True)
    assert back.returncode == 0 and "runs as shipped" in back.stdout
    assert Engine(s).adapter_id is None


def plans_ledger(home, n=12):
    """Decomposed questions graded right: their plans are what the decomposer learns."""
    from r2local.engine.events import Node
    from r2local.store.records import Feedback
    from r2local.vocab import FeedbackSource, Verdict

    bench = Ledger(home / "bench.db")
    for i in range(n):
        q = f"Sam buys {i + 2} packs of {i + 3} pens and gives {i} away. How many pens are left?"
        plan = {"subtasks": [{"id": 1, "text": f"Compute {i + 2} x {i + 3}.", "depends_on": []},
                             {"id": 2, "text": f"Subtract {i} from the result.", "depends_on": [1]}]}
        qid = bench.start_question(q, local_only=True, pool="demo", strategy="plan-local")
        bench.update_question(qid, plan_json=json.dumps(plan), route="decompose")
        for s in plan["subtasks"]:
            bench.save_node(qid, Node(s["id"], s["text"], s["depends_on"], tier="local", status="done", answer="x"))
        bench.save_node(qid, Node(3, "final", [1, 2], kind="final", tier="local", status="done", answer="y"))
        bench.add_feedback(Feedback(qid, Verdict.GOOD, FeedbackSource.BENCH, tier="local"))
    bench.close()


@pytest.mark.slow
def test_decomposer_sft_from_right_plans_and_its_use_while_planning(r2home):
    from r2local.routing.strategies import planned
    from r2local.train.plans import train_plans

    s = settings(r2home)
    with pytest.raises(TrainError, match="plans that led to a right answer"):
        train_plans(s, 2)
    plans_ledger(r2home)
    out = train_plans(s, 8, threads=1)
    assert out["adapter_id"] == "decomposer@v1" and out["plans"] == 12
    assert out["better"] and out["target_loss_after"] < out["target_loss_before"]
    assert (adapters.root("decomposer") / "v1" / "adapter.gguf").is_file()
    adopted = subprocess.run([sys.executable, "-m", "r2local", "train", "adopt", "decomposer@v1"],
                             capture_output=True, text=True)
    assert adopted.returncode == 0, adopted.stderr
    engine = Engine(s)
    assert engine.router.plan_adapter[0] == "decomposer@v1"
    result = engine.ask("Ann has 3 boxes of 4 eggs and uses 5. How many eggs are left?", local_only=True,
                        strategy=planned())
    calls = engine.ledger.question(result.question_id)["calls"]
    plan = [c for c in calls if c["role"] == "plan"]
    rates = [c for c in calls if c["role"] == "allocate"]
    assert plan and plan[0]["adapter"] == "decomposer@v1" and plan[0]["status"] == "ok"
    assert rates and all(c["adapter"] is None for c in rates)  # the allocator rates without it
    engine.close()
