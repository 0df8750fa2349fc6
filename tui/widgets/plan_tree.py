"""The live plan tree: one node per subtask with status, tier badge, difficulty,
tokens, cost, latency and why it escalated."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any, Callable

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from .badges import money, status_icon, tier_badge


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


def node_label(rec: dict[str, Any]) -> Text:
    """Status, id, tier badge, difficulty, tokens, cost, latency."""
    label = Text.assemble(status_icon(rec["status"]), " ")
    label.append("final " if rec.get("kind") == "final" else f"#{rec['id']} ", style="bold")
    label.append_text(tier_badge(rec.get("tier"), rec.get("is_local", True)))
    if rec.get("difficulty") is not None:
        label.append(f" d={rec['difficulty']:.2f}", style="cyan")
    if rec["input_tokens"] or rec["output_tokens"]:
        label.append(f" {rec['input_tokens']}/{rec['output_tokens']} tok", style="dim")
        label.append(f" {money(rec['cost_usd'])}", style="yellow" if rec["cost_usd"] else "dim")
        label.append(f" {rec['latency_ms'] / 1000:.1f}s", style="dim")
    deps = rec.get("depends_on") or []
    if deps and rec.get("kind") != "final":
        label.append(f" ← {','.join(map(str, deps))}", style="dim")
    return label


def detail_lines(rec: dict[str, Any], width: int = 60) -> list[Text]:
    """The lines under a node: its text, and why it escalated or was marked."""
    text = " ".join((rec.get("text") or "").split())
    lines = [Text(text if len(text) <= width else text[: width - 1] + "…", style="italic")]
    if rec.get("escalated_from"):
        lines.append(Text(f"⇡ from {rec['escalated_from']}: {rec.get('reason') or ''}", style="magenta"))
    elif rec.get("reason"):
        lines.append(Text(f"! {rec['reason']}", style="yellow"))
    return lines


class PlanTree(Tree[dict]):
    """Plan of the current question; highlight a node to see its prompt and answer."""

    class NodeChosen(Message):
        def __init__(self, record: dict[str, Any]) -> None:
            super().__init__()
            self.record = record

    def __init__(self, tier_is_local: Callable[[str | None], bool], **kwargs: Any) -> None:
        super().__init__("No question yet", **kwargs)
        self.tier_is_local = tier_is_local
        self.show_root = True
        self.guide_depth = 3
        self._by_id: dict[int, TreeNode[dict]] = {}

    def show_plan(self, question: str, nodes: list[Any], note: str | None = None) -> None:
        self.clear()
        self._by_id.clear()
        title = question if len(question) < 70 else question[:67] + "…"
        self.root.set_label(Text.assemble(("Plan ", "bold"), title))
        for node in nodes:
            rec = as_record(node, self.tier_is_local)
            branch = self.root.add(node_label(rec), data=rec, expand=True)
            self._fill(branch, rec)
            self._by_id[rec["id"]] = branch
        if note:
            self.root.add_leaf(Text(f"note: {note}", style="italic yellow"), data=None)
        self.root.expand()

    def update_node(self, node: Any) -> None:
        rec = as_record(node, self.tier_is_local)
        tree_node = self._by_id.get(rec["id"])
        if tree_node is None:
            return
        tree_node.data = rec
        tree_node.set_label(node_label(rec))
        self._fill(tree_node, rec)
        if self.cursor_node is not None and self.cursor_node.data is not None and self.cursor_node.data.get("id") == rec["id"]:
            self.post_message(self.NodeChosen(rec))

    @staticmethod
    def _fill(branch: TreeNode[dict], rec: dict[str, Any]) -> None:
        branch.remove_children()
        for line in detail_lines(rec):
            branch.add_leaf(line, data=rec)

    def records(self) -> list[dict[str, Any]]:
        return [n.data for n in self._by_id.values() if n.data is not None]

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[dict]) -> None:
        if event.node.data is not None:
            self.post_message(self.NodeChosen(event.node.data))
