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
    from .report import subtasks_table, usd

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
        click.echo("cancelled", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGINT, previous)
        engine.close()
    if as_json:  # a key pasted into the question is masked here too
        click.echo(keys.scrub(json.dumps(result.to_json(), indent=2, ensure_ascii=False)))
        _report_failure(result.error)
        sys.exit(0 if result.status == "done" else 2)
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
    if result.status != "done":
        sys.exit(2)


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


@cli.group()
def key() -> None:
    """Manage the cloud API key in the OS keyring."""


def _cloud_tier(ctx: click.Context, tier: str | None) -> str:
    """The named tier (it must exist and be an openai tier), or the top cloud tier."""
    from .backends import backend_class
    from .config import load_settings

    settings = load_settings(pool=ctx.find_root().obj["pool"])
    clouds = [t.name for t in settings.tiers if backend_class(t.backend).uses_key]
    if not clouds:
        raise R2Error("no cloud tier is configured", fix="add an [[tiers]] entry with backend = \"openai\"")
    if tier is not None and tier not in clouds:
        what = "is not a tier with an API key" if tier in [t.name for t in settings.tiers] else "is not a tier in config.toml"
        raise R2Error(f"{tier!r} {what}", fix=f"use --tier {' or --tier '.join(clouds)}")
    return tier or clouds[-1]


@key.command("set")
@click.option("--tier", default=None, help="Tier the key belongs to (default: the top cloud tier).")
@click.option("--plaintext", is_flag=True,
              help="Accept a keyring backend that stores the key unencrypted in a file (e.g. keyrings.alt's PlaintextKeyring).")
@click.pass_context
def key_set(ctx: click.Context, tier: str | None, plaintext: bool) -> None:
    """Store the key (prompted, or read from stdin when it is not a terminal)."""
    tier = _cloud_tier(ctx, tier)
    if sys.stdin.isatty():
        value = click.prompt(f"API key for tier {tier!r}", hide_input=True)
    else:
        value = sys.stdin.readline()
    where = keys.set_key(tier, value, allow_plaintext=plaintext)
    click.echo(f"key for tier {tier!r} stored in {where} ({keys.mask(value.strip())})")


@key.command("status")
@click.option("--tier", default=None, help="Tier to check (default: the top cloud tier).")
@click.pass_context
def key_status(ctx: click.Context, tier: str | None) -> None:
    """Say whether a key is set and where it lives (last 4 characters only)."""
    tier = _cloud_tier(ctx, tier)
    st = keys.status(tier)
    if st.is_set:
        click.echo(f"tier {tier!r}: key set (…{st.last4}) in {st.where}")
        if not st.secure:
            click.echo("  warning: that store is not encrypted; `r2local doctor` shows safer ones")
    else:
        click.echo(f"tier {tier!r}: no key" + (f" ({st.problem})" if st.problem else ""))
        click.echo(f"  set one with: r2local key set --tier {tier}")
        sys.exit(1)


@key.command("delete")
@click.option("--tier", default=None, help="Tier whose key to delete (default: the top cloud tier).")
@click.pass_context
def key_delete(ctx: click.Context, tier: str | None) -> None:
    """Remove the key from the keyring."""
    tier = tier or _cloud_tier(ctx, None)  # any name: the tier may be gone from config.toml
    if keys.delete_key(tier):
        click.echo(f"key for tier {tier!r} deleted")
    else:
        click.echo(f"tier {tier!r} had no key in the keyring")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--days", default=30, show_default=True, help="Days in the per-day table.")
@click.pass_context
def spend(ctx: click.Context, as_json: bool, days: int) -> None:
    """Spend from the ledger: what is left of the budget, today, this month, by model, by day."""
    from .budget import Budget
    from .config import BudgetSection, load_settings
    from .ledger import Ledger
    from .report import spend_text

    try:
        section = load_settings(pool=ctx.obj["pool"]).budget
    except R2Error as exc:  # spend works from the ledger alone; say why the caps are unknown
        click.echo(f"note: budget caps unknown: {exc.message}", err=True)
        section = BudgetSection()
    ledger = Ledger()
    data = ledger.spend(days=days)
    data["budget"] = Budget(ledger, section).state().to_json()
    ledger.close()
    click.echo(json.dumps(data, indent=2) if as_json else spend_text(data))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.option("-n", "count", default=20, show_default=True, help="Number of calls.")
def logs(as_json: bool, count: int) -> None:
    """The most recent model calls from the ledger."""
    from .ledger import Ledger
    from .report import logs_text

    ledger = Ledger()
    rows = list(reversed(ledger.calls(count)))
    ledger.close()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        click.echo(logs_text(rows) if rows else "no calls yet")


