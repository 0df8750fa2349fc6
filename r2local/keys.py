"""Cloud API keys in the OS keyring (service "r2local", user = tier name).

``OPENAI_API_KEY`` in the environment is an explicit override. A key is never
logged, stored elsewhere, or put in an error message; only its last 4
characters are ever shown.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .errors import KeyringUnavailable, MissingKey

SERVICE = "r2local"
ENV_KEY = "OPENAI_API_KEY"

_NO_KEYRING_FIX = (
    "install an OS keyring backend (e.g. `pip install keyrings.alt` for a file-based one), "
    f"or export {ENV_KEY}=... for this shell"
)


@dataclass(frozen=True)
class KeyStatus:
    tier: str
    source: str | None  # "env", "keyring" or None
    last4: str | None
    problem: str | None = None

    @property
    def is_set(self) -> bool:
        return self.source is not None


# Every key this process has read, so that any text we write or show can be
# scrubbed of it (defence in depth: no code path is meant to carry a key).
_seen: set[str] = set()
_seen_lock = threading.Lock()
MIN_SCRUB_LEN = 8  # shorter "keys" (e.g. "none" for keyless servers) are not secrets


def remember(key: str | None) -> str | None:
    if key and len(key) >= MIN_SCRUB_LEN:
        with _seen_lock:
            _seen.add(key)
    return key


def known_keys() -> list[str]:
    with _seen_lock:
        return sorted(_seen, key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` with every key this process has read replaced by its mask."""
    if not isinstance(text, str) or not _seen:
        return text
    for key in known_keys():
        if key in text:
            text = text.replace(key, mask(key))
    return text


def mask(key: str) -> str:
    return f"…{key[-4:]}" if len(key) >= 8 else "…"


def _backend():
    import keyring
    from keyring.backends import fail

    kr = keyring.get_keyring()
    if isinstance(kr, fail.Keyring):
        raise KeyringUnavailable("this system has no usable keyring backend", fix=_NO_KEYRING_FIX)
    return kr


def _call(fn_name: str, *args: str):
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        return getattr(_backend(), fn_name)(SERVICE, *args)
    except PasswordDeleteError:
        raise
    except KeyringError as exc:
        # Exception text from keyring backends never contains the secret.
        raise KeyringUnavailable(f"the keyring refused the request: {type(exc).__name__}", fix=_NO_KEYRING_FIX) from None


def set_key(tier: str, key: str) -> None:
    key = key.strip()
    if not key:
        raise MissingKey("the key is empty", fix="paste the whole key, or pipe it: `echo $KEY | r2local key set`")
    if any(c.isspace() for c in key):
        raise MissingKey("the key contains whitespace", fix="paste the key alone, on one line")
    remember(key)
    _call("set_password", tier, key)


def keyring_key(tier: str) -> str | None:
    return remember(_call("get_password", tier))


def delete_key(tier: str) -> bool:
    from keyring.errors import PasswordDeleteError

    try:
        _call("delete_password", tier)
    except PasswordDeleteError:
        return False
    return True


def get_key(tier: str) -> str | None:
    """The key for a tier: the env override, else the keyring, else None."""
    env = remember(os.environ.get(ENV_KEY))
    if env:
        return env
    try:
        return keyring_key(tier)
    except KeyringUnavailable:
        return None


def require_key(tier: str) -> str:
    key = get_key(tier)
    if key is None:
        raise MissingKey(f"no API key for tier {tier!r}", fix=f"run `r2local key set --tier {tier}` (or export {ENV_KEY})")
    return key


def status(tier: str) -> KeyStatus:
    env = remember(os.environ.get(ENV_KEY))
    if env:
        return KeyStatus(tier, "env", env[-4:])
    try:
        key = keyring_key(tier)
    except KeyringUnavailable as exc:
        return KeyStatus(tier, None, None, problem=str(exc))
    return KeyStatus(tier, "keyring", key[-4:]) if key else KeyStatus(tier, None, None)
