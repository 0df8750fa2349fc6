"""`r2local bench`: set up the engine, calibrate, run, print (cli.py declares the options)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from r2local import paths
from r2local.config import load_settings
from r2local.errors import R2Error
from r2local.store.ledger import Ledger


@dataclass
class Options:
    dataset: str
    n: int
    seed: int
    strategies: str | None
    cloud_share: float | None
    agree_below: float | None
    calib_n: int
    as_json: bool
    plot: str | None
    ledger: str | None
    cache: bool
    calib_seed: int | None = None  # draw the calibration split with this seed instead (generated: another run's questions)


def _status(what: str, done: int, total: int | None) -> None:
    """One-line status for downloads (models, datasets) on a terminal."""
    if not sys.stderr.isatty():
        return
    pct = f"{100 * done / total:5.1f}%" if total else "…"
    sys.stderr.write(f"\rfetching {what}: {pct}   " + ("\n" if total and done >= total else ""))
    sys.stderr.flush()


def pool_meta(engine: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "model": t.model, "backend": t.backend, "local": t.is_local, "priced": t.priced,
             "input_usd_per_mtok": t.input_usd_per_mtok, "output_usd_per_mtok": t.output_usd_per_mtok}
            for t in engine.pool.tiers]


def _engine(settings: Any, opts: Options) -> Any:
    """The everyday engine (same gates: privacy, redaction, budget) with the call cache as its recorder."""
    from r2local.engine.core import Engine
    from r2local.engine.recorder import CachingRecorder, LedgerRecorder

    ledger = Ledger(Path(opts.ledger) if opts.ledger else paths.user_dir() / "bench.db")
    recorder = CachingRecorder(LedgerRecorder(ledger)) if opts.cache else None
    return Engine(settings, ledger=ledger, progress=_status, recorder=recorder)


def _confirm(settings: Any, names: list[str]) -> Any:
    """Who answers privacy mode's questions; the bench refuses to start when it cannot honour the mode."""
    from r2local.bench.strategies import needs_cloud

    mode = settings.privacy.mode
    if mode == "local-only" and needs_cloud(names):
        raise R2Error('[privacy] mode is "local-only", and the cloud strategies would send every question to the cloud',
                      fix="drop all-cloud and cot-cloud from --strategies, or change [privacy] mode in config.toml")
    if mode != "confirm":
        return None
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise R2Error('[privacy] mode is "confirm" and nobody is here to confirm each cloud call (no terminal)',
                      fix='run the bench in a terminal to answer each prompt, or set [privacy] mode = "auto" '
                          "in config.toml for the bench's home (R2LOCAL_HOME)")
    from r2local.cli.common import _tty_confirm

    return _tty_confirm(threading.Event())


def _check_cloud(engine: Any, names: list[str]) -> None:
    from r2local.bench.strategies import needs_cloud

    _, offline = engine.allowed_tiers(False)
    if offline and needs_cloud(names):
        raise R2Error(f"the bench needs the cloud tier, which is unusable: {offline}",
                      fix="set its key (r2local key set) or drop the cloud strategies from --strategies")


def execute(pool: str | None, opts: Options, cancel: threading.Event | None = None,
            on_progress: Any = None) -> dict[str, Any]:
    """Run a bench and return its JSON document (the CLI prints or plots it)."""
    from dataclasses import replace

    from r2local.tasks import datasets
    from r2local.bench.calibrate import calibrate, starting_policy
    from r2local.bench.report import to_json
    from r2local.bench.runner import run_bench
    from r2local.bench.strategies import parse_strategies

    names = parse_strategies(opts.strategies)
    calib = opts.calib_n if opts.cloud_share is not None else 0
    settings = load_settings(pool=pool)
    confirm = _confirm(settings, names)
    items, calib_items = datasets.load(opts.dataset, opts.n, opts.seed, calib=calib, progress=_status)
    if calib and opts.calib_seed is not None:
        calib_items, _ = datasets.load(opts.dataset, calib, opts.calib_seed, progress=_status)
        texts = {i.question for i in items}
        calib_items = [i for i in calib_items if i.question not in texts]  # never calibrate on a benched question
    engine = _engine(settings, opts)
    try:
        _check_cloud(engine, names)
        if opts.cloud_share is not None:
            if not calib_items:
                raise R2Error("no questions left for calibration", fix="lower --n, or drop --cloud-share")
            policy = calibrate(engine, calib_items, opts.cloud_share, names, seed=opts.seed, confirm=confirm,
                               cancel=cancel, on_progress=on_progress)
        else:
            policy = starting_policy(engine)
        if opts.agree_below is not None:
            policy = replace(policy, agree_below=opts.agree_below, source=policy.source + "; --agree-below")
        run = run_bench(engine, items, names, seed=opts.seed, policy=policy, confirm=confirm,
                        on_progress=on_progress, cancel=cancel)
        meta = {"dataset": opts.dataset, "n": len(items), "seed": opts.seed, "router": engine.settings.router.model,
                "pool": pool_meta(engine), "policy": policy.to_json(),
                "agree_below": policy.agree_below if policy.agree_below is not None else settings.executor.agree_below,
                "samples": settings.executor.samples, "cache": opts.cache, "ledger": str(engine.ledger.path),
                "privacy": settings.privacy.mode, "budget": engine.budget_state().to_json()}
        return to_json(run, meta)
    finally:
        engine.close()


def run_command(pool: str | None, opts: Options) -> None:
    from r2local.bench.report import plot, text

    if opts.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise R2Error("--plot needs matplotlib", fix="pip install 'r2local[bench]'") from None
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    bar: Any = None

    def on_progress(done: int, total: int, label: str) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="bench", file=sys.stderr, show_pos=True, show_eta=True)
            bar.__enter__()
        bar.label = f"bench {label:<10}"
        bar.update(done - bar.pos)

    try:
        data = execute(pool, opts, cancel, on_progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.__exit__(None, None, None)
    if opts.plot:
        plot(data, Path(opts.plot))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if opts.as_json else text(data))
    if opts.plot and not opts.as_json:
        click.echo(f"plot: {opts.plot}", err=True)
    if not data["complete"]:
        sys.exit(130)
