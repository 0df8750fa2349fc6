"""The live plan tree: one node per subtask with status and tier badge, and under
it its figures (difficulty, tokens, cost, latency, confidence), its text, and
why it escalated. Lines under a node wrap to the panel's width, so no figure
is ever cut off."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, is_dataclass
from typing import Any, Callable

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from r2local.engine.standing import NO_CHECK, confidence_text, held_back
from r2local.vocab import NodeKind, Status

from tui.widgets.badges import money, status_icon, tier_badge

UNSETTLED = (Status.QUEUED, Status.RUNNING)
JOINS = (NodeKind.FINAL, NodeKind.COMPOSE)  # nodes that join the others' answers: named, not numbered


def as_record(node: Any, tier_is_local: Callable[[str | None], bool]) -> dict[str, Any]:
    """Engine Node or ledger subtask row -> one dict shape."""
    data = asdict(node) if is_dataclass(node) else dict(node)
    if "subtask_id" in data:
        data["id"] = data["subtask_id"]
    data.setdefault("sent", [])
    data.setdefault("is_local", tier_is_local(data.get("tier")))
    for key in ("input_tokens", "output_tokens", "cost_usd", "latency_ms"):
        data[key] = data.get(key) or 0
    return data


def held(rec: dict[str, Any]) -> bool:
    """Unsure because a check other than the vote held it back (its reason says which)."""
    return rec.get("status") == Status.UNSURE and held_back(rec.get("reason"))


def below_bar(rec: dict[str, Any], bar: float | None) -> bool:
    """Answered with less confidence than the escalation bar (and kept)."""
    if rec.get("status") == Status.UNSURE:
        return True
    conf = rec.get("confidence")
    bar = (rec.get("features") or {}).get("agree_below", bar)  # the bar it was held to, where recorded
    return bool(bar is not None and conf is not None and rec.get("is_local", True) and conf < bar
                and rec.get("status") not in UNSETTLED + (Status.CANCELLED, Status.FAILED))


def node_label(rec: dict[str, Any]) -> Text:
    """Status icon, id and tier badge: short, so it fits the narrowest panel."""
    label = Text.assemble(status_icon(rec["status"]), " ")
    label.append(f"{rec['kind']} " if rec.get("kind") in JOINS else f"#{rec['id']} ", style="bold")
    label.append_text(tier_badge(rec.get("tier"), rec.get("is_local", True)))
    if rec["status"] == Status.CANCELLED:
        label.append(" cancelled", style="dim red")
    return label


def figures(rec: dict[str, Any], bar: float | None = None) -> list[Text]:
    """The node's numbers as short pieces, joined and wrapped by the caller."""
    parts = []
    if rec.get("difficulty") is not None:
        parts.append(Text(f"d {rec['difficulty']:.2f}", style="cyan"))
    if rec["input_tokens"] or rec["output_tokens"]:
        parts.append(Text(f"{rec['input_tokens']}/{rec['output_tokens']} tok", style="dim"))
        parts.append(Text(money(rec["cost_usd"]), style="yellow" if rec["cost_usd"] else "dim"))
        parts.append(Text(f"{rec['latency_ms'] / 1000:.1f} s", style="dim"))
    if rec.get("confidence") is not None:
        if below_bar(rec, bar):
            limit = f" < {bar:.2f}" if bar is not None else ""
            parts.append(Text(f"⚠ conf {rec['confidence']:.2f}{limit}", style="bold yellow"))
        else:
            parts.append(Text(f"conf {rec['confidence']:.2f}", style="dim"))
    elif rec.get("status") == Status.UNSURE:  # a check other than the vote held it back, or the bar did
        parts.append(Text("⚠ held back" if held(rec) else "⚠ low confidence", style="bold yellow"))
    elif confidence_text(None, rec.get("status")):  # answered, and its kind has no vote
        parts.append(Text(NO_CHECK, style="dim"))
    deps = rec.get("depends_on") or []
    if deps and rec.get("kind") not in JOINS:
        parts.append(Text(f"after {', '.join('#' + str(d) for d in deps)}", style="dim"))
    return parts


def _pack(parts: list[Text], width: int) -> list[Text]:
    """Join pieces with " · " into lines no wider than ``width`` (a piece is never split)."""
    lines: list[Text] = []
    line = Text()
    for part in parts:
        if line.plain and len(line.plain) + 3 + len(part.plain) > width:
            lines.append(line)
            line = Text()
        if line.plain:
            line.append(" · ", style="dim")
        line.append_text(part)
    if line.plain:
        lines.append(line)
    return lines


