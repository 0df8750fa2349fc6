"""Turning what a program computed into one answer string.

Answers from several samples (and from prose) are compared as strings, so
the same number must always print the same way: ints plain, floats rounded
to 10 significant digits (0.1 + 0.2 -> "0.3"; binary noise is not an
answer), Decimals without trailing zeros, Fractions as n/d.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

SIG_DIGITS = 10
# Past this an integer-valued float is printed in exponent form anyway.
_PLAIN_FLOAT_MAX = 1e15

NUMBER_TYPES = (bool, int, float, complex, Decimal, Fraction)
_SCALAR_TYPES = NUMBER_TYPES + (str, _dt.date, _dt.time, _dt.timedelta)
_MISSING = object()


def is_number(value: Any) -> bool:
    return isinstance(value, NUMBER_TYPES)


def is_data(value: Any, _depth: int = 0) -> bool:
    """True for values that can be an answer (numbers, text, dates and
    containers of them), False for functions, modules, None and the like."""
    if isinstance(value, _SCALAR_TYPES):
        return True
    if _depth > 3:
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(is_data(v, _depth + 1) for v in value)
    if isinstance(value, dict):
        return all(is_data(k, _depth + 1) and is_data(v, _depth + 1) for k, v in value.items())
    return False


def normalise(value: Any, limit: int = 10_000) -> str:
    """The canonical string of an answer value, at most `limit` characters."""
    text = _norm(value, top=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _norm(value: Any, top: bool = False) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, str):
        return value.strip() if top else repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_norm(v) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_norm(k)}: {_norm(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_float(x: float) -> str:
    """10 significant digits, but never rounding away integer digits (up to
    15), positional notation between 1e-4 and 1e15, no trailing zeros."""
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x.is_integer() and abs(x) < _PLAIN_FLOAT_MAX:
        return str(int(x))
    int_digits = len(str(int(abs(x)))) if abs(x) >= 1 else 0
    digits = min(15, max(SIG_DIGITS, int_digits))
    text = format(x, f".{digits}g")
    if "e" in text and 1e-4 <= abs(x) < _PLAIN_FLOAT_MAX:
        text = format(Decimal(text), "f")
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_decimal(d: Decimal) -> str:
    """Positional form without trailing zeros: Decimal('12.500') -> '12.5'."""
    if not d.is_finite():
        return str(d)
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def normalise_line(args: tuple, sep: str) -> str:
    """A printed line rebuilt with its numbers normalised, as print() would
    join them: print(0.1 + 0.2) -> '0.3', print('total', 2.50) -> 'total 2.5'."""
    return sep.join(_norm(a) if is_number(a) else denoise(str(a)) for a in args)


_FLOAT_TEXT = re.compile(r"-?\d+\.\d+(e[-+]?\d+)?|-?\d+e[-+]?\d+")


def denoise(text: str) -> str:
    """Round text that is exactly a noisy float's repr, as f'{0.1 + 0.2}'
    prints it; any other text (a 28-digit Decimal, words) is left alone."""
    if not _FLOAT_TEXT.fullmatch(text):
        return text
    value = float(text)
    digits = len(text.split("e")[0].replace("-", "").replace(".", "").lstrip("0"))
    if repr(value) != text or digits < 16:
        return text
    return format_float(value)


def pick_answer(
    symbols: dict[str, Any],
    output: str,
    last_print: tuple[str, str] | None,
    last_value: Any,
    limit: int = 10_000,
) -> str | None:
    """The program's answer, by the documented order.

    1. the variable `answer`, else `result`, when it holds a data value;
    2. else the last non-empty printed line (numbers normalised when that
       line came whole from the last print call);
    3. else the value of the program's last expression.
    A printed "None" (a function that forgot to return) is no answer.

    Args:
        symbols: the program's global names after the run.
        output: everything it printed.
        last_print: (raw, normalised) text of its last print call.
        last_value: the value of its last statement.
        limit: the most characters an answer may have.
    """
    for name in ("answer", "result"):
        value = symbols.get(name, _MISSING)
        if value is not _MISSING and value is not None and is_data(value):
            return normalise(value, limit)
    line = _last_line(output)
    if line is not None and line != "None":
        if last_print is not None and _last_line(last_print[0]) == line:
            line = _last_line(last_print[1]) or line
        return denoise(line)[:limit]
    if last_value is not None and is_data(last_value):
        return normalise(last_value, limit)
    return None


def _last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return None
