"""Escalation confirm: shows exactly the (redacted) text that would leave the
machine and its estimated cost, and asks."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.widgets.badges import money


class ConfirmCloud(ModalScreen[bool]):
    BINDINGS = [Binding("y", "dismiss(True)", "Send"), Binding("n,escape", "dismiss(False)", "Keep local")]

    def __init__(self, tier: str, model: str, text: str, cost_usd: float, redactions: int = 0) -> None:
        super().__init__(id="confirm-dialog")
        self.tier, self.model, self.text, self.cost, self.redactions = tier, model, text, cost_usd, redactions

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Send this to [b]{self.tier}[/b] ({self.model})?", id="dialog-title")
            yield Static(f"estimated cost up to {money(self.cost)} · {self.redactions} item(s) redacted")
            with VerticalScroll(id="confirm-text"):
                yield Static(self.text, markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Send (y)", variant="warning", id="send")
                yield Button("Keep local (n)", variant="primary", id="keep")

    @on(Button.Pressed, "#send")
    def send(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#keep")
    def keep(self) -> None:
        self.dismiss(False)
