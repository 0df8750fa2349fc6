"""The bench's table, headline, JSON and cost-accuracy plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r2local.tables import table, usd
from r2local.vocab import Route
from r2local.bench.analysis import agreement_curve, difficulty_curve, oracle, signals, significance
from r2local.bench.runner import BenchRun, ItemResult, outcome_json, summarise

GOAL_COST_PCT = 30.0  # r2local at most this % of all-cloud's cloud cost ...
GOAL_GAP_POINTS = 3.0  # ... within this many accuracy points of all-cloud (the long-run goal: 10 % and 2 points)


def headline(stats: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """r2local's cloud cost as a % of all-cloud's, and its accuracy gap in points."""
    if "r2local" not in stats or "all-cloud" not in stats:
        return None
    r2, cloud = stats["r2local"], stats["all-cloud"]
    pct = 100 * r2["cloud_cost_usd"] / cloud["cloud_cost_usd"] if cloud["cloud_cost_usd"] > 0 else None
    gap = 100 * (r2["accuracy"] - cloud["accuracy"])
    met = pct is not None and pct <= GOAL_COST_PCT and gap >= -GOAL_GAP_POINTS
    return {"cost_pct_of_all_cloud": pct, "accuracy_gap_points": gap, "goal_met": met,
            "goal": f"<= {GOAL_COST_PCT:g} % of all-cloud cost, within {GOAL_GAP_POINTS:g} points of its accuracy"}


def by_difficulty(run: BenchRun) -> dict[str, dict[str, float]]:
    """Accuracy per strategy and item difficulty (generated items carry one)."""
    levels = {it.id: it.meta.get("difficulty") for it in run.items}
    if not any(v is not None for v in levels.values()):
        return {}
    out: dict[str, dict[str, float]] = {}
    for s in run.strategies:
        for level in sorted({v for v in levels.values() if v is not None}):
            mine = [o for o in run.of(s) if levels.get(o.item_id) == level]
            if mine:
                out.setdefault(s, {})[str(level)] = sum(o.correct for o in mine) / len(mine)
    return out


LOSS_CAUSES = ("kept local, samples agreed", "kept local, samples split", "escalated, still wrong",
               "decomposed, plan fails on the cloud too", "decomposed", "failed")


def loss_cause(o: ItemResult, cot_right: bool | None) -> str:
    """Why r2local got a question wrong that all-cloud got right, from its outcome."""
    if o.status != "done":
        return "failed"
    if o.route == Route.DECOMPOSE or o.nodes > 1:
        return "decomposed, plan fails on the cloud too" if cot_right is False else "decomposed"
    if o.escalated or o.cloud_nodes:
        return "escalated, still wrong"  # one tier up was still local, or the cloud answered otherwise
    return "kept local, samples agreed" if (o.confidence or 0) >= 0.999 else "kept local, samples split"


def losses(run: BenchRun) -> dict[str, Any] | None:
    """Where r2local loses questions all-cloud gets right, by cause (see loss_cause)."""
    if not {"r2local", "all-cloud"} <= set(run.strategies):
        return None
    right = {(o.strategy, o.item_id): o.correct for o in run.outcomes}
    causes = dict.fromkeys(LOSS_CAUSES, 0)
    for o in run.of("r2local"):
        if not o.correct and right.get(("all-cloud", o.item_id)):
            causes[loss_cause(o, right.get(("cot-cloud", o.item_id)))] += 1
    gained = sum(1 for o in run.of("r2local") if o.correct and right.get(("all-cloud", o.item_id)) is False)
    return {"lost_vs_all_cloud": sum(causes.values()), "causes": {k: v for k, v in causes.items() if v},
            "gained_vs_all_cloud": gained}


def to_json(run: BenchRun, meta: dict[str, Any]) -> dict[str, Any]:
    stats = {s: summarise(run.of(s)) for s in run.strategies}
    best = oracle(run)
    if best is not None:
        stats["oracle"] = summarise(best)
    items = []
    for it in run.items:
        results = {o.strategy: outcome_json(o) for o in run.outcomes if o.item_id == it.id}
        items.append({"id": it.id, "question": it.question, "answer": it.answer, "grader": it.grader,
                      "choices": list(it.choices or []), "meta": it.meta, "results": results})
    return {**meta, "complete": run.complete, "seconds": round(run.seconds, 1),
            "strategies": [{"strategy": s, **stats[s]} for s in [*run.strategies, "oracle"] if s in stats],
            "headline": headline(stats), "losses": losses(run), "accuracy_by_difficulty": by_difficulty(run),
            "significance": significance(run), "signals": signals(run),
            "curves": {"agreement": agreement_curve(run), "difficulty": difficulty_curve(run)},
            "items": items}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def text(data: dict[str, Any]) -> str:
    rows = []
    for s in data["strategies"]:
        lo, hi = s["ci95"]
        rows.append([s["strategy"], f"{s['correct']}/{s['n']}", _pct(s["accuracy"]), f"{100 * lo:.0f}–{100 * hi:.0f}%",
                     usd(s["cloud_cost_usd"]), _pct(s["cloud_share"]), _pct(s.get("text_to_cloud", 0.0)),
                     s["cloud_tokens"], f"{s['mean_latency_s']:.1f}"])
    headers = ["strategy", "right", "accuracy", "95% CI", "cloud cost", "cloud share", "text to cloud", "cloud tok",
               "latency s"]
    out = [_preamble(data), "", table(headers, rows, right=set(range(1, 9))), *_parts_text(data)]
    levels = data.get("accuracy_by_difficulty") or {}
    if levels:
        keys = sorted({k for v in levels.values() for k in v})
        lines = [[s] + [_pct(v[k]) if k in v else "" for k in keys] for s, v in levels.items()]
        out += ["", "accuracy by difficulty:", table(["strategy", *keys], lines, right=set(range(1, len(keys) + 1)))]
    r2 = next((s for s in data["strategies"] if s["strategy"] == "r2local"), None)
    if r2 and r2.get("nodes_by_tier"):
        total = sum(r2["nodes_by_tier"].values())
        by = r2["nodes_by_tier"]
        split = ", ".join(f"{t['name']} {100 * by[t['name']] / total:.0f}%" for t in data["pool"] if t["name"] in by)
        out += ["", f"r2local's {total} subtasks ended on: {split}; {r2['escalated']} escalated"]
    out += ["", _headline_text(data["headline"])] if data["headline"] else []
    out += _analysis_text(data)
    lost = data.get("losses")
    if lost and lost["lost_vs_all_cloud"]:
        why = "; ".join(f"{k}: {v}" for k, v in lost["causes"].items())
        out.append(f"r2local wrong where all-cloud is right: {lost['lost_vs_all_cloud']} ({why}); "
                   f"right where all-cloud is wrong: {lost['gained_vs_all_cloud']}")
    if not data["complete"]:
        out.append("(partial: the run was stopped before every strategy saw every question)")
    return "\n".join(out)


def _parts_text(data: dict[str, Any]) -> list[str]:
    """Compound questions: parts right one by one, and how well r2local found the parts."""
    graded = [s for s in data["strategies"] if s.get("parts")]
    if not graded:
        return []
    lines = ["", "parts right: " + ", ".join(f"{s['strategy']} {s['parts_right']}/{s['parts']}" for s in graded)]
    r2 = next((s for s in graded if s["strategy"] == "r2local"), None)
    if r2 is not None:
        lines.append(f"r2local found as many parts as each question has on {_pct(r2['split_exact'])} of them")
    return lines


def _preamble(data: dict[str, Any]) -> str:
    tiers = ", ".join(
        f"{t['name']}={t['model']}" + (f" (${t['input_usd_per_mtok']:g}/${t['output_usd_per_mtok']:g} per Mtok)" if t["priced"] else "")
        for t in data["pool"]
    )
    policy = data["policy"]
    bands = "; ".join(f"<= {b['upto']:.2f}: {b['route']} on {b['tier']}{_band_tau(b.get('agree_below'))}"
                      for b in policy["bands"])
    return (f"dataset {data['dataset']}: {data['n']} questions, seed {data['seed']} · {data['seconds'] / 60:.1f} min\n"
            f"pool: router={data['router']}; {tiers}\n"
            f"route policy ({policy['source']}): {bands}; elsewhere escalate below {data['agree_below']:.2f} "
            f"agreement of {data['samples']} samples" + ("" if data["cache"] else " · call cache off"))


def _band_tau(tau: float | None) -> str:
    """A band's own agreement threshold, in words."""
    if tau is None:
        return ""
    if tau <= 0:
        return ", never escalates"
    return ", escalates unless every sample agrees" if tau >= 1 else f", escalates below {tau:.2f} agreement"


