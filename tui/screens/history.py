"""History: past questions from the ledger; Enter reopens one with its plan and costs."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from r2local.engine.standing import answer_status, standing

from tui.widgets.badges import money


class HistoryScreen(Screen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Back")]

    def __init__(self, questions: list[dict]) -> None:
        super().__init__(id="history")
        self.questions = questions

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("Past questions — Enter reopens one, Esc goes back", classes="screen-title")
        table = DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("when (UTC)", "status", "cost", "cloud", "question")
        for q in self.questions:
            text = q["question"].replace("\n", " ")
            table.add_row(
                (q["created_at"] or "")[:16].replace("T", " "),
                standing(answer_status(q["status"], q.get("answer_node_status")), q.get("answer_confidence")),
                money(q["cost_usd"]),
                f"{(q['cloud_share'] or 0):.0%}", text if len(text) < 70 else text[:67] + "…", key=q["id"],
            )
        yield table
        if not self.questions:
            yield Static("No questions yet.", classes="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.RowSelected)
    def reopen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)
