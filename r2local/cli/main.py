"""`r2local`: the TUI by default, and subcommands for scripts.

Each command family lives in its own module and registers itself on the group
in `common` when imported; this module imports them all, so nothing imports it.
"""

from __future__ import annotations

from r2local.cli import admin, ask, conversations, learn, serve  # noqa: F401  (registers the commands)
from r2local.cli.common import cli


def main() -> None:
    cli(prog_name="r2local")
