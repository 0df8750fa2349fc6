"""The whole flow on real models: SmolLM2 as router and local tiers, the
stand-in server (through the fault proxy) as the priced cloud."""

import threading

import pytest

from r2local import keys
from r2local.engine.core import Engine
from r2local.errors import Cancelled
from r2local.engine.events import AnswerDelta, NodeUpdate, PlanReady
from r2local.store.ledger import Ledger
from r2local.routing.plan import Plan, Subtask
from r2local.routing.strategies import fixed, forced

from .conftest import CLOUD_KEY, plumbing_config, settings_from

QUESTION = "Tom has 3 apples and buys 5 more. Then he gives 2 away. How many apples does he have?"


def make_engine(r2home, proxy, **extra) -> Engine:
    return Engine(settings_from(plumbing_config(proxy.url, **extra), r2home))


@pytest.fixture
def with_key():
    keys.set_key("cloud", CLOUD_KEY)


def test_ask_records_every_call_and_prices_only_the_cloud(r2home, proxy, with_key):
    engine = make_engine(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})  # every node wants the cloud
    events = []
    result = engine.ask(QUESTION, on_event=events.append)
    data = result.to_json()
    assert set(data) >= {"question_id", "answer", "cost_usd", "cloud_share", "subtasks"}
    for sub in data["subtasks"]:
        assert set(sub) >= {"id", "text", "depends_on", "difficulty", "tier", "model", "answer", "input_tokens",
                            "output_tokens", "cost_usd", "latency_ms", "escalated_from", "status"}
        assert sub["tier"] == "cloud" and sub["status"] == "done" and 0 <= sub["difficulty"] <= 1
    assert data["cloud_share"] == 1.0 and result.answer
    q = engine.ledger.question(result.question_id)
    roles = [c["role"] for c in q["calls"]]
    n = len(result.nodes)
    assert roles.count("plan") == 1 and roles.count("allocate") == n
    assert roles.count("subtask") + roles.count("final") == n == len(proxy.completions)
    for call in q["calls"]:
        priced = call["tier"] == "cloud"
        assert (call["cost_usd"] > 0) == priced, call
        if priced:
            expected = (call["input_tokens"] * 150 + call["output_tokens"] * 600) / 1e6
            assert call["cost_usd"] == pytest.approx(expected)
    assert q["status"] == "done" and q["cost_usd"] == pytest.approx(result.cost_usd)
    assert result.cost_usd == pytest.approx(sum(c["cost_usd"] for c in q["calls"]))
    assert isinstance(events[1], PlanReady) or isinstance(events[0], PlanReady) or any(isinstance(e, PlanReady) for e in events)
    assert any(isinstance(e, AnswerDelta) for e in events)
    assert {e.node.status for e in events if isinstance(e, NodeUpdate)} >= {"running", "done"}
    engine.close()


def test_local_only_never_opens_a_connection(r2home, proxy, with_key):
    engine = make_engine(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})
    result = engine.ask(QUESTION, local_only=True)
    assert proxy.requests == []
    assert all(n.tier != "cloud" and n.is_local for n in result.nodes)
    assert result.offline.startswith("offline: --local-only") and result.cloud_share == 0
    assert engine.pool._remote == {}  # no client was even built
    engine.close()


def test_without_a_key_it_runs_offline_and_says_so(r2home, proxy):
    engine = make_engine(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})
    result = engine.ask(QUESTION)
    assert proxy.requests == [] and result.answer
    assert "no API key for tier 'cloud'" in result.offline and "r2local key set" in result.offline
    engine.close()


def test_low_confidence_escalates_one_tier_at_a_time(r2home, proxy, with_key):
    engine = make_engine(
        r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.99, 0.999]}, executor={"escalate_below": 0.9999, "max_escalations": 2}
    )
    plan = Plan(subtasks=[Subtask(id=1, text=QUESTION)])
    result = engine.ask(QUESTION, strategy=fixed(plan))
    node = result.nodes[0]
    assert node.tier == "cloud" and node.escalated_from == "local-small" and node.status == "escalated"
    assert node.reason.startswith("low confidence")
    calls = [c for c in engine.ledger.question(result.question_id)["calls"] if c["role"] == "subtask"]
    assert [c["tier"] for c in calls] == ["local-small", "local", "cloud"]
    assert [c["escalated_from"] for c in calls] == [None, "local-small", "local"]
    engine.close()


def test_cloud_failure_retries_then_falls_back_to_local(r2home, proxy, with_key):
    engine = make_engine(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0]})
    proxy.faults[:] = ["500", "503", "500"]  # three attempts (max_retries = 2), all fail
    plan = Plan(subtasks=[Subtask(id=1, text=QUESTION)])
    result = engine.ask(QUESTION, strategy=fixed(plan))
    node = result.nodes[0]
    assert node.tier == "local" and node.escalated_from == "cloud" and result.answer
    assert "ServerError" in node.reason and "fell back to local" in node.reason
    calls = engine.ledger.question(result.question_id)["calls"]
    errors = [c for c in calls if c["status"] == "error"]
    assert [c["error_class"] for c in errors] == ["ServerError"] * 3
    assert [c["attempt"] for c in errors] == [1, 2, 3]
    engine.close()


def test_independent_cloud_subtasks_run_concurrently(r2home, proxy, with_key):
    engine = make_engine(r2home, proxy)
    plan = Plan(subtasks=[Subtask(id=i, text=f"What is {i} + {i}?") for i in (1, 2, 3)])
    proxy.faults[:] = ["delay:1.5"] * 3
    result = engine.ask("Add some numbers.", strategy=forced(plan, "cloud"))
    starts = sorted(r["time"] for r in proxy.completions[:3])
    assert starts[-1] - starts[0] < 1.0  # all three were in flight together
    assert [n.id for n in result.nodes] == [1, 2, 3, 4] and result.nodes[-1].depends_on == [1, 2, 3]
    assert proxy.completions[3]["time"] > starts[-1]  # the final node waited for its inputs
    engine.close()


def test_cancel_stops_the_question_and_marks_it(r2home, proxy, with_key):
    engine = make_engine(r2home, proxy)
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, AnswerDelta) or (isinstance(event, NodeUpdate) and event.node.status == "running"):
            cancel.set()

    with pytest.raises(Cancelled):
        engine.ask(QUESTION, on_event=on_event, cancel=cancel)
    ledger = Ledger()
    q = ledger.questions(1)[0]
    assert q["status"] == "cancelled"
    assert all(s["status"] in ("cancelled", "queued", "done") for s in ledger.question(q["id"])["subtasks"])
    engine.close()


def test_force_tier_refuses_an_unusable_tier(r2home, proxy):
    engine = make_engine(r2home, proxy)
    with pytest.raises(Exception, match="not usable"):
        engine.ask(QUESTION, strategy=forced(None, "cloud"))
    engine.close()


def test_threshold_precedence_config_then_calibration_then_default(r2home, proxy):
    engine = make_engine(r2home, proxy)
    assert engine.thresholds() == (pytest.approx([1 / 3, 2 / 3]), "default")
    engine.ledger.save_calibration(0.2, [0.4, 0.6], 50)
    assert engine.thresholds() == ([0.4, 0.6], "calibration")
    engine.close()
    pinned = make_engine(r2home, proxy, router={"strategy": "plan-and-allocate", "thresholds": [0.1, 0.2]})
    assert pinned.thresholds() == ([0.1, 0.2], "config")
    pinned.close()
