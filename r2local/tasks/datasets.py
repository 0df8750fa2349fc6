"""Bench datasets: the built-in ones by name, or a JSONL file.

A JSONL line is ``{"question": ..., "answer": ..., "grader": "number" |
"exact" | "choice"}`` (grader optional: guessed from the answer), with an
optional ``"choices": [...]`` for multiple choice.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from r2local.errors import R2Error
from r2local.fetch import Progress
from r2local.registry import registrar
from r2local.tasks import sources
from r2local.tasks.graders import GRADERS, default_grader
from r2local.tasks.wordproblems import generate


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answer: str
    grader: str
    choices: tuple[str, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


Loader = Callable[["Progress | None"], list[Item]]  # every item of a dataset
DATASETS: dict[str, Loader] = {}


register = registrar(DATASETS)


def _item(d: dict[str, Any]) -> Item:
    choices = tuple(d["choices"]) if d.get("choices") else None
    return Item(d["id"], d["question"], d["answer"], d["grader"], choices, d.get("meta") or {})


def load(spec: str, n: int, seed: int, *, calib: int = 0, progress: Progress | None = None) -> tuple[list[Item], list[Item]]:
    """``n`` items of a dataset and ``calib`` other items for calibration, chosen by ``seed``.

    Args:
        spec: a built-in name (see DATASETS, plus "generated") or a .jsonl path.
        n: how many items to bench.
        seed: picks the items (and generates them, for "generated").
        calib: how many further items to set aside for threshold calibration.
        progress: shows a first-use download.
    """
    if spec == "generated":
        # A different seed gives a disjoint-in-practice calibration split.
        return [_item(d) for d in generate(n, seed)], [_item(d) for d in generate(calib, seed + 1_000_003)]
    if spec in DATASETS:
        pool = DATASETS[spec](progress)
    elif spec.endswith(".jsonl") or Path(spec).is_file():
        pool = read_jsonl(Path(spec))
    else:
        names = ", ".join(["generated", *DATASETS])
        raise R2Error(f"unknown dataset {spec!r}", fix=f"use one of {names}, or a .jsonl file")
    order = random.Random(seed).sample(pool, len(pool))
    return order[:n], order[n:n + calib]


def read_jsonl(path: Path) -> list[Item]:
    if not path.is_file():
        raise R2Error(f"dataset file not found: {path}", fix="check the path")
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise R2Error(f"{where}: not valid JSON ({exc.msg})", fix='each line is {"question": ..., "answer": ...}') from None
        if not isinstance(d, dict) or not str(d.get("question") or "").strip() or d.get("answer") in (None, ""):
            raise R2Error(f"{where}: needs a non-empty \"question\" and \"answer\"", fix="add the missing field")
        answer = str(d["answer"])
        grader = d.get("grader") or default_grader(answer)
        if grader not in GRADERS:
            raise R2Error(f"{where}: unknown grader {grader!r}", fix=f"use one of {', '.join(GRADERS)}")
        items.append(_item({"id": str(d.get("id") or f"{path.stem}-{lineno}"), "question": d["question"],
                            "answer": answer, "grader": grader, "choices": d.get("choices"), "meta": d.get("meta")}))
    if not items:
        raise R2Error(f"{path} has no items", fix='add lines like {"question": "What is 2+3?", "answer": "5"}')
    return items


# -- built-in datasets from PyPI packages ---------------------------------------------
def champ_answer(raw: str) -> str | None:
    """A CHAMP answer as a number ("C(10, 5), or equivalently 252" -> "252"), or None."""
    if ", or equivalently " in raw:
        raw = raw.split(", or equivalently ", 1)[1]
    raw = re.split(r",\s*or\b|\(", raw)[0].strip()
    return raw if re.fullmatch(r"-?\d+(\.\d+)?(/\d+)?(\s+[a-z]+)?", raw) else None


@register("champ")
def champ(progress: Progress | None = None) -> list[Item]:
    """CHAMP competition maths (champ-dataset), the problems with numeric answers."""
    member = next(iter(sources.CHAMP.members))
    data = json.loads(sources.dataset_file(sources.CHAMP, member, progress).read_text(encoding="utf-8"))
    items = []
    for pid, p in sorted(data["problems"].items()):
        answer = champ_answer(p["_answer"])
        if answer is not None:
            items.append(Item(pid, p["_text"], answer, "number", None, {"category": p.get("category")}))
    return items


def _bigbench(member: str, progress: Progress | None) -> list[dict[str, Any]]:
    path = sources.dataset_file(sources.BIGBENCH, member, progress)
    return json.loads(path.read_text(encoding="utf-8"))["examples"]


@register("strategyqa")
def strategyqa(progress: Progress | None = None) -> list[Item]:
    """StrategyQA (BIG-bench): yes/no questions whose reasoning steps are implicit."""
    examples = _bigbench("bigbench/benchmark_tasks/strategyqa/task.json", progress)
    items = []
    for i, ex in enumerate(examples):
        gold = max(ex["target_scores"], key=ex["target_scores"].get).lower()
        items.append(Item(f"strategyqa-{i}", f"{ex['input'].strip()} Answer yes or no.", gold, "exact"))
    return items


def _tidy(text: str) -> str:
    # The task's text is tokenised ("a book . she ..."); undo the spaces.
    return re.sub(r"\s+([.,?!%])", r"\1", text).strip()


@register("elementary_math_qa")
def elementary_math_qa(progress: Progress | None = None) -> list[Item]:
    """elementary_math_qa (BIG-bench, question_only): multiple-choice word problems."""
    examples = _bigbench("bigbench/benchmark_tasks/elementary_math_qa/question_only/task.json", progress)
    items = []
    for i, ex in enumerate(examples):
        choices = list(ex["target_scores"])
        letters = "ABCDEFGHIJ"[: len(choices)]
        options = "\n".join(f"{letter}) {c}" for letter, c in zip(letters, choices))
        gold = letters[max(range(len(choices)), key=lambda k: ex["target_scores"][choices[k]])]
        question = f"{_tidy(ex['input'])}\n{options}\nAnswer with the letter of the correct option."
        items.append(Item(f"emqa-{i}", question, gold, "choice", tuple(choices)))
    return items


@register("compound")
def compound(progress: Progress | None = None) -> list[Item]:
    """Compound questions of our own (tasks/compound.py): 2-4 independent parts, each graded."""
    from r2local.tasks.compound import generate as generate_compound

    return [_item(d) for d in generate_compound(2000, seed=20261205)]


def dataset_names() -> list[str]:
    return ["generated", *DATASETS]
