import json

from hypothesis import given, settings
from hypothesis import strategies as st

from r2local.routing.plan import Plan, parse_plan

Q = "What is 2 + 3, times 4?"


def test_valid_plan_passes_through():
    raw = json.dumps({"subtasks": [{"id": 1, "text": "Add 2 and 3.", "depends_on": []},
                                   {"id": 2, "text": "Multiply by 4.", "depends_on": [1]}]})
    plan = parse_plan(raw, Q, 6)
    assert [s.id for s in plan.subtasks] == [1, 2]
    assert plan.subtasks[1].depends_on == [1]
    assert plan.note is None


def test_ids_are_renumbered_and_unknown_or_self_deps_dropped():
    raw = '{"subtasks": [{"id": 7, "text": "a", "depends_on": [7, 99]}, {"id": "x", "text": "b", "depends_on": ["7"]}]}'
    plan = parse_plan(raw, Q, 6)
    assert [(s.id, s.depends_on) for s in plan.subtasks] == [(1, []), (2, [1])]
    assert "unknown dependencies" in plan.note


def test_prose_and_fences_around_json_are_tolerated():
    raw = 'Sure! ```json\n{"subtasks": [{"id": 1, "text": "a", "depends_on": []}]}\n``` hope that helps'
    assert parse_plan(raw, Q, 6).subtasks[0].text == "a"


def test_cap_drops_extra_subtasks_and_links_to_them():
    items = [{"id": i, "text": f"s{i}", "depends_on": [i - 1] if i > 1 else []} for i in range(1, 10)]
    plan = parse_plan(json.dumps({"subtasks": items}), Q, 3)
    assert len(plan.subtasks) == 3 and "kept the first 3 of 9" in plan.note


def test_cycle_falls_back_to_the_question():
    raw = '{"subtasks": [{"id": 1, "text": "a", "depends_on": [2]}, {"id": 2, "text": "b", "depends_on": [1]}]}'
    plan = parse_plan(raw, Q, 6)
    assert [s.text for s in plan.subtasks] == [Q] and "cycle" in plan.note


def test_garbage_falls_back_to_the_question():
    for raw in ["", "not json", "{", '{"subtasks": []}', '{"subtasks": [{"text": "  "}]}', "[1, 2]", "null"]:
        plan = parse_plan(raw, Q, 6)
        assert [s.text for s in plan.subtasks] == [Q], raw


def test_forward_dependencies_are_ordered():
    raw = '{"subtasks": [{"id": 1, "text": "a", "depends_on": [2]}, {"id": 2, "text": "b", "depends_on": []}]}'
    plan = parse_plan(raw, Q, 6)
    assert [s.id for s in plan.order()] == [2, 1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(["id", "text", "depends_on", "subtasks", "x"]), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_fuzz_any_reply_gives_a_valid_acyclic_plan(raw: str):
    plan = parse_plan(raw, Q, 4)
    Plan.model_validate(plan.model_dump())
    assert 1 <= len(plan.subtasks) <= 4
    ids = [s.id for s in plan.subtasks]
    assert ids == list(range(1, len(ids) + 1))
    assert all(set(s.depends_on) <= set(ids) and s.id not in s.depends_on for s in plan.subtasks)
    assert len(plan.order()) == len(plan.subtasks)
    assert all(s.text.strip() for s in plan.subtasks)
