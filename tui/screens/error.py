"""Shown instead of a traceback when the app cannot start (e.g. invalid config)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static


class StartupError(Screen):
    BINDINGS = [Binding("q,escape", "app.quit", "Quit")]

    def __init__(self, message: str, fix: str | None) -> None:
        super().__init__(id="startup-error")
        self.message, self.fix = message, fix

    def compose(self) -> ComposeResult:
        with Vertical(id="first-run-box"):
            yield Static("r2local cannot start", classes="screen-title")
            yield Static(self.message, classes="error", markup=False)
            if self.fix:
                yield Static(f"fix: {self.fix}", markup=False)
            yield Static("Press q to quit.")
        yield Footer()
