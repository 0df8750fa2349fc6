"""The parts route: a compound question's parts each take their own route, and only a
doubted part leaves the device (scripted backend and a stand-in router: exact, no model runs)."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager

import pytest

from r2local.bench.runner import measure, summarise
from r2local import keys
from r2local.engine.core import Engine
from r2local.errors import ServerError
from r2local.routing.policy import Band, RoutePolicy
from r2local.routing.strategies import STRATEGIES
from r2local.routing.thresholds import Score
from r2local.store import learning
from r2local.store.records import CallEnd, CallRecord
from r2local.tasks.datasets import Item
from r2local.vocab import CallStatus, NodeKind, Role, Route, Status
from tests.support.fake import Step
from tests.test_statuses import scripted_config, scripts  # noqa: F401  (scripts is a fixture)

from .conftest import CLOUD_KEY, settings_from

PRIME, CANADA, TIMES = "Is 97 prime?", "What is the capital of Canada?", "What is 17 times 23?"
COMPOUND = f"(1) {PRIME} (2) {CANADA} (3) {TIMES}"


class Router:
    """Stands in for the router model: a difficulty per rated text, every rating recorded."""

    def __init__(self, difficulty: dict[str, float] | None = None, finds: list[str] | None = None) -> None:
        self.difficulty = difficulty or {}
        self.rated: list[tuple[int | None, str, Role]] = []
        self.ledger = None  # set: each rating is a calls row, as the real router's is
        self.finds = finds  # what its split adapter reads in a message the rules keep whole (None: no adapter)
        self.asked_to_split: list[str] = []

    @property
    def can_split(self) -> bool:
        return self.finds is not None

    def split(self, qid, question, cancel):
        self.asked_to_split.append(question)
        return list(self.finds or [])

    def score(self, qid, subtask_id, rated, text, role=Role.ALLOCATE):
        self.rated.append((subtask_id, text, role))
        probs = {"easy": 0.7, "medium": 0.3, "hard": 0.0}
        if self.ledger is not None:
            self.ledger.record_call(CallRecord(role, "router", "stub", "stub", qid, subtask_id),
                                    CallEnd(CallStatus.OK, 1.0, output=json.dumps(probs)))
        return Score(self.difficulty.get(text, 0.3), probs, 1.0, 10)

    def plan(self, qid, question, cancel):
        raise AssertionError("a single easy question is not decomposed here")

    @contextmanager
    def burst(self, threads):
        yield


def local_answers(answers: dict[str, list[str]]):
    """The local tier's script: each part's samples in turn, found by its text in the prompt."""
    seen: Counter = Counter()

    def step(messages):
        prompt = messages[-1]["content"]
        part = next(p for p in answers if p in prompt)
        said = answers[part][seen[part] % len(answers[part])]
        seen[part] += 1
        return Step(said)

    return step


def engine_with(r2home, router: Router, strategy: str = "r2local") -> Engine:
    cfg = scripted_config(executor={"samples": 3, "max_samples": 3, "agree_below": 0.6})
    engine = Engine(settings_from(cfg, r2home))
    engine.router = router
    engine.strategy = STRATEGIES[strategy]()
    return engine


SPLIT_ON_ARITHMETIC = {PRIME: ["Yes, 97 is prime."], CANADA: ["Ottawa."], TIMES: ["391", "401", "392"]}


def by_kind(result, kind):
    return [n for n in result.nodes if n.kind == kind]


def test_only_the_doubted_part_goes_to_the_cloud_and_only_its_text(r2home, scripts):
    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    scripts.by_model["cloud"] = [Step("391")]
    router = Router()
    result = engine_with(r2home, router).ask(COMPOUND)
    parts, [compose] = by_kind(result, NodeKind.PART), by_kind(result, NodeKind.COMPOSE)
    assert [p.text for p in parts] == [PRIME, CANADA, TIMES]
    assert [(p.status, p.tier) for p in parts] == [
        (Status.DONE, "big"), (Status.DONE, "big"), (Status.ESCALATED, "cloud")]
    [request] = scripts.calls["cloud"]
    sent = json.dumps(request)
    assert TIMES in sent and PRIME not in sent and CANADA not in sent and "(1)" not in sent
    # Each part is rated on its own text, one rating each; the whole message is never rated.
    assert router.rated == [(1, PRIME, Role.ROUTE), (2, CANADA, Role.ROUTE), (3, TIMES, Role.ROUTE)]
    assert result.answer == "(1) Yes, 97 is prime.\n(2) Ottawa.\n(3) 391"
    assert (compose.status, compose.tier, result.status) == (Status.DONE, None, "done")
    assert result.cloud_share == pytest.approx(1 / 3) and result.cost_usd > 0
    data = result.to_json()
    assert data["route"] == Route.PARTS and "3 independent parts" in data["route_reason"]
    subtasks = {s["id"]: s for s in data["subtasks"]}
    assert subtasks[3]["tier"] == "cloud" and subtasks[3]["status"] == "escalated"
    assert "low agreement" in subtasks[3]["reason"] and subtasks[3]["route_reason"].startswith("whole-local")
    assert subtasks[4]["kind"] == "compose" and subtasks[4]["answer"] == result.answer
    stored = engine_with(r2home, router).ledger.question(result.question_id)
    assert stored["route"] == "parts" and [s["kind"] for s in stored["subtasks"]] == ["part"] * 3 + ["compose"]
    assert stored["subtasks"][2]["route_reason"] == subtasks[3]["route_reason"]  # each part's route is kept
    assert {c["subtask_id"] for c in stored["calls"] if c["tier"] == "cloud"} == {3}


GOLD = json.dumps([{"grader": "exact", "answer": "yes"}, {"grader": "exact", "answer": "Ottawa"},
                   {"grader": "number", "answer": "391"}])


def test_the_bench_counts_parts_right_the_split_and_the_text_the_cloud_saw(r2home, scripts):
    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    scripts.by_model["cloud"] = [Step("391"), Step("(1) Yes (2) Ottawa (3) 391")]
    item = Item("c1", COMPOUND, GOLD, "parts")
    engine = engine_with(r2home, Router())
    parted = measure(engine, "r2local", item, *_asked(engine, COMPOUND))
    assert parted.correct and (parts := (parted.parts, parted.parts_right, parted.split)) == (3, 3, 3), parts
    assert (parted.cloud_chars, parted.question_chars) == (len(TIMES), len(COMPOUND))
    # Kept whole and doubted, the whole message goes up.
    scripts.by_model["big"] = [Step("Yes. Ottawa. 391"), Step("No. Toronto. 401"), Step("Yes. Ottawa. 392")]
    engine = engine_with(r2home, Router(), "r2local-whole")
    whole = measure(engine, "r2local-whole", item, *_asked(engine, COMPOUND))
    assert (whole.split, whole.cloud_chars, whole.parts) == (0, len(COMPOUND), 3)
    got = summarise([parted]), summarise([whole])
    assert got[0]["text_to_cloud"] == pytest.approx(len(TIMES) / len(COMPOUND)) and got[1]["text_to_cloud"] == 1.0
    assert (got[0]["split_exact"], got[1]["split_exact"]) == (1.0, 0.0)
    assert (got[0]["parts_right"], got[0]["parts"]) == (3, 3)


def _asked(engine, question):
    result = engine.ask(question)
    return result.question_id, result, None


def test_the_real_cloud_server_is_sent_the_doubted_part_alone(r2home, scripts, proxy):
    # The same split as above, the cloud now the stand-in llama.cpp server behind the body-logging proxy.
    keys.set_key("cloud", CLOUD_KEY)
    cfg = scripted_config(executor={"samples": 3, "max_samples": 3, "agree_below": 0.6})
    cfg["tiers"][2] = {"name": "cloud", "backend": "openai", "base_url": proxy.url, "model": "stand-in-cloud",
                       "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 1.0, "max_tokens": 24, "max_retries": 1}
    engine = Engine(settings_from(cfg, r2home))
    engine.router, engine.strategy = Router(), STRATEGIES["r2local"]()
    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    result = engine.ask(COMPOUND)
    [request] = proxy.completions
    sent = json.dumps(request["body"])
    assert TIMES in sent and PRIME not in sent and CANADA not in sent and "(1)" not in sent
    assert [p.tier for p in by_kind(result, NodeKind.PART)] == ["big", "big", "cloud"]
    assert result.answer.startswith("(1) Yes, 97 is prime.\n(2) Ottawa.\n(3) ")
    engine.close()


def test_local_only_marks_the_doubted_part_unsure_and_answers_the_others(r2home, scripts):
    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    result = engine_with(r2home, Router()).ask(COMPOUND, local_only=True)
    parts, [compose] = by_kind(result, NodeKind.PART), by_kind(result, NodeKind.COMPOSE)
    assert [p.status for p in parts] == [Status.DONE, Status.DONE, Status.UNSURE]
    assert scripts.calls["cloud"] == []
    assert result.answer.startswith("(1) Yes, 97 is prime.\n(2) Ottawa.\n(3) ")
    assert compose.status == Status.UNSURE and compose.confidence == pytest.approx(1 / 3)
    assert compose.reason == "part 3 is unsure" and result.status == "done" and result.cloud_share == 0


def test_a_part_that_fails_everywhere_is_said_plainly(r2home, scripts):
    def local(messages):
        if CANADA in messages[-1]["content"]:
            raise_for = ServerError("local model crashed")
            return Step(error=raise_for)
        return local_answers(SPLIT_ON_ARITHMETIC | {TIMES: ["391"]})(messages)

    scripts.by_model["big"] = local
    scripts.by_model["cloud"] = [Step(error=ServerError("cloud down"))] * 4
    result = engine_with(r2home, Router()).ask(COMPOUND)
    lines = result.answer.splitlines()
    assert lines[0] == "(1) Yes, 97 is prime." and lines[2] == "(3) 391"
    assert lines[1].startswith("(2) no answer: ") and "ServerError" in lines[1]
    compose = result.nodes[-1]
    assert compose.status == Status.UNSURE and "part 2 has no answer" in compose.reason
    assert result.status == "done"


def test_a_hard_part_goes_straight_up_and_the_easy_ones_stay(r2home, scripts):
    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    scripts.by_model["cloud"] = [Step("391")]
    engine = engine_with(r2home, Router({TIMES: 0.9}))
    policy = RoutePolicy([Band(0.5, Route.WHOLE_LOCAL, "big"), Band(1.0, Route.WHOLE_CLOUD, "cloud")], None, "test")
    engine.route_policy = lambda: policy
    result = engine.ask(COMPOUND)
    parts = by_kind(result, NodeKind.PART)
    assert [(p.tier, p.escalated_from) for p in parts] == [("big", None), ("big", None), ("cloud", None)]
    assert not any(TIMES in json.dumps(m) for m in scripts.calls["big"])  # never tried locally
    assert len(scripts.calls["cloud"]) == 1


def test_r2local_whole_keeps_a_compound_question_whole(r2home, scripts):
    scripts.by_model["big"] = [Step("Yes. Ottawa. 391")] * 3
    router = Router()
    result = engine_with(r2home, router, "r2local-whole").ask(COMPOUND)
    assert result.route == Route.WHOLE_LOCAL and [n.kind for n in result.nodes] == [NodeKind.STEP]
    assert router.rated == [(None, COMPOUND, Role.ROUTE)]


def test_a_single_question_takes_its_route_as_before(r2home, scripts):
    scripts.by_model["big"] = [Step("391")] * 3
    router = Router()
    result = engine_with(r2home, router).ask(TIMES)
    assert result.route == Route.WHOLE_LOCAL and len(result.nodes) == 1 and result.answer == "391"
    assert router.rated == [(None, TIMES, Role.ROUTE)] and result.nodes[0].route_reason is None


PROSE = f"Tell me {CANADA[8:-1]} and work out 17 times 23."  # the rules find no ask word to cut on


def test_parts_the_rules_miss_are_found_by_the_routers_split_adapter(r2home, scripts):
    scripts.by_model["big"] = local_answers({PRIME: ["Yes, 97 is prime."], CANADA: ["Ottawa."], TIMES: ["391"]})
    router = Router(finds=[CANADA, TIMES])
    result = engine_with(r2home, router).ask(PROSE)
    assert router.asked_to_split == [PROSE]
    assert result.route == Route.PARTS and "found by the router's split adapter" in result.to_json()["route_reason"]
    assert [n.text for n in by_kind(result, NodeKind.PART)] == [CANADA, TIMES]
    assert result.answer == "(1) Ottawa.\n(2) 391"
    # Rules first: a message they split never costs the model call; a plain question never reaches it either.
    engine_with(r2home, router).ask(COMPOUND, local_only=True)
    engine_with(r2home, router).ask(TIMES)
    assert router.asked_to_split == [PROSE]


def test_a_message_the_split_adapter_keeps_whole_takes_the_whole_route(r2home, scripts):
    scripts.by_model["big"] = [Step("Ottawa, and 391.")] * 3
    router = Router(finds=[])
    result = engine_with(r2home, router).ask(PROSE)
    assert router.asked_to_split == [PROSE] and result.route == Route.WHOLE_LOCAL
    assert router.rated == [(None, PROSE, Role.ROUTE)]


def test_the_plan_tree_names_the_composition_and_shows_each_parts_route(r2home, scripts):
    from tui.widgets.plan_tree import as_record, detail_lines, node_label
    from tui.widgets.transcript import confidence_warning

    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    result = engine_with(r2home, Router()).ask(COMPOUND, local_only=True)
    records = [as_record(n, lambda tier: tier != "cloud") for n in result.nodes]
    assert [node_label(r).plain for r in records] == ["● #1  big ", "● #2  big ", "? #3  big ", "? compose "]
    part = " ".join(line.plain for line in detail_lines(records[0], width=200))
    assert "route whole-local: difficulty 0.30" in part
    compose = " ".join(line.plain for line in detail_lines(records[-1], width=200))
    assert "after #" not in compose and "part 3 is unsure" in compose
    warning = confidence_warning(records, 0.6)
    assert warning is not None and "#3" in warning and "compose" not in warning


def test_part_ratings_are_not_taken_for_the_whole_questions(r2home, scripts):
    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC | {TIMES: ["391"]})
    router = Router()
    engine = engine_with(r2home, router)
    router.ledger = engine.ledger
    engine.ask(COMPOUND)
    engine.ask(TIMES)
    rows = engine.ledger._query("select subtask_id from calls where role = 'route' order by rowid")
    assert [r["subtask_id"] for r in rows] == [1, 2, 3, None]
    # Calibration and training read whole-question ratings: the compound one has none.
    assert [r.question for r in learning.ratings(engine.ledger, None, True)] == [TIMES]


def test_ask_prints_the_parts_route_as_text_and_json(r2home, scripts, capsys):
    from r2local.cli.ask import _print_result

    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    scripts.by_model["cloud"] = [Step("391")]
    result = engine_with(r2home, Router()).ask(COMPOUND)
    _print_result(result.to_json(), as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert data["route"] == "parts" and data["answer"] == result.answer
    assert [(s["kind"], s["tier"], s["status"]) for s in data["subtasks"]] == [
        ("part", "big", "done"), ("part", "big", "done"), ("part", "cloud", "escalated"), ("compose", None, "done")]
    assert all(s["route_reason"] for s in data["subtasks"][:3])
    _print_result(result.to_json(), as_json=False)
    text = capsys.readouterr().out
    assert text.startswith("(1) Yes, 97 is prime.\n(2) Ottawa.\n(3) 391\n") and "route: parts (3 independent" in text


async def test_the_app_shows_the_parts_and_the_composed_answer(r2home, scripts):
    from tui.app import make_app
    from tui.widgets.plan_tree import PlanTree
    from tui.widgets.transcript import Exchange

    from .test_tui import SIZE, ask

    scripts.by_model["big"] = local_answers(SPLIT_ON_ARITHMETIC)
    scripts.by_model["cloud"] = [Step("391")]
    app = make_app(engine=engine_with(r2home, Router()), first_run_check=False)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, COMPOUND)
        records = app.screen.query_one(PlanTree).records()
        assert [(r["kind"], r["tier"], r["status"]) for r in records] == [
            ("part", "big", "done"), ("part", "big", "done"), ("part", "cloud", "escalated"), ("compose", None, "done")]
        assert app.screen.query_one(Exchange).markdown.source.strip() == "(1) Yes, 97 is prime.\n(2) Ottawa.\n(3) 391"
