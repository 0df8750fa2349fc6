"""The bench's parts without models: graders, the generator, dataset files."""

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from r2local.bench.runner import wilson
from r2local.bench.strategies import ORDER, parse_strategies
from r2local.errors import R2Error
from r2local.tasks import datasets, sources
from r2local.tasks.graders import choice_letter, default_grader, grade
from r2local.tasks.wordproblems import generate


@pytest.mark.parametrize("prediction, gold", [
    ("The answer is 1,250.", "1250"),
    ("Total: $1,250.50", "1250.5"),
    ("He has 6 apples left.", "6"),
    ("3 + 5 = 8, then 8 - 2 = 6", "6"),
    ("**Answer:** 15 minutes", "15"),
    ("The answer is 15 minutes, because 12:15 is 15 minutes after noon.", "15"),
    ("six apples", "6"),
    ("The answer is 1/2.", "0.5"),
    ("about 0.357", "5/14"),
    ("35.7%", "5/14"),
    ("answer is 2 1/2 cups", "2.5"),
    ("It needs 1500 g of flour.", "1.5 kg"),
    ("It travels 45 km.", "45 km"),
    ("It takes 2 hours and 35 minutes.", "155 min"),
    ("It ends at 14:15.", "14:15"),
    ("The film ends at 2:15 pm.", "14:15"),
    ("The film ends at 2:15.", "14:15"),
    ("240 %", "240 %"),
    ("\\boxed{-9}", "-9"),
    ("Therefore, there are 9.144 metres in 30 feet.", "9.14"),
    ("So 32 kg is approximately equal to 70.55 pounds.", "70.5"),
    ("13 hours is equal to 13 * 60 minutes, which is 780 minutes.", "780"),
    ("5 + 3 = 8 apples, and she eats 2, so she has 6 apples.", "6"),
    ("In 30 feet, there are 30 * 5.28 = 156.16 metres.", "156.16"),
    ("7 bags * 6 = 40\n#### 42", "42"),
    ("So she has **24 buttons** in all.", "24"),
    ("**Step 2: Multiply 6 by 4**\n6 x 4 = 24", "24"),
])
def test_number_grader_accepts(prediction, gold):
    assert grade("number", prediction, gold)


@pytest.mark.parametrize("prediction, gold", [
    ("The answer is 7.", "6"),
    ("6 apples, then 2 are eaten, leaving 4", "6"),
    ("It ends at 2:15 am.", "14:15"),
    ("It costs 15.9 dollars.", "15.85"),
    ("about 0.4", "5/14"),
    ("17 miles is equal to 27.46 kilometres.", "27.4"),
    ("It is 27.3.", "27.4"),
    ("There are 9.1 metres in 30 feet.", "9.14"),
    ("1500", "1.5 kg"),
    ("no number here", "3"),
    ("", "3"),
])
def test_number_grader_rejects(prediction, gold):
    assert not grade("number", prediction, gold)


def test_exact_grader_case_punctuation_and_yes_no():
    assert grade("exact", "Yes. Frost is common in December.", "yes")
    assert grade("exact", "No, it is not.", "No")
    assert grade("exact", "True", "yes") and grade("exact", "The answer is: false", "no")
    assert not grade("exact", "No, the Spice Girls are five.", "yes")
    assert grade("exact", "PARIS!", "Paris") and grade("exact", "Paris is the capital.", "paris")
    assert grade("exact", "The Answer: the Nile", "Nile")
    assert not grade("exact", "Lyon", "Paris")
    # A sentence that ends on the answer states it; accents are not part of a name's spelling.
    assert grade("exact", "The capital of Brazil is Brasília.", "Brasilia") and grade("exact", "Brasília", "Brasilia")
    assert not grade("exact", "Rio de Janeiro, not Brasilia.", "Brasilia")
    assert not grade("exact", "The capital of Australia is Sydney. Canberra is a city.", "Canberra")
    # The first clause may end on it; a denial anywhere in the sentence still counts against it.
    assert grade("exact", "The Colosseum is located in Rome, Italy.", "Rome")
    assert grade("exact", "The largest desert in Africa is the Sahara Desert.", "Sahara")
    assert not grade("exact", "It is the Kalahari Desert, not the Sahara Desert.", "Sahara")
    assert grade("exact", "The first person on the Moon was Neil Armstrong, who landed in 1969.", "Neil Armstrong")
    assert not grade("exact", "It is Lyon, near Paris, not Paris itself.", "Paris")
    # A gold answer may list aliases: any one of them stated is right.
    assert grade("exact", "It was written by Tolstoy.", "Leo Tolstoy|Tolstoy")
    assert grade("exact", "Leo Tolstoy", "Leo Tolstoy|Tolstoy") and not grade("exact", "Dostoevsky", "Leo Tolstoy|Tolstoy")


