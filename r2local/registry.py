"""Plain-dict registries: a name -> thing dict and the decorator that fills it.

Built-ins register through the same decorator a plugin would use.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """The ``@register("name")`` decorator for ``table``."""

    def register(name: str) -> Callable[[T], T]:
        def deco(thing: T) -> T:
            table[name] = thing
            return thing

        return deco

    return register
