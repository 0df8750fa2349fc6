"""The Starlette app: `/v1/models` and `/v1/chat/completions` (stream and not) over one Engine.

Each request is one question: its last user message, with the user/assistant
turns before it as the conversation's context. The engine runs on a worker
thread; a client that goes away cancels its question (its calls end
``cancelled``). Requests need ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any, AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from r2local import keys
from r2local.engine.conversation import Context, from_messages
from r2local.engine.core import AskResult, Engine
from r2local.engine.events import AnswerDelta, Notice
from r2local.errors import Cancelled, R2Error
from r2local.serve import discovery, shapes

POLL_S = 0.25  # how often a non-streamed request checks that its client is still there


def make_app(engine: Engine, token: str) -> Starlette:
    server = _Server(engine, token)
    return Starlette(routes=[
        Route("/v1/models", server.models, methods=["GET"]),
        Route("/v1/chat/completions", server.chat, methods=["POST"]),
    ])


class AnnouncedServer(uvicorn.Server):
    """Writes ``<home>/serve.json`` once it listens, so `r2local ask` on this home finds it, and
    removes it when it shuts down (here: uvicorn re-raises SIGTERM after ``run``, so a
    ``finally`` around it never runs on ``kill``)."""

    def __init__(self, config: uvicorn.Config, host: str, pool: str | None) -> None:
        super().__init__(config)
        self.shown_host, self.pool = host, pool

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            bound = [s.getsockname()[1] for server in self.servers for s in server.sockets]
            discovery.announce(f"http://{self.shown_host}:{bound[0] if bound else self.config.port}/v1", self.pool)

    async def shutdown(self, sockets: Any = None) -> None:
        discovery.withdraw()
        await super().shutdown(sockets)


class _Server:
    def __init__(self, engine: Engine, token: str) -> None:
        self.engine = engine
        self.token = token

    def _refused(self, request: Request) -> Response | None:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), self.token.encode()):
            return None
        msg = "missing or wrong token: send `Authorization: Bearer <token>` (`r2local serve` prints it)"
        return JSONResponse(shapes.error(msg, "authentication_error", "invalid_api_key"), status_code=401)

    async def models(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "r2local"} for m in shapes.MODELS]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
            model = body.get("model") or "r2local"
            if model not in shapes.MODELS:
                return JSONResponse(shapes.error(f"unknown model {model!r}; use one of {', '.join(shapes.MODELS)}",
                                                 code="model_not_found"), status_code=404)
            question, context = from_messages(body.get("messages") or [])
            extra = body.get("r2local") if isinstance(body.get("r2local"), dict) else {}
            local_only = shapes.MODELS[model] or bool(extra.get("local_only"))
            if extra.get("conversation_id"):
                context = self._stored(str(extra["conversation_id"]), question, local_only)
        except R2Error as exc:
            return JSONResponse(shapes.error(exc.message, fix=exc.fix), status_code=400)
        except (ValueError, AttributeError):
            return JSONResponse(shapes.error("the body must be a JSON chat completion request"), status_code=400)
        job = _Job(self.engine, question, context, local_only, bool(extra.get("result")), bool(extra.get("shadow")))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(self._stream(job, model, usage), media_type="text/event-stream")
        return await self._complete(request, job, model)

    def _stored(self, ref: str, question: str, local_only: bool) -> Context:
        """A conversation kept in the ledger ("new" starts one): its turns are the context, not the messages'."""
        from r2local.engine import conversation

        ledger = self.engine.ledger
        if ref == "new":
            return conversation.start(ledger, self.engine.settings.pool, local_only)
        return conversation.load(ledger, ledger.find_conversation(ref)["id"])

    async def _complete(self, request: Request, job: "_Job", model: str) -> Response:
        future = job.start()
        while not future.done():
            await asyncio.wait([future], timeout=POLL_S)
            if not future.done() and await request.is_disconnected():
                job.cancel.set()
        try:
            result = future.result()
        except Cancelled:
            return JSONResponse(shapes.error("cancelled"), status_code=499)
        except R2Error as exc:
            return JSONResponse(shapes.error(keys.scrub(exc.message), fix=exc.fix), status_code=400)
        reply = shapes.completion(result, model)
        reply["r2local"].update(job.finished(result))
        return JSONResponse(reply)

    async def _stream(self, job: "_Job", model: str, include_usage: bool) -> AsyncIterator[str]:
        future = job.start()
        cid, streamed = f"chatcmpl-{id(job):x}", shapes.Streamed()
        try:
            yield shapes.chunk(cid, model, {"role": "assistant", "content": ""})
            while True:
                event = await job.deltas.get()
                if event is None:
                    break
                piece = streamed.feed(event.text, event.restart)
                if piece:
                    yield shapes.chunk(cid, model, {"content": piece})
            try:
                result = future.result()
            except R2Error as exc:
                yield f"data: {_json(shapes.error(keys.scrub(exc.message)))}\n\n"
                return
            cid = f"chatcmpl-{result.question_id}"
            piece, revised = streamed.finish(result.answer)
            if piece:
                yield shapes.chunk(cid, model, {"content": piece})
            more = {"r2local": {**shapes.extras(result), "revised": revised, **job.finished(result)}}
            if include_usage:
                more["usage"] = shapes.usage(result)
            yield shapes.chunk(cid, model, {}, "stop", **more)
            yield "data: [DONE]\n\n"
        finally:
            if not future.done():  # the client went away (or the server stops): end its question
                job.cancel.set()


class _Job:
    """One request's question on a worker thread, its answer's deltas on a queue for the loop.

    ``full``: the reply carries the whole result (``AskResult.to_json``) and the notices, as
    `r2local ask` prints them; ``shadow``: afterwards, maybe answer it one tier up for
    learning, as `ask` and the app do (``r2local.result`` / ``r2local.shadow`` in the request).
    """

    def __init__(self, engine: Engine, question: str, context: Context, local_only: bool,
                 full: bool = False, shadow: bool = False) -> None:
        self.engine, self.question, self.context, self.local_only = engine, question, context, local_only
        self.full, self.shadow = full, shadow
        self.cancel = threading.Event()
        self.deltas: asyncio.Queue[AnswerDelta | None] = asyncio.Queue()
        self.notices: list[str] = []

    def finished(self, result: AskResult) -> dict[str, Any]:
        """The extras a finished question adds to its reply; starts its shadow run, if asked for."""
        if self.shadow:
            shadow = asyncio.get_running_loop().run_in_executor(
                None, lambda: self.engine.shadow(result, local_only=self.local_only))
            shadow.add_done_callback(lambda f: f.cancelled() or f.exception())  # for learning only: never fails a reply
        return {"result": result.to_json(), "notices": list(self.notices)} if self.full else {}

    def start(self) -> "asyncio.Future[AskResult]":
        loop = asyncio.get_running_loop()

        def on_event(event: Any) -> None:
            if isinstance(event, AnswerDelta):
                loop.call_soon_threadsafe(self.deltas.put_nowait, event)
            elif isinstance(event, Notice):
                self.notices.append(event.text)

        def ask() -> AskResult:
            return self.engine.ask(self.question, local_only=self.local_only, on_event=on_event, cancel=self.cancel,
                                   context=self.context)

        future = loop.run_in_executor(None, ask)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: "asyncio.Future[AskResult]") -> None:
        self.deltas.put_nowait(None)
        if not future.cancelled():
            future.exception()  # retrieved here: a cancelled client's question raises Cancelled, nobody waits


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
