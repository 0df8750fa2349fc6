"""Which keyring backend r2local stores keys in, and how safe that is.

``keyring`` picks the highest-priority backend it can import. Installing
``keyrings.alt`` (the test extra does) therefore silently turns a machine
without an OS keyring into one that writes keys to a plaintext file. r2local
honours a backend the user chose (``PYTHON_KEYRING_BACKEND`` or keyringrc.cfg),
but never auto-selects one of keyrings.alt's; and it says of every backend
whether it is secure, encrypted, plaintext or absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["secure", "encrypted", "plaintext", "none", "unknown"]

# Fully qualified class name -> (kind, where the key lives, in words).
_KNOWN: dict[str, tuple[Kind, str]] = {
    "keyring.backends.macOS.Keyring": ("secure", "the macOS Keychain"),
    "keyring.backends.Windows.WinVaultKeyring": ("secure", "Windows Credential Manager"),
    "keyring.backends.SecretService.Keyring": ("secure", "the Secret Service keyring (GNOME Keyring, KWallet)"),
    "keyring.backends.libsecret.Keyring": ("secure", "the Secret Service keyring via libsecret"),
    "keyring.backends.kwallet.DBusKeyring": ("secure", "KWallet"),
    "keyring.backends.kwallet.DBusKeyringKWallet4": ("secure", "KWallet 4"),
    "keyring.backends.fail.Keyring": ("none", "nowhere: no keyring backend is available"),
    "keyring.backends.null.Keyring": ("none", "nowhere: the null keyring stores nothing"),
    "keyrings.alt.file.PlaintextKeyring": ("plaintext", "a plaintext file"),
    "keyrings.alt.file.EncryptedKeyring": ("encrypted", "a password-encrypted file"),
    "keyrings.alt.Windows.EncryptedKeyring": ("encrypted", "a DPAPI-encrypted file"),
    "keyrings.alt.Windows.RegistryKeyring": ("encrypted", "the Windows registry, DPAPI-encrypted"),
    "keyrings.alt.Gnome.Keyring": ("secure", "GNOME Keyring"),
    "keyrings.cryptfile.cryptfile.CryptFileKeyring": ("encrypted", "a password-encrypted file"),
}


@dataclass(frozen=True)
class KeyringInfo:
    """The active backend: its class, how safe it is, and where a key lands."""

    name: str  # fully qualified class name
    kind: Kind
    where: str  # e.g. "the macOS Keychain", "a plaintext file (/home/me/.local/share/...)"
    chosen_by: str  # "PYTHON_KEYRING_BACKEND", "keyringrc.cfg", "auto" or "this process"

    @property
    def secure(self) -> bool:
        return self.kind in ("secure", "encrypted")

    @property
    def usable(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        return f"{self.where} ({self.name})"

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.name, "kind": self.kind, "secure": self.secure, "where": self.where,
                "chosen_by": self.chosen_by}


def _qualname(kr: Any) -> str:
    cls = type(kr)
    return f"{cls.__module__}.{cls.__qualname__}"


def _from_alt(kr: Any) -> bool:
    from keyring.backends.chainer import ChainerBackend

    if isinstance(kr, ChainerBackend):
        return any(_from_alt(b) for b in kr.backends)
    return type(kr).__module__.startswith("keyrings.alt")


def _not_alt(kr: Any) -> bool:
    return not type(kr).__module__.startswith("keyrings.alt")


def _configured() -> str | None:
    """How the user chose a backend explicitly, if they did."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return "PYTHON_KEYRING_BACKEND"
    try:
        from keyring.core import _config_path

        path = _config_path()
        if path.is_file() and "default-keyring" in path.read_text(encoding="utf-8", errors="replace"):
            return "keyringrc.cfg"
    except Exception:  # an unreadable config is keyring's business, not a reason to fail
        return None
    return None


def backend() -> Any:
    """The keyring backend r2local uses (never keyrings.alt unless the user chose it)."""
    import keyring
    import keyring.core

    kr = keyring.get_keyring()
    if _configured() is None and _from_alt(kr):
        # Auto-detected only because keyrings.alt is importable (e.g. the test extra):
        # detect again without it, as if it were not installed.
        keyring.core.init_backend(limit=_not_alt)
        kr = keyring.get_keyring()
    return kr


def classify(kr: Any, chosen_by: str = "auto") -> KeyringInfo:
    from keyring.backends.chainer import ChainerBackend

    name = _qualname(kr)
    if isinstance(kr, ChainerBackend):
        chained = kr.backends
        if not chained:
            return KeyringInfo(name, "none", "nowhere: no keyring backend is available", chosen_by)
        first = classify(chained[0], chosen_by)  # set_password writes to the first that accepts it
        return KeyringInfo(name, first.kind, first.where, chosen_by)
    kind, where = _KNOWN.get(name, (None, None))
    if kind is None:
        lowered = name.lower()
        if "plaintext" in lowered:
            kind, where = "plaintext", "a plaintext file"
        elif "crypt" in lowered:
            kind, where = "encrypted", "an encrypted store"
        else:
            kind, where = "unknown", "a keyring backend r2local does not know"
    path = getattr(kr, "file_path", None)
    if isinstance(path, str) and kind in ("plaintext", "encrypted"):
        where = f"{where} ({path})"
    return KeyringInfo(name, kind, where, chosen_by)


def active() -> KeyringInfo:
    """The backend r2local stores keys in, classified."""
    kr = backend()
    return classify(kr, _configured() or "auto")


PLAINTEXT_BACKEND = "keyrings.alt.file.PlaintextKeyring"
ENCRYPTED_SETUP = ("pip install keyrings.cryptfile",
                   "export PYTHON_KEYRING_BACKEND=keyrings.cryptfile.cryptfile.CryptFileKeyring")


def choose_plaintext_file() -> KeyringInfo:
    """With no keyring at all and the user's explicit consent: make keyrings.alt's
    plaintext file the keyring, for this process and (through keyring's own
    keyringrc.cfg, which r2local honours) for later runs. Never overrides a choice
    the user made (PYTHON_KEYRING_BACKEND, an existing keyringrc.cfg)."""
    import keyring
    from keyring.core import _config_path

    from r2local.errors import KeyringUnavailable

    try:
        from keyrings.alt.file import PlaintextKeyring
    except ImportError:
        raise KeyringUnavailable("keyrings.alt (the plaintext file keyring) is not installed",
                                 fix="pip install keyrings.alt, then try again") from None
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND")
    if chosen and chosen != PLAINTEXT_BACKEND:
        raise KeyringUnavailable(f"PYTHON_KEYRING_BACKEND is set to {chosen}, which r2local will not override",
                                 fix=f"unset it (or set it to {PLAINTEXT_BACKEND}) and start r2local again")
    path = _config_path()
    if not chosen:
        if path.is_file() and "default-keyring" in path.read_text(encoding="utf-8", errors="replace"):
            raise KeyringUnavailable(f"{path} already chooses a keyring backend, which r2local will not override",
                                     fix=f"set default-keyring = {PLAINTEXT_BACKEND} there yourself")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"[backend]\ndefault-keyring = {PLAINTEXT_BACKEND}\n", encoding="utf-8")
    kr = PlaintextKeyring()
    keyring.set_keyring(kr)
    return classify(kr, "keyringrc.cfg" if not chosen else "PYTHON_KEYRING_BACKEND")
