"""The chat transcript: questions, and answers streamed as Markdown per chunk."""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static

from r2local.engine.standing import standing

from tui.widgets.badges import money


class Exchange(Vertical):
    """One question and its (streaming) answer."""

    def __init__(self, question: str, question_id: str | None = None) -> None:
        super().__init__(classes="exchange")
        self.question = question
        self.question_id = question_id
        self._stream: Any = None

    def compose(self):
        yield Static(self.question, classes="question")
        yield Markdown("", classes="answer")
        yield Static("", classes="warning")
        yield Static("planning…", classes="meta")

    def on_mount(self) -> None:
        self.query_one(".warning", Static).display = False

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    async def write(self, text: str, restart: bool = False) -> None:
        """Append a chunk; a restart (escalation, retry) drops what was shown."""
        if restart and self._stream is not None:
            await self._stream.stop()
            self._stream = None
            await self.markdown.update("")
        if self._stream is None:
            self._stream = Markdown.get_stream(self.markdown)
        await self._stream.write(text)

    def set_warning(self, text: str | None) -> None:
        """Mark the answer (e.g. answered below the confidence bar), or clear the mark."""
        line = self.query_one(".warning", Static)
        line.update(text or "")
        line.display = bool(text)
        self.markdown.set_class(bool(text), "unsure")

    async def finish(self, answer: str, meta: str) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        # The stored answer is authoritative (e.g. placeholders restored).
        if self.markdown.source != answer:
            await self.markdown.update(answer)
        self.set_meta(meta)

    def set_meta(self, meta: str, error: bool = False) -> None:
        status = self.query_one(".meta", Static)
        status.update(meta)
        status.set_class(error, "error")


def result_meta(cost: float, cloud_share: float, latency_ms: float, status: str, confidence: float | None = None) -> str:
    """The line under an answer: its status and confidence (as `ask` and history show them), cost, cloud share, time."""
    return f"{standing(status, confidence)} · {money(cost)} · cloud share {cloud_share:.0%} · {latency_ms / 1000:.1f} s"


def confidence_warning(records: list[dict[str, Any]], bar: float | None) -> str | None:
    """One line when some of the answer ran below the confidence bar, else None."""
    from tui.widgets.plan_tree import below_bar, held

    # The composed answer is as sure as its least sure part: the part is the one to name.
    low = [r for r in records if below_bar(r, bar) and r.get("kind") != "compose"]
    if not low:
        return None
    limit = f" ({bar:.2f})" if bar is not None else ""

    def name(r: dict[str, Any]) -> str:
        conf = f" {r['confidence']:.2f}" if r.get("confidence") is not None else ""
        return ("final" if r.get("kind") == "final" else f"#{r['id']}") + conf

    names = ", ".join(name(r) for r in low)
    if len(low) == 1 and held(low[0]):
        return f"⚠ {'this answer' if len(records) == 1 else name(low[0])} was held back: {low[0]['reason']}; check it in the plan"
    if len(low) == 1:
        which = "this answer was written" if low[0].get("kind") == "final" or len(records) == 1 else "one step was answered"
        return f"⚠ {which} below the confidence bar{limit}: {names}; check it in the plan"
    return f"⚠ {len(low)} of {len(records)} steps were answered below the confidence bar{limit}: {names}; check them in the plan"


class Transcript(VerticalScroll):
    """All exchanges of this session, newest at the bottom."""

    async def add(self, question: str, question_id: str | None = None) -> Exchange:
        exchange = Exchange(question, question_id)
        await self.mount(exchange)
        self.scroll_end(animate=False)
        return exchange

    async def clear_all(self) -> None:
        await self.remove_children()
