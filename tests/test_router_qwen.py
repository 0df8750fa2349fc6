"""The router on Qwen2.5-Coder-0.5B: what any correct build of llama.cpp gives.

Whether a plan *makes sense* or the scores rank steps well is a quality claim
that moves with the build's numerics; it is measured by
``python -m benchmarks.demo_quality``. Here: the grammar-constrained plan is a
valid DAG within the bounds, and the scores are a distribution.
"""

from pathlib import Path

import pytest

from r2local.backends.llamacpp import LlamaCppBackend
from r2local.routing.decomposer import Decomposer
from r2local.routing.thresholds import DifficultyScorer

TRAIN = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"


@pytest.fixture(scope="module")
def qwen(qwen_path: Path):
    backend = LlamaCppBackend(qwen_path, model="qwen", n_ctx=2048, threads=1)
    yield backend
    backend.close()


@pytest.mark.parametrize("question", [TRAIN, "What is the capital of France?"])
def test_plan_is_a_valid_dag_within_bounds(qwen, question):
    plan, result = Decomposer(qwen, max_subtasks=6).plan(question)
    # The grammar guarantees JSON of the schema's shape; what the model puts in it may need a repair
    # (an unknown dependency dropped), never the one-subtask fallback for invalid output.
    assert not (plan.note or "").endswith("answering the question as one subtask"), plan.note
    assert 1 <= len(plan.subtasks) <= 6 and all(s.text.strip() for s in plan.subtasks)
    ids = [s.id for s in plan.subtasks]
    assert len(set(ids)) == len(ids) and all(set(s.depends_on) <= set(ids) - {s.id} for s in plan.subtasks)
    assert [s.id for s in plan.order()] and len(plan.order()) == len(ids)
    assert result.usage.output_tokens > 0


def test_scores_are_a_distribution_and_repeat(qwen):
    scorer = DifficultyScorer(qwen)
    first = scorer.score(TRAIN, "What is 2 + 2?")
    again = scorer.score(TRAIN, "What is 2 + 2?")
    assert 0 <= first.difficulty <= 1
    assert sum(first.probs.values()) == pytest.approx(1.0)
    assert again.difficulty == pytest.approx(first.difficulty, abs=1e-3)  # one forward pass, no sampling
