"""Spend: cost per day as a sparkline and bars, and per model as a table."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from r2local.tables import sandbox_text

from tui.widgets.badges import money


def daily_series(by_day: list[dict[str, Any]], today: date, days: int) -> list[tuple[str, float]]:
    """One value per calendar day, oldest first, zeros where nothing was spent."""
    spent = {row["day"]: row["cost_usd"] or 0.0 for row in by_day}
    out = []
    for back in range(days - 1, -1, -1):
        day = (today - timedelta(days=back)).isoformat()
        out.append((day, spent.get(day, 0.0)))
    return out


def bars(series: list[tuple[str, float]], width: int = 30) -> str:
    peak = max((v for _, v in series), default=0.0) or 1.0
    lines = [f"{day}  {'█' * round(width * v / peak):<{width}}  {money(v)}" for day, v in series if v > 0]
    return "\n".join(lines) or "nothing spent in this period"


class SpendScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, spend: dict[str, Any], today: date, days: int = 30, budget: tuple[float | None, float | None] = (None, None)) -> None:
        super().__init__(id="spend")
        self.spend, self.today, self.days, self.budget = spend, today, days, budget

    def compose(self) -> ComposeResult:
        s = self.spend
        series = daily_series(s["by_day"], self.today, self.days)
        daily, monthly = self.budget
        head = f"today {money(s['today_usd'])}" + (f" of {money(daily)}" if daily else "")
        head += f"    this month {money(s['month_usd'])}" + (f" of {money(monthly)}" if monthly else "")
        yield Header(show_clock=False)
        yield Static(head, classes="screen-title")
        yield Static(f"last {self.days} days (to {self.today.isoformat()})")
        yield Sparkline([v for _, v in series], id="spend-spark")
        yield Static(bars(series), id="spend-bars")
        table = DataTable(id="spend-table", zebra_stripes=True)
        table.add_columns("tier", "model", "calls", "in tok", "out tok", "cost")
        for r in s["by_model"]:
            table.add_row(r["tier"], r["model"], r["calls"], r["input_tokens"] or 0, r["output_tokens"] or 0, money(r["cost_usd"]))
        yield table
        if s.get("sandbox_runs"):
            yield Static(sandbox_text(s["sandbox_runs"]), id="spend-sandbox", classes="dim")
        yield Footer()
