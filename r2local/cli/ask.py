"""`r2local ask`: one question from the command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from r2local import keys
from r2local.cli.common import _engine, _tty_confirm, cli
from r2local.errors import Cancelled


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and every subtask as JSON.")
@click.option("--local-only", is_flag=True, help="Never contact a non-local tier.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", default=None, help="Continue the conversation with this id (or id suffix).")
@click.option("--no-server", is_flag=True, help="Answer in this process even when `r2local serve` runs.")
@click.pass_context
def ask(ctx: click.Context, question: str, as_json: bool, local_only: bool, continue_: bool, cid: str | None,
        no_server: bool) -> None:
    """Answer QUESTION (use - to read it from stdin)."""
    interactive = question != "-" and sys.stdin.isatty()
    if question == "-":
        question = sys.stdin.read()
    ref = cid or ("last" if continue_ else None)
    if not no_server and question.strip() and _ask_served(ctx, question, ref, as_json, local_only, interactive):
        return
    _ask_here(ctx, question, ref, as_json, local_only, interactive)


def _ask_here(ctx: click.Context, question: str, ref: str | None, as_json: bool, local_only: bool,
              interactive: bool) -> None:
    """In this process: load the engine (and its models), answer, maybe shadow it for learning."""
    from r2local.engine.events import Notice

    engine = _engine(ctx)
    try:
        context = _context(engine, question, ref, local_only)
    except BaseException:
        engine.close()
        raise
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    confirm = _tty_confirm(cancel) if interactive else None  # nobody to ask: cloud subtasks stay local

    def on_event(event: Any) -> None:
        if isinstance(event, Notice):
            _say_notice(event.text, local_only)

    try:
        result = engine.ask(question, local_only=local_only, on_event=on_event, cancel=cancel, confirm=confirm,
                            context=context)
    except Cancelled:
        engine.close()
        click.echo("cancelled", err=True)
        sys.exit(130)
    except BaseException:
        engine.close()
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if not local_only and result.offline is None:
        _said_before(None)  # online again: say it anew next time it goes offline
    try:
        _print_result(result.to_json(), as_json)
        engine.shadow(result, local_only=local_only, confirm=confirm)  # for learning, after the answer is out
    finally:
        engine.close()
    if result.status != "done":
        sys.exit(2)


def _ask_served(ctx: click.Context, question: str, ref: str | None, as_json: bool, local_only: bool,
                interactive: bool) -> bool:
    """Through the `r2local serve` running for this home and pool, if any (models warm, no loading here);
    False when there is none to use. The server writes the ledger and runs the shadow."""
    from r2local.serve import client, discovery
    from r2local.serve.token import token_path

    running, why_not = discovery.find(ctx.obj["pool"])
    if running is None:
        if why_not:
            click.echo(why_not, err=True)
        return False
    if interactive and not local_only and _privacy_mode(ctx) == "confirm":
        return False  # the server cannot ask at this terminal before a cloud call: answer here
    try:
        token = token_path().read_text().strip()
    except OSError:
        return False
    try:
        reply = client.ask(running, token, question, local_only=local_only, conversation=ref)
    except client.Unreachable as exc:
        click.echo(f"the r2local serve at {running.url} did not take the question ({exc}); answering in-process",
                   err=True)
        return False
    except KeyboardInterrupt:  # the connection closes with us: the server cancels the question
        click.echo("cancelled", err=True)
        sys.exit(130)
    click.echo(f"answered by the running r2local serve at {running.url} (models warm; --no-server answers here)",
               err=True)
    result = reply["result"]
    for text in reply.get("notices") or []:
        _say_notice(text, local_only)
    if not local_only and result.get("offline") is None:
        _said_before(None)
    _print_result(result, as_json)
    if result.get("status") != "done":
        sys.exit(2)
    return True


def _privacy_mode(ctx: click.Context) -> str:
    from r2local.config import load_settings

    return load_settings(pool=ctx.obj["pool"]).privacy.mode


def _say_notice(text: str, local_only: bool) -> None:
    from r2local.vocab import OFFLINE  # not from engine.core: a served ask should not import the engine

    offline = not local_only and text.startswith(OFFLINE)  # the engine's reason, computed once
    if offline and _said_before(text):  # no key, again: said on an earlier run
        return
    suffix = " (said once; `r2local doctor` shows the state)" if offline else ""
    click.echo(text + suffix, err=True)


def _context(engine: Any, question: str, ref: str | None, local_only: bool) -> Any:
    """The conversation this question continues (``ref``: an id, a suffix or "last"), else a new one."""
    from r2local.engine import conversation

    if ref is None and not question.strip():
        return None  # the engine refuses an empty question; no empty conversation is left behind
    if ref is None:
        return conversation.start(engine.ledger, engine.settings.pool, local_only)
    return conversation.load(engine.ledger, engine.ledger.find_conversation(ref)["id"])


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    """Print an answer (``AskResult.to_json``, from this process or the server)."""
    from r2local.engine.standing import answer_status, standing
    from r2local.tables import subtasks_table, usd

    if as_json:  # a key pasted into the question is masked here too
        click.echo(keys.scrub(json.dumps(result, indent=2, ensure_ascii=False)))
        _report_failure(result["error"])
        return
    nodes = result["subtasks"]
    click.echo(keys.scrub(result["answer"] or "(no answer)"))
    click.echo("")
    click.echo(subtasks_table(nodes))
    node = nodes[-1] if nodes else None
    status = answer_status(result["status"], node["status"] if node else None)
    click.echo(
        f"\n{standing(status, node['confidence'] if node else None)} · total {usd(result['cost_usd'])} · "
        f"cloud share {result['cloud_share']:.0%} · {result['latency_ms'] / 1000:.1f} s · "
        f"question {result['question_id']}"
    )
    if node and node["status"] == "unsure" and node.get("reason"):
        click.echo(f"unsure because: {node['reason']}")
    if result["conversation_id"]:
        click.echo(f"conversation {result['conversation_id']} (continue it: r2local ask -c ...)")
    route, reason = result["route"], result["route_reason"]
    if route:
        click.echo(f"route: {route} ({reason})" if reason else f"route: {route}")
    if result["plan_note"]:
        click.echo(f"plan: {result['plan_note']}", err=True)
    _report_failure(result["error"])


def _said_before(offline: str | None) -> bool:
    """Whether an earlier `ask` already printed this offline reason (then stay quiet until it changes)."""
    from r2local import paths

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
