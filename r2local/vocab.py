"""One vocabulary: the names the executor, the ledger, the TUI and the reward
code all read. Each is a ``str`` enum, so a member compares equal to its value,
is stored in SQLite as that text, and serialises to JSON as it.
"""

from __future__ import annotations

from enum import Enum

OFFLINE = "offline: "  # how the notice that the cloud is off for a question begins


class _Name(str, Enum):
    """A str enum whose str() and format() are its value (StrEnum, also on 3.10)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Status(_Name):
    """Where a subtask stands (``subtasks.status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ESCALATED = "escalated"  # answered after moving up a tier
    UNSURE = "unsure"  # low confidence, nowhere to escalate: kept and marked
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the process died while it ran
    # Answered on the strongest local tier instead of the cloud:
    FALLBACK = "fallback"  # the cloud failed after retries
    BUDGET = "budget"  # the call would have overshot the budget
    KEPT_LOCAL = "kept-local"  # privacy: confirm declined, or nobody to ask

    @property
    def answered(self) -> bool:
        return self in ANSWERED


ANSWERED = frozenset({Status.DONE, Status.ESCALATED, Status.UNSURE, Status.FALLBACK, Status.BUDGET, Status.KEPT_LOCAL})
# Kept off the cloud by a gate or a failure: once marked, a node never climbs back.
MARKS = frozenset({Status.FALLBACK, Status.BUDGET, Status.KEPT_LOCAL})


class QuestionStatus(_Name):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class CallStatus(_Name):
    """A ``calls`` row: written ``running`` before the call, closed after it."""

    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class Role(_Name):
    """What a model call was for (``calls.role``)."""

    ROUTE = "route"  # the router rates the whole question, or one part of it (picks the route)
    PLAN = "plan"  # the router writes a plan
    SPLIT = "split"  # the router, under its split adapter, lists a message's independent parts
    ALLOCATE = "allocate"  # the router rates one subtask
    SUBTASK = "subtask"  # a plan step answered
    FINAL = "final"  # the synthesis node answered
    SAMPLE = "sample"  # an extra sample for the agreement check
    PROGRAM = "program"  # a model-written program run in the sandbox
    SHADOW = "shadow"  # the same step one tier up, for learning only
    SUMMARY = "summary"  # a conversation's oldest turns summarised locally (they no longer fit)


class NodeKind(_Name):
    STEP = "step"
    FINAL = "final"
    WHOLE = "whole"  # the whole question again, on the cloud, after a decomposed answer came out unsure
    PART = "part"  # one independent part of a compound question, answered as its own question
    COMPOSE = "compose"  # the parts' answers joined under their numbers, locally, with no model call


class Route(_Name):
    """How a question is answered (``questions.route``)."""

    WHOLE_LOCAL = "whole-local"  # the question as one task on a local tier; agreement decides if it climbs
    DECOMPOSE = "decompose"  # the router's plan, its steps on local tiers; unsure: the whole question to the cloud
    WHOLE_CLOUD = "whole-cloud"  # the question as one task on the cloud
    PARTS = "parts"  # independent parts, each routed on its own; only a doubted or hard part leaves the device


class Routing(_Name):
    """The everyday strategies ``[router] strategy`` may name (``r2local.routing.strategies`` registers them)."""

    R2LOCAL = "r2local"  # a route per part of a question: whole-local, decompose or whole-cloud
    R2LOCAL_WHOLE = "r2local-whole"  # the same, with a compound question never split (for comparison)
    PLAN_AND_ALLOCATE = "plan-and-allocate"  # always the router's plan, every node placed by thresholds


class DecisionSource(_Name):
    """Where an allocation decision came from (``subtasks.decision_source``)."""

    POLICY = "policy"  # scorer + thresholds
    FORCED = "forced"  # a fixed tier (baselines, `--tier`)
    EXPLORATION = "exploration"  # drawn at random (the random baseline, exploration)


class Verdict(_Name):
    """Feedback on an answer or a subtask (``feedback.verdict``)."""

    GOOD = "good"
    BAD = "bad"
    NEEDED_CLOUD = "needed-the-cloud"
    NOT_NEEDED = "did-not-need-it"


class FeedbackSource(_Name):
    USER = "user"
    BENCH = "bench"  # graded against a gold answer
    SHADOW = "shadow"  # agreement with a shadow run one tier up