def detail_lines(rec: dict[str, Any], width: int = 60, bar: float | None = None) -> list[Text]:
    """The lines under a node: figures, its text (shortened), why it escalated or was marked."""
    width = max(12, width)
    lines = _pack(figures(rec, bar), width)
    text = " ".join((rec.get("text") or "").split())
    lines.append(Text(text if len(text) <= width else text[: width - 1] + "…", style="italic"))
    if rec.get("route_reason"):  # a part's own route (the parts route rates each part)
        lines += [Text(chunk, style="dim cyan") for chunk in textwrap.wrap(f"route {rec['route_reason']}", width)]
    if rec.get("escalated_from"):
        why, style = f"⇡ from {rec['escalated_from']}: {rec.get('reason') or ''}", "magenta"
    elif rec.get("reason"):
        why, style = f"! {rec['reason']}", "yellow"
    else:
        return lines
    lines += [Text(chunk, style=style) for chunk in textwrap.wrap(why, width) or [why]]
    return lines


class PlanTree(Tree[dict]):
    """Plan of the current question; highlight a node to see its prompt and answer."""

    class NodeChosen(Message):
        def __init__(self, record: dict[str, Any]) -> None:
            super().__init__()
            self.record = record

    def __init__(self, tier_is_local: Callable[[str | None], bool], bar: float | None = None, **kwargs: Any) -> None:
        super().__init__("No question yet", **kwargs)
        self.tier_is_local = tier_is_local
        self.bar = bar
        self.show_root = True
        self.guide_depth = 3
        self._by_id: dict[int, TreeNode[dict]] = {}
        self._question = ""

    def _width(self) -> int:
        # Leaves sit two levels below the root: two guides and the toggle column.
        return (self.scrollable_content_region.width or 60) - 2 * self.guide_depth - 3

    def show_plan(self, question: str, nodes: list[Any], note: str | None = None, route: str | None = None,
                  route_reason: str | None = None) -> None:
        self.clear()
        self._by_id.clear()
        self._question = question
        self._set_title()
        for node in nodes:
            rec = as_record(node, self.tier_is_local)
            branch = self.root.add(node_label(rec), data=rec, expand=True)
            self._fill(branch, rec)
            self._by_id[rec["id"]] = branch
        if route:  # how the question is answered, and why (wrapped: the reason is the point)
            route_node = self.root.add(Text(f"route: {route}", style="italic cyan"), data=None, expand=True)
            for chunk in textwrap.wrap(route_reason or "", max(20, self._width())):
                route_node.add_leaf(Text(chunk, style="italic cyan"), data=None)
        if note:
            self.root.add_leaf(Text(f"note: {note}", style="italic yellow"), data=None)
        self.root.expand()

    def _set_title(self) -> None:
        width = max(12, self._width() + self.guide_depth - 5)
        title = " ".join(self._question.split())
        title = title if len(title) <= width else title[: width - 1] + "…"
        self.root.set_label(Text.assemble(("Plan ", "bold"), title))

    def update_node(self, node: Any) -> None:
        self._update(as_record(node, self.tier_is_local))

    def _update(self, rec: dict[str, Any]) -> None:
        tree_node = self._by_id.get(rec["id"])
        if tree_node is None:
            return
        tree_node.data = rec
        tree_node.set_label(node_label(rec))
        self._fill(tree_node, rec)
        if self.cursor_node is not None and self.cursor_node.data is not None and self.cursor_node.data.get("id") == rec["id"]:
            self.post_message(self.NodeChosen(rec))

    def mark_cancelled(self) -> None:
        """The question was cancelled: nodes that had not finished never will."""
        for rec in self.records():
            if rec["status"] in UNSETTLED:
                self._update({**rec, "status": Status.CANCELLED})

    def _fill(self, branch: TreeNode[dict], rec: dict[str, Any]) -> None:
        branch.remove_children()
        for line in detail_lines(rec, self._width(), self.bar):
            branch.add_leaf(line, data=rec)

    def on_resize(self) -> None:
        if self._question:
            self._set_title()
        for branch in self._by_id.values():
            if branch.data is not None:
                self._fill(branch, branch.data)

    def records(self) -> list[dict[str, Any]]:
        return [n.data for n in self._by_id.values() if n.data is not None]

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[dict]) -> None:
        if event.node.data is not None:
            self.post_message(self.NodeChosen(event.node.data))
