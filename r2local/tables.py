"""Plain-text tables for the CLI (spend, logs, an answer's subtasks)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from r2local.engine.standing import standing


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: set[int] | None = None) -> str:
    right = right or set()
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def usd(value: float | None) -> str:
    value = value or 0.0
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def subtasks_table(nodes: list[dict[str, Any]]) -> str:
    rows = []
    for n in nodes:
        diff = "" if n["difficulty"] is None else f"{n['difficulty']:.2f}"
        tier = n["tier"] or ""
        if n.get("escalated_from"):
            tier = f"{n['escalated_from']}→{tier}"
        tokens = f"{n['input_tokens']}/{n['output_tokens']}"
        rows.append([n["id"], n["kind"], tier, diff, tokens, usd(n["cost_usd"]), f"{n['latency_ms']:.0f}",
                     standing(n["status"], n.get("confidence"))])
    return table(["#", "kind", "tier", "diff", "in/out", "cost", "ms", "status"], rows, right={0, 3, 4, 5, 6})


def budget_text(b: dict[str, Any]) -> str:
    parts = []
    for name, cap, left in (("today", b["daily_usd"], b["daily_left_usd"]), ("this month", b["monthly_usd"], b["monthly_left_usd"])):
        if cap is not None:
            parts.append(f"{name} {usd(max(left, 0.0))} of {usd(cap)}")
    if not parts:
        return "budget: no caps (set [budget] daily_usd / monthly_usd in config.toml)"
    running = f"    (in flight: {usd(b['reserved_usd'])} reserved)" if b["reserved_usd"] else ""
    return "budget left: " + "    ".join(parts) + running


def sandbox_text(runs: int) -> str:
    """Model-written programs are run by the sandbox, not a model: a count, never a row among the models."""
    return f"plus {runs} program run(s) in the sandbox (asteval, on this machine, no cost)"


def spend_text(spend: dict[str, Any]) -> str:
    out = [budget_text(spend["budget"])] if spend.get("budget") else []
    out += [f"today: {usd(spend['today_usd'])}    this month: {usd(spend['month_usd'])}"]
    if spend.get("shadow_month_calls"):
        out.append(f"  of which shadow runs for learning ([learning] in config.toml): {usd(spend['shadow_month_usd'])} "
                   f"this month, {spend['shadow_month_calls']} calls")
    out += ["", "by model:"]
    rows = [[r["tier"], r["model"], r["calls"], r["input_tokens"] or 0, r["output_tokens"] or 0, usd(r["cost_usd"])] for r in spend["by_model"]]
    out.append(table(["tier", "model", "calls", "in tok", "out tok", "cost"], rows, right={2, 3, 4, 5}))
    if spend.get("sandbox_runs"):
        out.append(sandbox_text(spend["sandbox_runs"]))
    out += ["", "by day:"]
    out.append(table(["day", "calls", "cost"], [[r["day"], r["calls"], usd(r["cost_usd"])] for r in spend["by_day"]], right={1, 2}))
    return "\n".join(out)


def logs_text(calls: list[dict[str, Any]]) -> str:
    rows = []
    for c in calls:
        when = (c["created_at"] or "")[:19].replace("T", " ")
        outcome = c["status"] if c["status"] == "ok" else f"{c['status']}:{c['error_class'] or ''}"
        tokens = f"{c['input_tokens'] or 0}/{c['output_tokens'] or 0}"
        # The answer a subtask call gave, as the app and `ask` show it (the call's own outcome is "status").
        answer = standing(c["node_status"], c.get("node_confidence")) if c["role"] == "subtask" and c.get("node_status") else ""
        rows.append([when, c["question_id"][-6:], c["subtask_id"] or "", c["role"], c["tier"], c["model"], tokens,
                     usd(c["cost_usd"]), f"{c['latency_ms'] or 0:.0f}", outcome, answer])
    headers = ["time (UTC)", "question", "sub", "role", "tier", "model", "in/out", "cost", "ms", "status", "answer"]
    return table(headers, rows, right={2, 6, 7, 8})
