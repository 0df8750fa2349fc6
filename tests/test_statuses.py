"""Every subtask status, exactly, on the scripted backend (fast; no model runs).

The real-model tests cover the same paths end to end; these pin down each
status with scripted answers, confidences, errors and delays.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from r2local.engine.prompts import ONE_LINE
from r2local.engine.core import Engine
from r2local.errors import Cancelled, ServerError
from r2local.store.ledger import Ledger
from r2local.store.records import Decision
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from tests.support.fake import SCRIPTS, Step
from r2local.vocab import CallStatus, Status

from .conftest import SMOL, settings_from

QUESTION = "What is 6 times 7?"


def scripted_config(**extra) -> dict:
    cfg = {
        "router": {"model": SMOL},  # never loaded: these strategies do not route
        "tiers": [
            {"name": "small", "backend": "scripted", "model": "small"},
            {"name": "big", "backend": "scripted", "model": "big"},
            {"name": "cloud", "backend": "scripted", "model": "cloud", "local": False, "max_retries": 1,
             "input_usd_per_mtok": 1000.0, "output_usd_per_mtok": 1000.0, "max_tokens": 50},
        ],
        "runtime": {"threads": 2},
        "executor": {"samples": 1},  # one call per answer; the agreement tests below turn sampling on
    }
    for section, values in extra.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


class Decided:
    """Allocator: the given tier index for every node, escalation as policy allows."""

    def __init__(self, tier: int) -> None:
        self.tier = tier

    def allocate(self, job, nodes):
        return {n.id: Decision(self.tier) for n in nodes}


def on(tier: int) -> Strategy:
    return Strategy(f"scripted:{tier}", FixedPlan(single_plan(QUESTION)), Decided(tier))


@pytest.fixture
def scripts():
    SCRIPTS.reset()
    yield SCRIPTS
    SCRIPTS.reset()


def engine_for(r2home, **extra) -> Engine:
    return Engine(settings_from(scripted_config(**extra), r2home))


def calls(engine: Engine, qid: str) -> list[dict]:
    return engine.ledger.question(qid)["calls"]


def test_done(r2home, scripts):
    scripts.by_model["small"] = [Step("The answer is 42.", confidence=0.9)]
    engine = engine_for(r2home)
    result = engine.ask(QUESTION, strategy=on(0))
    [node] = result.nodes
    assert (node.status, node.tier, node.answer, node.escalated_from) == (Status.DONE, "small", "The answer is 42.", None)
    [call] = calls(engine, result.question_id)
    assert call["status"] == CallStatus.OK and call["output"] == "The answer is 42." and call["role"] == "subtask"
    assert call["prompt_version"] and call["temperature"] == 0.0


def test_escalated_keeps_the_cheaper_answer_beside_the_final_one(r2home, scripts):
    scripts.by_model["small"] = [Step("It is 13.", confidence=0.1)]
    scripts.by_model["big"] = [Step("It is 42.", confidence=0.9)]
    engine = engine_for(r2home, executor={"escalate_below": 0.35})  # the optional mean-probability rule
    result = engine.ask(QUESTION, strategy=on(0))
    [node] = result.nodes
    assert (node.status, node.tier, node.escalated_from, node.answer) == (Status.ESCALATED, "big", "small", "It is 42.")
    assert "low confidence (0.10 < 0.35)" in node.reason
    rows = calls(engine, result.question_id)
    assert [(c["tier"], c["output"], c["escalated_from"]) for c in rows] == [("small", "It is 13.", None),
                                                                            ("big", "It is 42.", "small")]


def test_unsure_when_there_is_nowhere_to_climb(r2home, scripts):
    scripts.by_model["big"] = [Step("Maybe 41.", confidence=0.2)]
    engine = engine_for(r2home, executor={"escalate_below": 0.35})
    result = engine.ask(QUESTION, strategy=on(1), local_only=True)
    [node] = result.nodes
    assert (node.status, node.tier, node.answer) == (Status.UNSURE, "big", "Maybe 41.")
    assert result.status == "done"  # a marked answer is still an answer


def test_failed_when_every_tier_fails(r2home, scripts):
    from r2local.errors import ModelError

    class Broken(ModelError, ServerError):  # a BackendError that does not retry
        retryable = False

    scripts.by_model["big"] = [Step(error=Broken("the model file is corrupt", fix="pull it again"))]
    engine = engine_for(r2home)
    result = engine.ask(QUESTION, strategy=on(1), local_only=True)
    [node] = result.nodes
    assert node.status == Status.FAILED and "the model file is corrupt" in node.reason and "pull it again" in node.reason
    assert result.status == "failed" and result.error == node.reason
    assert engine.ledger.question(result.question_id)["status"] == "failed"


def test_fallback_after_the_cloud_keeps_failing(r2home, scripts):
    scripts.by_model["cloud"] = [Step(error=ServerError("tier 'cloud': server error (HTTP 503)"))] * 2
    scripts.by_model["big"] = [Step("42")]
    engine = engine_for(r2home)
    started = time.perf_counter()
    result = engine.ask(QUESTION, strategy=on(2))
    [node] = result.nodes
    assert (node.status, node.tier, node.escalated_from) == (Status.FALLBACK, "big", "cloud")
    assert "ServerError" in node.reason and "fell back to big" in node.reason
    rows = calls(engine, result.question_id)
    assert [(c["tier"], c["status"], c["attempt"]) for c in rows] == [("cloud", "error", 1), ("cloud", "error", 2),
                                                                       ("big", "ok", 1)]
    assert time.perf_counter() - started < 5  # one 0.5 s backoff, no more


def test_budget_keeps_it_local_and_sends_nothing(r2home, scripts):
    scripts.by_model["big"] = [Step("42")]
    engine = engine_for(r2home, budget={"daily_usd": 0.0001})
    result = engine.ask(QUESTION, strategy=on(2))
    [node] = result.nodes
    assert (node.status, node.tier) == (Status.BUDGET, "big") and "daily budget" in node.reason
    assert scripts.calls["cloud"] == []  # the refused call never started: no row, no request
    assert [c["tier"] for c in calls(engine, result.question_id)] == ["big"]


def test_kept_local_when_confirm_is_declined(r2home, scripts):
    scripts.by_model["big"] = [Step("42")]
    asked = []
    engine = engine_for(r2home, privacy={"mode": "confirm"})
    result = engine.ask(QUESTION, strategy=on(2), confirm=lambda req: asked.append(req) or False)
    [node] = result.nodes
    assert (node.status, node.tier) == (Status.KEPT_LOCAL, "big") and "declined" in node.reason
    assert len(asked) == 1 and asked[0].messages[-1]["content"] == QUESTION and scripts.calls["cloud"] == []


def test_cancelled_mid_call(r2home, scripts):
    scripts.by_model["small"] = [Step("slow", delay_s=10)]
    engine = engine_for(r2home)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        engine.ask(QUESTION, strategy=on(0), cancel=cancel)
    assert time.perf_counter() - started < 3
    q = engine.ledger.questions(1)[0]
    full = engine.ledger.question(q["id"])
    assert full["status"] == "cancelled" and full["subtasks"][0]["status"] == Status.CANCELLED
    assert [c["status"] for c in full["calls"]] == [CallStatus.CANCELLED]


def test_interrupted_when_the_process_dies_mid_call(r2home, tmp_path):
    """A real process killed with SIGKILL while a scripted call runs: the next open marks it all."""
    cfg = json.dumps(scripted_config())
    script = textwrap.dedent(f"""
        import json, pathlib
        from r2local.config import parse_settings
        from r2local.engine.core import Engine
        from tests.support.fake import SCRIPTS, Step
        from tests.test_statuses import on, QUESTION
        SCRIPTS.by_model["small"] = [Step("never", delay_s=60)]
        engine = Engine(parse_settings(json.loads({cfg!r}), pathlib.Path("config.toml")))
        engine.ask(QUESTION, strategy=on(0))
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONPATH": root})
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if (r2home / "r2local.db").exists():
                try:  # read-only peek: the child owns the writes
                    with sqlite3.connect(f"file:{r2home / 'r2local.db'}?mode=ro", uri=True, timeout=1) as db:
                        running = db.execute("select count(*) from calls where status = 'running'").fetchone()[0]
                except sqlite3.OperationalError:  # not created yet, or mid-migration
                    running = 0
                if running:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the call never started")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    ledger = Ledger(r2home / "r2local.db")
    assert ledger.interrupted == 1
    q = ledger.question(ledger.questions(1)[0]["id"])
    assert q["status"] == "interrupted" and q["subtasks"][0]["status"] == Status.INTERRUPTED
    assert [c["status"] for c in q["calls"]] == [CallStatus.INTERRUPTED]


