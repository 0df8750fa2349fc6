"""Print the sandbox's evidence as Markdown: every case of cases.py with the
status it got, and the per-run overhead (cold start, warm median).

    python -m benchmarks.sandbox_table [--timeout 2.0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from tests.support.sandbox_cases import BAD, GOOD, Case
from r2local.sandbox.limits import Limits, ProgramResult
from r2local.sandbox.runner import Sandbox

WARM_RUNS = 20
TRIVIAL = "answer = 1"


def main(argv: list[str] | None = None) -> int:
    """Run the good programs and the bad-input matrix; print Markdown tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_table", description=main.__doc__)
    parser.add_argument("--timeout", type=float, default=Limits().timeout_s, help="seconds per run")
    args = parser.parse_args(argv)
    limits = Limits(timeout_s=args.timeout)

    cold_ms, warm_ms, os_limits = measure_overhead(limits)
    with Sandbox(limits) as box:
        rows = [(case, box.run(case.program)) for case in GOOD + BAD]
    print(render(rows, limits))
    print()
    print(f"Per-run overhead: cold start (new worker + first run) {cold_ms:.0f} ms; "
          f"warm run of `{TRIVIAL}`, median of {WARM_RUNS}: {warm_ms:.2f} ms.")
    print(f"OS limits applied in the worker: {', '.join(os_limits) or 'none (no resource module)'}.")
    wrong = [case.name for case, result in rows if not as_expected(case, result)]
    print(f"{len(rows) - len(wrong)}/{len(rows)} cases as expected" + (f"; NOT: {wrong}" if wrong else "."))
    return 1 if wrong else 0


def measure_overhead(limits: Limits) -> tuple[float, float, list[str]]:
    """(cold ms, warm median ms, OS limits) as the caller sees them."""
    with Sandbox(limits) as box:
        started = time.perf_counter()
        box.run(TRIVIAL)
        cold = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(WARM_RUNS):
            started = time.perf_counter()
            box.run(TRIVIAL)
            warm.append((time.perf_counter() - started) * 1000)
        return cold, statistics.median(warm), box.os_limits


def as_expected(case: Case, result: ProgramResult) -> bool:
    return result.status is case.expect and (case.value is None or result.value == case.value)


def render(rows: list[tuple[Case, ProgramResult]], limits: Limits) -> str:
    lines = [
        (f"Timeout {limits.timeout_s:g} s, memory {limits.max_memory_mb} MB, output "
         f"{limits.max_output_chars:,} chars, {limits.max_steps:,} steps, {limits.max_int_digits:,} digits."),
        "",
        "| case | status | value / error | ms |",
        "|---|---|---|---:|",
    ]
    for case, result in rows:
        status = str(result.status)
        if not as_expected(case, result):
            status += f" (expected {case.expect}{f' = {case.value}' if case.value else ''})"
        shown = result.value if result.value is not None else (result.error or "")
        lines.append(f"| {_cell(case.name)} | {status} | {_cell(shown)} | {result.ms:.1f} |")
    return "\n".join(lines)


def _cell(text: str, width: int = 80) -> str:
    text = " ".join(text.split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
