"""Conversations from the ledger (F2); Enter reopens one: its turns fill the transcript
and the next question continues it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.widgets.badges import money


class ConversationsScreen(Screen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Back")]

    def __init__(self, conversations: list[dict]) -> None:
        super().__init__(id="conversations")
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("Conversations — Enter continues one, Esc goes back", classes="screen-title")
        table = DataTable(id="conversations-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("last (UTC)", "turns", "cost", "title")
        for c in self.conversations:
            title = (c["title"] or "").replace("\n", " ") + (" [local-only]" if c["local_only"] else "")
            table.add_row((c["last_at"] or "")[:16].replace("T", " "), str(c["turns"]), money(c["cost_usd"]),
                          title if len(title) < 80 else title[:77] + "…", key=c["id"])
        yield table
        if not self.conversations:
            yield Static("No conversations yet.", classes="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.RowSelected)
    def reopen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)