def test_choice_grader_letters_and_option_text():
    choices = ["229", "270", "877", "266", "281"]
    assert grade("choice", "The correct answer is B) 270.", "B", choices)
    assert grade("choice", "(b)", "B", choices) and choice_letter("I think a) is wrong") is None
    assert grade("choice", "A) 229 B) 270 C) 877 ... so C)", "C", choices)
    assert not grade("choice", "The answer is a number near 3.", "A")  # the article, not option A
    assert grade("choice", "Option E", "E")
    assert grade("choice", "Her book has 270 pages.", "B", choices)
    assert not grade("choice", "Her book has 266 pages.", "B", choices)
    assert grade("choice", "yes", "Yes")


def test_default_grader_and_unknown_grader():
    assert [default_grader(g) for g in ("15 minutes", "$3.50", "12:15", "B", "yes", "Paris")] == [
        "number", "number", "number", "choice", "exact", "exact"]
    with pytest.raises(ValueError, match="unknown grader"):
        grade("fuzzy", "a", "a")


def test_wilson_interval():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_generator_is_deterministic_balanced_and_self_consistent():
    a, b = generate(24, seed=5), generate(24, seed=5)
    assert a == b and a != generate(24, seed=6)
    levels = [it["meta"]["difficulty"] for it in a]
    assert sorted(levels) == sorted([1, 2, 3, 4] * 6)
    assert len({it["id"] for it in a}) == 24
    for it in a:
        assert it["grader"] == "number" and grade("number", f"The answer is {it['answer']}.", it["answer"])
    for it in generate(200, seed=1):
        if it["meta"]["template"] == "add":
            nums = [int(x) for x in it["question"].split() if x.isdigit()]
            assert int(it["answer"]) == sum(nums)


