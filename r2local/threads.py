"""An explicit CPU thread budget shared by every resident local model.

On a small machine two models each spinning N OpenMP threads on the same cores
collapse throughput; holding permits for the threads a call will use keeps the
total at or under the budget. Calls wait for permits rather than oversubscribe.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from r2local.errors import Cancelled


class ThreadBudget:
    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self._free = self.total
        self._cond = threading.Condition()

    @property
    def free(self) -> int:
        with self._cond:
            return self._free

    @contextmanager
    def hold(self, threads: int, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold ``threads`` permits (capped at the total) for the block."""
        need = min(max(1, threads), self.total)
        with self._cond:
            while self._free < need:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled while waiting for CPU threads")
                self._cond.wait(0.05)
            self._free -= need
        try:
            yield
        finally:
            with self._cond:
                self._free += need
                self._cond.notify_all()
