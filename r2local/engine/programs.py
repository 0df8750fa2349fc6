"""Model-written programs, run in the sandbox and recorded like any call.

A run is a ``calls`` row with role ``program`` (backend ``sandbox``): its
output is the program's value, or its error class says how the sandbox
stopped it (``program:timeout``, ``program:refused``, ...).
"""

from __future__ import annotations

import threading

from r2local.backends import Completion, Usage
from r2local.errors import BackendError
from r2local.engine.recorder import CallSpec, Recorder
from r2local.store.records import CallEnd, CallRecord
from r2local.sandbox import Limits, ProgramResult, Sandbox
from r2local.sandbox import ProgramStatus


class ProgramFailed(BackendError):
    """A model-written program did not give an answer (refused, error, timeout, limits)."""

    def __init__(self, result: ProgramResult) -> None:
        super().__init__(f"{result.status}: {result.error or 'no answer'}")
        self.result = result


class ProgramRunner:
    """Runs model-written programs in the sandbox (one worker, started on first use);
    every run is a ``calls`` row (role ``program``) like any model call."""

    def __init__(self, recorder: Recorder, timeout_s: float) -> None:
        self.recorder = recorder
        self.timeout_s = timeout_s
        self._box: Sandbox | None = None
        self._lock = threading.Lock()

    def _sandbox(self) -> Sandbox:
        with self._lock:
            if self._box is None:
                self._box = Sandbox(Limits(timeout_s=self.timeout_s))
            return self._box

    def run(self, program: str, record: CallRecord) -> ProgramResult:
        spec = CallSpec(record, [{"role": "user", "content": program}], {"timeout_s": self.timeout_s})
        ran: list[ProgramResult] = []

        def invoke() -> Completion:
            result = self._sandbox().run(program)
            ran.append(result)
            if not result.ok:
                raise ProgramFailed(result)
            return Completion(result.value or "", "stop", Usage(0, 0), "asteval", result.ms, None)

        def failed(exc: BackendError, ms: float) -> CallEnd:
            status = exc.result.status if isinstance(exc, ProgramFailed) else "error"
            return CallEnd.failed(exc, ms, error_class=f"program:{status}", output=None)

        try:
            done = self.recorder.call(spec, invoke, failed)
        except ProgramFailed as exc:
            return exc.result
        return ran[0] if ran else ProgramResult(ProgramStatus.OK, done.text, "", None, done.latency_ms)

    def close(self) -> None:
        with self._lock:
            if self._box is not None:
                self._box.close()
                self._box = None
