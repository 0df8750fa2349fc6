"""Size checks on arithmetic, done before the work where the work itself is
the danger (`9**9**9` would run for hours before any memory limit trips).

Pure Python, no asteval: the evaluator routes every binary operator and the
big-number builtins (pow, math.factorial, comb, perm, prod, lcm) through here.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from r2local.sandbox.limits import Limits, ProgramStatus

LOG2_10 = math.log2(10)

OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow, ast.LShift: operator.lshift,
    ast.RShift: operator.rshift, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
    ast.MatMult: operator.matmul,
}

# Sequences whose repetition or concatenation allocates len * n items at once.
_SEQUENCES = (str, bytes, bytearray, list, tuple)


class LimitExceeded(BaseException):
    """A limit stopped the program.

    A BaseException on purpose: asteval and the program's own `try/except
    Exception` both catch Exception, and neither may swallow a limit.
    """

    def __init__(self, status: ProgramStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Forbidden(BaseException):
    """The program reached for something the policy forbids, at run time."""


class Guard:
    """Checks one run's arithmetic against its Limits."""

    def __init__(self, limits: Limits) -> None:
        self.max_digits = limits.max_int_digits
        self.max_bits = int(limits.max_int_digits * LOG2_10) + 1
        self.max_items = limits.max_items

    # -- operators -------------------------------------------------------
    def binop(self, op: ast.operator, left: Any, right: Any) -> Any:
        kind = type(op)
        if kind is ast.Pow:
            self.check_pow(left, right)
        elif kind is ast.Mult:
            self._check_repeat(left, right)
        elif kind is ast.Add:
            self._check_concat(left, right)
        elif kind is ast.LShift:
            self._check_shift(left, right)
        return self.checked(OPERATORS[kind](left, right))

    def checked(self, value: Any) -> Any:
        """Return `value` unless it is a number past the digit limit."""
        if isinstance(value, int):
            self._check_bits(value.bit_length())
        elif isinstance(value, Fraction):
            self._check_bits(max(value.numerator.bit_length(), value.denominator.bit_length()))
        return value

    def check_pow(self, base: Any, exp: Any) -> None:
        """Refuse an exact power whose result would pass the digit limit."""
        if not isinstance(exp, int) or not isinstance(base, (int, Fraction)):
            return  # floats overflow quickly; Decimal is bounded by its context
        size = abs(exp) if isinstance(base, Fraction) else exp
        if size > 0:
            self._check_bits(self._log2(base) * size)

    def _check_repeat(self, left: Any, right: Any) -> None:
        seq, times = (left, right) if isinstance(left, _SEQUENCES) else (right, left)
        if isinstance(seq, _SEQUENCES) and isinstance(times, int):
            self._check_items(len(seq) * times)

    def _check_concat(self, left: Any, right: Any) -> None:
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            self._check_items(len(left) + len(right))

    def _check_shift(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            self._check_bits(left.bit_length() + right)

    # -- builtins ---------------------------------------------------------
    def pow(self, base: Any, exp: Any, mod: Any = None) -> Any:
        if mod is None:
            self.check_pow(base, exp)
            return self.checked(pow(base, exp))
        return pow(base, exp, mod)  # modular: the result is below mod

    def factorial(self, n: Any) -> Any:
        if isinstance(n, int) and n > 1:
            self._check_bits(_lgamma(n + 1) / math.log(2))
        return math.factorial(n)

    def comb(self, n: Any, k: Any) -> Any:
        if isinstance(n, int) and isinstance(k, int) and 0 <= k <= n:
            self._check_bits(_log2_ratio(n, k, n - k))
        return math.comb(n, k)

    def perm(self, n: Any, k: Any = None) -> Any:
        if isinstance(n, int) and n > 1 and (k is None or isinstance(k, int) and 0 <= k <= n):
            self._check_bits(_log2_ratio(n, 0, n - (n if k is None else k)))
        return math.perm(n, k)

    def prod(self, iterable: Iterable[Any], *, start: Any = 1) -> Any:
        total = start
        for item in iterable:
            total = self.checked(total * item)
        return total

    def lcm(self, *ints: int) -> int:
        total = 1
        for n in ints:
            total = self.checked(math.lcm(total, n))
        return total

    # -- helpers ----------------------------------------------------------
    def _check_bits(self, bits: float) -> None:
        if bits <= self.max_bits:
            return  # (nan, from an overflowing estimate, falls through: too big)
        size = f"about {int(bits / LOG2_10) + 1:,}" if math.isfinite(bits) else "astronomically many"
        raise LimitExceeded(
            ProgramStatus.TOO_BIG, f"a number of {size} digits, over the limit of {self.max_digits:,}"
        )

    def _check_items(self, items: int) -> None:
        if items > self.max_items:
            raise LimitExceeded(
                ProgramStatus.MEMORY,
                f"a sequence of {items:,} items, over the limit of {self.max_items:,}",
            )

    @staticmethod
    def _log2(x: int | Fraction) -> float:
        if isinstance(x, Fraction):
            return max(Guard._log2(x.numerator), Guard._log2(x.denominator))
        x = abs(int(x))
        return math.log2(x) if x > 1 else 0.0


def _log2_ratio(n: int, a: int, b: int) -> float:
    """log2(n! / (a! * b!)), from lgamma so that n may be astronomically large."""
    return (_lgamma(n + 1) - _lgamma(a + 1) - _lgamma(b + 1)) / math.log(2)


def _lgamma(x: int) -> float:
    """math.lgamma, but infinite (so: too big) for ints past float range."""
    try:
        return math.lgamma(x)
    except OverflowError:
        return math.inf
