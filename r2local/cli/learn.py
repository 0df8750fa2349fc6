"""`r2local` commands that learn from the ledger: calibrate, bench, feedback, train."""

from __future__ import annotations

import json
from typing import Any

import click

from r2local.cli.common import cli
from r2local.errors import R2Error


@cli.command()
@click.option("--cloud-share", type=click.FloatRange(0, 1), help="At most this share of questions to the cloud.")
@click.option("--reset", is_flag=True, help="Forget the calibration and use config/default thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def calibrate(ctx: click.Context, cloud_share: float | None, reset: bool, as_json: bool) -> None:
    """Route by what each tier got right: fit the route policy from graded answers."""
    from r2local.routing.calibration import calibrate_all, calibration_text
    from r2local.config import load_settings
    from r2local.store.ledger import Ledger

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
@click.option("--calib-seed", type=int, default=None,
              help="Draw the calibration split with this seed (for generated: another run's questions, cached).")
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
    from r2local.cli.bench import Options, run_command

    run_command(ctx.obj["pool"], Options(cache=not no_cache, **kw))


VERDICTS = ["good", "bad", "needed-the-cloud", "did-not-need-it"]


@cli.command()
@click.argument("question_id")
@click.argument("verdict", type=click.Choice(VERDICTS))
@click.option("--subtask", type=int, default=None, help="Mark one subtask (plan node) instead of the answer.")
@click.option("--note", default=None, help="A few words on why.")
def feedback(question_id: str, verdict: str, subtask: int | None, note: str | None) -> None:
    """Mark an answer (or one subtask): good, bad, needed-the-cloud, did-not-need-it. QUESTION_ID may be `last`."""
    from r2local.store.ledger import Ledger
    from r2local.store.records import Feedback
    from r2local.vocab import Verdict

    ledger = Ledger()
    try:
        q = ledger.find_question(question_id)
        nodes = {s["subtask_id"]: s for s in q["subtasks"]}
        if subtask is not None and subtask not in nodes:
            raise R2Error(f"question {q['id']} has no subtask {subtask}", fix=f"use one of {sorted(nodes)}")
        node = nodes.get(subtask) if subtask is not None else (nodes[max(nodes)] if nodes else None)
        ledger.add_feedback(Feedback(q["id"], Verdict(verdict), subtask_id=subtask,
                                     tier=node["tier"] if node else None, note=note))
    finally:
        ledger.close()
    what = f"subtask {subtask}" if subtask is not None else "the answer"
    click.echo(f"{verdict}: {what} of question {q['id']} ({(q['question'] or '')[:60]})")


@cli.group()
def train() -> None:
    """Teach the router from your own ledger: status, run, adopt, rollback."""


@train.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def train_status(ctx: click.Context, as_json: bool) -> None:
    """The active router adapter, every version, the last runs, and the labels there are to learn from."""
    from r2local.config import load_settings
    from r2local.train.summary import status, status_text

    data = status(load_settings(pool=ctx.find_root().obj["pool"]))
    click.echo(json.dumps(data, indent=2, default=str) if as_json else status_text(data))


@train.command("run")
@click.option("--sft-steps", type=int, default=40, show_default=True, help="SFT steps on the best label.")
@click.option("--grpo-steps", type=int, default=200, show_default=True, help="One-token GRPO steps.")
@click.option("--cloud-share", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="The operating point the held-out comparison is made at.")
@click.option("--threads", type=int, default=None, help="CPU threads for training [default: runtime.threads].")
@click.option("--no-adopt", is_flag=True, help="Keep the new version as a candidate even if it is better.")
@click.option("--decomposer", is_flag=True,
              help="Train the decomposer instead: SFT on the plans that led to right answers (--sft-steps steps).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def train_run(ctx: click.Context, sft_steps: int, grpo_steps: int, cloud_share: float, threads: int | None,
              no_adopt: bool, decomposer: bool, as_json: bool) -> None:
    """Train a router adapter on what the ledgers know; adopt it only if it is better on held-out questions."""
    import signal
    import sys
    import threading

    from r2local.config import load_settings
    from r2local.train.summary import progress_printer, report_text
    from r2local.train.run import TrainArgs, run

    cancel = threading.Event()
    if decomposer:
        from r2local.train.plans import train_plans

        previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
        try:
            out = train_plans(load_settings(pool=ctx.find_root().obj["pool"]), sft_steps, threads=threads, cancel=cancel)
        finally:
            signal.signal(signal.SIGINT, previous)
        click.echo(json.dumps(out, indent=2) if as_json else
                   f"{out['adapter_id']}: held-out plan loss {out['target_loss_before']:.3f} -> "
                   f"{out['target_loss_after']:.3f} on {out['held_out']} plans ("
                   + ("better: adopt it with `r2local train adopt " + out["adapter_id"] + "`)" if out["better"]
                      else "not better, not kept as a candidate)"))
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    args = TrainArgs(sft_steps=sft_steps, grpo_steps=grpo_steps, cloud_share=cloud_share, threads=threads,
                     adopt=not no_adopt)
    try:
        report = run(load_settings(pool=ctx.find_root().obj["pool"]), args, progress=progress_printer(), cancel=cancel)
    except Exception as exc:
        from r2local.errors import Cancelled

        if isinstance(exc, Cancelled):
            click.echo("\ncancelled: nothing was kept; the active adapter is unchanged", err=True)
            sys.exit(130)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(json.dumps(report.to_json(), indent=2, default=str) if as_json else report_text(report.to_json()))


@train.command("adopt")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def train_adopt(ctx: click.Context, version: str, as_json: bool) -> None:
    """Route with adapter VERSION (e.g. v3) from now on (the route policy is refitted on its ratings)."""
    from r2local.config import load_settings
    from r2local.train.run import adopt

    row = adopt(load_settings(pool=ctx.find_root().obj["pool"]), version)
    click.echo(json.dumps(row.to_json(), indent=2, default=str) if as_json
               else f"{row.id} is active; the router uses it from the next question")


@train.command("rollback")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def train_rollback(as_json: bool) -> None:
    """Back to the adapter adopted before the active one (or to the plain router)."""
    from r2local.store.ledger import Ledger
    from r2local.store import adapters

    ledger = Ledger()
    try:
        row = adapters.rollback(ledger)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(row.to_json() if row else None, indent=2, default=str))
    else:
        click.echo(f"{row.id} is active again" if row else "no adapter is active: the router runs as shipped")
