"""The router on Qwen2.5-Coder-0.5B, where the plan has to make sense: the
engine's own router client (its plan and score calls, recorded in a ledger)."""

import threading
from pathlib import Path

import pytest

from r2local.backends.llamacpp import LlamaCppBackend
from r2local.config import RouterSection
from r2local.engine.recorder import LedgerRecorder
from r2local.routing.router import RouterClient
from r2local.store.ledger import Ledger

TRAIN = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"


@pytest.fixture(scope="module")
def qwen(qwen_path: Path):
    backend = LlamaCppBackend(qwen_path, model="qwen", n_ctx=2048, threads=1)
    yield backend
    backend.close()


class OneRouter:
    """The pool's part the router client uses: its resident router model."""

    def __init__(self, backend: LlamaCppBackend) -> None:
        self.backend = backend

    def router(self) -> LlamaCppBackend:
        return self.backend


@pytest.fixture
def router(qwen, tmp_path: Path):
    ledger = Ledger(tmp_path / "router.db")
    section = RouterSection(model="qwen2.5-coder-0.5b-instruct", max_subtasks=6, plan_max_tokens=320)
    yield RouterClient(OneRouter(qwen), section, LedgerRecorder(ledger)), ledger  # type: ignore[arg-type]
    ledger.close()


def test_plan_for_a_multi_step_question_makes_sense(router):
    client, ledger = router
    plan = client.plan(None, TRAIN, threading.Event())
    [call] = ledger.calls()
    assert plan.note is None  # valid JSON straight from the grammar
    assert 2 <= len(plan.subtasks) <= 6
    texts = " ".join(s.text for s in plan.subtasks)
    assert "9:40" in texts or "2 h 35" in texts or "35 min" in texts
    assert any(s.depends_on for s in plan.subtasks)  # later steps build on earlier ones
    assert call["role"] == "plan" and call["status"] == "ok" and call["output_tokens"] < 200


def test_simple_question_gets_a_short_plan(router):
    client, _ = router
    plan = client.plan(None, "What is the capital of France?", threading.Event())
    assert len(plan.subtasks) <= 2


def test_scores_rank_trivial_below_harder_steps(router):
    client, _ = router
    trivial = client.score(None, 1, TRAIN, "What is 2 + 2?")
    harder = client.score(None, 2, TRAIN, "Compute the number of minutes between noon and 12:15.")
    assert trivial is not None and harder is not None
    assert 0 <= trivial.difficulty < harder.difficulty <= 1
    assert sum(trivial.probs.values()) == pytest.approx(1.0)
