"""`r2local serve` driven by the real `openai` SDK: an in-process server on the
scripted backend for exact checks (history, auth, disconnects, local-only), and
the real command on SmolLM2 end to end."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import openai
import pytest

from r2local.engine.core import Engine
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from tests.support.fake import SCRIPTS, Step

from .conftest import settings_from
from .test_statuses import Decided, scripted_config

TOKEN = "r2l-test-token"
FIRST = "A box holds 12 eggs. A baker uses 3 boxes and then 5 more eggs. How many eggs did the baker use?"
FOLLOW = "And how many would 7 boxes hold?"
HISTORY = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "The answer is 41."},
           {"role": "user", "content": FOLLOW}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scripts():
    SCRIPTS.reset()
    yield SCRIPTS
    SCRIPTS.reset()


@pytest.fixture
def served(r2home, scripts, request):
    """An Engine on scripted tiers (the cloud tier chosen for every question) behind the server;
    ``@pytest.mark.parametrize("served", [{config sections}], indirect=True)`` changes its config."""
    import uvicorn

    from r2local.serve.app import make_app

    extra = getattr(request, "param", None) or {}
    engine = Engine(settings_from(scripted_config(**extra), r2home),
                    strategy=Strategy("scripted:cloud", FixedPlan(single_plan(FOLLOW)), Decided(2)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(engine, TOKEN), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield engine, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(10)
    engine.close()


def client(url: str, token: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=token, max_retries=0, timeout=30)


def test_non_stream_answers_with_the_history_and_r2locals_extras(served, scripts):
    engine, url = served
    scripts.by_model["cloud"] = [Step("The answer is 84.")]
    reply = client(url).chat.completions.create(model="r2local", messages=HISTORY)
    assert reply.choices[0].message.content == "The answer is 84."
    extra = reply.model_extra["r2local"]
    assert extra["tier"] == "cloud" and extra["cost_usd"] > 0 and extra["status"] == "done"
    assert reply.usage.total_tokens > 0
    [sent] = scripts.calls["cloud"]
    assert [m["content"] for m in sent[1:]] == [FIRST, "The answer is 41.", FOLLOW]  # the history reached the model
    q = engine.ledger.question(extra["question_id"])
    assert q["question"] == FOLLOW and q["subtasks"][0]["sent"] == sent
    assert [m.id for m in client(url).models.list()] == ["r2local", "r2local-local"]


def test_stream_sends_the_answer_and_ends_with_the_extras(served, scripts):
    _, url = served
    scripts.by_model["cloud"] = [Step("The answer is 84.")]
    chunks = list(client(url).chat.completions.create(model="r2local", messages=HISTORY, stream=True,
                                                       stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The answer is 84."
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.model_extra["r2local"]["tier"] == "cloud"
    assert last.usage.completion_tokens > 0 and not last.model_extra["r2local"]["revised"]


def test_a_request_without_the_token_is_refused(served, scripts):
    engine, url = served
    with pytest.raises(openai.AuthenticationError):
        client(url, "wrong").chat.completions.create(model="r2local", messages=HISTORY)
    assert httpx.get(f"{url}/models").status_code == 401
    with pytest.raises(openai.NotFoundError):
        client(url).chat.completions.create(model="gpt-4o", messages=HISTORY)
    assert engine.ledger.questions() == [] and scripts.calls == {}


def test_local_only_model_never_reaches_the_cloud(served, scripts):
    _, url = served
    scripts.by_model["big"] = [Step("The answer is 84."), Step("The answer is 84.")]
    reply = client(url).chat.completions.create(model="r2local-local", messages=HISTORY)
    extra = reply.model_extra["r2local"]
    assert extra["tier"] == "big" and extra["cost_usd"] == 0 and "local-only" in extra["offline"]
    assert "cloud" not in scripts.calls
    reply = client(url).chat.completions.create(model="r2local", messages=HISTORY,
                                                extra_body={"r2local": {"local_only": True}})
    assert "cloud" not in scripts.calls and reply.model_extra["r2local"]["tier"] != "cloud"


def test_a_client_that_disconnects_mid_stream_cancels_its_question(served, scripts):
    engine, url = served
    scripts.by_model["cloud"] = [Step("never finished", delay_s=30)]
    stream = client(url).chat.completions.create(model="r2local", messages=HISTORY, stream=True)
    first = next(iter(stream))  # the role chunk: the question is running
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    assert_cancelled(engine)


def test_a_client_that_gives_up_on_a_plain_request_cancels_it(served, scripts):
    engine, url = served
    scripts.by_model["cloud"] = [Step("never finished", delay_s=30)]
    impatient = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0, timeout=1)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="r2local", messages=HISTORY)
    assert_cancelled(engine)


def assert_cancelled(engine: Engine) -> None:
    """The only question ends cancelled, and so does each of its calls (not 30 s later)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = engine.ledger.questions()
        if rows and rows[0]["status"] != "running":
            break
        time.sleep(0.1)
    q = engine.ledger.question(rows[0]["id"])
    assert q["status"] == "cancelled"
    assert q["calls"] and all(c["status"] == "cancelled" for c in q["calls"])