# -- agreement, programs and degenerate output --------------------------------------------
def voting_engine(r2home, **executor) -> Engine:
    # max_samples = samples: exactly k samples (a split vote drawing more is test_adaptive_sampling's)
    cfg = scripted_config(executor={"samples": 3, "max_samples": 3, "agree_below": 0.6, **executor})
    cfg["tiers"][0]["programs"] = True  # "small" writes programs
    return Engine(settings_from(cfg, r2home))


def test_program_answer_with_agreeing_prose_stops_early(r2home, scripts):
    # The order with a greedy prose-like vote (the auto order for numbers votes with one-line programs instead).
    scripts.by_model["small"] = [Step("```python\nboxes = 6\nanswer = boxes * 7\n```"), Step("6 x 7 = 42. The answer is 42.")]
    engine = voting_engine(r2home, sample_order="program-brief-programs")
    result = engine.ask(QUESTION, strategy=on(0))
    [node] = result.nodes
    assert (node.status, node.answer, node.confidence) == (Status.DONE, "The answer is 42.", 1.0)
    assert "answer = boxes * 7" in node.working and node.features["samples"] == 2 and node.features["program_ok"] == 1
    rows = calls(engine, result.question_id)
    assert [(c["role"], c["sample"], c["output"] if c["role"] == "program" else None) for c in rows] == [
        ("subtask", 0, None), ("program", 0, "42"), ("sample", 1, None)]
    assert rows[2]["temperature"] == 0.0 and rows[0]["backend"] == "scripted" and rows[1]["backend"] == "sandbox"
    assert json.loads(engine.ledger.question(result.question_id)["subtasks"][0]["features"] and "{}") is not None


