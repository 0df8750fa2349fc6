"""First run: say what is missing (model files, a cloud key) and exactly what to do."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, ProgressBar, Static

from r2local.engine.facade import Missing

from tui.messages import ModelsFetched


class FirstRunScreen(Screen):
    BINDINGS = [
        Binding("d", "download", "Download models"),
        Binding("k", "key", "Set API key"),
        Binding("c", "go", "Continue"),
    ]

    def __init__(self, missing: Missing) -> None:
        super().__init__(id="first-run")
        self.missing = missing

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Vertical(id="first-run-box"):
            yield Static("Welcome to r2local", classes="screen-title")
            yield Static(self._text(), id="first-run-text")
            yield ProgressBar(total=100, id="fetch-bar", show_eta=False)
            yield Static("", id="fetch-status")
            with Horizontal(classes="buttons"):
                if self.missing.models:
                    yield Button("Download models (d)", variant="primary", id="download")
                if self.missing.key_tier:
                    yield Button("Set API key (k)", id="key")
                yield Button("Continue (c)", id="go")
        yield Footer()

    def _text(self) -> str:
        lines = []
        if self.missing.models:
            total = sum(size or 0 for _, size in self.missing.models)
            names = ", ".join(name for name, _ in self.missing.models)
            lines.append(f"• Model files are not on this machine yet: {names} ({total / 2**20:.0f} MiB).")
            lines.append("  Press d to download them now, or run `r2local models pull` in a terminal.")
        if self.missing.key_tier and self.missing.key_problem:
            lines.append(f"• No API key for the cloud tier '{self.missing.key_tier}', and no keyring to keep one in.")
            lines.append("  `r2local doctor` says how to add one. Or press c: local models answer alone.")
        elif self.missing.key_tier:
            lines.append(f"• No API key for the cloud tier '{self.missing.key_tier}'.")
            lines.append("  Press k to store one in the OS keyring, or continue: r2local then answers with local models only.")
        lines.append("")
        lines.append("Something not working? `r2local doctor` checks llama.cpp, the keyring, model files and more.")
        return "\n".join(lines)

    def on_mount(self) -> None:
        self.query_one("#fetch-bar", ProgressBar).display = False

    def action_download(self) -> None:
        if self.missing.models:
            self.query_one("#fetch-bar", ProgressBar).display = True
            self.fetch_models([name for name, _ in self.missing.models])

    @work(thread=True, exclusive=True, group="fetch")
    def fetch_models(self, names: list[str]) -> None:
        from r2local.errors import R2Error
        from r2local.fetch import resolve
        from r2local.manifests import load_manifests

        manifests = load_manifests()
        bar = self.query_one("#fetch-bar", ProgressBar)
        status = self.query_one("#fetch-status", Static)

        try:
            for i, name in enumerate(names, 1):
                resolve(manifests[name], self._progress(bar, status, name, manifests[name], f"{i} of {len(names)}"))
        except R2Error as exc:
            self.post_message(ModelsFetched(False, f"{exc.message}\nfix: {exc.fix}" if exc.fix else exc.message))
            return
        self.post_message(ModelsFetched(True, "all models are here"))

    def _progress(self, bar: ProgressBar, status: Static, name: str, manifest: Any, count: str) -> Any:
        """A fetch progress callback that names the model and where it comes from (called off the UI thread)."""
        from r2local.fetch import source_text

        where = source_text(manifest)

        def progress(what: str, done: int, total: int | None) -> None:
            step = " — checking its sha256" if "sha256" in what else ""
            size = f"{done / 2**20:.0f} of {total / 2**20:.0f} MiB" if total else f"{done / 2**20:.0f} MiB"
            self.app.call_from_thread(bar.update, total=total or 1, progress=done)
            self.app.call_from_thread(status.update, f"fetching model {count}: {name} from {where}: {size}{step}")

        return progress

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer only what is still missing: no "Download models" once they are all here."""
        if action == "download":
            return bool(self.missing.models)
        if action == "key":
            return bool(self.missing.key_tier)
        return True

    def on_models_fetched(self, message: ModelsFetched) -> None:
        self.query_one("#fetch-status", Static).update(message.message)
        if message.ok:
            self.missing = Missing([], self.missing.key_tier, self.missing.key_problem)
            self.query_one("#first-run-text", Static).update(self._text() if self.missing.key_tier else "Everything is ready.")
            for button in self.query("#download"):
                button.remove()
            self.refresh_bindings()

    def action_key(self) -> None:
        self.app.action_set_key()

    def action_go(self) -> None:
        if self.missing.key_tier:
            self.app.remember_offline()  # until a key appears, do not ask again on every launch
        self.app.pop_screen()

    @on(Button.Pressed, "#download")
    def _download(self) -> None:
        self.action_download()

    @on(Button.Pressed, "#key")
    def _key(self) -> None:
        self.action_key()

    @on(Button.Pressed, "#go")
    def _go(self) -> None:
        self.action_go()
