"""Start `python -m llama_cpp.server` on loopback as a stand-in cloud."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def stand_in_server(model: Path, *, api_key: str, alias: str = "stand-in-cloud", n_ctx: int = 4096,
                    threads: int = 1, log: Path | None = None) -> Iterator[str]:
    """Yields the base URL (".../v1") once the server answers /v1/models."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--api_key", api_key, "--n_threads", str(threads), "--n_threads_batch", str(threads)]
    cmd += ["--n_ctx", str(n_ctx), "--model_alias", alias, "--interrupt_requests", "False"]
    out = log.open("wb") if log else subprocess.DEVNULL
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"stand-in server exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("stand-in server did not start within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()