def _headline_text(h: dict[str, Any]) -> str:
    if h["cost_pct_of_all_cloud"] is None:
        return "r2local vs all-cloud: all-cloud cost nothing (is the cloud tier priced?)"
    verdict = "met" if h["goal_met"] else "not met"
    return (f"r2local: {h['cost_pct_of_all_cloud']:.1f} % of all-cloud's cloud cost, accuracy "
            f"{h['accuracy_gap_points']:+.1f} points vs all-cloud (goal {h['goal']}: {verdict})")


def plot(data: dict[str, Any], path: Path) -> None:
    """A cost-accuracy scatter: each strategy with its 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    top = max((s["cloud_cost_usd"] for s in data["strategies"]), default=0) or 1.0
    seen: dict[tuple[float, float], int] = {}
    for s in data["strategies"]:
        x, y = s["cloud_cost_usd"], 100 * s["accuracy"]
        lo, hi = (100 * v for v in s["ci95"])
        ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt="o", capsize=3,
                    color="tab:red" if s["strategy"] == "r2local" else "tab:blue")
        # Strategies on the same point get their labels stacked, not overprinted.
        spot = (round(x / top, 2), round(y))
        seen[spot] = seen.get(spot, -1) + 1
        ax.annotate(s["strategy"], (x, y), textcoords="offset points", xytext=(6, 4 - 11 * seen[spot]), fontsize=9)
    # The curves over thresholds, from the same outcomes (no reruns).
    for name, style in (("agreement", "tab:red"), ("difficulty", "tab:gray")):
        curve = (data.get("curves") or {}).get(name) or []
        if curve:
            ax.plot([c["cloud_cost_usd"] for c in curve], [100 * c["accuracy"] for c in curve], "-", color=style,
                    alpha=0.6, label=f"escalate by {name}")
    if any((data.get("curves") or {}).values()):
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("cloud cost (USD, as if uncached)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{data['dataset']}: {data['n']} questions")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _analysis_text(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    sig = data.get("significance") or {}
    if sig:
        rows = [[other, m["n"], m["only_a"], m["only_b"], f"{m['p']:.3g}"] for other, m in sig.items()]
        out += ["", "r2local against (exact McNemar, paired):",
                table(["vs", "n", "only r2local right", "only it right", "p"], rows, right={1, 2, 3, 4})]
    sg = data.get("signals")
    if sg:
        f = (lambda v: "n/a" if v is None else f"{v:.3f}")
        out += ["", (f"is the all-local answer wrong? AUROC of agreement {f(sg['agreement_auroc'])}, of mean token "
                     f"probability {f(sg['mean_prob_auroc'])} ({sg['wrong']} wrong of {sg['n']})")]
        kinds = sg.get("kinds") or {}
        if len(kinds) > 1:
            rows = [[k, v["n"], v["wrong"], f(v["agreement_auroc"]), f(v["mean_prob_auroc"])] for k, v in kinds.items()]
            out += [table(["answer kind", "n", "wrong", "agreement AUROC", "mean prob AUROC"], rows, right={1, 2, 3, 4})]
    return out
