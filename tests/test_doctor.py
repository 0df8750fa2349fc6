"""`r2local doctor [--json] [--cloud]` as a user runs it."""

import json
import subprocess
import sys

from r2local import keys, paths
from r2local.backends import llamaprobe

from .conftest import CLOUD_KEY, plumbing_config, to_toml, write_config

IDS = ["config", "llamacpp", "mlx", "keyring", "key", "models", "threads", "disk", "policy"]


def doctor(*args, pool=None):
    first = ["--pool", pool] if pool else []
    out = subprocess.run([sys.executable, "-m", "r2local", *first, "doctor", *args], capture_output=True, text=True,
                         timeout=300)
    return out


def checks(out) -> dict:
    data = json.loads(out.stdout)
    return {c["id"]: c for c in data["checks"]}, data


def test_json_schema_and_a_healthy_machine(r2home, proxy):
    write_config(r2home, to_toml(plumbing_config(proxy.url)))
    keys.set_key("cloud", CLOUD_KEY)
    out = doctor("--json")
    assert out.returncode == 0, out.stderr
    by_id, data = checks(out)
    assert set(data) == {"ok", "r2local", "python", "platform", "cloud_checked", "checks"}
    assert data["ok"] is True and data["cloud_checked"] is False
    assert [c["id"] for c in data["checks"]] == IDS
    for c in data["checks"]:
        assert set(c) == {"id", "status", "summary", "fix", "data"} and c["status"] in ("ok", "warn", "fail")
        assert (c["fix"] is None) == (c["status"] == "ok")
    assert by_id["llamacpp"]["status"] == "ok" and "AVX2" in by_id["llamacpp"]["data"]["features"]
    assert by_id["models"]["status"] == "ok" and by_id["models"]["data"]["models"][0]["state"] == "ok"
    # The tests' keyring is a plaintext file: said plainly, with the fix.
    assert by_id["keyring"]["status"] == "warn" and by_id["keyring"]["data"]["kind"] == "plaintext"
    assert by_id["key"]["status"] == "warn" and "unencrypted" in by_id["key"]["summary"]
    assert CLOUD_KEY not in out.stdout and CLOUD_KEY[-4:] in out.stdout


def test_the_policy_line_names_what_routes(r2home, proxy):
    """The demo pool's local models route by the policy shipped for them; a pool of other
    models by the unmeasured default (the plumbing pool runs SmolLM2 as its "local" tier)."""
    by_id, _ = checks(doctor("--json", pool="demo"))
    assert by_id["policy"]["status"] == "ok" and by_id["policy"]["data"]["source"].startswith("shipped with r2local")
    assert "short" in by_id["policy"]["data"]["kinds"] and "short" in by_id["policy"]["summary"]
    assert by_id["policy"]["data"]["split_adapter"] == "split-qwen2.5-coder-0.5b-instruct.gguf"
    assert "split adapter" in by_id["policy"]["summary"]
    write_config(r2home, to_toml(plumbing_config(proxy.url)))
    by_id, _ = checks(doctor("--json"))
    assert by_id["policy"]["data"]["source"] == "default" and "unmeasured default" in by_id["policy"]["summary"]
    assert by_id["policy"]["data"]["split_adapter"] is None  # its router is SmolLM2: no adapter shipped for it


def test_cloud_check_sends_one_request_and_says_whether_the_key_works(r2home, proxy):
    write_config(r2home, to_toml(plumbing_config(proxy.url)))
    keys.set_key("cloud", CLOUD_KEY)
    by_id, data = checks(doctor("--json", "--cloud"))
    assert data["cloud_checked"] and by_id["cloud"]["status"] in ("ok", "warn")
    assert "reachable, key accepted" in by_id["cloud"]["summary"]
    assert [r["path"] for r in proxy.requests] == ["/v1/models"]  # one request, and no completion
    keys.set_key("cloud", "sk-wrong-key-0123456789abcdef")
    by_id, data = checks(doctor("--json", "--cloud"))
    assert by_id["cloud"]["status"] == "fail" and "rejected the key" in by_id["cloud"]["summary"]
    assert data["ok"] is False


def test_missing_models_and_bad_config(r2home, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "empty-store"))
    out = doctor("--json")
    by_id, _ = checks(out)
    assert out.returncode == 0  # missing models are a warning: `models pull` fixes them
    assert by_id["models"]["status"] == "warn" and by_id["models"]["fix"] == "run `r2local models pull`"
    assert by_id["disk"]["data"]["needed_bytes"] > 500 * 2**20
    write_config(r2home, "[router\n")
    out = doctor()
    assert out.returncode == 1 and "fail  config" in out.stdout and "invalid TOML" in out.stdout
    assert "fix:" in out.stdout and "Traceback" not in out.stderr
    assert "ok    llamacpp" in out.stdout  # the other checks still run


def test_a_crashing_llama_build_is_a_failure_with_the_rebuild_command(r2home):
    version, key = llamaprobe.library_key()
    crashed = llamaprobe.Verdict("crashed", "SIGSEGV in its first decode", version,
                                 "CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | ", key, "2026-01-01T00:00:00+00:00")
    (paths.cache_dir() / "llamacpp-probe.json").write_text(json.dumps(crashed.to_json()))
    out = doctor()
    assert out.returncode == 1
    assert "fail  llamacpp  llama.cpp crashes on this machine: SIGSEGV in its first decode" in out.stdout
    assert 'fix: rebuild llama-cpp-python: CFLAGS="-mno-amx-tile' in out.stdout
