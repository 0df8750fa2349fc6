"""Every `r2local` command, registered on the group in `common`.

Each command family lives in its own module and registers itself when
imported; this module imports them all, so the group it exports is complete.
"""

from __future__ import annotations

from r2local.cli import admin, ask, conversations, learn, serve  # noqa: F401  (registers the commands)
from r2local.cli.common import cli

__all__ = ["cli"]
