"""Status icons and tier badges, shared by the plan tree and the detail view."""

from __future__ import annotations

from rich.text import Text

STATUS_ICON = {
    "queued": ("○", "dim"),
    "running": ("◐", "bold yellow"),
    "done": ("●", "green"),
    "escalated": ("⇡", "bold magenta"),
    "unsure": ("?", "yellow"),
    "failed": ("✗", "bold red"),
    "fallback": ("↯", "bold yellow"),  # the cloud failed after retries: answered locally
    "budget": ("$", "bold yellow"),  # over budget: answered locally
    "kept-local": ("⌂", "bold cyan"),  # privacy: nobody confirmed, or refused

    "cancelled": ("⊘", "dim red"),
    "interrupted": ("⊘", "dim red"),
}


def status_icon(status: str) -> Text:
    icon, style = STATUS_ICON.get(status, ("·", ""))
    return Text(icon, style=style)


def tier_badge(tier: str | None, is_local: bool) -> Text:
    if not tier:
        return Text(" … ", style="dim")
    if is_local:
        return Text(f" {tier} ", style="bold black on green")
    return Text(f" ☁ {tier} ", style="bold white on magenta")


def money(value: float | None) -> str:
    value = value or 0.0
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"
