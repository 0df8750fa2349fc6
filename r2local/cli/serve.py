"""`r2local serve`: the engine behind an OpenAI-compatible endpoint on loopback."""

from __future__ import annotations

import click

from r2local.cli.common import _engine, cli
from r2local.errors import R2Error

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@cli.command()
@click.option("--port", default=8077, show_default=True, help="Port on loopback.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind (127.0.0.1 or ::1).")
@click.option("--no-warm", is_flag=True, help="Load the models on the first request, not now.")
@click.pass_context
def serve(ctx: click.Context, port: int, host: str, no_warm: bool) -> None:
    """Serve the OpenAI chat API on loopback (prints the URL and the token)."""
    if host not in LOOPBACK:
        raise R2Error(f"{host!r} is not a loopback address: the server is for this machine only",
                      fix="use --host 127.0.0.1 (or ::1); put an authenticating proxy in front for anything else")
    try:
        import uvicorn

        from r2local.serve.app import AnnouncedServer, make_app
    except ImportError as exc:
        raise R2Error(f"the server needs {exc.name}", fix="pip install 'r2local[serve]'") from None
    from r2local.serve import discovery
    from r2local.serve.token import load_or_create, token_path

    engine = _engine(ctx)
    try:
        if not no_warm:
            _warm(engine)
        token = load_or_create()
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"r2local serve: http://{shown}:{port}/v1  models: r2local, r2local-local (local-only)")
        click.echo(f"token: {token}  (kept in {token_path()})", err=False)
        click.echo("ready", err=True)
        config = uvicorn.Config(make_app(engine, token), host=host, port=port, log_level="warning")
        AnnouncedServer(config, shown, ctx.obj["pool"]).run()
    finally:
        discovery.withdraw()  # serve.json goes with the server (a killed one leaves it: `ask` sees the pid gone)
        engine.close()


def _warm(engine) -> None:
    """Load the router and every local tier and evaluate their prompts' fixed prefixes now: the first
    request should wait for neither (before this, the models loaded on the first request)."""
    from r2local.engine.warmup import described, warm

    click.echo(described(warm(engine)), err=True)
