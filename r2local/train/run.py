"""`r2local train run`: teach the router from the user's own ledgers, on the device.

1. Labels: every graded question in the main ledger and the bench ledger
   beside it (bench grades, feedback, shadow runs, escalations), split by
   question into a training set and a held-out set.
2. A classifier head on cheap features and the router's hidden state: the
   baseline a LoRA run must beat. Then allocator SFT on the best label and
   one-token GRPO (reward = right - lam x cost) with LoRA on the router.
3. Export the adapter for llama.cpp (GGUF) and mlx-lm; score the held-out
   questions the way inference will (llama.cpp with the GGUF adapter).
4. Adopt it only if it beats the active version (or the plain router) on the
   held-out set: a higher greedy reward with a paired sign test p < 0.05, and
   no higher cloud cost at equal accuracy, and not behind the classifier head.
   Every version is kept; the route
   policy is recalibrated on the adopted adapter's ratings.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from r2local import paths
from r2local.config import Settings
from r2local.errors import Cancelled
from r2local.store.ledger import Ledger, new_id
from r2local.routing.outcomes import Row
from r2local.pool import Pool
from r2local.store import adapters, training
from r2local.train.data import TrainError
from r2local.train.labels import (
    complete,
    counts,
    examples,
    gather,
    label_tiers,
    lam_from_budget,
    split,
)

Progress = Callable[[str, int, int, dict[str, float]], None]  # (phase, step, total, metrics)


@dataclass
class TrainArgs:
    sft_steps: int = field(default=40, metadata={"help": "SFT steps on the best label, before GRPO."})
    grpo_steps: int = field(default=200, metadata={"help": "One-token GRPO steps."})
    holdout: float = field(default=0.25, metadata={"help": "Share of questions held out for the comparison."})
    min_examples: int = field(default=40, metadata={"help": "Labelled questions needed before training starts."})
    cloud_share: float = field(default=0.3, metadata={"help": "Operating point: share of questions to the cloud."})
    lam: float | None = field(default=None, metadata={"help": "Cost weight in the reward (None: from the budget)."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads for torch (None: runtime.threads)."})
    adopt: bool = field(default=True, metadata={"help": "Adopt the new version when it is better."})
    seed: int = field(default=0, metadata={"help": "Seed for LoRA init, batches and sampling."})


@dataclass
class TrainReport:
    run_id: str
    version: int | None = None
    adapter_id: str | None = None
    adopted: bool = False
    better: bool = False  # beat the reference on the held-out questions
    why: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    lam: float = 0.5
    comparison: dict[str, Any] = field(default_factory=dict)
    export_check: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def labelled(settings: Settings) -> tuple[list[Row], dict[str, str]]:
    """Questions with outcomes for the first local tier, from the main and the bench ledger."""
    tiers = Pool(settings, fetch=False).tiers
    mapping = label_tiers(tiers)
    ledgers = _ledgers()
    try:
        rows = gather(ledgers, tiers)
    finally:
        for ledger in ledgers:
            ledger.close()
    return [r for r in rows if complete(r, mapping) is not None], mapping


def _ledgers() -> list[Ledger]:
    main = Ledger()
    bench = paths.user_dir() / "bench.db"
    return [main] + ([Ledger(bench)] if bench.is_file() else [])


def run(settings: Settings, args: TrainArgs, *, rows: tuple[list[Row], list[Row]] | None = None,
        progress: Progress | None = None, cancel: threading.Event | None = None) -> TrainReport:
    """Train, export, evaluate and (maybe) adopt a router adapter; see the module docstring.

    Args:
        settings: validated config (router model, tiers, budget, thread budget).
        args: what to train and how.
        rows: (training, held-out) questions, when a caller chose them (a benchmark);
            default: every labelled question in the ledgers, split by question.
        progress: called with (phase, step, total, metrics) as the run goes.
        cancel: set it to stop; nothing is kept and the active adapter is untouched.
    """
    cancel = cancel or threading.Event()
    say = progress or (lambda *a: None)
    found, mapping = labelled(settings)
    train_rows, held = rows if rows is not None else split(found, args.holdout)
    if len(train_rows) + len(held) < args.min_examples or not held:
        raise TrainError(f"found {len(found)} labelled questions; training needs {args.min_examples}",
                         fix="run `r2local bench --dataset generated --n 200` first (it grades every tier's answer), "
                             "then `r2local train run` again")
    main = Ledger()
    report = TrainReport(new_id(), counts={"train": counts(train_rows), "held_out": counts(held)})
    report.lam = args.lam if args.lam is not None else lam_from_budget(main, settings.budget.daily_usd)
    _start_run(main, report, settings, args)
    try:
        _train_and_judge(settings, args, report, mapping, train_rows, held, main, say, cancel)
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, (Cancelled, KeyboardInterrupt)) else "failed"
        _finish_run(main, report, status, error=str(exc)[:500])
        main.close()
        raise
    _finish_run(main, report, "done")
    main.close()
    return report


def _train_and_judge(settings: Settings, args: TrainArgs, report: TrainReport, mapping: dict[str, str],
                     train_rows: list[Row], held: list[Row], main: Ledger, say: Progress, cancel: threading.Event) -> None:
    from r2local.train import allocator
    from r2local.train.common import load_router
    from r2local.train.head import HeadBaseline, hidden_features

    ex_train = examples(train_rows, mapping, report.lam)
    ex_held = examples(held, mapping, report.lam)
    threads = args.threads or settings.runtime.threads
    gguf = Pool(settings, fetch=False).model_file(settings.router.model)
    report.version = adapters.next_version(main)
    folder = adapters.root() / f"v{report.version}"
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        say("load", 0, 1, {})
        router = load_router(gguf)
        head = HeadBaseline.fit(ex_train, hidden=hidden_features(router, [e.messages for e in ex_train], threads=threads))
        head.save(tmp / "head.json")
        head_held = head.predict_proba(ex_held, hidden_features(router, [e.messages for e in ex_held], threads=threads))
        report.seconds["head"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        total = args.sft_steps + args.grpo_steps
        alloc_args = allocator.AllocatorArgs(sft_steps=args.sft_steps, grpo_steps=args.grpo_steps, seed=args.seed,
                                             threads=threads)
        result = allocator.train(router, ex_train, alloc_args, tmp / "peft", eval_examples=ex_held,
                                 progress=lambda step, m: say("train", step, total, m), cancel=cancel)
        if result.cancelled:
            raise Cancelled("training was cancelled; nothing was kept")
        report.seconds["train"] = time.perf_counter() - t1
        report.curves = {k: v for k, v in result.curves.items()}
        torch_held = _torch_probs(result.policy, ex_held)
        _export(tmp, gguf)
        say("evaluate", 0, 1, {})
        _judge(settings, args, report, mapping, held, ex_held, head_held, torch_held, tmp, gguf, main, threads)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    status = adapters.CANDIDATE if report.better else adapters.REJECTED
    report.adapter_id = adapters.register(main, version=report.version, kind="allocator-lora",
                                          base_model=settings.router.model, folder=folder, metrics=_summary(report),
                                          run_id=report.run_id, status=status)
    if report.adopted:
        adapters.adopt(main, report.adapter_id)
        _recalibrate(settings, main, gguf, folder / "adapter.gguf", threads)


def _export(folder: Path, gguf: Path) -> None:
    from r2local.train.export import peft_to_gguf, peft_to_mlx

    peft_to_gguf(folder / "peft", gguf, folder / "adapter.gguf")
    peft_to_mlx(folder / "peft", folder / "mlx")


def _torch_probs(policy: Any, ex: list) -> list[dict[str, float]]:
    import math

    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(ex), 16):
            for row in policy.label_logprobs([e.messages for e in ex[start:start + 16]]).tolist():
                out.append({label: math.exp(v) for label, v in zip(policy.labels, row)})
    return out


def _judge(settings: Settings, args: TrainArgs, report: TrainReport, mapping: dict[str, str], held: list[Row],
           ex_held: list, head_held: Any, torch_held: list[dict[str, float]], folder: Path, gguf: Path,
           main: Ledger, threads: int) -> None:
    from r2local.backends.llamacpp import LlamaCppBackend
    from r2local.train.evaluate import compare, score_rows

    backend = LlamaCppBackend(gguf, n_ctx=2048, threads=threads)
    try:
        scored = {"untrained": score_rows(backend, held, None),
                  "head": [dict(zip(("easy", "medium", "hard"), map(float, p))) for p in head_held],
                  "lora": score_rows(backend, held, folder / "adapter.gguf")}
        current = adapters.active(main, base_model=settings.router.model)
        if current is not None and Path(current.path).is_file():
            scored["active"] = score_rows(backend, held, Path(current.path))
    finally:
        backend.close()
    reference = "active" if "active" in scored else "untrained"
    report.comparison = compare(held, ex_held, scored, mapping, reference=reference, share=args.cloud_share,
                                tau=settings.executor.agree_below)
    report.export_check = _kl(torch_held, scored["lora"])
    lora, ref = report.comparison["allocators"]["lora"], report.comparison["allocators"][reference]
    head = report.comparison["allocators"].get("head")
    beats_ref = is_better(lora, ref)
    behind_head = head is not None and not not_behind(lora, head)
    better = beats_ref and not behind_head
    report.better, report.adopted = better, better and args.adopt
    verdict = ("better, adopted" if report.adopted else "better; kept as a candidate (--no-adopt)" if better
               else "behind the classifier-head baseline, kept but not adopted" if beats_ref
               else "not better, kept but not adopted")
    report.why = (f"greedy reward {lora['greedy_reward']:.3f} vs {ref['greedy_reward']:.3f} ({reference})"
                  + (f", {head['greedy_reward']:.3f} (head)" if head else "")
                  + f", sign test p = {lora['vs_reference']['p']:.3g}; cloud cost at equal accuracy "
                  f"{_usd(lora['cost_at_equal_accuracy_usd'])} vs {_usd(ref['cost_at_equal_accuracy_usd'])}"
                  + (f", {_usd(head['cost_at_equal_accuracy_usd'])} (head)" if head else "") + f": {verdict}")
    (folder / "report.json").write_text(json.dumps(report.to_json(), indent=2, default=str))


def _cost_ok(new: dict[str, Any], ref: dict[str, Any]) -> bool:
    """Cloud cost at the reference's accuracy not higher. None = never reaches that accuracy;
    $0 is a real cost (it reaches it with no cloud at all), not a missing one."""
    new_cost, ref_cost = new["cost_at_equal_accuracy_usd"], ref["cost_at_equal_accuracy_usd"]
    return new_cost is not None and (ref_cost is None or new_cost <= ref_cost + 1e-12)


def is_better(new: dict[str, Any], ref: dict[str, Any]) -> bool:
    """A higher greedy reward (paired sign test p < 0.05) and no higher cloud cost at equal accuracy."""
    return new["greedy_reward"] > ref["greedy_reward"] and new["vs_reference"]["p"] < 0.05 and _cost_ok(new, ref)


def not_behind(new: dict[str, Any], head: dict[str, Any]) -> bool:
    """The LoRA must match the classifier-head baseline it is meant to beat: reward and cost."""
    return new["greedy_reward"] >= head["greedy_reward"] - 1e-12 and _cost_ok(new, head)


def _kl(torch_probs: list[dict[str, float]], llama_probs: list[dict[str, float]]) -> dict[str, Any]:
    """How closely llama.cpp with the exported GGUF adapter reproduces PyTorch with the PEFT one."""
    import math

    kls, same = [], 0
    for p, q in zip(torch_probs, llama_probs):
        kls.append(sum(p[k] * (math.log(max(p[k], 1e-12)) - math.log(max(q.get(k, 0.0), 1e-12))) for k in p))
        same += max(p, key=p.__getitem__) == max(q, key=q.__getitem__)
    n = max(1, len(kls))
    return {"mean_kl": sum(kls) / n, "max_kl": max(kls, default=0.0), "label_agreement": same / n, "n": len(kls)}


def adopt(settings: Settings, ref: str, *, threads: int | None = None) -> adapters.AdapterVersion:
    """Make adapter ``ref`` active and refit the route policy on its ratings (CLI, app)."""
    main = Ledger()
    try:
        row = adapters.adopt(main, ref)
        gguf = Pool(settings, fetch=False).model_file(settings.router.model)
        _recalibrate(settings, main, gguf, Path(row.path), threads or settings.runtime.threads)
        return row
    finally:
        main.close()


def _recalibrate(settings: Settings, main: Ledger, gguf: Path, adapter: Path, threads: int) -> None:
    """The route policy's bands, refitted on the adopted adapter's ratings of every labelled question."""
    from r2local.backends.llamacpp import LlamaCppBackend
    from r2local.routing.outcomes import route_outcomes, votes
    from r2local.routing.thresholds import difficulty
    from r2local.routing.policy import first_local, fit_policy
    from r2local.train.evaluate import score_rows

    rows, _ = labelled(settings)
    backend = LlamaCppBackend(gguf, n_ctx=2048, threads=threads, adapter=adapter)
    try:
        probs = score_rows(backend, rows, None)
    finally:
        backend.close()
    for row, p in zip(rows, probs):
        row.probs, row.difficulty = p, difficulty(p)
    cal = main.latest_calibration()
    tau = (cal or {}).get("policy", {}).get("agree_below") if cal and cal.get("policy") else None
    tiers = Pool(settings, fetch=False).tiers
    found = votes(rows, first_local(tiers).name, [t for t in tiers if not t.is_local][-1].name) \
        if any(not t.is_local for t in tiers) else []
    policy = fit_policy(route_outcomes(rows), tiers, agree_below=tau, votes=found,
                        cloud_share=cal["target_cloud_share"] if cal else None,
                        source=f"recalibrated on {len(rows)} questions with {adapter.parent.name}'s ratings")
    main.save_calibration(cal["target_cloud_share"] if cal else None, cal["thresholds"] if cal else [],
                          cal["n_scores"] if cal else 0, policy.to_json())


def _summary(report: TrainReport) -> dict[str, Any]:
    c = report.comparison.get("allocators", {})
    return {k: {m: v.get(m) for m in ("greedy_reward", "cost_at_equal_accuracy_usd", "label_accuracy")}
            for k, v in c.items()} | {"export": report.export_check, "why": report.why}


def _start_run(main: Ledger, report: TrainReport, settings: Settings, args: TrainArgs) -> None:
    training.start(main, report.run_id, "allocator", settings.router.model, report.counts["train"]["questions"],
                   {**asdict(args), "lam": report.lam})


def _finish_run(main: Ledger, report: TrainReport, status: str, error: str | None = None) -> None:
    training.finish(main, report.run_id, status, adapter_id=report.adapter_id, metrics=_summary(report), error=error)


def _usd(v: float | None) -> str:
    return "unreachable" if v is None else f"${v:.6f}"
