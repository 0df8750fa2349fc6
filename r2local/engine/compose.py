"""The parts route's last node: the parts' answers joined under their numbers, with no model call.

A model asked to combine the answers could drop or reword one, and the cloud
would have to see every part to do it; joining them is exact and stays on the
device. A part that could not be answered anywhere is said plainly beside the
answered ones, and the whole is only as sure as its least sure part.
"""

from __future__ import annotations

from r2local.engine.events import Node
from r2local.vocab import Status

COMPOSE_TEXT = "Each part's answer under its number (joined locally, no model call)."
SURE = (Status.DONE, Status.ESCALATED)


def compose(node: Node, parts: list[Node]) -> None:
    """Fill ``node`` (answer, status, confidence, reason) from the answered ``parts``, in order."""
    lines, doubts = [], []
    for i, part in enumerate(parts, 1):
        if part.status == Status.FAILED or not part.answer:
            lines.append(f"({i}) no answer: {part.reason or 'no tier could answer it'}")
            doubts.append(f"part {i} has no answer")
            continue
        lines.append(f"({i}) {part.answer}")
        if part.status not in SURE:
            doubts.append(f"part {i} is {part.status}")
    answered = [p for p in parts if p.status != Status.FAILED and p.answer]
    confidences = [p.confidence for p in answered if p.confidence is not None]
    node.answer = "\n".join(lines)
    node.confidence = min(confidences) if confidences else None
    node.status = Status.FAILED if not answered else (Status.UNSURE if doubts else Status.DONE)
    node.reason = "; ".join(doubts) or None
    node.tier, node.model, node.is_local = None, None, True  # nothing ran: it is neither a tier's nor a model's
