"""What `r2local train` prints: status, live progress, and a run's before/after tables."""

from __future__ import annotations

import sys
from typing import Any, Callable

from r2local.config import Settings
from r2local.store.ledger import Ledger
from r2local.tables import table
from r2local.store import adapters, learning, training


def status(settings: Settings) -> dict[str, Any]:
    """The active adapter, every version, the last runs and the labels available (main + bench ledger)."""
    from r2local.train.run import labelled

    rows, mapping = labelled(settings)
    ledger = Ledger()
    try:
        active = adapters.active(ledger, base_model=settings.router.model)
        return {"router": settings.router.model, "active": active.to_json() if active else None,
                "versions": [v.to_json() for v in adapters.versions(ledger)],
                "runs": [r.to_json() for r in training.runs(ledger, 5)],
                "labelled_questions": len(rows), "label_tiers": mapping,
                "feedback_by_source": learning.feedback_by_source(ledger),
                "config_pins_adapter": settings.router.adapter}
    finally:
        ledger.close()


def status_text(data: dict[str, Any]) -> str:
    active = data["active"]
    out = [f"router {data['router']}: " + (f"adapter {active['id']} (adopted {active['adopted_at'][:16]})" if active
                                           else "no adapter (the router runs as shipped)")]
    if data["config_pins_adapter"]:
        out.append(f"note: config.toml pins router.adapter = {data['config_pins_adapter']}; it wins over adopted ones")
    out.append(f"labelled questions to learn from: {data['labelled_questions']} (labels: "
               + ", ".join(f"{k} = {v}" for k, v in data["label_tiers"].items()) + ")")
    if data["versions"]:
        rows = [[v["id"], v["status"], v["created_at"][:16], _num(v["metrics"].get("lora", {}).get("greedy_reward")),
                 _usd(v["metrics"].get("lora", {}).get("cost_at_equal_accuracy_usd"))] for v in data["versions"]]
        out += ["", table(["version", "status", "created (UTC)", "held-out reward", "cost at equal acc."], rows)]
    if data["runs"]:
        rows = [[r["created_at"][:16], r["status"], r["examples"], r["adapter_id"] or "", (r["error"] or "")[:50]]
                for r in data["runs"]]
        out += ["", "recent runs:", table(["started (UTC)", "status", "examples", "adapter", "error"], rows)]
    return "\n".join(out)


def report_text(r: dict[str, Any]) -> str:
    c = r["comparison"]
    rows = []
    for name, a in c.get("allocators", {}).items():
        change = a["cost_change"]
        rows.append([name, _num(a["greedy_reward"]), f"{a['label_accuracy']:.0%}", _usd(a["cost_at_equal_accuracy_usd"]),
                     "" if change is None else f"{change:+.0%}", f"{a['vs_reference']['wins']}/{a['vs_reference']['losses']}",
                     f"{a['vs_reference']['p']:.3g}"])
    held = r["counts"]["held_out"]["questions"]
    out = [f"trained on {r['counts']['train']['questions']} questions, held out {held}; cost weight λ = {r['lam']:.2f}",
           "", f"held-out questions; the bar: {c.get('accuracy', 0):.1%} accuracy (what {c.get('reference')} reaches with "
           f"{c.get('share', 0):.0%} to the cloud, {c.get('reference_at_share', c.get('accuracy', 0)):.1%}, at least "
           f"all-cloud's, {c.get('all_cloud_accuracy', 0):.1%}):",
           table(["allocator", "greedy reward", "best label", "cloud cost at equal acc.", "vs ref", "wins/losses", "p"],
                 rows, right={1, 2, 3, 4, 5, 6})]
    w = c.get("with_agreement")
    if w:
        line = ", ".join(f"{k} {_usd(v['cost_at_equal_accuracy_usd'])}"
                         + (f" ({v['cost_change']:+.0%})" if v["cost_change"] is not None else "")
                         for k, v in w.items() if isinstance(v, dict))
        out.append(f"as r2local routes (allocator first, then agreement below {w['agree_below']:.2f}), cloud cost "
                   f"at {w['accuracy']:.1%} accuracy: {line}")
    e = r["export_check"]
    if e:
        out.append(f"exported GGUF adapter vs PyTorch on {e['n']} prompts: mean KL {e['mean_kl']:.4f}, "
                   f"max {e['max_kl']:.4f}, same label {e['label_agreement']:.0%}")
    out.append(f"{r['adapter_id'] or 'no adapter'}: {r['why']}")
    secs = r.get("seconds") or {}
    if secs:
        out.append("time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in secs.items()))
    return "\n".join(out)


def progress_printer() -> Callable[[str, int, int, dict[str, float]], None]:
    """One status line on stderr (a terminal only) for `r2local train run`."""
    def show(phase: str, step: int, total: int, metrics: dict[str, float]) -> None:
        if not sys.stderr.isatty():
            return
        figures = " ".join(f"{k}={v:.3f}" for k, v in list(metrics.items())[:4])
        sys.stderr.write(f"\r{phase} {step}/{total} {figures}"[:120].ljust(120))
        sys.stderr.flush()
    return show


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def _usd(v: float | None) -> str:
    return "unreachable" if v is None else f"${v:.6f}"
