"""The sandbox's pure parts, in process: extraction, answer normalisation,
the static policy and the size guard."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from r2local.sandbox import (
    ALLOWED_MODULES,
    Limits,
    ProgramStatus,
    check_program,
    extract_program,
)
from r2local.sandbox.answer import format_float, normalise, pick_answer
from r2local.sandbox.guard import Guard, LimitExceeded
from r2local.sandbox.units import asks_conversion, convert

# -- extract_program --------------------------------------------------------

PROGRAM = "def solve():\n    return 6 * 250 / 1000\nprint(solve())"


@pytest.mark.parametrize("reply", [
    f"Let me compute.\n```python\n{PROGRAM}\n```\nThe answer is 1.5.",
    f"```py\n{PROGRAM}\n```",
    f"```Python3 title=solve.py\n{PROGRAM}\n```",
    f"```\n{PROGRAM}\n```",
    f"Sure:\n```python\n{PROGRAM}",  # cut off before the closing fence
    PROGRAM,  # bare code
    f"  ```python\n  {PROGRAM.replace(chr(10), chr(10) + '  ')}\n  ```",  # indented (in a list item)
    f"```python\r\n{PROGRAM.replace(chr(10), chr(13) + chr(10))}\r\n```",
])
def test_extract_finds_the_program(reply):
    assert extract_program(reply) == PROGRAM


def test_extract_prefers_python_fences_and_skips_output_fences():
    reply = f"```text\nsome output\n```\n```\nnot python (\n```\n```python\n{PROGRAM}\n```"
    assert extract_program(reply) == PROGRAM
    assert extract_program("```output\n1.5\n```") is None


@pytest.mark.parametrize("reply", ["", "   ", "The answer is 42.", "42", "x", "```json\n{\"a\": 1}\n```",
                                   "Step 1: add 2 and 3.\nStep 2: done."])
def test_extract_returns_none_without_a_program(reply):
    assert extract_program(reply) is None


# -- normalisation and the answer order --------------------------------------

@pytest.mark.parametrize("value, text", [
    (0.1 + 0.2, "0.3"), (3.0, "3"), (1 / 3, "0.3333333333"), (200 / 3, "66.66666667"),
    (1234.5678, "1234.5678"), (123456789012.5, "123456789012"), (1e20, "1e+20"), (1e-7, "1e-07"),
    (-0.5, "-0.5"), (float("inf"), "inf"), (2.9999999999999996, "3"),
])
def test_floats_print_to_ten_significant_digits(value, text):
    assert format_float(value) == text


@pytest.mark.parametrize("value, text", [
    (12, "12"), (True, "True"), (Decimal("12.500"), "12.5"), (Decimal("1E+2"), "100"),
    (Fraction(4, 2), "2"), (Fraction(1, 3), "1/3"), ("  hi \n", "hi"), ([1, 0.1 + 0.2, "a"], "[1, 0.3, 'a']"),
    ((1,), "(1,)"), ({"a": 0.5}, "{'a': 0.5}"),
])
def test_values_normalise(value, text):
    assert normalise(value) == text


def test_pick_answer_order():
    last_print = ("x 0.30000000000000004", "x 0.3")
    assert pick_answer({"answer": 1, "result": 2}, "3\n", None, 4) == "1"
    assert pick_answer({"answer": None, "result": 2}, "3\n", None, 4) == "2"
    assert pick_answer({"answer": print}, "3\n\n", None, 4) == "3"
    assert pick_answer({}, "x 0.30000000000000004\n", last_print, None) == "x 0.3"
    assert pick_answer({}, "None\n", None, None) is None
    assert pick_answer({}, "", None, 2.50) == "2.5"
    assert pick_answer({}, "", None, None) is None


# -- the static policy -------------------------------------------------------

@pytest.mark.parametrize("program", [
    PROGRAM, "import math, datetime as dt", "from datetime import datetime, timedelta",
    "from math import *", "dir = 1\nprint(dir)", "def type(x):\n    return x\ntype(1)",
    "x = '{:.2f}'.format(3.14159)", "'{0[1]}'.format([1, 2])",
])
def test_policy_allows_ordinary_programs(program):
    assert check_program(program) is None


@pytest.mark.parametrize("program, reason", [
    ("import os", "import of 'os'"), ("import math.os", "import of 'math.os'"),
    ("from datetime import sys", "'sys' from 'datetime'"), ("from .x import y", "import from '.x'"),
    ("x.__class__", "'.__class__'"), ("x._private", "'._private'"), ("g.gi_frame", "'.gi_frame'"),
    ("int.mro()", "'.mro'"), ("open('f')", "'open'"), ("__import__('os')", "'__import__'"),
    ("'{0.__class__}'.format(1)", "format field"), ("'{0[__x__]}'.format(1)", "format field"),
    ("del math.pi", "deleting attributes"), ("def __init__():\n    pass", "'__init__'"),
])
def test_policy_refuses_with_a_reason(program, reason):
    assert reason in (check_program(program) or "")


def test_policy_leaves_syntax_errors_to_the_caller():
    with pytest.raises(SyntaxError):
        check_program("print(")


def test_allowlist_is_the_documented_one():
    assert set(ALLOWED_MODULES) == {"math", "fractions", "decimal", "datetime", "statistics",
                                    "itertools", "collections", "calendar", "functools"}


# -- the size guard ------------------------------------------------------------

GUARD = Guard(Limits(max_int_digits=4300, max_items=1000))


@pytest.mark.parametrize("call", [
    lambda: GUARD.pow(9, 9**9), lambda: GUARD.pow(Fraction(1, 3), -(10**6)), lambda: GUARD.factorial(10**5),
    lambda: GUARD.comb(10**6, 5 * 10**5), lambda: GUARD.perm(10**5), lambda: GUARD.prod(range(1, 10**4)),
    lambda: GUARD.lcm(*range(1, 10**4)), lambda: GUARD.checked(10**5000), lambda: GUARD.factorial(10**400),
])
def test_guard_refuses_huge_numbers_before_computing_them(call):
    with pytest.raises(LimitExceeded) as err:
        call()
    assert err.value.status is ProgramStatus.TOO_BIG


def test_guard_allows_numbers_within_the_limit():
    assert GUARD.pow(2, 10000) == 2**10000  # 3,011 digits
    assert GUARD.pow(1, 10**12) == 1 and GUARD.pow(2, 10**9, 7) == pow(2, 10**9, 7)
    assert GUARD.factorial(1000) > 0 and GUARD.comb(100, 50) > 0 and GUARD.perm(10, 3) == 720
    assert GUARD.pow(2.0, 0.5) == 2**0.5


def test_guard_refuses_huge_sequences_as_memory():
    import ast

    for op, left, right in [(ast.Mult(), [0], 10**9), (ast.Mult(), 10**9, "x"), (ast.Add(), "x" * 600, "y" * 600)]:
        with pytest.raises(LimitExceeded) as err:
            GUARD.binop(op, left, right)
        assert err.value.status is ProgramStatus.MEMORY
    assert GUARD.binop(ast.Mult(), "ab", 3) == "ababab"


# -- convert() and spotting a conversion -------------------------------------

@pytest.mark.parametrize("value, src, dst, want", [
    (17, "miles", "kilometres", 27.358848), (30, "feet", "metres", 9.144), (2, "pounds", "ounces", 32.0),
    (4, "Cups", "ml", 946.352946), (100, "°C", "°F", 212.0), (300, "kelvin", "degrees_celsius", 26.85),
    (1, "acre", "square feet", 43560.0), (60, "mph", "km/h", 96.56064), (1.5, "tonnes", "kg", 1500.0),
])
def test_convert_knows_units_by_name_plural_and_abbreviation(value, src, dst, want):
    assert convert(value, src, dst) == pytest.approx(want)


@pytest.mark.parametrize("call, message", [
    (("3", "kg", "g"), "needs a number"),
    ((3, "kg", "metres"), "cannot turn 'kg' \\(mass\\) into 'metres' \\(length\\)"),
    ((3, "furlongs", "m"), "does not know the unit 'furlongs'"),
    ((3, "celsius", "m"), "cannot turn"),
])
def test_convert_says_what_is_wrong(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        convert(*call)


@pytest.mark.parametrize("question, asks", [
    ("How many kilometres are in 17 miles?", True),
    ("Convert 250 millilitres to cups.", True),
    ("What is 0 degrees Fahrenheit in Celsius?", True),
    ("Convert 25 °C to °F.", True),
    ("Is it warmer than 30 degrees Celsius in Cairo in July?", False),  # one scale: nothing to convert
    ("A ribbon is 9 m long. Noor cuts off 87 cm. How many centimetres are left?", True),
    ("How many minutes are in 22 hours?", False),  # time: the model does it unaided
    ("Tom works 8 hours a day for 5 days. How many hours is that?", False),
    ("I live in London. What is 5 + 3?", False),  # "in" is a unit only after a number
    ("A car travels 60 km in 1.5 hours. What is its speed in km/h?", False),
    ("What is the capital of France?", False),
])
def test_a_conversion_is_spotted_by_two_units_of_one_kind(question, asks):
    assert asks_conversion(question) is asks
