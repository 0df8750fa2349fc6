import json

import pytest

from r2local.backends import complete
from r2local.backends.openai_compat import OpenAIBackend
from r2local.errors import (
    AuthFailed,
    ConnectionFailed,
    RateLimited,
    ServerError,
    StreamCut,
)
from r2local.routing.plan import plan_schema

from .conftest import CLOUD_KEY

MSG = [{"role": "user", "content": "Say hello."}]


def backend(url: str, key: str = CLOUD_KEY) -> OpenAIBackend:
    return OpenAIBackend(model="stand-in-cloud", base_url=url, api_key=lambda: key, tier="cloud", timeout_s=30)


def test_stream_without_server_usage_is_counted_then_exact(proxy):
    b = backend(proxy.url)
    first = complete(b, MSG, max_tokens=12)
    assert first.text and first.usage.source == "counted"
    assert first.usage.output_tokens == 12 or first.finish_reason == "stop"
    assert proxy.completions[0]["body"]["stream"] is True
    # The server sent no usage in the stream: later calls go non-streamed, with exact usage.
    second = complete(b, MSG, max_tokens=12)
    assert second.usage.source == "reported" and second.usage.input_tokens > 0
    assert "stream" not in proxy.completions[1]["body"] or not proxy.completions[1]["body"]["stream"]
    assert second.model == "stand-in-cloud"


def test_json_schema_falls_back_to_json_object(proxy):
    b = backend(proxy.url)
    result = complete(b, [{"role": "user", "content": "Steps for 2+2, as JSON."}], max_tokens=120, json_schema=plan_schema(2))
    bodies = [r["body"]["response_format"]["type"] for r in proxy.completions]
    assert bodies == ["json_schema", "json_object"]  # the server rejects json_schema
    assert "subtasks" in json.loads(result.text)


def test_bad_key_is_typed_and_never_echoed(cloud_server):
    with pytest.raises(AuthFailed) as info:
        complete(backend(cloud_server, "sk-wrong-key-123456"), MSG, max_tokens=4)
    assert "sk-wrong" not in str(info.value) and "r2local key set" in info.value.fix


def test_connection_refused_is_typed():
    with pytest.raises(ConnectionFailed):
        complete(backend("http://127.0.0.1:9/v1"), MSG, max_tokens=4)


def test_faults_are_typed(proxy):
    b = backend(proxy.url)
    proxy.faults[:] = ["429:7"]
    with pytest.raises(RateLimited) as info:
        complete(b, MSG, max_tokens=4)
    assert info.value.retry_after == 7 and info.value.retryable
    proxy.faults[:] = ["503"]
    with pytest.raises(ServerError):
        complete(b, MSG, max_tokens=4)
    proxy.faults[:] = ["drop:3"]
    with pytest.raises(StreamCut):
        complete(b, [{"role": "user", "content": "Count from one to twenty in words."}], max_tokens=60)


def test_no_connection_before_first_call(proxy):
    b = backend(proxy.url)
    assert b._client is None
    b.close()
    assert proxy.requests == []


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
def test_transport_errors_of_either_http_client_are_typed(module):
    # openai 1.x raises httpx exceptions mid-stream, later releases httpx2 ones.
    lib = pytest.importorskip(module)
    from r2local.backends.openai_compat import map_error
    from r2local.errors import CloudTimeout

    assert isinstance(map_error(lib.ReadTimeout("slow"), "cloud"), CloudTimeout)
    assert isinstance(map_error(lib.ConnectError("refused"), "cloud"), ConnectionFailed)
    assert isinstance(map_error(lib.RemoteProtocolError("cut"), "cloud"), StreamCut)
