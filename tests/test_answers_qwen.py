"""The demo pool answers simple arithmetic the way it is built to: the whole
question on Qwen2.5-Coder-0.5B as a program the sandbox runs, measured by its
samples' vote.

These are properties any correct build of llama.cpp satisfies. Whether each
answer is *right* depends on the float paths of the build (a native build with
other SIMD kernels answered "3:25" for the minutes question), so accuracy is
measured by ``python -m benchmarks.demo_quality``, not asserted here.
"""

from __future__ import annotations

import re

import pytest

from r2local.config import parse_settings
from r2local.engine.core import Engine
from r2local.vocab import Route, Status

SIMPLE = ["What is 9 times 7?", "How many minutes are there in 3 hours and 25 minutes?", "What is 15% of 80?",
          "What is 7 times 8?", "A film starts at 13:40 and lasts 95 minutes. At what time does it end?"]
# A number or a clock time somewhere in the answer: what a program's printed result reads as.
WELL_FORMED = re.compile(r"-?\d+(?:[.:]\d+)?")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, models_dir, qwen_path, smol_path):
    home = tmp_path_factory.mktemp("demo")
    cfg = {"pool": "demo", "runtime": {"threads": 2}, "learning": {"shadow_local": 0.0}}
    engine = Engine(parse_settings(cfg, home / "config.toml"), ledger=None)
    yield engine
    engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("question", SIMPLE)
def test_simple_arithmetic_is_answered_locally_by_a_program_and_measured(demo, question):
    result = demo.ask(question, local_only=True)
    node = result.nodes[-1]
    assert WELL_FORMED.search(result.answer or ""), result.answer
    assert result.route == Route.WHOLE_LOCAL and node.tier == "local"  # the program writer, not the 135M model
    # Right or wrong, the answer carries its working and the vote's measure, and a doubted one says so.
    assert node.status in (Status.DONE, Status.UNSURE) and node.working
    assert node.confidence is not None and 0.0 <= node.confidence <= 1.0
    calls = demo.ledger.question(result.question_id)["calls"]
    assert [c["role"] for c in calls][:3] == ["route", "subtask", "program"]
    assert all(c["tier"] != "local-small" for c in calls)


@pytest.mark.slow
def test_a_short_fact_on_the_demo_pool_is_routed_by_the_policy_shipped_for_its_models(demo):
    """A newcomer's first short-answer question is routed by measured bands, and the plan says by which policy."""
    result = demo.ask("Which planet is known for its rings?", local_only=True)
    assert result.route == Route.WHOLE_LOCAL and "short answers (their own bands)" in result.route_reason
    assert "measured" in result.route_reason and "policy: shipped with r2local" in result.route_reason
    node = result.nodes[-1]
    assert node.answer_kind == "short" and node.tier == "local" and node.confidence is not None


@pytest.mark.slow
def test_a_real_program_that_skips_a_time_factor_is_held_back_and_says_why(demo):
    """The time-factor check on a real model's program: whatever program this build writes for the runner, an
    answer whose program has no days-to-weeks factor is not kept as done, and one that has it goes to the vote."""
    from r2local.engine.timefactors import missing_factor

    question = "A runner jogs 4 km every day for 3 weeks. How many kilometres does she jog in total?"
    result = demo.ask(question, local_only=True)
    node = result.nodes[-1]
    assert node.tier == "local" and node.working  # a program answered
    why = missing_factor(question, node.working)
    if why is not None:  # this project's build writes `4 * 3` here
        assert (node.status, node.reason, node.confidence) == (Status.UNSURE, why, None)
        calls = demo.ledger.question(result.question_id)["calls"]
        assert [c["role"] for c in calls].count("subtask") == 1  # no vote drawn for an answer that cannot be kept
    else:
        assert node.confidence is not None


@pytest.mark.slow
def test_a_real_multiple_choice_is_answered_open_and_matched_to_an_option(demo):
    """The 0.5B answers a choice's stem alone (shown the options it picks the same letter whatever they say);
    its answer is kept only as one of the options, and an answer that names none is held back, saying so."""
    result = demo.ask("Which element has the symbol Fe?\nA. fluorine\nB. iron\nC. lead\nD. tin", local_only=True)
    node = result.nodes[-1]
    assert result.route == Route.WHOLE_LOCAL and node.tier == "local" and node.answer_kind == "choice"
    assert node.features.get("open_choice") == 1.0
    if node.confidence is not None:
        assert re.fullmatch(r"[A-D]\) (fluorine|iron|lead|tin)", node.answer), node.answer
    else:
        assert (node.status, node.reason) == (Status.UNSURE, "the answer names none of the options")
    outputs = [c["output"] for c in demo.ledger.question(result.question_id)["calls"] if c["role"] == "subtask"]
    assert outputs and not any(re.fullmatch(r"\W*[A-D]\W*", o or "") for o in outputs)  # open answers, not letters


@pytest.mark.slow
def test_parts_the_rules_miss_are_found_by_the_shipped_split_adapter(demo):
    """Two asks with no mark the rules cut on: the router, under the split adapter shipped for the
    0.5B, lists them, and each takes its own route. A word problem that passes the cheap test stays whole."""
    from r2local.vocab import NodeKind

    message = "what's 99 plus 101\nwho wrote the Odyssey"
    result = demo.ask(message, local_only=True)
    assert result.route == Route.PARTS and "found by the router's split adapter" in result.route_reason
    parts = [n.text for n in result.nodes if n.kind == NodeKind.PART]
    assert len(parts) == 2 and "99 plus 101" in parts[0] and "Odyssey" in parts[1]
    [split] = [c for c in demo.ledger.question(result.question_id)["calls"] if c["role"] == "split"]
    assert split["adapter"] == "split-qwen2.5-coder-0.5b-instruct.gguf" and split["tier"] == "router"
    single = demo.ask("A tank holds 80 litres and is 3/4 full. How many litres are needed to fill it?",
                      local_only=True)
    assert single.route != Route.PARTS
    assert [c["role"] for c in demo.ledger.question(single.question_id)["calls"]][:2] == ["split", "route"]
