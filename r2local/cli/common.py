"""The `r2local` click group and what its command modules share (progress, errors, confirm)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from r2local import keys
from r2local.errors import R2Error


def _progress(what: str, done: int, total: int | None) -> None:
    if not sys.stderr.isatty():
        return
    pct = f"{100 * done / total:5.1f}%" if total else f"{done >> 20} MiB"
    sys.stderr.write(f"\rfetching {what}: {pct}   ")
    if total and done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _fail(exc: R2Error) -> None:
    click.echo(f"error: {keys.scrub(exc.message)}", err=True)
    if exc.fix:
        click.echo(f"  fix: {exc.fix}", err=True)
    sys.exit(1)


def _crash(exc: Exception) -> None:
    """A bug, not a user's mistake: the traceback helps, scrubbed of any key."""
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    click.echo(keys.scrub(text), err=True)
    click.echo(f"error: internal error ({type(exc).__name__})", err=True)
    click.echo("  fix: please report it with the lines above", err=True)
    sys.exit(1)


class _Group(click.Group):
    """Turns r2local's own errors into a message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except R2Error as exc:
            _fail(exc)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            _crash(exc)


@click.group(cls=_Group, invoke_without_command=True)
@click.option("--pool", default=None, help="Use a built-in pool (demo, default) instead of config.toml's tiers.")
@click.version_option(package_name="r2local")
@click.pass_context
def cli(ctx: click.Context, pool: str | None) -> None:
    """Offline-first reasoning: local models for easy steps, the cloud only for hard ones."""
    ctx.obj = {"pool": pool}
    if ctx.invoked_subcommand is None:
        from tui.app import run_app

        run_app(pool=pool)


def _engine(ctx: click.Context):
    from r2local.engine.core import Engine

    return Engine.from_config(pool=ctx.obj["pool"], progress=_progress)



def _read_answer(cancel: threading.Event) -> str:
    """A line from the terminal; gives up when the question is cancelled (Ctrl-C)."""
    import select

    while not cancel.is_set():
        try:
            ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        except (OSError, ValueError):  # no select on this stdin (Windows)
            return sys.stdin.readline()
        if ready:
            return sys.stdin.readline()
    return ""


def _tty_confirm(cancel: threading.Event) -> Any:
    """The confirm callback of privacy mode "confirm": shows exactly what would leave, and asks."""
    from r2local.gates import CloudRequest
    from r2local.tables import usd

    def confirm(request: CloudRequest) -> bool:
        where = f"{request.tier!r} ({request.model}" + (f" at {request.base_url})" if request.base_url else ")")
        redacted = ", ".join(f"{n} {kind.lower()}" for kind, n in sorted(request.redactions.items())) or "nothing"
        click.echo(f"\n--- subtask {request.subtask_id} would be sent to {where}, exactly this: ---", err=True)
        click.echo(request.text(), err=True)
        click.echo(f"--- redacted: {redacted}; cost at most {usd(request.estimated_usd)} ---", err=True)
        click.echo("send it? [y/N] ", err=True, nl=False)
        return _read_answer(cancel).strip().lower() in ("y", "yes")

    return confirm
