"""Conversations: what one turn sees of the turns before it.

A turn carries its message plus as many of the most recent turns as fit the
answering tier's context budget, the oldest dropped first. When turns no longer
fit the smallest local tier, they are summarised once by a local model (a
recorded call; the summary is kept on the conversation and reused), and the
summary rides in the system prompt in their place. The router rates the message
with the previous whole turn: "and for 7 boxes?" is only as hard as what it
continues.

Token counts here are estimates (characters / 3, rounded up), on purpose on the
high side for the small models' tokenisers: a history must never overfill a
context, and counting with a real tokenizer would load every model first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from r2local.backends import Message, complete
from r2local.engine.kinds import conversation_kind
from r2local.vocab import Role

if TYPE_CHECKING:
    from r2local.engine.recorder import Recorder
    from r2local.pool import Pool, Tier
    from r2local.store.ledger import Ledger

CHARS_PER_TOKEN = 3
RESERVE_TOKENS = 512  # the system prompt, the program prompt's worked example, chat framing
MAX_HISTORY_TOKENS = 3000  # even a big (cloud) context gets no more history: its cost grows with every turn
MAX_ANSWER_CHARS = 1500  # a long answer is kept this long in the history
RATED_CHARS = 600  # each side of the previous turn the router reads: a long one must not crowd out the message
SUMMARY_TOKENS = 160
SUMMARY_SYSTEM = (
    "Summarise the conversation below in a few short sentences for whoever continues it: keep every number, "
    "name and result that a follow-up question could refer to. Reply with only the summary."
)


def tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN) + 4  # + the message's framing


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str

    def messages(self) -> list[Message]:
        answer = self.answer if len(self.answer) <= MAX_ANSWER_CHARS else self.answer[:MAX_ANSWER_CHARS] + " …"
        return [{"role": "user", "content": self.question}, {"role": "assistant", "content": answer}]

    def cost(self) -> int:
        return sum(tokens(m["content"]) for m in self.messages())


@dataclass
class Context:
    """The turns before this one (oldest first; those the summary covers are not among them)."""

    turns: list[Turn] = field(default_factory=list)
    summary: str | None = None
    conversation_id: str | None = None  # None: a history given by the caller (serve), not a stored conversation
    local_only: bool = False  # an earlier turn was local-only: the whole conversation stays on this machine

    @property
    def previous(self) -> str:
        """The previous whole turn, as the router reads it before the message ("" on a first turn)."""
        if not self.turns:
            return ""
        last = self.turns[-1]
        return f"Previous question: {_cut(last.question)}\nPrevious answer: {_cut(last.answer)}"

    @property
    def kind_before(self) -> str | None:
        """The answer kind of the previous turn, each turn read after the one before (None on a first turn)."""
        return conversation_kind([t.question for t in self.turns])

    def fitting(self, budget: int) -> tuple[str | None, list[Turn]]:
        """The summary (if it fits) and the most recent turns that fit ``budget`` tokens."""
        summary = self.summary if self.summary and tokens(self.summary) <= budget // 2 else None
        left = budget - (tokens(summary) if summary else 0)
        kept: list[Turn] = []
        for turn in reversed(self.turns):
            left -= turn.cost()
            if left < 0:
                break
            kept.append(turn)
        return summary, kept[::-1]


def _cut(text: str, limit: int = RATED_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def history_budget(tier: "Tier", question: str) -> int:
    """Tokens of history a tier takes with ``question``: its context less the answer's room, the
    prompt's fixed parts and the question; never more than MAX_HISTORY_TOKENS."""
    room = tier.config.n_ctx - tier.config.max_tokens - RESERVE_TOKENS - tokens(question)
    return max(0, min(room, MAX_HISTORY_TOKENS))


def with_history(messages: list[Message], context: Context | None, tier: "Tier", question: str) -> list[Message]:
    """A prompt with the turns before it: the summary in the system message, the turns
    between it and the prompt's own user message. Every prompt kind has that shape."""
    if context is None or not (context.turns or context.summary):
        return messages
    summary, turns = context.fitting(history_budget(tier, question))
    if not summary and not turns:
        return messages
    head, rest = (messages[:1], messages[1:]) if messages and messages[0]["role"] == "system" else ([], messages)
    if summary:
        note = f"Earlier in this conversation (summary): {summary}"
        head = [{"role": "system", "content": f"{head[0]['content']}\n\n{note}" if head else note}]
    return head + [m for t in turns for m in t.messages()] + rest


