"""The parent side: Sandbox keeps warm worker processes and never hangs.

Each worker is a plain `python -I` subprocess (not multiprocessing: spawn
would re-import the caller's __main__, e.g. the whole TUI, in every worker).
A reader thread per worker turns its stdout into a queue, so waiting with a
timeout works the same on Linux, macOS and Windows. Any run that outlives
its timeout, or a worker that dies, costs that worker (killed, restarted
lazily on the next run), never the caller.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from r2local.sandbox.limits import (
    Limits,
    ProgramResult,
    SandboxClosed,
    SandboxUnavailable,
    ProgramStatus,
)

# How long past the timeout the parent waits for the worker to stop itself
# (it checks the clock every ~1000 evaluated nodes) before killing it.
KILL_GRACE_S = 0.5
# Starting a worker is ~0.1 s on an idle machine; a loaded one can take far longer.
START_TIMEOUT_S = 30.0

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from r2local.sandbox.worker import main; raise SystemExit(main(sys.argv[1:]))"
)
# The worker inherits nothing else: no API keys, no PYTHON* settings.
_ENV_KEEP = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TZ")


class _TimedOut(Exception):
    pass


class _Died(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(returncode)
        self.returncode = returncode


class _Worker:
    """One worker process and the daemon thread reading its replies."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.proc: subprocess.Popen[bytes] | None = None
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        self.os_limits: list[str] = []

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float) -> None:
        self.kill()
        self.replies = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOTSTRAP, _PACKAGE_ROOT, json.dumps(self.limits.to_dict())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(), env={k: os.environ[k] for k in _ENV_KEEP if k in os.environ},
            start_new_session=True,  # a Ctrl-C meant for the app does not reach the worker
        )
        threading.Thread(target=_pump, args=(self.proc.stdout, self.replies),
                         name="r2local-sandbox-reader", daemon=True).start()
        try:
            ready = json.loads(self._reply(timeout_s))
        except (_TimedOut, _Died, ValueError) as exc:
            self.kill()
            raise SandboxUnavailable(
                f"the sandbox worker did not start ({type(exc).__name__.strip('_')})",
                fix="check that asteval is installed (pip install 'asteval>=1.0.6') "
                f"and that `{sys.executable} -I -c 'import asteval'` works",
            ) from None
        self.os_limits = ready.get("os_limits", [])

    def ask(self, program: str, timeout_s: float) -> dict[str, Any]:
        """Send one program; its reply, or _TimedOut / _Died."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"program": program}).encode("ascii") + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise _Died(self.proc.poll()) from None
        return json.loads(self._reply(timeout_s))

    def _reply(self, timeout_s: float) -> bytes:
        try:
            line = self.replies.get(timeout=timeout_s)
        except queue.Empty:
            raise _TimedOut from None
        if line is None:
            raise _Died(self.proc.wait(timeout=5) if self.proc else None)
        return line

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # unkillable (D state): leave it to the OS rather than hang
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close() if pipe else None
            except OSError:
                pass


def _pump(stream: Any, replies: queue.Queue) -> None:
    for line in iter(stream.readline, b""):
        replies.put(line)
    replies.put(None)  # EOF: the worker exited or was killed


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.kill()


class Sandbox:
    """Runs model-written programs in worker processes, with limits.

    Thread-safe: each run borrows one worker; with `workers=1` (the default)
    concurrent runs queue behind each other, each still bounded by its
    timeout. Workers start on first use and stay warm between runs.

    Args:
        limits: bounds for every run (default Limits()).
        workers: how many programs may run at once.
        start_timeout_s: how long to wait for a worker to start.
    """

    def __init__(self, limits: Limits | None = None, *, workers: int = 1,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.limits = limits or Limits()
        self.start_timeout_s = start_timeout_s
        self._workers = [_Worker(self.limits) for _ in range(max(1, workers))]
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        for worker in self._workers:
            self._idle.put(worker)
        self._closed = False
        # Kill the workers if the Sandbox is dropped or the interpreter exits.
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    def run(self, program: str) -> ProgramResult:
        """Run one program; bad programs give a status, never an exception.

        Raises:
            SandboxClosed: after close().
            SandboxUnavailable: a worker could not be started at all.
        """
        if self._closed:
            raise SandboxClosed("the sandbox is closed", fix="create a new Sandbox")
        worker = self._idle.get()
        try:
            return self._run_on(worker, program)
        finally:
            if self._closed:
                worker.kill()
            self._idle.put(worker)

    def run_reply(self, reply: str) -> ProgramResult | None:
        """Extract the program from a model reply and run it; None if it has none."""
        from r2local.sandbox.extract import extract_program

        program = extract_program(reply)
        return None if program is None else self.run(program)

    def warm(self) -> None:
        """Start the workers now, so the first question does not pay for it."""
        for _ in self._workers:
            worker = self._idle.get()
            try:
                if not worker.alive:
                    worker.start(self.start_timeout_s)
            finally:
                self._idle.put(worker)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers now running (for monitoring and tests)."""
        return [w.proc.pid for w in self._workers if w.proc is not None and w.alive]

    @property
    def os_limits(self) -> list[str]:
        """The OS limits the workers applied (empty where `resource` is missing)."""
        return sorted({name for w in self._workers for name in w.os_limits})

    def close(self) -> None:
        """Kill the workers. A run in progress ends with status error."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_on(self, worker: _Worker, program: str) -> ProgramResult:
        if not worker.alive:
            worker.start(self.start_timeout_s)
        wait_s = self.limits.timeout_s + KILL_GRACE_S
        started = time.perf_counter()
        try:
            reply = worker.ask(program, wait_s)
        except _TimedOut:
            worker.kill()
            return ProgramResult(ProgramStatus.TIMEOUT, error=f"killed after {wait_s:g} s", ms=_ms(started))
        except _Died as died:
            worker.kill()
            status, error = _death(died.returncode, self._closed)
            return ProgramResult(status, error=error, ms=_ms(started))
        result = ProgramResult(
            ProgramStatus(reply["status"]), reply.get("value"), reply.get("output") or "",
            reply.get("error"), _ms(started),
        )
        if result.status is ProgramStatus.MEMORY:
            worker.kill()  # start the next program on a fresh heap
        return result


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _death(returncode: int | None, closed: bool) -> tuple[ProgramStatus, str]:
    """Status for a worker that died mid-run, from how it died."""
    if closed:
        return ProgramStatus.ERROR, "the sandbox was closed during the run"
    by_signal = {
        getattr(signal, "SIGXCPU", None): (ProgramStatus.TIMEOUT, "CPU time limit"),
        getattr(signal, "SIGXFSZ", None): (ProgramStatus.REFUSED, "tried to write a file"),
        getattr(signal, "SIGKILL", None): (ProgramStatus.MEMORY, "killed by the system (out of memory?)"),
    }
    if returncode is not None and returncode < 0:
        found = by_signal.get(-returncode)
        if found:
            return found
    return ProgramStatus.ERROR, f"the worker died (exit status {returncode})"
