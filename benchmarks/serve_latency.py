"""What a running `r2local serve` saves; prints tables. Not a test.

    python -m benchmarks.serve_latency [--reps 3] [--pool demo]

- ask: `r2local ask --local-only` as a fresh process each time, answered by the running
  server (models warm) vs in-process (`--no-server`: imports, model loading, answer).
- first token: time to the first answer text, streamed through the server with the openai
  SDK vs the engine in this process (the app's path: the first AnswerDelta event), with the
  engine new (models not loaded yet) and warm.

Runs in a temporary R2LOCAL_HOME (its own ledger and token); models come from the usual
store (R2LOCAL_MODELS_DIR). The cloud tier has no key there: every answer is local.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from r2local.tables import table

QUESTIONS = [
    "A box holds 12 eggs. How many eggs are in 4 boxes?",
    "What is the capital of France?",
    "Sam reads 12 pages a day. How many days does he need for a 60-page book?",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(pool: str) -> tuple[subprocess.Popen, float]:
    """Start `r2local serve` (models warmed); returns once it listens, and the seconds it took."""
    from r2local.serve import discovery

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "r2local", "--pool", pool, "serve", "--port", str(_free_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while (running := discovery.read()) is None or running.pid != proc.pid:
        if proc.poll() is not None:
            raise SystemExit(f"r2local serve exited: {proc.stderr.read()}")
        time.sleep(0.1)
    return proc, time.perf_counter() - start


def _ask(pool: str, question: str, *flags: str) -> tuple[float, bool]:
    """One cold `r2local ask` process: wall seconds, and whether the server answered."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "r2local", "--pool", pool, "ask", question, "--json", "--local-only",
                           *flags], capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise SystemExit(f"r2local ask failed: {done.stderr}")
    return took, "answered by the running r2local serve" in done.stderr


def bench_ask(pool: str, reps: int) -> None:
    rows = []
    for label, flags in (("through the running server", ()), ("in-process (--no-server)", ("--no-server",))):
        times, served = [], []
        for rep in range(reps):
            took, by_server = _ask(pool, QUESTIONS[rep % len(QUESTIONS)], *flags)
            times.append(took)
            served.append(by_server)
        rows.append([label, f"{statistics.median(times):.2f}", " ".join(f"{t:.2f}" for t in times),
                     f"{sum(served)}/{reps}"])
    print("\n`r2local ask` as a fresh process (wall seconds)")
    print(table(["ask", "median s", "runs", "served"], rows, right={1}))


def _server_first_token(url: str, token: str, question: str) -> float:
    import openai

    api = openai.OpenAI(base_url=url, api_key=token, max_retries=0, timeout=600)
    start = time.perf_counter()
    first = None
    for chunk in api.chat.completions.create(model="r2local-local", stream=True,
                                             messages=[{"role": "user", "content": question}]):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
    return first if first is not None else float("nan")


def _engine_first_token(engine, question: str) -> float:
    from r2local.engine.events import AnswerDelta

    start, first = time.perf_counter(), threading.Event()
    seen: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, AnswerDelta) and event.text and not first.is_set():
            seen.append(time.perf_counter() - start)
            first.set()

    engine.ask(question, local_only=True, on_event=on_event)
    return seen[0] if seen else float("nan")


def bench_first_token(pool: str, reps: int, url: str, token: str) -> None:
    from r2local.engine.core import Engine

    rows = []
    server = [_server_first_token(url, token, QUESTIONS[r % len(QUESTIONS)]) for r in range(reps)]
    rows.append(["server, streamed (openai SDK)", f"{statistics.median(server):.2f}", " ".join(f"{t:.2f}" for t in server)])
    cold = []
    for r in range(reps):  # a new engine each time: the models load inside the first question
        engine = Engine.from_config(pool=pool)
        try:
            cold.append(_engine_first_token(engine, QUESTIONS[r % len(QUESTIONS)]))
        finally:
            engine.close()
    rows.append(["engine in-process, new", f"{statistics.median(cold):.2f}", " ".join(f"{t:.2f}" for t in cold)])
    engine = Engine.from_config(pool=pool)
    try:
        _engine_first_token(engine, QUESTIONS[0])  # warms it
        warm = [_engine_first_token(engine, QUESTIONS[r % len(QUESTIONS)]) for r in range(reps)]
    finally:
        engine.close()
    rows.append(["engine in-process, warm", f"{statistics.median(warm):.2f}", " ".join(f"{t:.2f}" for t in warm)])
    print("\nfirst answer token (seconds from the request)")
    print(table(["path", "median s", "runs"], rows, right={1}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pool", default="demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["R2LOCAL_HOME"] = home
        for var in ("OPENAI_API_KEY", "R2LOCAL_CONFIG"):
            os.environ.pop(var, None)
        from r2local.serve import discovery
        from r2local.serve.token import load_or_create

        proc, started = _serve(args.pool)
        try:
            print(f"r2local serve --pool {args.pool}: listening after {started:.1f} s (models warmed)")
            _ask(args.pool, QUESTIONS[0])  # the first request through the server: the second one is measured
            bench_ask(args.pool, args.reps)
            bench_first_token(args.pool, args.reps, discovery.read().url, load_or_create())
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
