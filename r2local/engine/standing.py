"""How an answer stands, in one wording for every place that shows it: the app
(live, and reopened from history), `r2local ask` and `r2local logs`.

The question's own status says whether it finished; once it has, the answer's
status is its answer node's (done, unsure, escalated, fallback...), which the
ledger keeps, so an unsure answer reads unsure after a restart too. A kind the
vote does not check (open text) says so rather than nothing; an answer another
check held back (its reason says which) reads unsure alone.
"""

from __future__ import annotations

from r2local.vocab import QuestionStatus, Status

NO_CHECK = "no check"
LOW_AGREEMENT = "low agreement"  # how a reason the agreement bar gave begins (answering)
LOW_CONFIDENCE = "low confidence"  # and one the mean-probability floor gave (executor, escalate_below)
_NOT_ANSWERED = {Status.QUEUED, Status.RUNNING, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED}


def answer_status(question_status: str, node_status: str | None) -> str:
    """The question's status until it finished, then its answer node's."""
    if question_status != QuestionStatus.DONE or not node_status:
        return str(question_status)
    return str(node_status)


def confidence_text(confidence: float | None, status: str | None) -> str:
    """``conf 0.83``; ``no check`` for an answer nobody voted on; nothing before there is an answer."""
    if confidence is not None:
        return f"conf {confidence:.2f}"
    if status == Status.UNSURE:  # held back by a check other than the vote (its reason says which)
        return ""
    return "" if status in _NOT_ANSWERED or status in set(QuestionStatus) - {QuestionStatus.DONE} else NO_CHECK


def standing(status: str, confidence: float | None) -> str:
    """``unsure · conf 0.40``, ``done · no check``, ``failed``: status and confidence as one label."""
    conf = confidence_text(confidence, status)
    return f"{status} · {conf}" if conf else str(status)


def held_back(reason: str | None) -> bool:
    """Whether a local answer's recorded ``reason`` held it back whatever the agreement bar: degenerate, empty
    or unreadable output, a skipped time factor. A replay at another bar must still send it up, and the app
    says "held back" for it, not "low confidence"."""
    return bool(reason) and not reason.startswith((LOW_AGREEMENT, LOW_CONFIDENCE))
