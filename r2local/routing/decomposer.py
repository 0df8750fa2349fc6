"""Decomposer: the router model turns a question into a plan of subtasks."""

from __future__ import annotations

import json
import threading

from r2local.backends import Backend, Completion, complete
from r2local.routing.plan import Plan, parse_plan, plan_schema

SYSTEM = (
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
        {"role": "system", "content": f"{SYSTEM} At most {max_subtasks} steps."},
        {"role": "user", "content": EXAMPLE_Q},
        {"role": "assistant", "content": json.dumps(EXAMPLE_PLAN)},
        {"role": "user", "content": question},
    ]


class Decomposer:
    def __init__(self, backend: Backend, *, max_subtasks: int = 6, max_tokens: int = 320) -> None:
        self.backend = backend
        self.max_subtasks = max_subtasks
        self.max_tokens = max_tokens

    def plan(self, question: str, cancel: threading.Event | None = None) -> tuple[Plan, Completion]:
        """Ask the router for a plan; the result is always a valid plan."""
        schema = plan_schema(self.max_subtasks) if self.backend.supports_json_schema else None
        result = complete(
            self.backend,
            plan_messages(question, self.max_subtasks),
            max_tokens=self.max_tokens,
            temperature=0.0,
            json_schema=schema,
            cancel=cancel,
        )
        return parse_plan(result.text, question, self.max_subtasks), result
