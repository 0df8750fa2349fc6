"""The server's bearer token: generated once, kept under the r2local home (owner-only)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from r2local import paths


def token_path() -> Path:
    return paths.user_dir() / "serve-token"


def load_or_create() -> str:
    """The stored token, or a new one written with mode 0600."""
    path = token_path()
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = "r2l-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
