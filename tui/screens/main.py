"""The main screen: transcript and question box on the left, the live plan
tree and the highlighted node's detail on the right, the spend meter below."""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from r2local.engine.standing import answer_status
from r2local.engine.events import AnswerDelta, NodeUpdate, Notice, PlanReady, QuestionStarted
from r2local.vocab import Status

from tui.messages import EngineEvent, QuestionFailed, QuestionFinished
from tui.widgets.node_detail import NodeDetail
from tui.widgets.plan_tree import PlanTree, as_record
from tui.widgets.spend_meter import SpendMeter
from tui.widgets.transcript import Exchange, Transcript, confidence_warning, result_meta


class MainScreen(Screen):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("slash", "focus_ask", "Ask", key_display="/"),
        Binding("z", "zoom_detail", "Zoom"),
        Binding("ctrl+o", "app.toggle_local_only", "Local"),
        Binding("ctrl+n", "new_conversation", "New", show=False),
        Binding("f2", "app.history", "History"),
        Binding("f3", "app.spend", "Spend"),
        Binding("f4", "app.set_key", "Key"),
        Binding("f5", "app.training", "Train"),
        Binding("question_mark", "app.toggle_help", "Help", key_display="?"),
        # Feedback on the highlighted plan node (the plan's title: the whole answer); not while typing.
        Binding("plus", "feedback('good')", "Good", key_display="+", show=False),
        Binding("minus", "feedback('bad')", "Bad", key_display="-", show=False),
        Binding("u", "feedback('needed-the-cloud')", "Needed the cloud", show=False),
        Binding("d", "feedback('did-not-need-it')", "Did not need it", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.exchange: Exchange | None = None
        self.cancel_event: threading.Event | None = None
        self.busy = False
        self.shown: str | None = None  # the question whose plan the tree shows
        self.conversation_id: str | None = None  # the next question continues it (None: starts one)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="body"):
            with Vertical(id="chat"):
                yield Transcript(id="transcript")
                yield Input(placeholder="Ask a question and press Enter", id="ask")
            with Vertical(id="side"):
                yield PlanTree(self.app.tier_is_local, self.app.confidence_bar(), id="plan")
                yield NodeDetail(self.app.confidence_bar(), id="detail")
        yield SpendMeter(id="meter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ask", Input).focus()
        self.app.refresh_meter()

    # -- asking --------------------------------------------------------------------
    @on(Input.Submitted, "#ask")
    async def submit(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.busy:
            self.notify("A question is still running; Esc cancels it.", severity="warning")
            return
        event.input.value = ""
        self.busy = True
        self.exchange = await self.query_one(Transcript).add(question)
        self.cancel_event = threading.Event()
        self.run_question(question, self.app.local_only, self.cancel_event)

    @work(thread=True, exclusive=True, group="ask")
    def run_question(self, question: str, local_only: bool, cancel: threading.Event) -> None:
        from r2local.errors import Cancelled, R2Error

        try:
            context = self.app.engine.turn_context(self.conversation_id, local_only)
            self.conversation_id = context.conversation_id
            result = self.app.engine.ask(
                question, local_only=local_only, cancel=cancel, on_event=lambda e: self.post_message(EngineEvent(e)),
                context=context, **self.app.ask_options(),
            )
        except Cancelled:
            self.post_message(QuestionFailed("cancelled", cancelled=True))
        except R2Error as exc:
            self.post_message(QuestionFailed(exc.message, exc.fix))
        except Exception as exc:  # a bug, not a user mistake: still never a dead UI
            self.post_message(QuestionFailed(f"internal error: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(QuestionFinished(result))

    def action_cancel(self) -> None:
        if self.maximized is not None:  # Esc first leaves the zoomed detail
            self.minimize()
            return
        if self.busy and self.cancel_event is not None:
            self.cancel_event.set()
            self.notify("Cancelling…")
        else:
            self.action_focus_ask()

    def action_focus_ask(self) -> None:
        """Back to the question box from anywhere (the plan tree, the detail)."""
        if self.maximized is not None:
            self.minimize()
        self.query_one("#ask", Input).focus()

    def action_zoom_detail(self) -> None:
        """Show the node detail on the whole screen, or back."""
        if self.maximized is not None:
            self.minimize()
        else:
            detail = self.query_one(NodeDetail)
            self.maximize(detail)
            detail.focus()

    # -- engine events -------------------------------------------------------------
    async def on_engine_event(self, message: EngineEvent) -> None:
        event: Any = message.event
        tree = self.query_one(PlanTree)
        if isinstance(event, QuestionStarted) and self.exchange is not None:
            self.exchange.question_id = self.shown = event.question_id
        elif isinstance(event, Notice):
            self.notify(event.text, title="r2local", timeout=6)
        elif isinstance(event, PlanReady):
            self.query_one(NodeDetail).clear()  # the previous question's step is not this one's
            tree.show_plan(self.exchange.question if self.exchange else "", event.nodes, event.note, event.route,
                           event.route_reason)
            self._progress(f"plan: {len(event.nodes)} node(s); rating difficulty…")
        elif isinstance(event, NodeUpdate):
            tree.update_node(event.node)
            if event.node.status == Status.RUNNING:
                self._progress(f"running {'final' if event.node.kind == 'final' else '#' + str(event.node.id)} on {event.node.tier}…")
        elif isinstance(event, AnswerDelta) and self.exchange is not None:
            await self.exchange.write(event.text, restart=event.restart)
            self.query_one(Transcript).scroll_end(animate=False)

    async def on_question_finished(self, message: QuestionFinished) -> None:
        r = message.result
        if self.exchange is not None:
            node = r.nodes[-1] if r.nodes else None
            status = answer_status(r.status, node.status if node else None)
            meta = result_meta(r.cost_usd, r.cloud_share, r.latency_ms, status, node.confidence if node else None)
            await self.exchange.finish(r.answer or "(no answer)", meta)
            records = [as_record(n, self.app.tier_is_local) for n in r.nodes]
            self.exchange.set_warning(confidence_warning(records, self.app.confidence_bar()))
        self._reset()
        self.run_shadow(r, self.app.local_only)

    @work(thread=True, group="shadow", exit_on_error=False)
    def run_shadow(self, result: Any, local_only: bool) -> None:
        """For learning: maybe answer it one tier up too ([learning] shares), after the user has the answer."""
        self.app.engine.shadow(result, local_only=local_only, **self.app.ask_options())

    def action_feedback(self, verdict: str) -> None:
        if isinstance(self.focused, Input) or self.shown is None:
            return
        node = self.query_one(PlanTree).cursor_node
        rec = node.data if node is not None and isinstance(node.data, dict) else None
        self.save_feedback(self.shown, verdict, rec["id"] if rec else None, rec.get("tier") if rec else None)

    @work(thread=True, group="feedback", exit_on_error=False)
    def save_feedback(self, qid: str, verdict: str, subtask: int | None, tier: str | None) -> None:
        self.app.engine.feedback(qid, verdict, subtask, tier)
        what = f"subtask {subtask}" if subtask is not None else "the answer"
        self.app.call_from_thread(self.notify, f"Marked {what}: {verdict}. r2local train learns from it.")

    async def on_question_failed(self, message: QuestionFailed) -> None:
        if self.exchange is not None:
            text = "cancelled" if message.cancelled else f"error: {message.message}"
            if message.fix:
                text += f" — fix: {message.fix}"
            self.exchange.set_meta(text, error=not message.cancelled)
        if message.cancelled:
            self.query_one(PlanTree).mark_cancelled()
        else:
            self.notify(message.message + (f"\nfix: {message.fix}" if message.fix else ""), severity="error", timeout=10)
        self._reset()

    def _progress(self, text: str) -> None:
        if self.exchange is not None and self.busy:
            self.exchange.set_meta(text)

    def _reset(self) -> None:
        self.busy = False
        self.cancel_event = None
        self.app.refresh_meter()
        self.query_one("#ask", Input).focus()

    @on(PlanTree.NodeChosen)
    def show_node(self, message: PlanTree.NodeChosen) -> None:
        self.query_one(NodeDetail).show(message.record)

    # -- conversations ---------------------------------------------------------------
    async def action_new_conversation(self) -> None:
        """Ctrl+N: the next question starts a new conversation (earlier turns are no longer sent)."""
        if self.busy:
            self.notify("A question is still running; Esc cancels it.", severity="warning")
            return
        self.conversation_id, self.shown, self.exchange = None, None, None
        await self.query_one(Transcript).clear_all()
        self.notify("New conversation.")
        self.action_focus_ask()

    async def show_conversation(self, conversation_id: str, questions: list[dict[str, Any]]) -> None:
        """Reopen a conversation: its turns replace the transcript and the next question continues it."""
        if self.busy:
            self.notify("A question is still running; Esc cancels it.", severity="warning")
            return
        await self.query_one(Transcript).clear_all()
        self.exchange = None
        for q in questions:
            await self.show_past(q)
        self.conversation_id = conversation_id
        self.action_focus_ask()

    # -- reopening from history ---------------------------------------------------
    async def show_past(self, q: dict[str, Any]) -> None:
        """Show a past question from the ledger with its plan and costs."""
        transcript = self.query_one(Transcript)
        exchange = await transcript.add(q["question"], q["id"])
        node = q["subtasks"][-1] if q["subtasks"] else None
        status = answer_status(q["status"], node["status"] if node else None)
        meta = result_meta(q["cost_usd"] or 0.0, q["cloud_share"] or 0.0, q["latency_ms"] or 0.0, status,
                           node["confidence"] if node else None)
        await exchange.finish(q["answer"] or "(no answer)", f"{meta} · from history {q['created_at'][:16].replace('T', ' ')}")
        tree = self.query_one(PlanTree)
        self.shown = q["id"]
        tree.show_plan(q["question"], q["subtasks"], q.get("plan_note"), q.get("route"), q.get("route_reason"))
        if q["status"] in ("cancelled", "interrupted"):  # its unfinished steps never will: not "queued"
            tree.mark_cancelled()
        records = tree.records()
        detail = self.query_one(NodeDetail)
        if records:  # this question's answer, not the previously highlighted step of another question
            detail.show(records[-1])
        else:
            detail.clear()
        exchange.set_warning(confidence_warning(records, self.app.confidence_bar()))
