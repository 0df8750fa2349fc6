"""The plan: the prompt that asks the router for one, its schema, and a parser
that never lets bad model output through.

Model output drives control flow here, so it is always parsed with pydantic,
repaired where the intent is clear (renumbering, unknown or self dependencies,
too many subtasks), and replaced by the one-subtask plan otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError

MAX_TEXT = 400

PLAN_SYSTEM = (
    "You break a question into the few steps needed to answer it. "
    "Each step is one short instruction that states the numbers it needs and can be answered "
    "given the results of the steps it depends on. Cover every part of the question. "
    "Use as few steps as the question needs; a simple question is one step. "
    "Do not add a final 'combine' step. "
    'Reply with JSON only: {"subtasks": [{"id": 1, "text": "...", "depends_on": []}]}.'
)

EXAMPLE_Q = (
    "A cake needs 250 g of flour. How much flour do 6 cakes need, "
    "and how many 1 kg bags of flour must be bought for them?"
)
EXAMPLE_PLAN = {
    "subtasks": [
        {"id": 1, "text": "Compute 6 x 250 g of flour.", "depends_on": []},
        {"id": 2, "text": "Find how many 1 kg bags hold that much flour, rounding up.", "depends_on": [1]},
    ]
}


def plan_messages(question: str, max_subtasks: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": f"{PLAN_SYSTEM} At most {max_subtasks} steps."},
        {"role": "user", "content": EXAMPLE_Q},
        {"role": "assistant", "content": json.dumps(EXAMPLE_PLAN)},
        {"role": "user", "content": question},
    ]


class Subtask(BaseModel):
    id: int = Field(ge=1)
    text: str = Field(min_length=1)
    depends_on: list[int] = Field(default_factory=list)


class Plan(BaseModel):
    subtasks: list[Subtask] = Field(min_length=1)
    note: str | None = Field(None, description="What was repaired, or why the fallback was used.")

    def order(self) -> list[Subtask]:
        """Subtasks in an order where dependencies come first."""
        done: set[int] = set()
        out: list[Subtask] = []
        pending = list(self.subtasks)
        while pending:
            ready = [s for s in pending if set(s.depends_on) <= done]
            if not ready:  # a cycle: nothing left can run
                break
            out.extend(ready)
            done.update(s.id for s in ready)
            pending = [s for s in pending if s.id not in done]
        return out


def plan_schema(max_subtasks: int) -> dict[str, Any]:
    """JSON schema for the decomposer's grammar; bounds keep decoding short."""
    return {
        "type": "object",
        "properties": {
            "subtasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_subtasks,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "text": {"type": "string", "maxLength": MAX_TEXT},
                        "depends_on": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["id", "text", "depends_on"],
                },
            }
        },
        "required": ["subtasks"],
    }


def single_plan(question: str, note: str | None = None) -> Plan:
    return Plan(subtasks=[Subtask(id=1, text=question.strip() or "(empty question)")], note=note)


def _first_object(raw: str) -> Any:
    """The first JSON object in ``raw`` (models sometimes wrap it in prose or fences)."""
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(raw) if ch == "{"):
        try:
            return decoder.raw_decode(raw, start)[0]
        except json.JSONDecodeError:
            continue
    raise ValueError("no JSON object found")


class _LooseItem(BaseModel):
    id: int | str | None = None
    text: str = ""
    depends_on: list[int | str] | int | str | None = None


def _coerce_items(data: Any) -> list[_LooseItem]:
    items = data.get("subtasks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("no subtasks list")
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"text": item}
        if isinstance(item, dict):
            try:
                out.append(_LooseItem.model_validate(item))
            except ValidationError:
                continue
    return out


def _deps(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in values]


def _has_cycle(subtasks: list[Subtask]) -> bool:
    return len(Plan(subtasks=subtasks).order()) != len(subtasks)


def parse_plan(raw: str, question: str, max_subtasks: int) -> Plan:
    """Parse, validate and repair a decomposer reply; fall back to one subtask.

    Args:
        raw: the model's text.
        question: the user's question (the fallback plan's only subtask).
        max_subtasks: cap; extra subtasks are dropped with their dependents' links.
    """
    try:
        items = _coerce_items(_first_object(raw) if raw.lstrip()[:1] != "[" else json.loads(raw))
    except (ValueError, TypeError):
        return single_plan(question, "plan was not valid JSON; answering the question as one subtask")
    notes: list[str] = []
    items = [it for it in items if it.text.strip()]
    if len(items) > max_subtasks:
        notes.append(f"kept the first {max_subtasks} of {len(items)} subtasks")
        items = items[:max_subtasks]
    if not items:
        return single_plan(question, "plan had no subtasks; answering the question as one subtask")
    # Renumber 1..n in order; map whatever ids the model used.
    mapping = {str(it.id).strip(): i for i, it in enumerate(items, 1) if it.id is not None}
    subtasks = []
    for i, it in enumerate(items, 1):
        deps = [mapping[d] for d in _deps(it.depends_on) if d in mapping and mapping[d] != i]
        if len(deps) != len(_deps(it.depends_on)):
            notes.append(f"dropped unknown dependencies of subtask {i}")
        subtasks.append(Subtask(id=i, text=it.text.strip()[:MAX_TEXT], depends_on=sorted(set(deps))))
    if _has_cycle(subtasks):
        return single_plan(question, "plan had a dependency cycle; answering the question as one subtask")
    return Plan(subtasks=subtasks, note="; ".join(dict.fromkeys(notes)) or None)
