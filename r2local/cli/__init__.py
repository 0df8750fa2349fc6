"""`r2local`: the TUI by default, and subcommands for scripts (one module per command family)."""

from __future__ import annotations


def main() -> None:
    """The console script (``r2local = "r2local.cli:main"``, the same since the first release)."""
    from r2local.cli.commands import cli

    cli(prog_name="r2local")
