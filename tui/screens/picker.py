"""A list of rows from the ledger to pick one from (history, conversations): Enter
returns the row's key, Esc returns None."""

from __future__ import annotations

from typing import Iterable, Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static


class PickScreen(Screen[str | None]):
    """Subclasses say what the rows are: ``TITLE``, ``COLUMNS``, ``EMPTY`` and ``rows()``."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back")]
    TITLE = ""
    COLUMNS: Sequence[str] = ()
    EMPTY = "Nothing yet."

    def __init__(self, items: list[dict], *, id: str) -> None:  # noqa: A002  (Textual's own name)
        super().__init__(id=id)
        self.items = items

    def rows(self) -> Iterable[tuple[str, list[str]]]:
        """(key, cells) per item."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(self.TITLE, classes="screen-title")
        table = DataTable(id=f"{self.id}-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*self.COLUMNS)
        for key, cells in self.rows():
            table.add_row(*cells, key=key)
        yield table
        if not self.items:
            yield Static(self.EMPTY, classes="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.RowSelected)
    def pick(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)


def cut(text: str, width: int) -> str:
    return text if len(text) < width else text[: width - 3] + "…"
