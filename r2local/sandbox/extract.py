"""Finding the program in a model's reply.

Small coder models wrap code in ```python fences most of the time, sometimes
in bare ``` fences, sometimes answer with bare code, and sometimes run out
of tokens before the closing fence. Prose, and fences holding output or
JSON, are not programs.
"""

from __future__ import annotations

import ast
import re
import textwrap

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
# A lone expression like `42` or `x` parses, but is an answer, not a program.
_TRIVIAL = (ast.Constant, ast.Name)


def extract_program(reply: str) -> str | None:
    """The program in `reply`, or None when it holds none.

    Order: the first ```python (or py/python3) fence, complete or cut off;
    else the first untagged fence that parses as Python; else the whole
    reply, if it parses as Python and does more than name a value.
    """
    if not reply or not reply.strip():
        return None
    text = reply.replace("\r\n", "\n")
    fences = [(tag.lower(), _clean(body)) for tag, body in _FENCE.findall(text)]
    for tag, body in fences:
        if tag in _PYTHON_TAGS and body:
            return body  # the model said it is Python; a syntax error is its error
    for tag, body in fences:
        if not tag and body and _is_program(body):
            return body
    if not fences:
        body = _clean(text)
        if _is_program(body):
            return body
    return None


def _clean(body: str) -> str:
    return textwrap.dedent(body).strip("\n").rstrip()


def _is_program(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, _TRIVIAL)) for s in tree.body)