@cli.command()
@click.option("--cloud-share", type=click.FloatRange(0, 1), help="At most this share of questions to the cloud.")
@click.option("--reset", is_flag=True, help="Forget the calibration and use config/default thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def calibrate(ctx: click.Context, cloud_share: float | None, reset: bool, as_json: bool) -> None:
    """Route by what each tier got right: fit the route policy from graded answers."""
    from .calibration import calibrate_all, calibration_text
    from .config import load_settings
    from .ledger import Ledger

    if reset:
        ledger = Ledger()
        ledger.clear_calibrations()
        ledger.close()
        click.echo("calibration cleared")
        return
    settings = load_settings(pool=ctx.obj["pool"])
    data = calibrate_all(settings, cloud_share)
    click.echo(json.dumps(data, indent=2) if as_json else calibration_text(data))
    if data["note"]:
        click.echo(f"note: {data['note']}", err=True)
    if settings.router.thresholds is not None:
        click.echo("note: router.thresholds in config.toml overrides the thresholds; remove it to use them", err=True)


@cli.command()
@click.option("--dataset", required=True, help="generated, champ, strategyqa, elementary_math_qa, or a .jsonl file.")
@click.option("--n", "n", default=20, show_default=True, help="Questions to bench.")
@click.option("--seed", default=0, show_default=True, help="Picks (or generates) the questions; seeds the random baseline.")
@click.option("--strategies", default="all", show_default=True,
              help="Comma-separated: all-small, all-local, all-cloud, cascade, r2local, task-level, random, "
                   "cot-cloud, plan-local.")
@click.option("--cloud-share", type=click.FloatRange(0, 1), default=None,
              help="First calibrate r2local's route policy on a separate split, escalating at most this share.")
@click.option("--calib-n", default=40, show_default=True, help="Questions in that calibration split.")
@click.option("--agree-below", type=click.FloatRange(0, 1), default=None,
              help="Pin the agreement threshold: escalate local answers whose samples agree less than this.")
@click.option("--json", "as_json", is_flag=True, help="Print the table and every answer as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a cost-accuracy PNG (matplotlib).")
@click.option("--ledger", type=click.Path(dir_okay=False), default=None,
              help="Ledger for the bench's calls and call cache [default: bench.db beside the main ledger].")
@click.option("--no-cache", is_flag=True, help="Do not reuse identical model calls.")
@click.pass_context
def bench(ctx: click.Context, no_cache: bool, **kw: Any) -> None:
    """Accuracy and cloud cost of r2local against baselines, on your pool and data."""
    from .bench.command import Options, run_command

    run_command(ctx.obj["pool"], Options(cache=not no_cache, **kw))


@cli.group()
def models() -> None:
    """List and fetch model files."""


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


@models.command("list")
def models_list() -> None:
    """Known models, their sizes, and whether their files are here."""
    from .fetch import file_state
    from .manifests import load_manifests
    from .report import table

    rows = []
    for m in load_manifests().values():
        if m.format == "api":
            rows.append([m.name, m.format, "-", "api (no file)"])
            continue
        state, path = file_state(m)
        if path is not None and state == "ok":
            size, where = _size(path.stat().st_size), str(path)
        else:
            size = _size(m.size_bytes) if m.size_bytes else (f"≈{_size(m.approx_size_bytes)}" if m.approx_size_bytes else "?")
            where = f"checksum mismatch: {path}" if state == "mismatch" else "not fetched"
        rows.append([m.name, m.format, size, where])
    click.echo(table(["name", "format", "size", "file"], rows))


@models.command("pull")
@click.argument("names", nargs=-1)
@click.pass_context
def models_pull(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Fetch model files (default: every local model of the pool)."""
    from .backends import backend_class
    from .config import load_settings
    from .fetch import resolve
    from .manifests import load_manifests, lookup

    manifests = load_manifests()
    if not names:
        settings = load_settings(pool=ctx.find_root().obj["pool"])
        refs = [settings.router.model] + [t.model for t in settings.tiers if backend_class(t.backend).loads_file]
        names = tuple(dict.fromkeys(r for r in refs if r in manifests))
    for name in names:
        path = resolve(lookup(name, manifests), _progress)
        click.echo(f"{name}: {path}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--cloud", is_flag=True, help="Also send one free request to the cloud tier (list its models) with the key.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, cloud: bool) -> None:
    """Check this machine: llama.cpp, MLX, keyring, key, model files, config, threads, disk (and the cloud)."""
    from . import doctor as d

    checks = d.run(ctx.obj["pool"], cloud=cloud)
    click.echo(json.dumps(d.report(checks, cloud), indent=2) if as_json else d.text(checks, cloud))
    sys.exit(0 if all(c.status != d.FAIL for c in checks) else 1)


@cli.command()
def paths() -> None:
    """Where r2local keeps its config, ledger, caches and model files."""
    from . import paths as p

    rows = [("config", p.config_path()), ("ledger", p.db_path()), ("cache", p.cache_dir()),
            ("models", p.models_dir()), ("own manifests", p.user_manifests_dir())]
    for name, path in rows:
        click.echo(f"{name:14} {path}")


def main() -> None:
    cli(prog_name="r2local")