# -- stored conversations -----------------------------------------------------------
def load(ledger: "Ledger", cid: str) -> Context:
    """A stored conversation's context: its finished turns after the summarised ones."""
    conv = ledger.conversation(cid)
    if conv is None:
        from r2local.errors import R2Error

        raise R2Error(f"no conversation {cid!r}", fix="see `r2local conversations` for ids")
    done = [q for q in ledger.turns(cid) if q["answer"]]
    covered = conv["summary_turns"] or 0
    turns = [Turn(q["question"], q["answer"]) for q in done[covered:]]
    return Context(turns, conv["summary"], cid, bool(conv["local_only"]))


@dataclass
class Summariser:
    """Summarises a stored conversation's oldest turns on the first local tier, through the recorder."""

    pool: "Pool"
    recorder: "Recorder"
    ledger: "Ledger"

    def begin(self, qid: str, context: Context, allowed: list["Tier"], question: str, local_only: bool,
              cancel: threading.Event) -> Context:
        """Link question ``qid`` as the conversation's next turn, keep the local-only mark, and
        summarise the turns that no longer fit the smallest local tier. Returns the turn's context."""
        if context.conversation_id is None:
            return context
        cid = context.conversation_id
        self.ledger.link_turn(qid, cid)
        if local_only and not context.local_only:
            self.ledger.update_conversation(cid, local_only=1)
            context.local_only = True
        local = next(t for t in allowed if t.is_local)
        _, kept = context.fitting(history_budget(local, question))
        dropped = context.turns[: len(context.turns) - len(kept)]
        if len(dropped) < 2:  # one dropped turn is not worth a model call; it goes at the next summary
            return context
        summary = self._summarise(qid, local, context.summary, dropped, cancel)
        if not summary:
            return context
        conv = self.ledger.conversation(cid) or {}
        self.ledger.update_conversation(cid, summary=summary, summary_turns=(conv.get("summary_turns") or 0) + len(dropped))
        return Context(context.turns[len(dropped):], summary, cid, context.local_only)

    def _summarise(self, qid: str, tier: "Tier", earlier: str | None, turns: list[Turn],
                   cancel: threading.Event) -> str:
        from r2local.engine.prompts import prompt_version
        from r2local.engine.recorder import CallSpec
        from r2local.errors import BackendError
        from r2local.store.records import CallRecord

        lines = [f"Summary so far: {earlier}"] if earlier else []
        for t in turns:
            lines += [f"User: {t.question}", f"Assistant: {t.messages()[1]['content']}"]
        messages: list[Message] = [{"role": "system", "content": SUMMARY_SYSTEM},
                                   {"role": "user", "content": "\n".join(lines)}]
        record = CallRecord(Role.SUMMARY, tier.name, tier.backend, tier.model, qid,
                            prompt_version=prompt_version(messages), temperature=0.0)
        params: dict[str, Any] = {"max_tokens": SUMMARY_TOKENS, "temperature": 0.0}
        backend = self.pool.backend(tier)
        try:
            result = self.recorder.call(CallSpec(record, messages, params), lambda: complete(
                backend, messages, max_tokens=SUMMARY_TOKENS, temperature=0.0, cancel=cancel))
        except BackendError:
            return ""  # no summary: the oldest turns are simply dropped (the row says why)
        return result.text.strip()


def start(ledger: "Ledger", pool: str, local_only: bool = False) -> Context:
    """A new stored conversation (its first turn, and title, is the next question asked with it)."""
    return Context(conversation_id=ledger.start_conversation(pool=pool, local_only=local_only), local_only=local_only)


def from_messages(messages: list[Message]) -> tuple[str, Context]:
    """A caller's chat history (OpenAI messages) as a turn: its last user message, and the
    user/assistant pairs before it as the context. Roles other than user and assistant are dropped:
    r2local's own prompts say how to answer."""
    talk = [{"role": m["role"], "content": _text(m.get("content"))} for m in messages
            if isinstance(m, dict) and m.get("role") in ("user", "assistant") and _text(m.get("content"))]
    if not talk or talk[-1]["role"] != "user":
        from r2local.errors import R2Error

        raise R2Error("the last message must be the user's", fix="end `messages` with a user message")
    turns, pending = [], None
    for m in talk[:-1]:
        if m["role"] == "user":
            pending = m["content"] if pending is None else f"{pending}\n{m['content']}"
        elif pending is not None:
            turns.append(Turn(pending, m["content"]))
            pending = None
    question = talk[-1]["content"] if pending is None else f"{pending}\n{talk[-1]['content']}"
    return question, Context(turns)


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list (other parts are not read)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
