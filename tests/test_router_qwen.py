"""The router on Qwen2.5-Coder-0.5B, where the plan has to make sense."""

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


def test_plan_for_a_multi_step_question_makes_sense(qwen):
    plan, result = Decomposer(qwen, max_subtasks=6).plan(TRAIN)
    assert plan.note is None  # valid JSON straight from the grammar
    assert 2 <= len(plan.subtasks) <= 6
    texts = " ".join(s.text for s in plan.subtasks)
    assert "9:40" in texts or "2 h 35" in texts or "35 min" in texts
    assert any(s.depends_on for s in plan.subtasks)  # later steps build on earlier ones
    assert result.usage.output_tokens < 200


def test_simple_question_gets_a_short_plan(qwen):
    plan, _ = Decomposer(qwen, max_subtasks=6).plan("What is the capital of France?")
    assert len(plan.subtasks) <= 2


def test_scores_rank_trivial_below_harder_steps(qwen):
    scorer = DifficultyScorer(qwen)
    trivial = scorer.score(TRAIN, "What is 2 + 2?")
    harder = scorer.score(TRAIN, "Compute the number of minutes between noon and 12:15.")
    assert 0 <= trivial.difficulty < harder.difficulty <= 1
    assert sum(trivial.probs.values()) == pytest.approx(1.0)
