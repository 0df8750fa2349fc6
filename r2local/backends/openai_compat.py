"""Cloud backend: any OpenAI-compatible endpoint through the ``openai`` SDK.

The SDK's own retries are off: the executor retries, so that every attempt is
a ledger row. No connection is opened before the first call.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, Iterator

from r2local.errors import (
    AuthFailed,
    BadRequest,
    Cancelled,
    CloudError,
    CloudTimeout,
    ConnectionFailed,
    ContextOverflow,
    RateLimited,
    ServerError,
    StreamCut,
)
from r2local.backends import register
from r2local.backends.base import BackendSpec, Chunk, Message, Usage, flatten


def _retry_after(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return None


def _transport(name: str) -> tuple[type, ...]:
    """An exception class from every HTTP client the SDK may use: openai 1.x
    runs on httpx, later releases on httpx2; their classes are unrelated."""
    found = []
    for module in ("httpx", "httpx2"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def map_error(exc: Exception, tier: str) -> CloudError:
    """Turn an SDK or transport exception into a typed r2local error (by type, not text)."""
    import openai

    where = f"tier {tier!r}"
    if isinstance(exc, (openai.APITimeoutError, *_transport("TimeoutException"))):
        return CloudTimeout(f"{where}: the request timed out", fix="retry later, or raise timeout_s for this tier")
    if isinstance(exc, (openai.APIConnectionError, *_transport("ConnectError"))):
        return ConnectionFailed(f"{where}: cannot connect to the endpoint", fix="check base_url and your network")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthFailed(f"{where}: the endpoint rejected the API key", fix=f"run `r2local key set --tier {tier}`")
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(f"{where}: rate limited (HTTP 429)", retry_after=_retry_after(exc))
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return ServerError(f"{where}: server error (HTTP {exc.status_code})")
    if isinstance(exc, openai.BadRequestError) and _error_code(exc) == "context_length_exceeded":
        return ContextOverflow(f"{where}: the prompt exceeds the model's context", fix="shorten the question")
    if isinstance(exc, openai.APIStatusError):
        return BadRequest(f"{where}: request rejected (HTTP {exc.status_code})", fix="check the tier's model name")
    if isinstance(exc, (openai.APIError, *_transport("TransportError"))):
        return StreamCut(f"{where}: the connection broke mid-answer ({type(exc).__name__})")
    raise exc


@register("openai")
class OpenAIBackend:
    supports_json_schema = True
    supports_lora = False
    loads_file = False
    local_by_default = False
    uses_key = True

    @classmethod
    def build(cls, spec: BackendSpec) -> "OpenAIBackend":
        return cls(model=spec.model, base_url=spec.base_url, api_key=spec.api_key or (lambda: "none"),
                   tier=spec.tier, is_local=spec.is_local, timeout_s=spec.timeout_s)

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: Callable[[], str],
        tier: str = "cloud",
        is_local: bool = False,
        timeout_s: float = 60.0,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.tier = tier
        self.is_local = is_local
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._client: Any = None
        self._lock = threading.Lock()
        # None until a stream shows whether the server reports usage in streams.
        self.stream_usage: bool | None = None
        self._json_object_only = False

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key=self._api_key(), timeout=self.timeout_s, max_retries=0
                )
            return self._client

    def _response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        if self._json_object_only:
            # llama.cpp's server and others take a schema beside json_object.
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}

    def _create(self, messages: list[Message], json_schema: dict[str, Any] | None, **kw: Any) -> Any:
        client = self._get_client()
        try:
            return client.chat.completions.create(
                model=self.model, messages=messages, response_format=self._response_format(json_schema), **kw
            )
        except Exception as exc:
            err = map_error(exc, self.tier)
            if json_schema is None or self._json_object_only or not isinstance(err, BadRequest | ServerError):
                raise err from None
        # Some servers (llama.cpp's among them) refuse json_schema, some with a
        # 500: try json_object + schema once, and keep it only if it works.
        self._json_object_only = True
        try:
            return self._create(messages, json_schema, **kw)
        except CloudError:
            self._json_object_only = False
            raise err from None

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        cancel: threading.Event | None = None,
        seed: int | None = None,
    ) -> Iterator[Chunk]:
        extra = {"seed": seed} if seed is not None and temperature > 0 else {}
        if self.stream_usage is False:
            yield from self._blocking(messages, max_tokens, temperature, json_schema, **extra)
            return
        response = self._create(
            messages,
            json_schema,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        yield from self._read_stream(response, messages, cancel)

    def _read_stream(self, response: Any, messages: list[Message], cancel: threading.Event | None) -> Iterator[Chunk]:
        finish, usage, model, pieces = None, None, None, 0
        try:
            for event in response:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                model = event.model or model
                if event.usage is not None:
                    usage = Usage(event.usage.prompt_tokens, event.usage.completion_tokens)
                for choice in event.choices:
                    if choice.delta and choice.delta.content:
                        pieces += 1
                        yield Chunk(text=choice.delta.content)
                    finish = choice.finish_reason or finish
        except (Cancelled, CloudError):
            raise
        except Exception as exc:
            raise map_error(exc, self.tier) from None
        finally:
            response.close()
        if finish is None:
            raise StreamCut(f"tier {self.tier!r}: the stream ended before the answer was complete")
        if usage is None:
            # This server streams no usage: later calls go non-streamed for
            # exact counts; this one is counted (one piece per token).
            self.stream_usage = False
            usage = Usage(self.count_tokens(flatten(messages)), pieces, "counted")
        else:
            self.stream_usage = True
        yield Chunk(finish_reason=finish, usage=usage, model=model)

    def _blocking(
        self, messages: list[Message], max_tokens: int, temperature: float, json_schema: dict[str, Any] | None,
        **extra: Any,
    ) -> Iterator[Chunk]:
        reply = self._create(messages, json_schema, max_tokens=max_tokens, temperature=temperature, **extra)
        choice = reply.choices[0]
        text = choice.message.content or ""
        if reply.usage is not None:
            usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens)
        else:
            usage = Usage(self.count_tokens(flatten(messages)), self.count_tokens(text), "counted")
        if text:
            yield Chunk(text=text)
        yield Chunk(finish_reason=choice.finish_reason or "stop", usage=usage, model=reply.model)

    def count_tokens(self, text: str) -> int:
        # No tokenizer for a remote model: ~4 characters a token, the usual
        # rule of thumb, used only for estimates and servers without usage.
        return max(1, (len(text) + 3) // 4) if text else 0

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

