"""Python that model programs write and asteval 1.0 gets wrong or lacks.

A mixin for the sandbox's Interpreter: nothing here widens what a program
can reach, it only makes ordinary code run as Python would. Each method
says what asteval does instead.
"""

from __future__ import annotations

import ast
from typing import Any


class PythonCompat:
    """Mix in before asteval's Interpreter (uses its run/node_assign/symtable)."""

    def on_dict(self, node):
        # asteval maps `{**d}` to {None: d}, silently wrong.
        out: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                out.update(self.run(value))
            else:
                out[self.run(key)] = self.run(value)
        return out

    def on_list(self, node):
        # asteval has no handler for `*xs` inside a display.
        out: list[Any] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                out.extend(self.run(elt.value))
            else:
                out.append(self.run(elt))
        return out

    def on_set(self, node):
        return set(self.on_list(node))

    def node_assign(self, node, val):
        # asteval needs len(val), so `h, m = map(int, t.split(':'))` fails, and
        # it ignores the starred target in `first, *rest = values`.
        if not isinstance(node, (ast.Tuple, ast.List)):
            super().node_assign(node, val)
            return
        values = list(val)
        starred = [i for i, elt in enumerate(node.elts) if isinstance(elt, ast.Starred)]
        if starred:
            self._assign_starred(node.elts, starred[0], values)
            return
        if len(values) != len(node.elts):
            raise ValueError(f"cannot unpack {len(values)} values into {len(node.elts)} names")
        for target, value in zip(node.elts, values):
            self.node_assign(target, value)

    def _assign_starred(self, targets: list[ast.expr], star: int, values: list[Any]) -> None:
        after = len(targets) - star - 1
        if len(values) < len(targets) - 1:
            raise ValueError(f"not enough values to unpack (expected at least {len(targets) - 1}, got {len(values)})")
        for target, value in zip(targets[:star], values[:star]):
            self.node_assign(target, value)
        self.node_assign(targets[star].value, values[star:len(values) - after])
        for target, value in zip(targets[star + 1:], values[len(values) - after:]):
            self.node_assign(target, value)

    def on_with(self, node):
        # asteval calls __exit__() without arguments and skips it on errors.
        entered = []
        try:
            for item in node.items:
                manager = self.run(item.context_expr)
                value = manager.__enter__()
                entered.append(manager)
                if item.optional_vars is not None:
                    self.node_assign(item.optional_vars, value)
            for stmt in node.body:
                self.run(stmt)
                if self._interrupt is not None:
                    break
        finally:
            for manager in reversed(entered):
                manager.__exit__(None, None, None)

    def on_generatorexp(self, node):
        """A generator expression (asteval has none), evaluated eagerly as a list."""
        return self.on_listcomp(node)

    def on_namedexpr(self, node):
        """`name := value` (asteval has none)."""
        value = self.run(node.value)
        self.node_assign(node.target, value)
        return value

    def _comp_save_syms(self, node):
        # asteval deep-copies names a comprehension shadows; rebinding is
        # Python's semantics, and a deep copy of a big object costs time.
        saved, deleted = {}, set()
        for gen in node.generators:
            for name in self._extract_names_from_target(gen.target):
                if name in self.symtable:
                    saved[name] = self.symtable[name]
                else:
                    deleted.add(name)
        return saved, deleted
