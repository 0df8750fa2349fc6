"""TUI speed benchmarks; prints tables. Not a test.

    python -m benchmarks.tui [--runs 3] [--tokens 400]

- cold start: spawn `r2local` in a pseudo-terminal (as a user's shell would) and
  time until the main screen's question box is on the terminal.
- streaming: drive the real app (headless pilot) on a one-tier SmolLM2 engine,
  one long answer; compare when each chunk left the engine with when the UI
  handled it, and how long after the engine's last chunk the Markdown holds
  the whole answer.

Models come from the model store (`r2local models pull` first, or
R2LOCAL_MODELS_DIR pointing at fetched files).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from r2local.routing.strategies import fixed

# What the first paint shows: the question box's placeholder (its first letter
# carries the cursor, so it is matched from the second word), or, with no key,
# the first-run screen that opens over the main screen.
MAIN_MARKER = b"question and press Enter"
FIRST_RUN_MARKER = b"Welcome to r2local"
LONG_PROMPT = "Write a long story, about 300 words, about a lighthouse keeper and a lost cat."


def cold_start_once(home: Path, key: bool, timeout: float = 60.0) -> float:
    """Seconds from spawning `r2local` to its first screen on the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = dict(os.environ, R2LOCAL_HOME=str(home), TERM="xterm-256color", COLUMNS="140", LINES="40")
    env.pop("OPENAI_API_KEY", None)
    if key:  # otherwise the first-run screen also opens, over the main screen
        env["OPENAI_API_KEY"] = "sk-bench-not-used-0000"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "r2local", "--pool", "demo"], stdin=slave, stdout=slave, stderr=slave,
        env=env, start_new_session=True,
    )
    os.close(slave)
    seen, elapsed = b"", None
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if (MAIN_MARKER if key else FIRST_RUN_MARKER) in seen:
                    elapsed = time.perf_counter() - start
                    break
        os.write(master, b"\x11")  # Ctrl+Q
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        os.close(master)
    if elapsed is None:
        raise RuntimeError(f"no first screen within {timeout:.0f} s; last output: {seen[-400:]!r}")
    return elapsed


def bench_cold_start(runs: int) -> None:
    from r2local.tables import table

    rows = []
    for key in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            # The first run warms the OS file cache and creates the ledger; not counted.
            times = [cold_start_once(Path(tmp), key) for _ in range(runs + 1)]
        counted = times[1:]
        rows.append(["key set: main screen" if key else "no key: first-run screen", f"{statistics.median(counted):.2f}",
                     f"{min(counted):.2f}", f"{max(counted):.2f}", " ".join(f"{t:.2f}" for t in times)])
    print("\n## Cold start to first paint: `r2local --pool demo` in a 140x40 pseudo-terminal\n")
    print(table(["first paint", "median s", "min s", "max s", "runs (first warms the cache)"], rows))
    print("\nModels load lazily on the first question, so this is imports + config + ledger + layout.")


def _engine(home: Path, tokens: int) -> Any:
    from r2local.config import parse_settings
    from r2local.engine.core import Engine
    from r2local.store.ledger import Ledger

    cfg = {
        "router": {"model": "smollm2-135m-instruct"},
        "tiers": [{"name": "local", "backend": "llamacpp", "model": "smollm2-135m-instruct", "max_tokens": tokens}],
        "runtime": {"threads": 1, "threads_per_model": 1},
    }
    return Engine(parse_settings(cfg, home / "config.toml"), ledger=Ledger(home / "r2local.db"))


def _instrument(engine: Any, emitted: list[float], handled: list[float]) -> None:
    """Stamp each answer chunk when the engine emits it and when the UI has handled it."""
    from r2local.engine.events import AnswerDelta
    from r2local.routing.plan import single_plan

    from tui.widgets.transcript import Exchange

    original_ask = engine.ask

    def ask(question: str, *, on_event: Any, **kwargs: Any) -> Any:
        def stamped(event: Any) -> None:
            if isinstance(event, AnswerDelta) and event.text:
                emitted.append(time.perf_counter())
            on_event(event)

        # One subtask, so the whole answer is one stream from one model.
        return original_ask(question, on_event=stamped, strategy=fixed(single_plan(question)), **kwargs)

    engine.ask = ask
    original_write = Exchange.write

    async def write(self: Exchange, text: str, restart: bool = False) -> None:
        await original_write(self, text, restart)
        if text:
            handled.append(time.perf_counter())

    Exchange.write = write  # type: ignore[method-assign]


async def _stream_once(tokens: int) -> dict[str, float]:
    from tui.app import make_app
    from tui.screens.main import MainScreen
    from tui.widgets.transcript import Transcript

    emitted: list[float] = []
    handled: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = _engine(Path(tmp), tokens)
        _instrument(engine, emitted, handled)
        app = make_app(engine=engine, first_run_check=False)
        async with app.run_test(size=(140, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, MainScreen)
            screen.query_one("#ask").value = LONG_PROMPT
            await pilot.press("enter")
            while not emitted or screen.busy:
                await pilot.pause(0.01)
            done_engine = emitted[-1]
            answer = engine.ledger.questions(1)[0]["answer"] or ""
            markdown = screen.query_one(Transcript).query("Markdown").last()
            while markdown.source.strip() != answer.strip() and time.perf_counter() - done_engine < 30:
                await pilot.pause(0.005)
            shown = time.perf_counter()
    lags = [(h - e) * 1000 for e, h in zip(emitted, handled)]
    half = len(lags) // 2
    return {
        "chunks": len(emitted),
        "rate": (len(emitted) - 1) / (emitted[-1] - emitted[0]),
        "median": statistics.median(lags),
        "p95": statistics.quantiles(lags, n=20)[-1],
        "max": max(lags),
        "first_half": statistics.median(lags[:half]),
        "second_half": statistics.median(lags[half:]),
        "catch_up": (shown - done_engine) * 1000,
    }


def bench_streaming(runs: int, tokens: int) -> None:
    from r2local.tables import table

    rows = []
    for run in range(runs):
        r = asyncio.run(_stream_once(tokens))
        rows.append([run + 1, r["chunks"], f"{r['rate']:.1f}", f"{r['median']:.1f}", f"{r['p95']:.1f}",
                     f"{r['max']:.0f}", f"{r['first_half']:.1f} / {r['second_half']:.1f}", f"{r['catch_up']:.0f}"])
    print(f"\n## Streaming: SmolLM2-135M, 1 thread, up to {tokens} tokens, one Markdown answer (headless pilot)\n")
    print(table(["run", "chunks", "engine chunks/s", "UI lag median ms", "p95 ms", "max ms",
                 "median 1st / 2nd half ms", "last chunk -> shown ms"], rows, right={0, 1, 2, 3, 4, 5, 7}))
    print("\nUI lag = engine emitted a chunk -> the UI thread appended it to the Markdown stream.")
    print("Keeping up means a lag that does not grow over the answer and a small catch-up at the end.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="cold,stream")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=400)
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if "cold" in parts:
        bench_cold_start(args.runs)
    if "stream" in parts:
        bench_streaming(args.runs, args.tokens)


if __name__ == "__main__":
    main()
