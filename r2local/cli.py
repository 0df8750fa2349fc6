"""`r2local`: the TUI by default, and subcommands for scripts."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from . import keys
from .errors import Cancelled, R2Error


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
    from .engine import Engine

    return Engine.from_config(pool=ctx.obj["pool"], progress=_progress)


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and every subtask as JSON.")
@click.option("--local-only", is_flag=True, help="Never contact a non-local tier.")
@click.pass_context
def ask(ctx: click.Context, question: str, as_json: bool, local_only: bool) -> None:
    """Answer QUESTION (use - to read it from stdin)."""
    from .events import Notice

    interactive = question != "-" and sys.stdin.isatty()
    if question == "-":
        question = sys.stdin.read()
    engine = _engine(ctx)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    confirm = _tty_confirm(cancel) if interactive else None  # nobody to ask: cloud subtasks stay local

    _, offline = engine.allowed_tiers(local_only)
    quiet = not local_only and _said_before(offline)

    def on_event(event: Any) -> None:
        if isinstance(event, Notice):
            if quiet and event.text == offline:  # no key, again: said on an earlier run
                return
            suffix = " (said once; `r2local doctor` shows the state)" if event.text == offline and not local_only else ""
            click.echo(event.text + suffix, err=True)

    try:
        result = engine.ask(question, local_only=local_only, on_event=on_event, cancel=cancel, confirm=confirm)
    except Cancelled:
        engine.close()
        click.echo("cancelled", err=True)
        sys.exit(130)
    except BaseException:
        engine.close()
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        _print_result(result, as_json)
        engine.shadow(result, local_only=local_only, confirm=confirm)  # for learning, after the answer is out
    finally:
        engine.close()
    if result.status != "done":
        sys.exit(2)


def _print_result(result: Any, as_json: bool) -> None:
    from .report import subtasks_table, usd

    if as_json:  # a key pasted into the question is masked here too
        click.echo(keys.scrub(json.dumps(result.to_json(), indent=2, ensure_ascii=False)))
        _report_failure(result.error)
        return
    click.echo(keys.scrub(result.answer or "(no answer)"))
    click.echo("")
    click.echo(subtasks_table([n.public() for n in result.nodes]))
    click.echo(
        f"\ntotal {usd(result.cost_usd)} · cloud share {result.cloud_share:.0%} · "
        f"{result.latency_ms / 1000:.1f} s · question {result.question_id}"
    )
    if result.route:
        click.echo(f"route: {result.route} ({result.route_reason})" if result.route_reason else f"route: {result.route}")
    if result.plan_note:
        click.echo(f"plan: {result.plan_note}", err=True)
    _report_failure(result.error)


def _said_before(offline: str | None) -> bool:
    """Whether an earlier `ask` already printed this offline reason (then stay quiet until it changes)."""
    from . import paths

    state = paths.cache_dir() / "ask-offline.txt"
    if offline is None:  # online again: say it anew next time it goes offline
        state.unlink(missing_ok=True)
        return False
    try:
        if state.read_text() == offline:
            return True
    except OSError:
        pass
    state.write_text(offline)
    return False


def _report_failure(error: str | None) -> None:
    if error:
        message, _, fix = keys.scrub(error).partition(" (fix: ")
        click.echo(f"error: no answer: {message}", err=True)
        if fix:
            click.echo(f"  fix: {fix.rstrip(')')}", err=True)


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
    from .gates import CloudRequest
    from .report import usd

    def confirm(request: CloudRequest) -> bool:
        where = f"{request.tier!r} ({request.model}" + (f" at {request.base_url})" if request.base_url else ")")
        redacted = ", ".join(f"{n} {kind.lower()}" for kind, n in sorted(request.redactions.items())) or "nothing"
        click.echo(f"\n--- subtask {request.subtask_id} would be sent to {where}, exactly this: ---", err=True)
        click.echo(request.text(), err=True)
        click.echo(f"--- redacted: {redacted}; cost at most {usd(request.estimated_usd)} ---", err=True)
        click.echo("send it? [y/N] ", err=True, nl=False)
        return _read_answer(cancel).strip().lower() in ("y", "yes")

    return confirm


def main() -> None:
    cli(prog_name="r2local")


# The other commands live beside this file, one module a concern; importing them registers them.
from . import cli_admin, cli_learn  # noqa: E402,F401
