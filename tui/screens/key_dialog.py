"""Key dialog: a masked input that stores the cloud key in the OS keyring."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from r2local import keys
from r2local.errors import R2Error


class KeyDialog(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, tier: str) -> None:
        super().__init__(id="key-dialog")
        self.tier = tier

    def compose(self) -> ComposeResult:
        st = keys.status(self.tier)
        now = f"A key is set ({st.source}, …{st.last4})." if st.is_set else "No key is set."
        with Vertical(id="dialog"):
            yield Label(f"API key for tier [b]{self.tier}[/b]", id="dialog-title")
            yield Static(f"{now} It is stored in the OS keyring (service 'r2local', user '{self.tier}').")
            if st.problem:
                yield Static(st.problem, classes="error")
            yield Input(placeholder="paste the key", password=True, id="key-input")
            yield Static("", id="key-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#key-input", Input).focus()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(False)

    @on(Input.Submitted, "#key-input")
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        value = self.query_one("#key-input", Input).value
        try:
            keys.set_key(self.tier, value)
        except R2Error as exc:
            # e.g. no keyring backend: say so and how to fix it, keep the dialog open.
            self.query_one("#key-error", Static).update(f"{exc.message}\nfix: {exc.fix}" if exc.fix else exc.message)
            return
        self.notify(f"Key for {self.tier} saved ({keys.mask(value.strip())})")
        self.dismiss(True)