PRIME_CHECK = "```python\nn = 221\nanswer = n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\n```"


def test_a_yes_no_check_on_numbers_is_settled_by_a_program(r2home, scripts):
    # A yes/no question about numbers it states gets a program (True/False) and a brief vote, as a number does.
    question = "Is 221 a prime number?"
    scripts.by_model["small"] = [Step(PRIME_CHECK), Step("No")]
    engine = voting_engine(r2home)
    result = engine.ask(question, strategy=Strategy("scripted:0", FixedPlan(single_plan(question)), Decided(0)))
    [node] = result.nodes
    assert (node.status, node.answer, node.confidence) == (Status.DONE, "No.", 1.0)
    assert "n = 221" in node.working and node.answer_kind == "yes/no"
    program, brief = scripts.calls["small"]
    assert program[0]["content"].startswith("You answer the user's yes/no question by writing a short Python program")
    assert brief[0]["content"].startswith("Reply with the final answer only")
    assert [c["output"] for c in calls(engine, result.question_id) if c["role"] == "program"] == ["False"]


def test_a_comparison_of_measures_in_two_units_converts_in_its_check_program(r2home, scripts):
    question = "Is 5 miles longer than 8 kilometres?"
    scripts.by_model["small"] = [Step("```python\nanswer = convert(5, 'miles', 'km') > 8\n```"), Step("Yes")]
    engine = voting_engine(r2home)
    result = engine.ask(question, strategy=Strategy("scripted:0", FixedPlan(single_plan(question)), Decided(0)))
    assert (result.nodes[0].status, result.answer) == (Status.DONE, "Yes.")
    program = scripts.calls["small"][0]
    assert program[0]["content"].startswith("You answer the user's yes/no question by writing a short Python program")
    assert 'weight_kg = convert(3, \"pounds\", \"kilograms\")' in program[4]["content"]


def test_a_choice_between_computed_numbers_is_settled_by_a_program(r2home, scripts):
    question = "What is 12 times 12?\nA) 124\nB) 144\nC) 132\nD) 154\nAnswer with the letter of the correct option."
    program = "```python\nvalue = 12 * 12\noptions = {'A': 124, 'B': 144, 'C': 132, 'D': 154}\n" \
              "answer = min(options, key=lambda k: abs(options[k] - value))\n```"
    scripts.by_model["small"] = [Step(program), Step("B")]
    engine = voting_engine(r2home)
    result = engine.ask(question, strategy=Strategy("scripted:0", FixedPlan(single_plan(question)), Decided(0)))
    [node] = result.nodes
    assert (node.status, node.answer, node.confidence, node.answer_kind) == (Status.DONE, "The answer is B.", 1.0,
                                                                             "choice")
    prompt = scripts.calls["small"][0]
    assert "multiple-choice question by writing a short Python program" in prompt[0]["content"]
    assert prompt[1]["content"].startswith("What is 15% of 80?")  # the matching example, not the largest-of one


