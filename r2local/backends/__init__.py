"""Backend registry: a plain dict filled by the ``register`` decorator.

Built-in backends register themselves through the same decorator a plugin
would use; their heavy libraries are imported only when a model is loaded.
"""

from __future__ import annotations

from typing import Any

from r2local.registry import registrar
from r2local.backends.base import (
    Backend,
    BackendSpec,
    Chunk,
    Completion,
    LabelScorer,
    Message,
    Usage,
    complete,
)

BACKENDS: dict[str, Any] = {}  # name -> backend class (with build(spec) and capability flags)


register = registrar(BACKENDS)


# Imported for their @register side effect; each is cheap to import.
from r2local.backends import llamacpp, mlx, openai_compat  # noqa: E402,F401

__all__ = ["BACKENDS", "Backend", "BackendSpec", "backend_class", "Chunk", "Completion", "LabelScorer", "Message", "Usage", "complete", "register"]


def backend_class(name: str) -> Any:
    """The registered backend class called ``name``; an unknown name is an error, never a default."""
    from r2local.errors import ConfigError

    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}", fix=f"use one of: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]
