"""Key dialog: a masked input that stores the cloud key in the keyring, and says
where that is. A plaintext keyring needs an explicit tick; no keyring at all
gets one line and the way out."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from r2local import keys
from r2local.errors import R2Error


class KeyDialog(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, tier: str, status: Any, store: Any) -> None:
        """``status`` (keys.status) and ``store`` (keystore.active) are read off the UI thread by the caller."""
        super().__init__(id="key-dialog")
        self.tier, self.status, self.store = tier, status, store

    def compose(self) -> ComposeResult:
        st, info = self.status, self.store
        now = f"A key is set (…{st.last4}, in {st.where})." if st.is_set else "No key is set."
        with Vertical(id="dialog"):
            yield Label(f"API key for tier [b]{self.tier}[/b]", id="dialog-title")
            yield Static(now)
            if not info.usable:
                yield Static("There is no keyring on this machine to keep a key in. `r2local doctor` shows how to add "
                             f"one; or export {keys.ENV_KEY} before starting r2local.", id="key-problem", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Close", variant="primary", id="cancel")
                return
            yield Static(f"It is stored in {info.where} (service 'r2local', user '{self.tier}').", markup=False)
            if info.kind == "plaintext":
                yield Static("That file is not encrypted: anyone who can read your files can read the key.",
                             classes="error")
                yield Checkbox("Store it there anyway (unencrypted)", keys.plaintext_allowed(), id="plaintext")
            yield Input(placeholder="paste the key", password=True, id="key-input")
            yield Static("", id="key-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        for field in self.query("#key-input"):
            field.focus()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(False)

    @on(Input.Submitted, "#key-input")
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        value = self.query_one("#key-input", Input).value
        consent = any(box.value for box in self.query("#plaintext").results(Checkbox))
        self.store_key(value, consent)

    @work(thread=True, exclusive=True, group="key", exit_on_error=False)
    def store_key(self, value: str, consent: bool) -> None:
        """The keyring write runs off the UI thread (an OS keyring may prompt or block)."""
        try:
            where = keys.set_key(self.tier, value, allow_plaintext=consent)
        except R2Error as exc:
            # Say what went wrong and how to fix it, once; keep the dialog open.
            self.app.call_from_thread(self.query_one("#key-error", Static).update,
                                      f"{exc.message}\nfix: {exc.fix}" if exc.fix else exc.message)
            return
        self.app.call_from_thread(self._saved, where, keys.mask(value.strip()))

    def _saved(self, where: str, masked: str) -> None:
        self.notify(f"Key for {self.tier} saved in {where} ({masked})")
        self.dismiss(True)
