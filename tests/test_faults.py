"""Cloud faults through the real openai SDK: the fault proxy in front of the real
stand-in server. Bounded retries, then the strongest local tier, marked; the
answer still comes back, and every attempt is a ledger row with its error class."""

import time

import pytest

from r2local import keys
from r2local.engine.core import Engine
from r2local.engine.events import AnswerDelta
from r2local.routing.plan import Plan, Subtask
from r2local.routing.strategies import forced

from .conftest import CLOUD_KEY, plumbing_config, settings_from

QUESTION = "Name three primary colours."
LONG = "Count from one to twenty in words, separated by commas."
PLAN = Plan(subtasks=[Subtask(id=1, text=QUESTION)])


def engine_for(r2home, url, **tier):
    cfg = plumbing_config(url)
    cfg["tiers"][2].update(tier)
    return Engine(settings_from(cfg, r2home))


@pytest.fixture(autouse=True)
def with_key():
    keys.set_key("cloud", CLOUD_KEY)


def cloud_rows(engine, qid):
    return [c for c in engine.ledger.question(qid)["calls"] if c["tier"] == "cloud"]


def check_nothing_lost(engine, result, proxy_requests: int | None):
    q = engine.ledger.question(result.question_id)
    assert q["status"] == "done" and q["answer"] == result.answer and result.answer
    assert all(c["status"] != "running" for c in q["calls"])  # every row was closed
    if proxy_requests is not None:
        assert len(cloud_rows(engine, result.question_id)) == proxy_requests  # one row per request that left


FALLBACK_CASES = [
    ("timeout", ["delay:2"] * 3, "CloudTimeout", {"timeout_s": 0.5}),
    ("500/502/503", ["500", "502", "503"], "ServerError", {}),
    ("refused mid-request", ["refuse"] * 3, "ConnectionFailed", {}),
    ("stream cut", ["drop:3"] * 3, "StreamCut", {}),
    ("429 without Retry-After", ["429"] * 3, "RateLimited", {}),
]


@pytest.mark.parametrize("name, faults, error_class, tier", FALLBACK_CASES, ids=[c[0] for c in FALLBACK_CASES])
def test_persistent_fault_retries_then_falls_back(r2home, proxy, name, faults, error_class, tier):
    engine = engine_for(r2home, proxy.url, **tier)
    proxy.faults[:] = list(faults)
    question = LONG if error_class == "StreamCut" else QUESTION
    result = engine.ask(question, strategy=forced(Plan(subtasks=[Subtask(id=1, text=question)]), "cloud"))
    node = result.nodes[0]
    assert node.status == "fallback" and node.tier == "local" and node.is_local and node.escalated_from == "cloud"
    assert node.reason.startswith(error_class) and "fell back to local" in node.reason
    rows = cloud_rows(engine, result.question_id)
    assert [(r["attempt"], r["status"], r["error_class"]) for r in rows] == [(i, "error", error_class) for i in (1, 2, 3)]
    assert all("CLOUD_KEY" not in (r["error"] or "") and r["error"].startswith("tier 'cloud'") for r in rows)
    if error_class == "StreamCut":  # what arrived before the cut is charged: a provider may bill it
        assert all(r["usage_source"] == "partial" and r["output_tokens"] > 0 and r["cost_usd"] > 0 for r in rows)
    else:
        assert all(r["cost_usd"] == 0 for r in rows)
    local = [c for c in engine.ledger.question(result.question_id)["calls"] if c["tier"] == "local"]
    assert len(local) == 1 and local[0]["status"] == "ok" and local[0]["escalated_from"] == "cloud"
    check_nothing_lost(engine, result, len(faults))
    engine.close()


