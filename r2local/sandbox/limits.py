"""The sandbox's vocabulary: limits, statuses, results and errors.

Kept free of heavy imports: the engine imports this to read results, while
asteval is only ever imported inside the worker process.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

from r2local.errors import SandboxClosed, SandboxError, SandboxUnavailable  # noqa: F401  (re-exported: every error type lives in r2local.errors)


class ProgramStatus(str, enum.Enum):
    """What happened to one program. The one place status names are spelled."""

    OK = "ok"
    REFUSED = "refused"  # the policy said no: forbidden import, name or attribute
    ERROR = "error"  # it ran and raised (syntax errors and too-deep recursion too)
    TIMEOUT = "timeout"  # wall clock, CPU or step budget spent
    MEMORY = "memory"  # address-space limit hit, or a sequence too large to build
    TOO_BIG = "too-big"  # an integer beyond max_int_digits
    OUTPUT = "output"  # printed more than max_output_chars
    NO_ANSWER = "no-answer"  # ran cleanly but left nothing to read as the answer

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Limits:
    """Bounds on one program run. Defaults suit the short arithmetic programs
    small coder models write; a legitimate one finishes in milliseconds.

    Args:
        timeout_s: wall clock for one run, enforced by the parent (kill).
        max_memory_mb: address-space cap of the worker (RLIMIT_AS, Linux).
        max_output_chars: printed text kept; more stops the run (status output).
        max_steps: evaluated syntax nodes; bounds loops, comprehensions and
            recursion in the interpreter (status timeout).
        max_depth: nested calls of the program's own functions (status error).
        max_int_digits: decimal digits an integer may reach (status too-big).
        max_items: length of a string, list or tuple built by `*` or `+`
            (status memory), checked before the allocation is tried.
        max_program_chars: longer programs are refused without parsing.
    """

    timeout_s: float = 2.0
    max_memory_mb: int = 256
    max_output_chars: int = 10_000
    max_steps: int = 2_000_000
    max_depth: int = 500
    max_int_digits: int = 4_300
    max_items: int = 10_000_000
    max_program_chars: int = 20_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"Limits.{name} must be positive, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProgramResult:
    """The outcome of one run.

    Args:
        status: what happened (see ProgramStatus).
        value: the answer as a normalised string, or None when there is none.
        output: what the program printed, capped at Limits.max_output_chars.
        error: a short message for any status but ok.
        ms: wall-clock milliseconds the run took, seen from the caller.
    """

    status: ProgramStatus
    value: str | None = None
    output: str = ""
    error: str | None = None
    ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is ProgramStatus.OK


