"""History: past questions from the ledger; Enter reopens one with its plan and costs."""

from __future__ import annotations

from typing import Iterable

from r2local.engine.standing import answer_status, standing

from tui.screens.picker import PickScreen, cut
from tui.widgets.badges import money


class HistoryScreen(PickScreen):
    TITLE = "Past questions — Enter reopens one, Esc goes back"
    COLUMNS = ("when (UTC)", "status", "cost", "cloud", "question")
    EMPTY = "No questions yet."

    def __init__(self, questions: list[dict]) -> None:
        super().__init__(questions, id="history")

    def rows(self) -> Iterable[tuple[str, list[str]]]:
        for q in self.items:
            status = standing(answer_status(q["status"], q.get("answer_node_status")), q.get("answer_confidence"))
            yield q["id"], [(q["created_at"] or "")[:16].replace("T", " "), status, money(q["cost_usd"]),
                            f"{(q['cloud_share'] or 0):.0%}", cut(q["question"].replace("\n", " "), 70)]
