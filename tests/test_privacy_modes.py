"""Privacy modes and redaction on the real flow: what reaches the stand-in cloud
(the fault proxy sees every request body) and what the user gets back."""

import json

import pytest

from r2local import keys
from r2local.budget import Budget
from r2local.engine.core import Engine
from r2local.engine.events import AnswerDelta, Notice
from r2local.gates import CloudRequest
from r2local.routing.plan import Plan, Subtask
from r2local.routing.strategies import fixed, forced

from .conftest import CLOUD_KEY, plumbing_config, settings_from

EMAIL = "bob.smith@example.com"
COPY = f"Copy this line: My e-mail is {EMAIL}."
PRIVATE_Q = f"Write to {EMAIL} or call (555) 123-4567 from 10.0.0.7; my key is {CLOUD_KEY}. What is 2 + 2?"


def make_engine(r2home, proxy, mode: str, **extra) -> Engine:
    return Engine(settings_from(plumbing_config(proxy.url, privacy={"mode": mode}, **extra), r2home))


def one(text: str) -> Plan:
    return Plan(subtasks=[Subtask(id=1, text=text)])


@pytest.fixture(autouse=True)
def with_key():
    keys.set_key("cloud", CLOUD_KEY)


def bodies(proxy) -> str:
    return json.dumps([r["body"] for r in proxy.completions])


def test_auto_mode_sends_only_placeholders_and_restores_the_reply(r2home, proxy):
    engine = make_engine(r2home, proxy, "auto")
    events = []
    result = engine.ask(COPY, strategy=forced(one(COPY), "cloud"), on_event=events.append)
    sent = bodies(proxy)
    assert EMAIL not in sent and "[EMAIL_1]" in sent
    # The stand-in model copies the placeholder; the user sees the address again.
    assert EMAIL in result.answer and "EMAIL_1" not in result.answer
    streamed = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert EMAIL in streamed and "EMAIL_1" not in streamed
    node = result.nodes[0]
    assert node.redactions == 1 and "[EMAIL_1]" in json.dumps(node.sent) and EMAIL not in json.dumps(node.sent)
    [call] = [c for c in engine.ledger.question(result.question_id)["calls"] if c["tier"] == "cloud"]
    assert call["redactions"] == 1
    engine.close()


def test_every_kind_is_redacted_before_the_cloud_and_counted(r2home, proxy):
    engine = make_engine(r2home, proxy, "auto")
    result = engine.ask(PRIVATE_Q, strategy=forced(one(PRIVATE_Q), "cloud"))
    sent = bodies(proxy)
    for secret in (EMAIL, "123-4567", "10.0.0.7", CLOUD_KEY, "R2LEAKCANARY"):
        assert secret not in sent
    [call] = [c for c in engine.ledger.question(result.question_id)["calls"] if c["tier"] == "cloud"]
    assert call["redactions"] == 4 and result.answer
    engine.close()


def test_local_only_mode_in_config_never_connects(r2home, proxy):
    engine = make_engine(r2home, proxy, "local-only", router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})
    notices = []
    result = engine.ask("What is 2 + 3?", strategy=fixed(one("What is 2 + 3?")), on_event=lambda e: notices.append(e))
    assert proxy.requests == [] and engine.pool._remote == {}
    assert all(n.is_local for n in result.nodes) and result.answer
    assert any(isinstance(e, Notice) and "local-only" in e.text for e in notices)
    assert engine.ledger.question(result.question_id)["local_only"] == 1
    engine.close()


def test_confirm_with_nobody_to_ask_stays_local_and_says_why(r2home, proxy):
    engine = make_engine(r2home, proxy, "confirm", router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})
    notices = []
    result = engine.ask("What is 2 + 3?", strategy=fixed(one("What is 2 + 3?")), on_event=notices.append)
    node = result.nodes[0]
    assert proxy.requests == [] and engine.pool._remote == {}
    assert node.status == "kept-local" and node.tier == "local" and node.answer
    assert node.reason.startswith("privacy: confirm mode and nobody to ask")
    assert any(isinstance(e, Notice) and "nobody to ask" in e.text for e in notices)
    engine.close()


def test_confirm_shows_the_redacted_text_and_cost_and_a_no_keeps_it_local(r2home, proxy):
    engine = make_engine(r2home, proxy, "confirm")
    asked: list[CloudRequest] = []

    def decline(request: CloudRequest) -> bool:
        asked.append(request)
        return False

    result = engine.ask(COPY, strategy=forced(one(COPY), "cloud"), confirm=decline)
    [request] = asked
    assert request.tier == "cloud" and request.model == "stand-in-cloud" and request.redactions == {"EMAIL": 1}
    assert EMAIL not in request.text() and "[EMAIL_1]" in request.text()
    assert request.estimated_usd == pytest.approx(Budget.estimate(engine.pool.tier("cloud"), request.messages))
    assert request.estimated_usd > 0
    assert proxy.requests == []
    node = result.nodes[0]
    assert node.status == "kept-local" and "declined" in node.reason and node.answer
    engine.close()


def test_confirm_yes_sends_exactly_what_was_shown_and_asks_once_across_retries(r2home, proxy):
    engine = make_engine(r2home, proxy, "confirm")
    asked: list[CloudRequest] = []
    proxy.faults[:] = ["500"]  # the retry sends the same text: no second question

    def accept(request: CloudRequest) -> bool:
        asked.append(request)
        return True

    result = engine.ask(COPY, strategy=forced(one(COPY), "cloud"), confirm=accept)
    assert len(asked) == 1 and len(proxy.completions) == 2
    for req in proxy.completions:
        assert req["body"]["messages"] == asked[0].messages
    assert result.nodes[0].status == "done" and EMAIL in result.answer
    engine.close()


def test_a_confirm_callback_that_breaks_sends_nothing(r2home, proxy):
    engine = make_engine(r2home, proxy, "confirm")

    def broken(request: CloudRequest) -> bool:
        raise RuntimeError("the dialog crashed")

    result = engine.ask("What is 2 + 3?", strategy=forced(one("What is 2 + 3?"), "cloud"), confirm=broken)
    assert proxy.requests == [] and result.nodes[0].status == "kept-local" and result.answer
    engine.close()