def test_a_conversion_is_computed_with_convert_and_its_prompt_keeps_the_number_prefix(r2home, scripts):
    # The program calls the sandbox's convert(); the prompt is the number prompt plus the convert example after it,
    # so the two share their prefix (and its KV), and a question without two units gets the number prompt alone.
    # A conversion votes among programs only (a brief answer states whatever factor the model recalls).
    question = "How many kilometres are in 17 miles?"
    scripts.by_model["small"] = [Step("```python\nanswer = convert(17, 'miles', 'kilometres')\n```"),
                                 Step("```python\nkm = convert(17, 'mi', 'km')\nanswer = round(km, 2)\n```"),
                                 Step("```python\nanswer = 6 * 7\n```"), Step("```python\nanswer = 42\n```")]
    engine = voting_engine(r2home)
    result = engine.ask(question, strategy=Strategy("scripted:0", FixedPlan(single_plan(question)), Decided(0)))
    [node] = result.nodes
    assert (node.status, node.answer, node.confidence) == (Status.DONE, "The answer is 27.358848.", 1.0)
    assert [c["output"] for c in calls(engine, result.question_id) if c["role"] == "program"] == ["27.358848", "27.36"]
    engine.ask(QUESTION, strategy=on(0))
    converting, sampled, plain, line = scripts.calls["small"]
    assert "convert(3, \"kilograms\", \"ounces\")" in converting[4]["content"] and sampled == converting
    assert converting[:3] == plain[:3] and len(converting) == len(plain) + 2 and "convert(" not in json.dumps(plain)
    # A plain number: the greedy program, then a one-line program (the same prompt and one more line).
    assert line[:-1] == plain[:-1] and line[-1]["content"] == plain[-1]["content"] + ONE_LINE


def test_a_yes_no_fact_that_mentions_a_number_is_answered_in_prose(r2home, scripts):
    question = "Did World War II end in 1945?"
    scripts.by_model["small"] = [Step("Yes, it ended in 1945."), Step("Yes")]
    engine = voting_engine(r2home)
    result = engine.ask(question, strategy=Strategy("scripted:0", FixedPlan(single_plan(question)), Decided(0)))
    assert result.nodes[0].working is None and result.answer == "Yes, it ended in 1945."
    assert "Python" not in json.dumps(scripts.calls["small"])


def test_disagreement_escalates_and_keeps_every_sample(r2home, scripts):
    scripts.by_model["small"] = [Step("```python\nanswer = 41\n```"), Step("It is 42."), Step("```python\nanswer = 40\n```")]
    scripts.by_model["big"] = [Step("It is 42."), Step("Surely 42.")]
    engine = voting_engine(r2home)
    result = engine.ask(QUESTION, strategy=on(0))
    [node] = result.nodes
    assert (node.status, node.tier, node.escalated_from) == (Status.ESCALATED, "big", "small")
    assert "low agreement (1/3 samples agree, below 0.60)" in node.reason
    assert node.answer == "It is 42." and node.confidence == 1.0 and node.working is None
    outputs = [c["output"] for c in calls(engine, result.question_id) if c["role"] in ("subtask", "sample")]
    assert "```python\nanswer = 41\n```" in outputs and "It is 42." in outputs  # the cheaper tier's answers are kept


def test_a_failing_program_falls_back_to_prose(r2home, scripts):
    # The refused program hands over to a greedy prose answer; a one-line program votes next.
    scripts.by_model["small"] = [Step("```python\nimport os\nanswer = 42\n```"), Step("The answer is 42."),
                                 Step("```python\nanswer = 6 * 7\n```")]
    engine = voting_engine(r2home)
    result = engine.ask(QUESTION, strategy=on(0))
    [node] = result.nodes
    assert (node.status, node.answer) == (Status.DONE, "The answer is 42.") and node.features["program_ok"] == 0
    assert scripts.calls["small"][2][-1]["content"].endswith(ONE_LINE)
    program = [c for c in calls(engine, result.question_id) if c["role"] == "program"]
    assert program[0]["status"] == "error" and program[0]["error_class"] == "program:refused"
    assert "import of 'os' is not allowed" in program[0]["error"]


def test_degenerate_output_escalates(r2home, scripts):
    loop = "\n".join(["The answer is the answer."] * 25)
    scripts.by_model["small"] = [Step(loop, confidence=0.9)]
    scripts.by_model["big"] = [Step("42")]
    engine = engine_for(r2home)  # one sample: only the repetition can tell
    result = engine.ask(QUESTION, strategy=on(0))
    [node] = result.nodes
    assert (node.status, node.tier) == (Status.ESCALATED, "big")
    assert "degenerate output (one line repeated 25 times)" in node.reason
