"""Run short model-written programs safely: asteval in a worker process, with limits.

    with Sandbox() as box:
        result = box.run_reply(model_reply)   # or box.run(program)
        if result and result.ok: print(result.value)

See docs/sandbox.md for the policy, the module allowlist and the limits.
"""

from r2local.sandbox.extract import extract_program
from r2local.sandbox.limits import (
    Limits,
    ProgramResult,
    SandboxClosed,
    SandboxError,
    SandboxUnavailable,
    ProgramStatus,
)
from r2local.sandbox.modules import ALLOWED_MODULES
from r2local.sandbox.policy import check_program
from r2local.sandbox.runner import Sandbox

__all__ = [
    "ALLOWED_MODULES",
    "Limits",
    "ProgramResult",
    "Sandbox",
    "SandboxClosed",
    "SandboxError",
    "SandboxUnavailable",
    "ProgramStatus",
    "check_program",
    "extract_program",
]
