"""The static half of the sandbox: what a program may not even mention.

Run on the parsed program before the evaluator sees it. The evaluator
repeats the attribute and import checks at run time (names and format strings
can be built at run time), and its symbol table simply lacks the dangerous
builtins; this pass exists so that an attempt is reported as `refused` with
a reason, instead of as an ordinary NameError.
"""

from __future__ import annotations

import ast
import string

from r2local.sandbox.modules import ALLOWED_MODULES

# Builtins that reach the interpreter, the file system or the object graph.
# A program may still use these words for its own variables and functions.
FORBIDDEN_NAMES = frozenset({
    "__import__", "__builtins__", "__loader__", "__spec__", "builtins",
    "exec", "eval", "compile", "open", "input", "breakpoint", "help",
    "getattr", "setattr", "delattr", "hasattr", "globals", "locals", "vars",
    "dir", "type", "object", "super", "memoryview", "classmethod",
    "staticmethod", "property", "exit", "quit", "copyright", "credits", "license",
    "os", "sys", "subprocess", "socket", "importlib", "ctypes", "pickle",
    "marshal", "shutil", "pathlib", "io", "gc", "inspect", "types", "asteval",
})

# Non-underscore attributes that expose frames, code or the class graph.
FORBIDDEN_ATTR_PREFIXES = ("_", "gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
FORBIDDEN_ATTRS = frozenset({"mro"})

FORMAT_METHODS = ("format", "format_map")


def forbidden_attr(attr: str) -> bool:
    """True for attribute names a program may never read or write."""
    return attr.startswith(FORBIDDEN_ATTR_PREFIXES) or attr in FORBIDDEN_ATTRS


def forbidden_field(field: str) -> bool:
    """True for a str.format field that walks into a forbidden attribute.

    `'{0.__class__}'.format(1)` is getattr spelled as a format string.
    """
    parts = field.replace("[", ".").split(".")[1:]
    return any(forbidden_attr(p) for p in parts) or "__" in field


def check_program(source: str) -> str | None:
    """Why the policy refuses `source`, or None if it may run.

    Raises:
        SyntaxError: the program does not parse (that is an error, not a refusal).
    """
    return check_tree(ast.parse(source))


def check_tree(tree: ast.AST) -> str | None:
    """Why the policy refuses a parsed program, or None if it may run."""
    bound = _bound_names(tree)
    for node in ast.walk(tree):
        reason = _check_node(node, bound)
        if reason:
            line = getattr(node, "lineno", None)
            return f"{reason} (line {line})" if line else reason
    return None


def _check_node(node: ast.AST, bound: set[str]) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                return f"import of '{alias.name}' is not allowed"
    elif isinstance(node, ast.ImportFrom):
        return _check_import_from(node)
    elif isinstance(node, ast.Name):
        if node.id.startswith("__"):
            return f"name '{node.id}' is not allowed"
        if node.id in FORBIDDEN_NAMES and node.id not in bound:
            return f"'{node.id}' is not available in the sandbox"
    elif isinstance(node, ast.Attribute):
        if forbidden_attr(node.attr):
            return f"attribute '.{node.attr}' is not allowed"
        if isinstance(node.ctx, ast.Del):
            return "deleting attributes is not allowed"
    elif isinstance(node, ast.Call):
        return _check_format_call(node)
    elif isinstance(node, (ast.FunctionDef, ast.Lambda, ast.arg)):
        name = getattr(node, "name", None) or getattr(node, "arg", None)
        if name and name.startswith("__"):
            return f"name '{name}' is not allowed"
    return None


def _check_import_from(node: ast.ImportFrom) -> str | None:
    if node.level or node.module not in ALLOWED_MODULES:
        return f"import from '{'.' * node.level}{node.module or ''}' is not allowed"
    allowed = ALLOWED_MODULES[node.module]
    for alias in node.names:
        if alias.name != "*" and alias.name not in allowed:
            return f"'{alias.name}' from '{node.module}' is not allowed"
    return None


def _check_format_call(node: ast.Call) -> str | None:
    """Refuse `'<fmt>'.format(...)` whose literal format walks attributes."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr in FORMAT_METHODS):
        return None
    if not (isinstance(func.value, ast.Constant) and isinstance(func.value.value, str)):
        return None  # the evaluator checks formats built at run time
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(func.value.value) if f]
    except ValueError:
        return None  # a malformed format fails at run time as an ordinary error
    for field in fields:
        if forbidden_field(field):
            return f"format field '{{{field}}}' is not allowed"
    return None


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the program binds itself (variables, functions, arguments, aliases)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound

