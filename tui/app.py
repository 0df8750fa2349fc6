"""The r2local Textual app and the factory the CLI and the tests both use."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from r2local.errors import R2Error
from r2local.engine.facade import Facade

from tui.screens.error import StartupError
from tui.screens.first_run import FirstRunScreen
from tui.screens.key_dialog import KeyDialog
from tui.screens.main import MainScreen
from tui.widgets.spend_meter import MeterState, SpendMeter


class R2App(App):
    CSS_PATH = "app.tcss"
    TITLE = "r2local"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, engine: Facade | None = None, error: R2Error | None = None, *, first_run_check: bool = True,
                 today: date | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.startup_error = error
        self.first_run_check = first_run_check
        self.today = today
        self.local_only = self.privacy_mode() == "local-only"

    # -- engine facts for widgets --------------------------------------------------
    def privacy_mode(self) -> str:
        return self.engine.privacy_mode if self.engine is not None else "auto"

    def confidence_bar(self) -> float | None:
        """Local answers whose samples agree less than this escalate, or are kept and marked."""
        return self.engine.confidence_bar if self.engine is not None else None

    def tier_is_local(self, name: str | None) -> bool:
        return self.engine.tier_is_local(name) if self.engine is not None else True

    def cloud_tier(self) -> str | None:
        return self.engine.cloud_tier if self.engine is not None else None

    def ask_options(self) -> dict[str, Any]:
        """Extra keyword arguments for Engine.ask: in privacy mode "confirm" the
        app is the one who is asked."""
        return {"confirm": self.confirm_cloud} if self.privacy_mode() == "confirm" else {}

    def confirm_cloud(self, request: Any) -> bool:
        """Called on an engine thread: show the exact text and cost, block until answered."""
        from tui.screens.confirm import ConfirmCloud

        answered = threading.Event()
        answer = [False]

        def done(ok: bool | None) -> None:
            answer[0] = bool(ok)
            answered.set()

        dialog = ConfirmCloud(request.tier, request.model, request.text(), request.estimated_usd, request.redaction_count)
        self.call_from_thread(self.push_screen, dialog, done)
        while not answered.wait(0.2):
            if not self.is_running:  # the app is closing: nobody will answer
                return False
        return answer[0]

    # -- lifecycle ---------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.startup_error is not None:
            self.push_screen(StartupError(self.startup_error.message, self.startup_error.fix))
            return
        self.push_screen(MainScreen())
        if self.first_run_check:
            self.check_first_run()

    @work(thread=True, exclusive=True, group="first-run")
    def check_first_run(self) -> None:
        missing = self.engine.missing()
        state = app_state()
        if missing.key_tier is None and state.pop("offline_ok", None):
            save_app_state(state)  # a key appeared: ask again should it go
        if missing.models or (missing.key_tier and not state.get("offline_ok")):
            self.call_from_thread(self.push_screen, FirstRunScreen(missing))

    @work(thread=True, group="state", exit_on_error=False)
    def remember_offline(self) -> None:
        """The user chose to continue without a key: do not ask on every launch."""
        save_app_state({**app_state(), "offline_ok": True})

    def on_unmount(self) -> None:
        if self.engine is not None:
            self.engine.close()

    def refresh_meter(self) -> None:
        """Update the status bar; the ledger and keyring reads run off the UI thread."""
        if self.engine is not None:
            self._read_meter()

    @work(thread=True, exclusive=True, group="meter", exit_on_error=False)
    def _read_meter(self) -> None:
        m = self.engine.meter(self.today)
        state = MeterState(m.today_usd, m.month_usd, m.daily_budget, m.monthly_budget, m.key,
                           "local-only" if self.local_only else self.privacy_mode(), m.key_set and not self.local_only)
        self.call_from_thread(self._show_meter, state)

    def _show_meter(self, state: MeterState) -> None:
        for screen in self.screen_stack:
            for meter in screen.query(SpendMeter):
                meter.show(state)

    # -- actions -----------------------------------------------------------------------
    def action_toggle_local_only(self) -> None:
        self.local_only = not self.local_only
        self.notify("Local-only: nothing leaves this machine." if self.local_only else "Cloud allowed again (if a key is set).")
        self.refresh_meter()

    def action_toggle_help(self) -> None:
        """`?`: the keys of what has focus, beside the screen (again to close)."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    # Screens that need the ledger or the keyring read it in a worker, then open.
    def action_history(self) -> None:
        self._open_conversations()

    def action_questions(self) -> None:
        self._open_history()

    def action_new_conversation(self) -> None:
        self.run_worker(self.main_screen.action_new_conversation(), group="new", exit_on_error=False)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open_conversations(self) -> None:
        from tui.screens.conversations import ConversationsScreen

        def reopen(cid: str | None) -> None:
            if cid:
                self._load_conversation(cid)

        self.call_from_thread(self.push_screen, ConversationsScreen(self.engine.conversations(200)), reopen)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _load_conversation(self, cid: str) -> None:
        questions = self.engine.conversation_questions(cid)
        self.call_from_thread(self.main_screen.show_conversation, cid, questions)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open_history(self) -> None:
        from tui.screens.history import HistoryScreen

        def reopen(qid: str | None) -> None:
            if qid:
                self._load_past(qid)

        self.call_from_thread(self.push_screen, HistoryScreen(self.engine.questions(200)), reopen)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _load_past(self, qid: str) -> None:
        q = self.engine.question(qid)
        if q is not None:
            self.call_from_thread(self.main_screen.show_past, q)

    async def _reopen(self, qid: str) -> None:
        """Show a past question (tests, and callers already off the UI thread)."""
        q = self.engine.question(qid)
        if q is not None:
            await self.main_screen.show_past(q)

    @property
    def main_screen(self) -> MainScreen:
        return next(s for s in self.screen_stack if isinstance(s, MainScreen))

    def action_spend(self) -> None:
        self._open_spend()

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open_spend(self) -> None:
        from tui.screens.spend import SpendScreen

        today = self.today or date.today()
        screen = SpendScreen(self.engine.spend(30, today), today, 30, self.engine.budget_caps)
        self.call_from_thread(self.push_screen, screen)

    def action_training(self) -> None:
        from tui.screens.training import TrainingScreen

        self.push_screen(TrainingScreen())

    def action_set_key(self) -> None:
        tier = self.cloud_tier()
        if tier is None:
            self.notify("No cloud tier is configured; add one to config.toml.", severity="warning")
            return
        self._open_key_dialog(tier)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open_key_dialog(self, tier: str) -> None:
        from r2local import keys
        from r2local.keystore import active

        dialog = KeyDialog(tier, keys.status(tier), active())
        self.call_from_thread(self.push_screen, dialog, lambda saved: self.refresh_meter())

    def action_cancel_question(self) -> None:
        self.main_screen.action_cancel()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.engine is None:
            return
        yield SystemCommand("Toggle local-only", "Never contact a non-local tier (Ctrl+O)", self.action_toggle_local_only)
        yield SystemCommand("Set API key", "Store the cloud key in the OS keyring (F4)", self.action_set_key)
        yield SystemCommand("History", "Conversations from the ledger; Enter continues one (F2)", self.action_history)
        yield SystemCommand("New conversation", "The next question starts afresh (Ctrl+N)", self.action_new_conversation)
        yield SystemCommand("Past questions", "Every question in the ledger, one by one", self.action_questions)
        yield SystemCommand("Spend", "Cost per day and per model (F3)", self.action_spend)
        yield SystemCommand("Train the router", "Learn from the ledger, adopt only when better (F5)", self.action_training)
        yield SystemCommand("Cancel question", "Stop the running question (Esc)", self.action_cancel_question)


def _state_path():
    from r2local import paths

    return paths.user_dir() / "app-state.json"


def app_state() -> dict[str, Any]:
    """What the app remembers between launches (e.g. that the user chose to stay offline)."""
    import json

    try:
        data = json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_app_state(state: dict[str, Any]) -> None:
    import json

    _state_path().write_text(json.dumps(state))


def make_app(pool: str | None = None, engine: Any = None, **kwargs: Any) -> R2App:
    """Build the app around an engine (made from config.toml unless given), seen through the facade."""
    if engine is None:
        from r2local.engine.core import Engine

        try:
            engine = Engine.from_config(pool=pool)
        except R2Error as exc:
            return R2App(error=exc, **kwargs)
    return R2App(engine if isinstance(engine, Facade) else Facade(engine), **kwargs)


def run_app(pool: str | None = None) -> None:
    make_app(pool).run()
