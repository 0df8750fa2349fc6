"""What one subtask got and gave: prompt, answer, and for cloud calls exactly
what left the machine."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from r2local.engine.standing import standing

from tui.widgets.badges import money, tier_badge
from tui.widgets.plan_tree import below_bar, held


def _messages_text(messages: list[dict[str, str]]) -> Text:
    out = Text()
    for m in messages:
        out.append(f"[{m.get('role', '?')}]\n", style="bold cyan")
        out.append((m.get("content") or "") + "\n\n")
    return out


class NodeDetail(VerticalScroll):
    """Detail of the highlighted plan node: the answer first, then figures and the
    prompt. It scrolls (focus it with Tab, then arrows / PgUp / PgDn); `z` zooms it."""

    can_focus = True
    ALLOW_MAXIMIZE = True

    def __init__(self, bar: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bar = bar

    PROMPT = "Highlight a subtask in the plan to see its answer and prompt."

    def compose(self):
        yield Static(self.PROMPT, id="detail-body")

    def clear(self) -> None:
        """Back to the prompt (a new plan is shown: the old step's detail would mislead)."""
        self.query_one("#detail-body", Static).update(self.PROMPT)

    def show(self, rec: dict[str, Any]) -> None:
        body = Text()
        body.append(f"Subtask {rec['id']}", style="bold")
        body.append(f"  ({rec.get('kind', 'step')}, {standing(rec['status'], rec.get('confidence'))})  ")
        body.append_text(tier_badge(rec.get("tier"), rec.get("is_local", True)))
        body.append(f" {rec.get('model') or ''}\n")
        body.append((rec.get("text") or "") + "\n\n")
        held_back = held(rec)
        if held_back:
            body.append(f"⚠ held back: {rec['reason']}: check it\n", style="bold yellow")
        elif below_bar(rec, self.bar):
            conf, bar = rec.get("confidence"), (rec.get("features") or {}).get("agree_below", self.bar)
            figure = f" ({conf:.2f} < {bar:.2f})" if conf is not None and bar is not None else ""
            body.append(f"⚠ answered below the confidence bar{figure}: check it\n", style="bold yellow")
        body.append("Answer:\n", style="bold")
        body.append((rec.get("answer") or "—") + "\n\n")
        if rec.get("working"):  # a program-aided answer: the program the sandbox ran
            body.append("Working (a program, run in the sandbox):\n", style="bold")
            body.append(rec["working"] + "\n\n", style="cyan")
        if rec.get("escalated_from"):
            body.append(f"escalated from {rec['escalated_from']}: {rec.get('reason') or ''}\n", style="magenta")
        elif rec.get("reason") and not held_back:  # a held-back answer said its reason above
            body.append(f"note: {rec['reason']}\n", style="yellow")
        facts = []
        if rec.get("difficulty") is not None:
            facts.append(f"difficulty {rec['difficulty']:.3f}")
        if rec.get("confidence") is not None:
            facts.append(f"confidence {rec['confidence']:.3f}")
        facts += [f"tokens {rec['input_tokens']} in / {rec['output_tokens']} out", f"cost {money(rec['cost_usd'])}",
                  f"latency {rec['latency_ms'] / 1000:.2f} s"]
        body.append(" · ".join(facts) + "\n", style="dim")
        sent = rec.get("sent") or []
        if sent:
            title = "Sent to the cloud, exactly:" if not rec.get("is_local", True) else "Prompt (stayed on this machine):"
            body.append(f"\n{title}\n", style="bold magenta" if not rec.get("is_local", True) else "bold green")
            body.append_text(_messages_text(sent))
        else:
            body.append("\n(prompt not recorded for this subtask)\n", style="dim")
        self.query_one("#detail-body", Static).update(body)
        self.scroll_home(animate=False)
