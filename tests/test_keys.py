import subprocess
import sys

import keyring
import pytest
from keyring.backends import fail

from r2local import keys
from r2local.errors import KeyringUnavailable, MissingKey

SECRET = "sk-live-abcdefgh12345678WXYZ"


def r2(*args, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "r2local", *args], input=input, capture_output=True, text=True, env=env)


def test_cli_set_status_delete_through_the_real_file_keyring(r2home, tmp_path):
    out = r2("key", "set", input=SECRET + "\n")
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr and "…WXYZ" in out.stdout
    # Stored in the real keyring file of this test's XDG_DATA_HOME.
    stored = list((tmp_path / "xdg").rglob("keyring_pass.cfg"))
    assert stored and keys.keyring_key("cloud") == SECRET
    status = r2("key", "status")
    assert status.returncode == 0 and "key set in the keyring (…WXYZ)" in status.stdout
    assert SECRET not in status.stdout
    assert r2("key", "delete").returncode == 0
    gone = r2("key", "status")
    assert gone.returncode == 1 and "no key" in gone.stdout and "r2local key set --tier cloud" in gone.stdout


def test_env_key_overrides_keyring(monkeypatch):
    keys.set_key("cloud", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0000")
    assert keys.get_key("cloud") == "sk-from-env-0000"
    assert keys.status("cloud").source == "env"


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
    assert not st.is_set and "no usable keyring" in st.problem
    assert keys.get_key("cloud") is None


def test_no_keyring_cli_message_has_no_traceback(monkeypatch):
    import os

    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    out = r2("key", "set", input=SECRET + "\n", env=env)
    assert out.returncode == 1
    assert "error: this system has no usable keyring backend" in out.stderr
    assert "fix:" in out.stderr and "Traceback" not in out.stderr and SECRET not in out.stderr
