"""Backend registry: a plain dict filled by the ``register`` decorator.

Built-in backends register themselves through the same decorator a plugin
would use; their heavy libraries are imported only when a model is loaded.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from .base import Backend, Chunk, Completion, LabelScorer, Message, Usage, complete

T = TypeVar("T")

BACKENDS: dict[str, type] = {}


def register(name: str) -> Callable[[type[T]], type[T]]:
    def deco(cls: type[T]) -> type[T]:
        BACKENDS[name] = cls
        return cls

    return deco


# Imported for their @register side effect; each is cheap to import.
from . import llamacpp, mlx, openai_compat  # noqa: E402,F401

__all__ = ["BACKENDS", "Backend", "Chunk", "Completion", "LabelScorer", "Message", "Usage", "complete", "register"]
