"""Conversations from the ledger (F2); Enter reopens one: its turns fill the transcript
and the next question continues it."""

from __future__ import annotations

from typing import Iterable

from tui.screens.picker import PickScreen, cut
from tui.widgets.badges import money


class ConversationsScreen(PickScreen):
    TITLE = "Conversations — Enter continues one, Esc goes back"
    COLUMNS = ("last (UTC)", "turns", "cost", "title")
    EMPTY = "No conversations yet."

    def __init__(self, conversations: list[dict]) -> None:
        super().__init__(conversations, id="conversations")

    def rows(self) -> Iterable[tuple[str, list[str]]]:
        for c in self.items:
            title = (c["title"] or "").replace("\n", " ") + (" [local-only]" if c["local_only"] else "")
            yield c["id"], [(c["last_at"] or "")[:16].replace("T", " "), str(c["turns"]), money(c["cost_usd"]),
                            cut(title, 80)]
