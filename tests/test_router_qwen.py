"""The router on Qwen2.5-Coder-0.5B through the engine's own router client (its plan and
score calls, recorded in a ledger): what any correct build of llama.cpp gives.

Whether a plan *makes sense* or the scores rank steps well is a quality claim
that moves with the build's numerics; it is measured by
``python -m benchmarks.demo_quality``. Here: the grammar-constrained plan is a
valid DAG within the bounds, and the scores are a distribution.
"""

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


@pytest.mark.parametrize("question", [TRAIN, "What is the capital of France?"])
def test_plan_is_a_valid_dag_within_bounds(router, question):
    client, ledger = router
    plan = client.plan(None, question, threading.Event())
    [call] = ledger.calls()
    # The grammar guarantees JSON of the schema's shape; what the model puts in it may need a repair
    # (an unknown dependency dropped), never the one-subtask fallback for invalid output.
    assert not (plan.note or "").endswith("answering the question as one subtask"), plan.note
    assert 1 <= len(plan.subtasks) <= 6 and all(s.text.strip() for s in plan.subtasks)
    ids = [s.id for s in plan.subtasks]
    assert len(set(ids)) == len(ids) and all(set(s.depends_on) <= set(ids) - {s.id} for s in plan.subtasks)
    assert [s.id for s in plan.order()] and len(plan.order()) == len(ids)
    assert call["role"] == "plan" and call["status"] == "ok" and call["output_tokens"] > 0


def test_scores_are_a_distribution_and_repeat(router):
    client, _ = router
    first = client.score(None, 1, TRAIN, "What is 2 + 2?")
    again = client.score(None, 1, TRAIN, "What is 2 + 2?")
    assert first is not None and again is not None
    assert 0 <= first.difficulty <= 1
    assert sum(first.probs.values()) == pytest.approx(1.0)
    assert again.difficulty == pytest.approx(first.difficulty, abs=1e-3)  # one forward pass, no sampling
