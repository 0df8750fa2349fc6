"""Which modules a sandboxed program may import, and the read-only stand-ins
it gets instead of the real module objects.

Why these: the questions we send to the sandbox are arithmetic, money,
percentages, clock and calendar arithmetic, counting and small statistics.
Each module below is pure computation over values: no file, network, process
or interpreter access, no global state a program could leave behind for the
next one (decimal's context is reset before every run), and no way back to
the import machinery. A program never gets the real module object, only a
namespace holding the names listed here, so `math.__dict__`, `datetime.sys`
and the like do not exist.

Left out on purpose: random (answers must repeat for the k-sample vote), time
(sleep; the clock is in datetime already), re (catastrophic backtracking;
not needed for arithmetic), operator (attrgetter('__class__') is getattr in
disguise), collections.namedtuple (builds classes with exec), numpy
(fromfile/loadtxt/ctypes), and everything that touches the OS.
"""

from __future__ import annotations

from typing import Any

ALLOWED_MODULES: dict[str, tuple[str, ...]] = {
    "math": (
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt",
        "ceil", "comb", "copysign", "cos", "cosh", "degrees", "dist", "e",
        "erf", "erfc", "exp", "exp2", "expm1", "fabs", "factorial", "floor",
        "fmod", "frexp", "fsum", "gamma", "gcd", "hypot", "inf", "isclose",
        "isfinite", "isinf", "isnan", "isqrt", "lcm", "ldexp", "lgamma", "log",
        "log10", "log1p", "log2", "modf", "nan", "nextafter", "perm", "pi",
        "pow", "prod", "radians", "remainder", "sin", "sinh", "sqrt", "tan",
        "tanh", "tau", "trunc", "ulp",
    ),
    "fractions": ("Fraction",),
    "decimal": (
        "Decimal", "getcontext", "localcontext", "Context", "InvalidOperation",
        "DivisionByZero", "ROUND_CEILING", "ROUND_DOWN", "ROUND_FLOOR",
        "ROUND_HALF_DOWN", "ROUND_HALF_EVEN", "ROUND_HALF_UP", "ROUND_UP",
    ),
    "datetime": ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"),
    "statistics": (
        "mean", "fmean", "geometric_mean", "harmonic_mean", "median",
        "median_low", "median_high", "mode", "multimode", "pstdev", "pvariance",
        "stdev", "variance", "quantiles", "StatisticsError",
    ),
    "itertools": (
        "accumulate", "chain", "combinations", "combinations_with_replacement",
        "compress", "count", "cycle", "dropwhile", "filterfalse", "groupby",
        "islice", "pairwise", "permutations", "product", "repeat", "starmap",
        "takewhile", "zip_longest",
    ),
    "collections": ("Counter", "defaultdict", "deque", "OrderedDict"),
    "calendar": (
        "isleap", "leapdays", "monthrange", "weekday", "monthcalendar",
        "month_name", "month_abbr", "day_name", "day_abbr",
        "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY",
    ),
    "functools": ("reduce",),
}


class SafeModule:
    """A read-only namespace standing in for a module inside the sandbox.

    The evaluator refuses every attribute that starts with an underscore, so
    the program reaches only the listed members, and cannot rebind or delete
    them for the next program that runs in the same worker.
    """

    __slots__ = ("_members", "_name")

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", dict(members))

    def __getattr__(self, attr: str) -> Any:
        try:
            return self._members[attr]
        except KeyError:
            raise AttributeError(f"module '{self._name}' has no attribute '{attr}' in the sandbox") from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"module '{self._name}' is read-only in the sandbox")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"module '{self._name}' is read-only in the sandbox")

    def __repr__(self) -> str:
        return f"<module '{self._name}' (sandboxed)>"

    def members(self) -> dict[str, Any]:
        """A copy of the exposed names, for `from X import *`."""
        return dict(self._members)


def build_modules(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, SafeModule]:
    """Import the allowed modules (in the worker only) and wrap them.

    Args:
        overrides: per module, members to use instead of the real ones (the
            evaluator passes size-checked math.factorial, math.pow and kin).
    """
    import importlib

    overrides = overrides or {}
    out: dict[str, SafeModule] = {}
    for name, members in ALLOWED_MODULES.items():
        module = importlib.import_module(name)
        # hasattr: a few names (math.cbrt, math.exp2) are newer than 3.10.
        table = {m: getattr(module, m) for m in members if hasattr(module, m)}
        table.update(overrides.get(name, {}))
        out[name] = SafeModule(name, table)
    return out
