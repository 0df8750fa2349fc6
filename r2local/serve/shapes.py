"""OpenAI chat-completion shapes for an r2local answer, plus r2local's extras.

Pure functions: the app module does the I/O. Every response (and the last
stream chunk) carries an ``r2local`` object: question id, tier, cost, route,
status, so a client can show what answered and what it cost.
"""

from __future__ import annotations

import json
import time
from typing import Any

from r2local.engine.core import AskResult

# Model ids the server answers to, and whether each is local-only.
MODELS = {"r2local": False, "r2local-local": True}


def extras(result: AskResult) -> dict[str, Any]:
    answer = result.nodes[-1] if result.nodes else None
    return {
        "question_id": result.question_id, "conversation_id": result.conversation_id,
        "tier": answer.tier if answer else None, "status": result.status,
        "cost_usd": round(result.cost_usd, 8), "cloud_share": round(result.cloud_share, 4),
        "route": result.route, "route_reason": result.route_reason, "offline": result.offline,
        "latency_ms": round(result.latency_ms, 1), "error": result.error,
    }


def usage(result: AskResult) -> dict[str, int]:
    prompt = sum(n.input_tokens for n in result.nodes)
    completion = sum(n.output_tokens for n in result.nodes)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(result: AskResult, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.question_id}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.answer},
                     "finish_reason": "stop"}],
        "usage": usage(result), "r2local": extras(result),
    }


def chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
    """One server-sent event of a chat.completion.chunk."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def error(message: str, kind: str = "invalid_request_error", code: str | None = None,
          fix: str | None = None) -> dict[str, Any]:
    """OpenAI's error object; r2local's ``fix`` (the command that fixes it) rides along when known."""
    body: dict[str, Any] = {"message": message, "type": kind, "code": code, "param": None}
    if fix:
        body["fix"] = fix
    return {"error": body}


class Streamed:
    """What of the answer a stream has sent. An answer can restart (an escalation, the vote's
    pick): text already sent cannot be taken back, so a restart that does not continue it
    stops the live text, and the final answer follows in full, marked as revised."""

    def __init__(self) -> None:
        self.sent = ""
        self.current = ""
        self.diverged = False

    def feed(self, text: str, restart: bool) -> str:
        """The piece to send now for one answer delta ("" for none)."""
        self.current = text if restart else self.current + text
        return self._advance(self.current)

    def finish(self, answer: str) -> tuple[str, bool]:
        """The rest of the final answer to send, and whether it was revised."""
        if answer.startswith(self.sent):
            piece, self.sent = answer[len(self.sent):], answer
            return piece, False
        return f"\n\n[revised answer]\n{answer}", True

    def _advance(self, text: str) -> str:
        if self.diverged or self.sent.startswith(text):  # a new attempt, so far saying what was sent
            return ""
        if not text.startswith(self.sent):
            self.diverged = True
            return ""
        piece, self.sent = text[len(self.sent):], text
        return piece
