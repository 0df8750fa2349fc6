"""The status bar: spend today and this month against the budget, key status,
privacy mode, online or offline."""

from __future__ import annotations

from dataclasses import dataclass

from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from tui.widgets.badges import money


@dataclass(frozen=True)
class MeterState:
    today_usd: float
    month_usd: float
    daily_budget: float | None
    monthly_budget: float | None
    key: str  # e.g. "key …WXYZ" or "no key"
    privacy: str  # auto, confirm, local-only
    online: bool


class SpendMeter(Horizontal):
    def compose(self):
        yield Label("", id="meter-today")
        yield ProgressBar(total=1, show_eta=False, show_percentage=True, id="meter-bar")
        yield Label("", id="meter-month")
        yield Label("", id="meter-key")
        yield Label("", id="meter-privacy")
        yield Label("", id="meter-online")

    def show(self, state: MeterState) -> None:
        today = f"today {money(state.today_usd)}"
        if state.daily_budget:
            today += f" / {money(state.daily_budget)}"
        self.query_one("#meter-today", Label).update(today)
        bar = self.query_one("#meter-bar", ProgressBar)
        if state.daily_budget:
            bar.display = True
            bar.update(total=state.daily_budget, progress=min(state.today_usd, state.daily_budget))
        else:
            bar.display = False
        month = f"month {money(state.month_usd)}"
        if state.monthly_budget:
            month += f" / {money(state.monthly_budget)}"
        self.query_one("#meter-month", Label).update(month)
        self.query_one("#meter-key", Label).update(state.key)
        self.query_one("#meter-privacy", Label).update(f"privacy: {state.privacy}")
        online = self.query_one("#meter-online", Label)
        online.update("● online" if state.online else "○ offline")
        online.set_class(state.online, "online")
        online.set_class(not state.online, "offline")
