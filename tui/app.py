"""Placeholder until the TUI issue lands: point people at the CLI."""

from __future__ import annotations

import sys


def run_app(pool: str | None = None) -> None:
    sys.stderr.write("The r2local TUI is not built yet; use `r2local ask QUESTION` (see `r2local --help`).\n")
    sys.exit(2)
