"""Key dialog: a masked input that stores the cloud key in the keyring, and says
where that is. A plaintext keyring needs an explicit tick; no keyring at all
offers the doctor's three ways on: the key for this run only ($OPENAI_API_KEY),
the commands for an encrypted keyring, or a plaintext file after a tick."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from r2local import keys
from r2local.keystore import ENCRYPTED_SETUP
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
        with Vertical(id="dialog", classes="" if self.store.usable else "wide"):
            yield Label(f"API key for tier [b]{self.tier}[/b]", id="dialog-title")
            yield Static(now)
            if not info.usable:
                yield from self._no_keyring()
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

    def _no_keyring(self) -> ComposeResult:
        """No keyring: the three ways `r2local doctor` names, each reachable from here."""
        yield Static("There is no keyring on this machine to keep a key in. Three ways on, as "
                     "`r2local doctor` says:", id="key-problem", classes="error")
        yield Input(placeholder="paste the key", password=True, id="key-input")
        yield Static("", id="key-error", classes="error")
        yield Static(f"1. Use it for this run only, as {keys.ENV_KEY} (nothing is stored).", markup=False)
        yield Static("2. An encrypted keyring: run these, start r2local again, press F4:\n   "
                     + "\n   ".join(ENCRYPTED_SETUP), id="encrypted-setup", markup=False)
        yield Static("3. A plaintext file (keyrings.alt, chosen in keyring's keyringrc.cfg): anyone who can "
                     "read your files can read the key.", markup=False)
        yield Checkbox("Store it in a plaintext file anyway (unencrypted)", False, id="plaintext-file")
        with Horizontal(classes="buttons"):
            yield Button("Use for this run", variant="primary", id="use-env")
            yield Button("Copy commands", id="copy-setup")
            yield Button("Store in file", id="store-file")
            yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#use-env")
    def use_for_this_run(self) -> None:
        try:
            where = keys.use_for_this_run(self.query_one("#key-input", Input).value)
        except R2Error as exc:
            self._error(exc)
            return
        self._saved(where, keys.mask(self.query_one("#key-input", Input).value.strip()))

    @on(Button.Pressed, "#copy-setup")
    def copy_setup(self) -> None:
        self.app.copy_to_clipboard(" && ".join(ENCRYPTED_SETUP))
        self.notify("Copied. Run them in the shell you start r2local from, then start it again.")

    @on(Button.Pressed, "#store-file")
    def store_in_file(self) -> None:
        value = self.query_one("#key-input", Input).value
        if not self.query_one("#plaintext-file", Checkbox).value:
            self.query_one("#key-error", Static).update("Tick the box first: the file is not encrypted.")
            return
        self.store_key_in_file(value)

    @work(thread=True, exclusive=True, group="key", exit_on_error=False)
    def store_key_in_file(self, value: str) -> None:
        try:
            where = keys.set_key_in_plaintext_file(self.tier, value)
        except R2Error as exc:
            self.app.call_from_thread(self._error, exc)
            return
        self.app.call_from_thread(self._saved, where, keys.mask(value.strip()))

    def _error(self, exc: R2Error) -> None:
        self.query_one("#key-error", Static).update(f"{exc.message}\nfix: {exc.fix}" if exc.fix else exc.message)

    def on_mount(self) -> None:
        for field in self.query("#key-input"):
            field.focus()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(False)

    @on(Input.Submitted, "#key-input")
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        if not self.store.usable:  # Enter in the field: the choice that stores nothing
            self.use_for_this_run()
            return
        value = self.query_one("#key-input", Input).value
        consent = any(box.value for box in self.query("#plaintext").results(Checkbox))
        self.store_key(value, consent)

    @work(thread=True, exclusive=True, group="key", exit_on_error=False)
    def store_key(self, value: str, consent: bool) -> None:
        """The keyring write runs off the UI thread (an OS keyring may prompt or block)."""
        try:
            where = keys.set_key(self.tier, value, allow_plaintext=consent)
        except R2Error as exc:  # say what went wrong and how to fix it, once; keep the dialog open
            self.app.call_from_thread(self._error, exc)
            return
        self.app.call_from_thread(self._saved, where, keys.mask(value.strip()))

    def _saved(self, where: str, masked: str) -> None:
        self.notify(f"Key for {self.tier} saved in {where} ({masked})")
        self.dismiss(True)
