"""Where a running `r2local serve` can be found: ``<home>/serve.json`` while it runs.

The server writes its URL, pid, ``--pool`` and the config file it read (path and
mtime) once it listens, and removes the file when it stops. `r2local ask` on the
same home reads it: a live pid with the same pool and an unchanged config means
the question can go to the server, whose models are warm. A file whose pid is
gone (the server was killed) is stale: it is removed and ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from r2local import paths


@dataclass(frozen=True)
class Running:
    """What serve.json says about the server that wrote it."""

    url: str  # the API's base URL, ending in /v1
    pid: int
    pool: str | None  # its --pool (None: config.toml's tiers or pool)
    config: str  # the config file it read
    config_mtime_ns: int | None  # that file's mtime when it started (None: no file)


def serve_json() -> Path:
    return paths.user_dir() / "serve.json"


def announce(url: str, pool: str | None) -> Running:
    """Write serve.json for this process (owner-only; replaced atomically)."""
    config = paths.config_path()
    running = Running(url, os.getpid(), pool, str(config), _mtime(config))
    path = serve_json()
    tmp = path.with_name(f".serve.json.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(running), f)
    os.replace(tmp, path)
    return running


def withdraw() -> None:
    """Remove serve.json if this process wrote it (another server may have replaced it since)."""
    running = read()
    if running is not None and running.pid == os.getpid():
        serve_json().unlink(missing_ok=True)


def read() -> Running | None:
    try:
        data = json.loads(serve_json().read_text())
        return Running(str(data["url"]), int(data["pid"]), data.get("pool"), str(data["config"]),
                       data.get("config_mtime_ns"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find(pool: str | None) -> tuple[Running | None, str | None]:
    """The running server that can answer for ``pool`` (the caller's --pool), else None and,
    when one runs but does not fit, why (to say once); a stale serve.json is removed."""
    running = read()
    if running is None:
        return None, None
    if not _alive(running.pid):
        serve_json().unlink(missing_ok=True)
        return None, None
    where = f"the running r2local serve at {running.url}"
    if running.pool != pool:
        return None, f"{where} uses --pool {running.pool or '(config)'}, not {pool or '(config)'}; answering in-process"
    config = paths.config_path()
    if str(config) != running.config or _mtime(config) != running.config_mtime_ns:
        return None, f"{where} started with another config than {config} now; answering in-process (restart it)"
    return running, None


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process there; the request finds out instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the pid was reused, our server is gone
        return False
    return True


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