def test_connection_refused_falls_back(r2home):
    from tests.support.standin import free_port

    engine = engine_for(r2home, f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    result = engine.ask(QUESTION, strategy=forced(PLAN, "cloud"))
    node = result.nodes[0]
    assert node.status == "fallback" and node.tier == "local" and "ConnectionFailed" in node.reason
    assert [r["error_class"] for r in cloud_rows(engine, result.question_id)] == ["ConnectionFailed"] * 3
    check_nothing_lost(engine, result, None)
    engine.close()


def test_rejected_key_is_not_retried_and_falls_back(r2home, proxy):
    keys.set_key("cloud", "sk-wrong-key-0123456789abcdef")
    engine = engine_for(r2home, proxy.url)
    result = engine.ask(QUESTION, strategy=forced(PLAN, "cloud"))
    node = result.nodes[0]
    assert node.status == "fallback" and "AuthFailed" in node.reason and "r2local key set --tier cloud" in node.reason
    assert [r["error_class"] for r in cloud_rows(engine, result.question_id)] == ["AuthFailed"]
    check_nothing_lost(engine, result, 1)
    engine.close()


def test_429_honours_retry_after_then_succeeds(r2home, proxy):
    engine = engine_for(r2home, proxy.url)
    proxy.faults[:] = ["429:2"]
    result = engine.ask(QUESTION, strategy=forced(PLAN, "cloud"))
    node = result.nodes[0]
    assert node.status == "done" and node.tier == "cloud" and node.reason is None
    first, second = proxy.completions[:2]
    assert second["time"] - first["time"] >= 2.0  # waited as told, not the 0.5 s backoff
    rows = cloud_rows(engine, result.question_id)
    assert [(r["status"], r["error_class"]) for r in rows] == [("error", "RateLimited"), ("ok", None)]
    check_nothing_lost(engine, result, 2)
    engine.close()


def test_cut_stream_then_success_shows_only_the_complete_answer(r2home, proxy):
    engine = engine_for(r2home, proxy.url)
    proxy.faults[:] = ["drop:4", "delay:1"]
    events = []
    result = engine.ask(LONG, strategy=forced(Plan(subtasks=[Subtask(id=1, text=LONG)]), "cloud"), on_event=events.append)
    deltas = [e for e in events if isinstance(e, AnswerDelta)]
    restarts = [i for i, e in enumerate(deltas) if e.restart]
    assert len(restarts) == 2  # the cut attempt's text was shown, then dropped for the retry's
    shown = "".join(e.text for e in deltas[restarts[-1]:])
    assert shown.strip() == result.answer and result.nodes[0].status == "done"
    rows = cloud_rows(engine, result.question_id)
    assert [r["error_class"] for r in rows] == ["StreamCut", None]
    check_nothing_lost(engine, result, 2)
    engine.close()


def test_mixed_faults_each_a_row_then_recovery(r2home, proxy):
    engine = engine_for(r2home, proxy.url, max_retries=3)
    proxy.faults[:] = ["429:1", "500", "refuse"]
    started = time.perf_counter()
    result = engine.ask(QUESTION, strategy=forced(PLAN, "cloud"))
    assert time.perf_counter() - started >= 1.0 + 1.0  # Retry-After 1, then backoff 1.0 after attempt 2
    rows = cloud_rows(engine, result.question_id)
    assert [r["error_class"] for r in rows] == ["RateLimited", "ServerError", "ConnectionFailed", None]
    assert [r["attempt"] for r in rows] == [1, 2, 3, 4] and result.nodes[0].tier == "cloud"
    check_nothing_lost(engine, result, 4)
    engine.close()


@pytest.mark.parametrize("fault, error_class, tier", [("refuse", "ConnectionFailed", {}), ("delay:2", "CloudTimeout", {"timeout_s": 0.5})])
def test_an_unreachable_cloud_is_tried_once_per_question(r2home, proxy, fault, error_class, tier):
    """After one subtask used up its retries on an unreachable cloud, the other
    subtasks of that question go local at once instead of each waiting it out."""
    engine = engine_for(r2home, proxy.url, **tier)
    engine.settings.executor.max_parallel = 1  # one after another, so the order is known
    proxy.faults[:] = [fault] * 9
    plan = Plan(subtasks=[Subtask(id=i, text=f"What is {i} + {i}?") for i in (1, 2, 3)])
    result = engine.ask("Three sums.", strategy=forced(plan, "cloud"))
    assert len(proxy.completions) == 3  # the first subtask's three attempts, nothing after
    assert [n.status for n in result.nodes] == ["fallback"] * 4 and result.answer
    first, *rest = result.nodes
    assert first.reason.startswith(error_class)
    assert all("cloud unreachable earlier in this question" in n.reason for n in rest)
    check_nothing_lost(engine, result, 3)
    engine.close()


def test_a_cut_stream_in_a_shadow_call_is_charged_like_one_in_an_answer(r2home, proxy):
    """A shadow call is the executor's call: the same retries, the same partial charge."""
    cfg = plumbing_config(proxy.url, learning={"shadow_local": 0.0, "shadow_cloud": 1.0})
    engine = Engine(settings_from(cfg, r2home))
    plan = Plan(subtasks=[Subtask(id=1, text=LONG)])
    proxy.faults[:] = ["drop:3"] * 3
    answered = engine.ask(LONG, strategy=forced(plan, "cloud"))
    local = engine.ask(LONG, strategy=forced(plan, "local"))
    assert local.nodes[0].status == "done" and local.nodes[0].tier == "local"
    proxy.faults[:] = ["drop:3"] * 3
    assert engine.shadow(local) is None  # every attempt cut: no label, but the spend is real
    shadow_rows = [r for r in cloud_rows(engine, local.question_id) if r["role"] == "shadow"]
    answer_rows = cloud_rows(engine, answered.question_id)

    def shape(rows):
        return [(r["attempt"], r["status"], r["error_class"], r["usage_source"]) for r in rows]

    assert shape(shadow_rows) == shape(answer_rows) == [(i, "error", "StreamCut", "partial") for i in (1, 2, 3)]
    assert all(r["output_tokens"] > 0 and r["cost_usd"] > 0 and r["escalated_from"] == "local" for r in shadow_rows)
    spend = engine.ledger.spend()
    assert spend["shadow_month_calls"] == 3
    assert spend["shadow_month_usd"] == pytest.approx(sum(r["cost_usd"] for r in shadow_rows))
    assert proxy.faults == []
    engine.close()
