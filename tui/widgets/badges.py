"""Status icons and tier badges, shared by the plan tree and the detail view."""

from __future__ import annotations

import math

from rich.text import Text

from r2local.vocab import Status

STATUS_ICON = {
    Status.QUEUED: ("○", "dim"),
    Status.RUNNING: ("◐", "bold yellow"),
    Status.DONE: ("●", "green"),
    Status.ESCALATED: ("⇡", "bold magenta"),
    Status.UNSURE: ("?", "yellow"),
    Status.FAILED: ("✗", "bold red"),
    Status.FALLBACK: ("↯", "bold yellow"),  # the cloud failed after retries: answered locally
    Status.BUDGET: ("$", "bold yellow"),  # over budget: answered locally
    Status.KEPT_LOCAL: ("⌂", "bold cyan"),  # privacy: nobody confirmed, or refused
    Status.CANCELLED: ("⊘", "dim red"),
    Status.INTERRUPTED: ("⊘", "dim red"),
}
assert set(STATUS_ICON) == set(Status)  # a new status needs an icon


def status_icon(status: str) -> Text:
    icon, style = STATUS_ICON.get(status, ("·", ""))
    return Text(icon, style=style)


def tier_badge(tier: str | None, is_local: bool) -> Text:
    """The tier as a coloured badge; nothing before the router has placed the node."""
    if not tier:
        return Text("")
    if is_local:
        return Text(f" {tier} ", style="bold black on green")
    return Text(f" ☁ {tier} ", style="bold white on magenta")


def money(value: float | None) -> str:
    """$0 when nothing was spent; cents from 10 cents up; else three significant digits."""
    value = value or 0.0
    if value <= 0:
        return "$0"
    if value >= 0.1:
        return f"${value:,.2f}"
    if value < 1e-6:
        return "<$0.000001"
    decimals = 2 - math.floor(math.log10(value))  # three significant digits
    return f"${value:.{decimals}f}".rstrip("0")