def test_jsonl_dataset_and_errors(tmp_path):
    path = tmp_path / "mine.jsonl"
    lines = [{"question": "What is 2+3?", "answer": 5}, {"question": "Capital of France?", "answer": "Paris"},
             {"question": "Pick: A) 1 B) 2", "answer": "B", "choices": ["1", "2"]},
             {"question": "Is ice cold?", "answer": "yes", "grader": "exact"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    items, calib = datasets.load(str(path), n=3, seed=1, calib=5)
    assert len(items) == 3 and len(calib) == 1
    every = {it.question: it for it in datasets.read_jsonl(path)}
    assert [every[q["question"]].grader for q in lines] == ["number", "exact", "choice", "exact"]
    assert every["Pick: A) 1 B) 2"].choices == ("1", "2")
    assert datasets.load(str(path), 4, seed=1)[0] == datasets.load(str(path), 4, seed=1)[0]
    path.write_text('{"question": "x", "answer": "1"}\n{"question": "y"}\n')
    with pytest.raises(R2Error, match=r"mine.jsonl:2: needs"):
        datasets.read_jsonl(path)
    path.write_text('{"question": "x", "answer": "1", "grader": "fuzzy"}\n')
    with pytest.raises(R2Error, match="unknown grader"):
        datasets.read_jsonl(path)
    with pytest.raises(R2Error, match="unknown dataset"):
        datasets.load("gsm9k", 3, 0)


def test_strategy_lists():
    assert parse_strategies(None) == ORDER
    assert parse_strategies("random, r2local all-cloud") == ["all-cloud", "r2local", "random"]
    assert parse_strategies("task-level,r2local") == ["r2local", "task-level"]
    with pytest.raises(R2Error, match="r2local's cloud share"):
        parse_strategies("random,all-cloud")
    with pytest.raises(R2Error, match="unknown strategy"):
        parse_strategies("all-gpu")


def test_champ_answers_keep_numbers_only():
    assert datasets.champ_answer("C(10, 5), or equivalently 252") == "252"
    assert datasets.champ_answer("5/14, or approximately 35.7%") == "5/14"
    assert datasets.champ_answer("100 (i.e., all values)") == "100"
    assert datasets.champ_answer("2^(n-1)") is None and datasets.champ_answer("No") is None


def test_archive_members_are_read_from_wheels_and_sdists(tmp_path):
    whl = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("pkg/data/v0.json", b"{}")
    sdist = tmp_path / "x-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("x-1.0/pkg/tasks/t.json")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"[]"))
    assert sources._read(whl, "pkg/data/v0.json") == b"{}" and sources._read(whl, "nope") is None
    assert sources._read(sdist, "pkg/tasks/t.json") == b"[]"


# -- the built-in datasets, fetched once into the session's model store -------------------
@pytest.fixture
def dataset_store(models_dir: Path, monkeypatch) -> Path:
    path = models_dir / "datasets"
    monkeypatch.setenv(sources.DATASETS_ENV, str(path))
    return path


@pytest.mark.slow
def test_champ_loads_from_its_pypi_package(dataset_store):
    champ = datasets.DATASETS["champ"](None)
    assert len(champ) == 109 and all(it.grader == "number" and it.answer for it in champ)


@pytest.mark.slow
def test_a_release_gone_from_pypi_names_where_its_files_go(dataset_store):
    # bigbench 1.0.0 left PyPI; a release that never existed fails the same way.
    member = next(iter(sources.CHAMP.members))
    gone = sources.Source("champ-dataset==99.0.0", True, 8, {member: sources.CHAMP.members[member]})
    with pytest.raises(R2Error, match="is not on PyPI any more") as info:
        sources.dataset_file(gone, member)
    assert str(dataset_store / "champ-dataset-99.0.0" / member) in info.value.fix
    assert sources.DATASETS_ENV in info.value.fix


@pytest.fixture
def own_store(tmp_path: Path, monkeypatch) -> Path:
    """A dataset store of the test's own: task files made up here must never replace a real copy
    in the shared store (measured: they did, and bigbench 1.0.0 can no longer be fetched again)."""
    path = tmp_path / "datasets"
    monkeypatch.setenv(sources.DATASETS_ENV, str(path))
    return path


def _task_file(store: Path, member: str, examples: list) -> str:
    """A BIG-bench-format task.json of our own making, placed where a copied file would go."""
    data = json.dumps({"name": "own", "examples": examples}).encode()
    path = store / sources.BIGBENCH.package.replace("==", "-") / member
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_bigbench_loaders_read_a_verified_copy(own_store, monkeypatch):
    sqa, emqa = list(sources.BIGBENCH.members)
    digests = {
        sqa: _task_file(own_store, sqa, [
            {"input": "Could a cat fit inside a teacup?", "target_scores": {"Yes": 0, "No": 1}},
            {"input": "Is ice colder than steam?", "target_scores": {"Yes": 1, "No": 0}},
        ]),
        emqa: _task_file(own_store, emqa, [
            {"input": "a shop sells 3 pens for 6 dollars . what does one pen cost ?",
             "target_scores": {"1": 0, "2": 1, "3": 0, "6": 0, "18": 0}},
        ]),
    }
    monkeypatch.setattr(sources, "BIGBENCH", sources.Source(sources.BIGBENCH.package, False, 358, digests))
    items = datasets.DATASETS["strategyqa"](None)
    assert [it.answer for it in items] == ["no", "yes"]
    assert items[0].question == "Could a cat fit inside a teacup? Answer yes or no."
    (q,) = datasets.DATASETS["elementary_math_qa"](None)
    assert q.grader == "choice" and q.answer == "B" and q.choices == ("1", "2", "3", "6", "18")
    assert "one pen cost?\nA) 1\nB) 2" in q.question
    assert grade("choice", "The answer is B.", q.answer, list(q.choices))


@pytest.mark.slow
def test_a_file_that_fails_its_checksum_is_refused(own_store, monkeypatch):
    member = next(iter(sources.CHAMP.members))
    bad = sources.Source(sources.CHAMP.package, True, 8, {member: "0" * 64})
    monkeypatch.setenv(sources.DATASETS_ENV, str(own_store / "bad"))
    with pytest.raises(R2Error, match="does not match its recorded sha256"):
        sources.dataset_file(bad, member)
    assert not (own_store / "bad" / "champ-dataset-1.0.0" / member).exists()


def _outcome(strategy, item, correct, **kw):
    from r2local.bench.runner import ItemResult

    base = {"question_id": None, "prediction": "", "status": "done", "cost_usd": 0.0, "paid_usd": 0.0,
            "cloud_tokens": 0, "nodes": 1, "cloud_nodes": 0, "latency_ms": 1.0}
    return ItemResult(strategy, item, correct=correct, **{**base, **kw})


def test_losses_against_all_cloud_are_counted_by_cause():
    from r2local.bench.report import losses
    from r2local.bench.runner import BenchRun
    from r2local.tasks.datasets import Item

    items = [Item(f"q{i}", f"question {i}", "1", "number") for i in range(7)]
    r2 = [_outcome("r2local", "q0", False, route="whole-local", confidence=1.0),
          _outcome("r2local", "q1", False, route="whole-local", confidence=2 / 3),
          _outcome("r2local", "q2", False, route="whole-local", escalated=1, cloud_nodes=1),
          _outcome("r2local", "q3", False, route="decompose", nodes=3),
          _outcome("r2local", "q4", False, status="failed"),
          _outcome("r2local", "q5", True, route="whole-local", confidence=1.0),   # gained
          _outcome("r2local", "q6", False, route="whole-local", confidence=1.0)]  # all-cloud wrong too
    cloud = [_outcome("all-cloud", f"q{i}", i < 5, cloud_nodes=1) for i in range(7)]
    run = BenchRun(items, ["all-cloud", "r2local"], r2 + cloud)
    lost = losses(run)
    assert lost["lost_vs_all_cloud"] == 5 and lost["gained_vs_all_cloud"] == 1
    assert lost["causes"] == {"kept local, samples agreed": 1, "kept local, samples split": 1,
                              "escalated, still wrong": 1, "decomposed": 1, "failed": 1}
    run.strategies.append("cot-cloud")
    run.outcomes.append(_outcome("cot-cloud", "q3", False, nodes=3, cloud_nodes=3))
    assert losses(run)["causes"]["decomposed, plan fails on the cloud too"] == 1
    assert losses(BenchRun(items, ["r2local"], r2)) is None


def test_join_runs_regrades_stored_replies_with_todays_graders_and_gold(tmp_path):
    # A stored reply the old grader missed ("there are 9.144 metres in 30 feet": it read 30) counts once regraded;
    # a compound part's gold comes from today's generator (the Amazon River names the Amazon); not-done stays wrong.
    import json as _json

    from benchmarks.join_runs import join
    from r2local.bench.report import to_json
    from r2local.bench.runner import BenchRun
    from r2local.tasks.datasets import Item, load

    items = [Item("a", "How many metres are in 30 feet?", "9.14", "number"),
             Item("b", "How many metres are in 20 feet?", "6.1", "number")]
    replies = [_outcome("r2local", "a", False, prediction="Therefore, there are 9.144 metres in 30 feet."),
               _outcome("r2local", "b", False, prediction="The answer is 6.096.", status="failed")]
    run = to_json(BenchRun(items, ["r2local"], replies), {"dataset": "x", "n": 2, "seed": 0})
    stale = join([run])["strategies"][0]
    fresh = join([run], regrade=True)["strategies"][0]
    assert (stale["correct"], fresh["correct"]) == (0, 1)

    q = next(g for g in load("compound", 300, 0)[0] if "Amazon" in g.answer)
    parts = _json.loads(q.answer)
    old_gold = _json.dumps([dict(p, answer=p["answer"].split("|")[0]) for p in parts])
    reply = "\n".join(f"({i}) " + ("It is the Amazon River." if "Amazon" in p["answer"] else
                                   f"The answer is {p['answer'].split('|')[0]}.") for i, p in enumerate(parts, 1))
    item = Item(q.id, q.question, old_gold, "parts")
    run = to_json(BenchRun([item], ["r2local"], [_outcome("r2local", q.id, False, prediction=reply)]),
                  {"dataset": "compound", "n": 300, "seed": 0})
    assert join([run])["strategies"][0]["correct"] == 0 and join([run], regrade=True)["strategies"][0]["correct"] == 1
