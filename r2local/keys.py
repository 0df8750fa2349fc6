"""Cloud API keys in the OS keyring (service "r2local", user = tier name).

``OPENAI_API_KEY`` in the environment is an explicit override. A key is never
logged, stored elsewhere, or put in an error message; only its last 4
characters are ever shown.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from r2local.errors import KeyringUnavailable, MissingKey, PlaintextRefused

SERVICE = "r2local"
ENV_KEY = "OPENAI_API_KEY"

PLAINTEXT_ENV = "R2LOCAL_ALLOW_PLAINTEXT_KEY"  # "1": the user accepts a plaintext keyring file

_SECURE_FIX = (
    "use a real OS keyring (macOS Keychain, Windows Credential Manager, or a Secret Service keyring such as "
    "gnome-keyring or KWallet on Linux), or an encrypted one (`pip install keyrings.cryptfile`, then "
    "`export PYTHON_KEYRING_BACKEND=keyrings.cryptfile.cryptfile.CryptFileKeyring`), "
    f"or export {ENV_KEY}=... for this shell"
)
_NO_KEYRING_FIX = _SECURE_FIX + (
    "; to accept a plaintext file instead: `pip install keyrings.alt`, "
    "`export PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring` and `r2local key set --plaintext`"
)
_PLAINTEXT_FIX = _SECURE_FIX + "; or accept the plaintext file: `r2local key set --plaintext`"

@dataclass(frozen=True)
class KeyStatus:
    tier: str
    source: str | None  # "env", "keyring" or None
    last4: str | None
    problem: str | None = None
    where: str | None = None  # where the key lives, in words ("$OPENAI_API_KEY", "a plaintext file (...)")
    secure: bool | None = None  # whether that place is a secure or encrypted store (None: no key)

    @property
    def is_set(self) -> bool:
        return self.source is not None

    def short(self) -> str:
        """One line for a status bar: "key …WXYZ (keychain)", "no key"."""
        if not self.is_set:
            return "no key"
        place = "env" if self.source == "env" else ("keyring" if self.secure else "PLAINTEXT file")
        return f"key …{self.last4} ({place})"


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
    from r2local.keystore import backend, classify

    kr = backend()
    if not classify(kr).usable:
        raise KeyringUnavailable("this system has no usable keyring backend", fix=_NO_KEYRING_FIX)
    return kr


def plaintext_allowed(flag: bool = False) -> bool:
    """Whether the user said a plaintext keyring file is acceptable (flag or env)."""
    return flag or os.environ.get(PLAINTEXT_ENV, "").strip().lower() in ("1", "yes", "true")


def _call(fn_name: str, *args: str):
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        return getattr(_backend(), fn_name)(SERVICE, *args)
    except PasswordDeleteError:
        raise
    except KeyringError as exc:
        # Exception text from keyring backends never contains the secret.
        raise KeyringUnavailable(f"the keyring refused the request: {type(exc).__name__}", fix=_NO_KEYRING_FIX) from None


def set_key(tier: str, key: str, *, allow_plaintext: bool = False) -> str:
    """Store a tier's key; returns where it went, in words.

    Refuses a backend that has nowhere to put it, and a plaintext one unless
    ``allow_plaintext`` (or R2LOCAL_ALLOW_PLAINTEXT_KEY=1) says the user accepts it.
    """
    from r2local.keystore import classify

    key = _checked(key)
    remember(key)
    info = classify(_backend())
    if info.kind == "plaintext" and not plaintext_allowed(allow_plaintext):
        raise PlaintextRefused(f"the keyring backend stores keys in {info.describe()}; the key was not stored",
                               fix=_PLAINTEXT_FIX)
    _call("set_password", tier, key)
    return info.where


def _checked(key: str) -> str:
    key = key.strip()
    if not key:
        raise MissingKey("the key is empty", fix="paste the whole key, or pipe it: `echo $KEY | r2local key set`")
    if any(c.isspace() for c in key):
        raise MissingKey("the key contains whitespace", fix="paste the key alone, on one line")
    return key


def use_for_this_run(key: str) -> str:
    """Use ``key`` as the explicit override ($OPENAI_API_KEY) for this process only: nothing is stored."""
    key = _checked(key)
    remember(key)
    os.environ[ENV_KEY] = key
    return f"${ENV_KEY}, for this run only"


def set_key_in_plaintext_file(tier: str, key: str) -> str:
    """No keyring at all, and the user ticked the consent: store the key in keyrings.alt's plaintext file."""
    from r2local.keystore import choose_plaintext_file

    key = _checked(key)
    choose_plaintext_file()
    return set_key(tier, key, allow_plaintext=True)


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
        return KeyStatus(tier, "env", env[-4:], where=f"${ENV_KEY}", secure=True)
    try:
        key = keyring_key(tier)
    except KeyringUnavailable as exc:
        return KeyStatus(tier, None, None, problem=exc.message)
    if not key:
        return KeyStatus(tier, None, None)
    from r2local.keystore import active

    info = active()
    return KeyStatus(tier, "keyring", key[-4:], where=info.where, secure=info.secure)
