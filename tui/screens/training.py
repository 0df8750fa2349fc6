"""Training: teach the router from the ledger, watch it learn, adopt or discard.

The run happens in a thread worker (it is minutes of PyTorch); its progress
comes back as messages. Esc stops a running training (nothing is kept, the
active adapter is untouched) and then leaves the screen.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    ProgressBar,
    Sparkline,
    Static,
)


class TrainProgress(Message):
    def __init__(self, phase: str, step: int, total: int, metrics: dict[str, float]) -> None:
        super().__init__()
        self.phase, self.step, self.total, self.metrics = phase, step, total, metrics


class TrainDone(Message):
    def __init__(self, report: dict[str, Any] | None, error: str | None = None) -> None:
        super().__init__()
        self.report, self.error = report, error


def comparison_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """The before/after table: one row per allocator on the held-out questions."""
    rows = []
    for name, a in report["comparison"].get("allocators", {}).items():
        cost, change = a["cost_at_equal_accuracy_usd"], a["cost_change"]
        rows.append((name, f"{a['greedy_reward']:.3f}", f"{a['label_accuracy']:.0%}",
                     "unreachable" if cost is None else f"${cost:.6f}", "" if change is None else f"{change:+.0%}",
                     f"{a['vs_reference']['p']:.3g}"))
    return rows


class TrainingScreen(Screen):
    BINDINGS = [
        Binding("escape", "leave", "Back / stop"),
        Binding("t", "train", "Train now"),
        Binding("a", "adopt", "Adopt"),
        Binding("x", "discard", "Discard"),
    ]

    def __init__(self, steps: tuple[int, int] = (40, 200)) -> None:
        super().__init__(id="training")
        self.steps = steps
        self.cancel: threading.Event | None = None
        self.rewards: list[float] = []
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("Teach the router from your ledger", classes="screen-title")
        yield Static("reading the ledger…", id="train-status")
        yield ProgressBar(total=1, id="train-bar", show_eta=True)
        yield Static("", id="train-figures")
        yield Static("mean reward per GRPO step (higher: right more often, for less):", classes="dim")
        yield Sparkline([], id="train-spark")
        yield DataTable(id="train-table", zebra_stripes=True)
        yield Static("", id="train-why")
        with Horizontal(classes="buttons"):
            yield Button("Train now (t)", variant="primary", id="train")
            yield Button("Adopt (a)", id="adopt", disabled=True)
            yield Button("Discard (x)", id="discard", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#train-table", DataTable)
        table.add_columns("allocator", "greedy reward", "best label", "cloud cost at equal acc.", "vs ref", "p")
        self.query_one("#train-bar", ProgressBar).display = False
        self.load_status()

    @work(thread=True, group="train-status", exit_on_error=False)
    def load_status(self) -> None:
        text = self.app.engine.train_status_text()
        self.app.call_from_thread(self.query_one("#train-status", Static).update, text)

    # -- running -------------------------------------------------------------------
    def action_train(self) -> None:
        if self.cancel is not None:
            return
        self.cancel, self.rewards, self.report = threading.Event(), [], None
        self.query_one("#train-bar", ProgressBar).display = True
        self.query_one("#train", Button).disabled = True
        self.run_training(self.cancel)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def run_training(self, cancel: threading.Event) -> None:
        from r2local.errors import Cancelled, R2Error

        def progress(phase: str, step: int, total: int, metrics: dict[str, float]) -> None:
            self.post_message(TrainProgress(phase, step, total, dict(metrics)))

        try:
            report = self.app.engine.train(self.steps, progress, cancel)
        except Cancelled:
            self.post_message(TrainDone(None, "stopped: nothing was kept; the active adapter is unchanged"))
        except R2Error as exc:
            self.post_message(TrainDone(None, f"{exc.message}" + (f"\nfix: {exc.fix}" if exc.fix else "")))
        except Exception as exc:  # a bug: say so, keep the app alive
            self.post_message(TrainDone(None, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(TrainDone(report))

    def on_train_progress(self, message: TrainProgress) -> None:
        bar = self.query_one("#train-bar", ProgressBar)
        bar.update(total=max(1, message.total), progress=message.step)
        reward = message.metrics.get("grpo_reward")
        if reward is not None:
            self.rewards.append(reward)
            self.query_one("#train-spark", Sparkline).data = list(self.rewards)
        figures = "  ".join(f"{k} {v:.3f}" for k, v in message.metrics.items())
        self.query_one("#train-figures", Static).update(f"{message.phase} {message.step}/{message.total}  {figures}")

    def on_train_done(self, message: TrainDone) -> None:
        self.cancel = None
        self.query_one("#train", Button).disabled = False
        if message.report is None:
            self.query_one("#train-why", Static).update(message.error or "")
            return
        self.show_report(message.report)
        self.load_status()

    def show_report(self, report: dict[str, Any]) -> None:
        """The before/after table and the verdict; adopt/discard while it is a candidate."""
        self.report = report
        table = self.query_one("#train-table", DataTable)
        table.clear()
        for row in comparison_rows(report):
            table.add_row(*row)
        self.query_one("#train-why", Static).update(f"{report['adapter_id']}: {report['why']}")
        undecided = not report["adopted"] and report["adapter_id"] is not None
        self.query_one("#adopt", Button).disabled = not undecided
        self.query_one("#discard", Button).disabled = not undecided

    def action_adopt(self) -> None:
        if self.report and not self.query_one("#adopt", Button).disabled:
            self.decide(self.report["adapter_id"], True)

    def action_discard(self) -> None:
        if self.report and not self.query_one("#discard", Button).disabled:
            self.decide(self.report["adapter_id"], False)

    @work(thread=True, group="train-decide", exit_on_error=False)
    def decide(self, adapter_id: str, adopt: bool) -> None:
        text = self.app.engine.decide_adapter(adapter_id, adopt)
        self.app.call_from_thread(self._decided, text)

    def _decided(self, text: str) -> None:
        self.query_one("#adopt", Button).disabled = self.query_one("#discard", Button).disabled = True
        self.query_one("#train-why", Static).update(text)
        self.notify(text)
        self.load_status()

    def action_leave(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self.notify("Stopping the training…")
            return
        self.app.pop_screen()

    @on(Button.Pressed, "#train")
    def _train(self) -> None:
        self.action_train()

    @on(Button.Pressed, "#adopt")
    def _adopt(self) -> None:
        self.action_adopt()

    @on(Button.Pressed, "#discard")
    def _discard(self) -> None:
        self.action_discard()
