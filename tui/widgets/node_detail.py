"""What one subtask got and gave: prompt, answer, and for cloud calls exactly
what left the machine."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from .badges import money, tier_badge


def _messages_text(messages: list[dict[str, str]]) -> Text:
    out = Text()
    for m in messages:
        out.append(f"[{m.get('role', '?')}]\n", style="bold cyan")
        out.append((m.get("content") or "") + "\n\n")
    return out


class NodeDetail(VerticalScroll):
    """Detail of the highlighted plan node."""

    def compose(self):
        yield Static("Highlight a subtask in the plan to see its prompt and answer.", id="detail-body")

    def show(self, rec: dict[str, Any]) -> None:
        body = Text()
        body.append(f"Subtask {rec['id']}", style="bold")
        body.append(f"  ({rec.get('kind', 'step')}, {rec['status']})\n")
        body.append((rec.get("text") or "") + "\n\n")
        body.append("Tier ")
        body.append_text(tier_badge(rec.get("tier"), rec.get("is_local", True)))
        body.append(f"  model {rec.get('model') or '—'}\n")
        if rec.get("difficulty") is not None:
            body.append(f"difficulty {rec['difficulty']:.3f}   ")
        if rec.get("confidence") is not None:
            body.append(f"confidence {rec['confidence']:.3f}")
        body.append(
            f"\ntokens {rec['input_tokens']} in / {rec['output_tokens']} out   cost {money(rec['cost_usd'])}   "
            f"latency {rec['latency_ms'] / 1000:.2f} s\n"
        )
        if rec.get("escalated_from"):
            body.append(f"escalated from {rec['escalated_from']}: {rec.get('reason') or ''}\n", style="magenta")
        elif rec.get("reason"):
            body.append(f"note: {rec['reason']}\n", style="yellow")
        sent = rec.get("sent") or []
        if sent:
            title = "Sent to the cloud, exactly:" if not rec.get("is_local", True) else "Prompt (stayed on this machine):"
            body.append(f"\n{title}\n", style="bold magenta" if not rec.get("is_local", True) else "bold green")
            body.append_text(_messages_text(sent))
        else:
            body.append("\n(prompt not recorded for this subtask)\n", style="dim")
        body.append("Answer:\n", style="bold")
        body.append(rec.get("answer") or "—")
        self.query_one("#detail-body", Static).update(body)
