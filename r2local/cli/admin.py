"""`r2local` commands for keys, spend and logs, model files, doctor and paths."""

from __future__ import annotations

import json
import sys

import click

from r2local import keys
from r2local.cli.common import _engine, _progress, cli
from r2local.errors import R2Error


@cli.group()
def key() -> None:
    """Manage the cloud API key in the OS keyring."""


def _cloud_tier(ctx: click.Context, tier: str | None) -> str:
    """The named tier (it must exist and be an openai tier), or the top cloud tier."""
    from r2local.backends import backend_class
    from r2local.config import load_settings

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
    from r2local.budget import Budget
    from r2local.config import BudgetSection, load_settings
    from r2local.store.ledger import Ledger
    from r2local.tables import spend_text

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
    from r2local.store.ledger import Ledger
    from r2local.tables import logs_text

    ledger = Ledger()
    rows = list(reversed(ledger.calls(count)))
    ledger.close()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        click.echo(logs_text(rows) if rows else "no calls yet")


@cli.group()
def models() -> None:
    """List and fetch model files."""


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


@models.command("list")
def models_list() -> None:
    """Known models, their sizes, and whether their files are here."""
    from r2local.fetch import file_state
    from r2local.manifests import load_manifests
    from r2local.tables import table

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
@click.option("--no-warm", is_flag=True, help="Do not evaluate the prompts' fixed prefixes after fetching.")
@click.pass_context
def models_pull(ctx: click.Context, names: tuple[str, ...], no_warm: bool) -> None:
    """Fetch model files (default: every local model of the pool, then warm their prompt snapshots)."""
    from r2local.backends import backend_class
    from r2local.config import load_settings
    from r2local.fetch import resolve
    from r2local.manifests import load_manifests, lookup

    manifests = load_manifests()
    if not names:
        settings = load_settings(pool=ctx.find_root().obj["pool"])
        refs = [settings.router.model] + [t.model for t in settings.tiers if backend_class(t.backend).loads_file]
        names = tuple(dict.fromkeys(r for r in refs if r in manifests))
    for name in names:
        path = resolve(lookup(name, manifests), _progress)
        click.echo(f"{name}: {path}")
    if not ctx.params["names"] and not no_warm:
        _warm_pool(ctx)


def _warm_pool(ctx: click.Context) -> None:
    """Evaluate the pool's prompt prefixes once (cache/kv/), so the first `ask` is not the slow one.
    A warm-up that fails costs only that: the models are fetched, and the reason is printed."""
    from r2local.engine.warmup import described, warm

    click.echo("warming the prompt snapshots (once per model; --no-warm skips) ...", err=True)
    try:
        engine = _engine(ctx)
        try:
            seconds = warm(engine)
        finally:
            engine.close()
    except R2Error as exc:
        click.echo(f"warm-up skipped: {exc}", err=True)
        return
    click.echo(described(seconds), err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--cloud", is_flag=True, help="Also send one free request to the cloud tier (list its models) with the key.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, cloud: bool) -> None:
    """Check this machine: llama.cpp, MLX, keyring, key, model files, config, threads, disk (and the cloud)."""
    from r2local import doctor as d

    checks = d.run(ctx.obj["pool"], cloud=cloud)
    click.echo(json.dumps(d.report(checks, cloud), indent=2) if as_json else d.text(checks, cloud))
    sys.exit(0 if all(c.status != d.FAIL for c in checks) else 1)


@cli.command()
def paths() -> None:
    """Where r2local keeps its config, ledger, caches and model files."""
    from r2local import paths as p

    rows = [("config", p.config_path()), ("ledger", p.db_path()), ("cache", p.cache_dir()),
            ("models", p.models_dir()), ("own manifests", p.user_manifests_dir())]
    for name, path in rows:
        click.echo(f"{name:14} {path}")
