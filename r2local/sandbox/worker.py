"""The worker process: one JSON line in (a program), one JSON line out (its result).

Started by runner.py as `python -I -c <bootstrap>`, so no PYTHON* variable,
user site or working directory shapes what it imports. Before reading the
first program it takes the real stdout for the protocol (the program's
print goes to a capped buffer, and a stray C-level write to fd 1 lands in
/dev/null), imports everything a program may use, then lowers its own OS
limits: address space, no file growth, no new file descriptors, no child
processes, and a CPU budget renewed per run. Those limits are a second wall
behind the evaluator's symbol table: if a program ever reached `open` or a
socket, the kernel would still say no.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO

from r2local.sandbox.limits import Limits

# Python frames one level of a sandboxed program's recursion costs, with room.
_FRAMES_PER_CALL = 24
# Extra CPU seconds beyond the wall-clock timeout before the kernel steps in:
# the parent kills a late worker first, this only matters if the parent is gone.
_CPU_GRACE_S = 2


def main(argv: list[str]) -> int:
    channel = _take_stdout()
    limits = Limits(**json.loads(argv[1]))
    # asteval imports numpy when it can; the sandbox never uses it, and it
    # costs ~80 ms, a pile of address space and OpenBLAS threads.
    for name in ("numpy", "numpy_financial"):
        sys.modules[name] = None  # type: ignore[assignment]
    from r2local.sandbox import evaluator

    modules = evaluator.load_modules(limits)
    _warm_up(evaluator, limits, modules)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), limits.max_depth * _FRAMES_PER_CALL))
    applied = apply_os_limits(limits)
    _send(channel, {"ready": os.getpid(), "os_limits": applied})
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return 0  # the parent closed the pipe or died
        request = json.loads(line)
        renew_cpu_budget(limits)
        _send(channel, _run(evaluator, request["program"], limits, modules))


def _run(evaluator: Any, program: str, limits: Limits, modules: dict) -> dict[str, Any]:
    try:
        return evaluator.run_program(program, limits, modules)
    except MemoryError:
        return evaluator._reply(evaluator.ProgramStatus.MEMORY, error=f"out of memory (limit {limits.max_memory_mb} MB)")
    except BaseException as exc:  # noqa: BLE001 - the reply must always come
        return evaluator._reply(evaluator.ProgramStatus.ERROR, error=f"sandbox: {type(exc).__name__}: {exc}"[:300])


def _take_stdout() -> BinaryIO:
    """Keep fd 1 for replies on a private fd; point fd 1 at /dev/null."""
    channel = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    return channel


def _send(channel: BinaryIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n")
    channel.flush()


def _warm_up(evaluator: Any, limits: Limits, modules: dict) -> None:
    """Do once, before the limits, what would otherwise open files later:
    strptime loads its locale tables lazily, localtime reads the zone file."""
    import time

    time.localtime()
    warm = "from datetime import datetime\nanswer = datetime.strptime('2024-01-02 09:30', '%Y-%m-%d %H:%M').hour"
    evaluator.run_program(warm, limits, modules)


def apply_os_limits(limits: Limits) -> list[str]:
    """Lower this process's OS limits; returns the names applied.

    Without the `resource` module (Windows) nothing is applied and only the
    parent's wall-clock kill remains; a limit the OS refuses (macOS may
    refuse RLIMIT_AS) is skipped and left out of the list.
    """
    try:
        import resource
    except ImportError:
        return []
    memory = limits.max_memory_mb * 1024 * 1024
    wanted = {
        "RLIMIT_AS": memory,
        "RLIMIT_FSIZE": 0,  # no file can be written to
        "RLIMIT_CORE": 0,
        "RLIMIT_NPROC": 0,  # no fork (root is exempt from this one)
        "RLIMIT_NOFILE": _highest_fd() + 1,  # no new files, sockets or pipes
    }
    applied = []
    for name, value in wanted.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            resource.setrlimit(which, (value, value))
            applied.append(name)
        except (ValueError, OSError):
            pass  # e.g. already lower than `value`: the stricter limit stays
    return applied


def renew_cpu_budget(limits: Limits) -> None:
    """RLIMIT_CPU counts the process's whole life, so move it per run."""
    try:
        import resource
    except ImportError:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + limits.timeout_s) + _CPU_GRACE_S
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _highest_fd() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            listed = [int(fd) for fd in os.listdir(folder)]
        except (OSError, ValueError):
            continue
        # listdir's own descriptor is in the listing and already closed again.
        return max(fd for fd in listed if _is_open(fd))
    return 3


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