def test_a_stored_conversation_can_be_continued_through_the_server(served, scripts):
    engine, url = served
    scripts.by_model["cloud"] = [Step("The answer is 41."), Step("The answer is 84.")]
    api = client(url)
    one = api.chat.completions.create(model="r2local", messages=[{"role": "user", "content": FIRST}],
                                      extra_body={"r2local": {"conversation_id": "new"}})
    cid = one.model_extra["r2local"]["conversation_id"]
    two = api.chat.completions.create(model="r2local", messages=[{"role": "user", "content": FOLLOW}],
                                      extra_body={"r2local": {"conversation_id": cid}})
    assert two.model_extra["r2local"]["conversation_id"] == cid
    assert [m["content"] for m in scripts.calls["cloud"][1][1:]] == [FIRST, "The answer is 41.", FOLLOW]
    assert [t["turn"] for t in engine.ledger.turns(cid)] == [1, 2]
    with pytest.raises(openai.BadRequestError, match="no conversation"):
        api.chat.completions.create(model="r2local", messages=[{"role": "user", "content": FOLLOW}],
                                    extra_body={"r2local": {"conversation_id": "nope"}})


def test_a_stream_never_takes_text_back():
    from r2local.serve.shapes import Streamed

    s = Streamed()
    assert s.feed("The answer", True) == "The answer" and s.feed(" is 4", False) == " is 4"
    assert s.feed("The", True) == ""  # a new attempt, so far saying what was sent
    assert s.feed(" answer is 42", False) == "2"
    assert s.finish("The answer is 42.") == (".", False)
    s = Streamed()
    s.feed("It is 13", True)
    assert s.feed("It is 42", True) == "" and s.diverged  # the vote picked another answer: the live text stops
    assert s.finish("It is 42") == ("\n\n[revised answer]\nIt is 42", True)


def test_asks_full_result_matches_the_in_process_json(served, scripts):
    """What `r2local ask` asks for: the whole result as `ask --json` prints it, and the notices."""
    engine, url = served
    scripts.by_model["cloud"] = [Step("The answer is 84.")]
    scripts.by_model["big"] = [Step("The answer is 84.")] * 2
    reply = client(url).chat.completions.create(model="r2local-local", messages=[{"role": "user", "content": FOLLOW}],
                                                extra_body={"r2local": {"conversation_id": "new", "result": True}})
    extra = reply.model_extra["r2local"]
    here = engine.ask(FOLLOW, local_only=True).to_json()
    assert extra["result"].keys() == here.keys() and extra["result"]["answer"] == "The answer is 84."
    assert extra["result"]["subtasks"][0].keys() == here["subtasks"][0].keys()
    assert extra["result"]["conversation_id"] == extra["conversation_id"] and extra["conversation_id"]
    assert any("local-only" in n for n in extra["notices"])
    plain = client(url).chat.completions.create(model="r2local", messages=HISTORY)
    assert "result" not in plain.model_extra["r2local"]  # other clients get the short extras only
    body = httpx.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"model": "r2local", "messages": [{"role": "user", "content": "hi"}],
                            "r2local": {"conversation_id": "nope"}}).json()
    assert "no conversation 'nope'" in body["error"]["message"] and "r2local conversations" in body["error"]["fix"]


@pytest.mark.parametrize("served", [{"budget": {"daily_usd": 0.0001}}], indirect=True)
def test_the_budget_holds_through_the_server(served, scripts):
    engine, url = served
    scripts.by_model["big"] = [Step("The answer is 84.")]
    reply = client(url).chat.completions.create(model="r2local", messages=HISTORY)
    extra = reply.model_extra["r2local"]
    assert extra["tier"] == "big" and extra["cost_usd"] == 0  # kept local: the cap refused the cloud call
    assert scripts.calls.get("cloud", []) == []  # the refused call never started
    [node] = engine.ledger.question(extra["question_id"])["subtasks"]
    assert node["status"] == "budget"


def test_two_clients_at_once_each_get_their_own_answer(served, scripts):
    engine, url = served
    scripts.by_model["cloud"] = [Step("The answer is 84.", delay_s=0.5), Step("The answer is 84.", delay_s=0.5)]
    replies: list = [None, None]

    def ask(i: int) -> None:
        replies[i] = client(url).chat.completions.create(model="r2local", messages=HISTORY)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = {r.model_extra["r2local"]["question_id"] for r in replies}
    assert len(ids) == 2 and all("84" in r.choices[0].message.content for r in replies)
    assert {q["id"] for q in engine.ledger.questions()} == ids
