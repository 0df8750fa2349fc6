"""Messages the app passes between its workers and widgets."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class EngineEvent(Message):
    """An engine event (plan ready, node update, answer text), moved onto the UI thread."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class QuestionFinished(Message):
    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class QuestionFailed(Message):
    """The question stopped: an error (message + fix) or a cancel; the UI resets."""

    def __init__(self, message: str, fix: str | None = None, cancelled: bool = False) -> None:
        super().__init__()
        self.message = message
        self.fix = fix
        self.cancelled = cancelled


class ModelsFetched(Message):
    def __init__(self, ok: bool, message: str = "") -> None:
        super().__init__()
        self.ok = ok
        self.message = message
