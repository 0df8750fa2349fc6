import os
import subprocess
import sys

import keyring
import keyrings.alt.file
import pytest
from keyring.backends import fail

from r2local import keys, keystore
from r2local.errors import KeyringUnavailable, MissingKey, PlaintextRefused

SECRET = "sk-live-abcdefgh12345678WXYZ"


def r2(*args, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "r2local", *args], input=input, capture_output=True, text=True, env=env)


def test_cli_set_status_delete_through_the_real_file_keyring(r2home, tmp_path):
    out = r2("key", "set", "--plaintext", input=SECRET + "\n")
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr and "…WXYZ" in out.stdout
    assert "stored in a plaintext file (" in out.stdout
    # Stored in the real keyring file of this test's XDG_DATA_HOME.
    stored = list((tmp_path / "xdg").rglob("keyring_pass.cfg"))
    assert stored and keys.keyring_key("cloud") == SECRET
    status = r2("key", "status")
    assert status.returncode == 0
    assert f"key set (…WXYZ) in a plaintext file ({stored[0]})" in status.stdout
    assert "not encrypted" in status.stdout and SECRET not in status.stdout
    assert r2("key", "delete").returncode == 0
    gone = r2("key", "status")
    assert gone.returncode == 1 and "no key" in gone.stdout and "r2local key set --tier cloud" in gone.stdout


def test_plaintext_backend_refuses_without_consent(r2home, tmp_path, monkeypatch):
    monkeypatch.delenv(keys.PLAINTEXT_ENV)
    with pytest.raises(PlaintextRefused) as info:
        keys.set_key("cloud", SECRET)
    assert "plaintext file" in info.value.message and "--plaintext" in info.value.fix
    assert "OPENAI_API_KEY" in info.value.fix and SECRET not in str(info.value)
    assert not list((tmp_path / "xdg").rglob("keyring_pass.cfg"))
    env = {k: v for k, v in os.environ.items() if k != keys.PLAINTEXT_ENV}
    out = r2("key", "set", input=SECRET + "\n", env=env)
    assert out.returncode == 1 and "not stored" in out.stderr and "--plaintext" in out.stderr
    assert "Traceback" not in out.stderr and SECRET not in out.stderr
    assert not list((tmp_path / "xdg").rglob("keyring_pass.cfg"))
    # The explicit flag is the consent.
    assert "plaintext file" in keys.set_key("cloud", SECRET, allow_plaintext=True)
    assert keys.keyring_key("cloud") == SECRET


def test_env_key_overrides_keyring(monkeypatch):
    keys.set_key("cloud", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0000")
    assert keys.get_key("cloud") == "sk-from-env-0000"
    st = keys.status("cloud")
    assert st.source == "env" and st.where == "$OPENAI_API_KEY" and st.short() == "key …0000 (env)"


def test_status_says_where_the_key_lives():
    keys.set_key("cloud", SECRET)
    st = keys.status("cloud")
    assert st.source == "keyring" and not st.secure and "plaintext file" in st.where
    assert st.short() == "key …WXYZ (PLAINTEXT file)"


def test_empty_or_spaced_key_is_refused():
    with pytest.raises(MissingKey):
        keys.set_key("cloud", "   ")
    with pytest.raises(MissingKey):
        keys.set_key("cloud", "sk-abc def")


def test_no_keyring_gives_the_fix(monkeypatch):
    keyring.set_keyring(fail.Keyring())
    with pytest.raises(KeyringUnavailable) as info:
        keys.set_key("cloud", SECRET)
    assert "keyrings.alt" in info.value.fix and "OPENAI_API_KEY" in info.value.fix
    st = keys.status("cloud")
    assert not st.is_set and st.problem == "this system has no usable keyring backend"  # one line, no fix inside
    assert keys.get_key("cloud") is None


def test_no_keyring_cli_message_has_no_traceback(monkeypatch):
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    out = r2("key", "set", "--plaintext", input=SECRET + "\n", env=env)
    assert out.returncode == 1
    assert "error: this system has no usable keyring backend" in out.stderr
    assert "fix:" in out.stderr and "Traceback" not in out.stderr and SECRET not in out.stderr


@pytest.mark.parametrize("name, kind, secure", [
    ("keyring.backends.fail.Keyring", "none", False),
    ("keyring.backends.null.Keyring", "none", False),
    ("keyrings.alt.file.PlaintextKeyring", "plaintext", False),
    ("keyrings.alt.file.EncryptedKeyring", "encrypted", True),
])
def test_classify_backends(name, kind, secure):
    from keyring.core import _load_keyring_class

    cls = _load_keyring_class(name)
    info = keystore.classify(cls.__new__(cls))  # no __init__: the encrypted one needs pycryptodome
    assert (info.name, info.kind, info.secure) == (name, kind, secure)


def test_keyrings_alt_is_never_auto_selected(monkeypatch):
    """Installing the test extra (keyrings.alt) must not change what a user's r2local picks."""
    import keyring.backend
    import keyring.core

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    monkeypatch.setattr(keyring.backend, "_limit", None)  # restored afterwards: init_backend sets it
    monkeypatch.setattr(keystore, "_configured", lambda: None)  # no keyringrc.cfg either
    # As keyring itself would auto-detect on a headless box with keyrings.alt installed:
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [keyrings.alt.file.PlaintextKeyring()])
    keyring.core.init_backend()
    assert isinstance(keyring.get_keyring(), keyrings.alt.file.PlaintextKeyring)
    info = keystore.active()
    assert info.kind == "none" and info.chosen_by == "auto"
    with pytest.raises(KeyringUnavailable):
        keys.set_key("cloud", SECRET, allow_plaintext=True)


def test_a_chosen_keyrings_alt_backend_is_honoured(monkeypatch):
    info = keystore.active()  # PYTHON_KEYRING_BACKEND names it (the r2home fixture)
    assert info.name == "keyrings.alt.file.PlaintextKeyring" and info.chosen_by == "PYTHON_KEYRING_BACKEND"
