"""`r2local conversations`: the conversations in the ledger (continue one with `ask -c` or `--cid`)."""

from __future__ import annotations

import json

import click

from r2local import keys
from r2local.cli.common import cli


@cli.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many, the most recently continued first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def conversations(limit: int, as_json: bool) -> None:
    """List conversations: id, turns, cost, title."""
    from r2local.store.ledger import Ledger
    from r2local.tables import usd

    ledger = Ledger()
    try:
        rows = ledger.conversations(limit)
    finally:
        ledger.close()
    for row in rows:
        if as_json:
            keep = ("id", "created_at", "last_at", "title", "pool", "turns", "cost_usd", "local_only")
            click.echo(keys.scrub(json.dumps({k: row[k] for k in keep}, ensure_ascii=False)))
        else:
            mark = " [local-only]" if row["local_only"] else ""
            click.echo(f"{row['id']}  {row['last_at'][:16].replace('T', ' ')}  {row['turns']:>3} turns  "
                       f"{usd(row['cost_usd']):>9}  {keys.scrub(row['title'] or '')}{mark}")
    if not rows and not as_json:
        click.echo("no conversations yet: `r2local ask QUESTION` starts one", err=True)
