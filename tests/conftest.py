"""Shared fixtures: real models from PyPI, a real OpenAI-compatible server as
the cloud, a real keyring file backend, a temp R2LOCAL_HOME per test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from r2local import fetch, paths
from r2local.config import parse_settings
from r2local.manifests import load_manifests
from tests.support.faultproxy import FaultProxy
from tests.support.standin import stand_in_server

ROOT = Path(__file__).resolve().parent.parent
CLOUD_KEY = "sk-test-R2LEAKCANARY-7f3a9c"
SMOL = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"


_PROBE: dict = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Probe llama.cpp once, in a subprocess: a build that crashes on this machine
    ends the run with the cause and the rebuild command, not a dead interpreter."""
    from r2local.backends import llamaprobe

    verdict = llamaprobe.check()
    if verdict.status in ("crashed", "fallback"):
        pytest.exit(f"{verdict.message()}\n  fix: rebuild llama-cpp-python: {verdict.rebuild_command()}", returncode=3)
    if verdict.status == "ok":
        _PROBE.update(verdict.to_json())


def _user_store() -> Path:
    """The model store the user's own r2local uses (computed, not created)."""
    home = os.environ.get(paths.HOME_ENV)
    if home:
        return Path(home).expanduser() / "cache" / "models"
    import platformdirs

    return platformdirs.user_cache_path("r2local") / "models"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """One model store for the whole run (R2LOCAL_MODELS_DIR, or .pytest_models).

    Without R2LOCAL_MODELS_DIR, demo models the user's own store already holds
    (verified) are linked in, not downloaded again.
    """
    explicit = os.environ.get(paths.MODELS_ENV)
    path = Path(explicit or ROOT / ".pytest_models")
    path.mkdir(parents=True, exist_ok=True)
    os.environ[paths.MODELS_ENV] = str(path)
    if not explicit:
        manifests = load_manifests()
        for name in (SMOL, QWEN):
            fetch.link_from(manifests[name], _user_store())
    return path


def _model(models_dir: Path, name: str) -> Path:
    return fetch.resolve(load_manifests()[name])


@pytest.fixture(scope="session")
def smol_path(models_dir: Path) -> Path:
    return _model(models_dir, SMOL)


@pytest.fixture(scope="session")
def qwen_path(models_dir: Path) -> Path:
    return _model(models_dir, QWEN)


@pytest.fixture(autouse=True)
def r2home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> Path:
    """Every test gets its own R2LOCAL_HOME and keyring file, and no env key."""
    home = tmp_path / "home"
    if _PROBE:  # the session's probe verdict, so that each test's r2local does not probe again
        (home / "cache").mkdir(parents=True)
        (home / "cache" / "llamacpp-probe.json").write_text(json.dumps(_PROBE))
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    monkeypatch.setenv(paths.MODELS_ENV, str(models_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # The tests choose their keyring explicitly (a real file backend in a temp dir)
    # and accept that it is plaintext; tests of the refusal unset the consent.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("R2LOCAL_ALLOW_PLAINTEXT_KEY", "1")
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", paths.CONFIG_ENV):
        monkeypatch.delenv(var, raising=False)
    import keyring
    import keyrings.alt.file

    keyring.set_keyring(keyrings.alt.file.PlaintextKeyring())
    return home


@pytest.fixture(scope="session")
def cloud_server(smol_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """`python -m llama_cpp.server` on loopback with an API key: the test cloud."""
    log = tmp_path_factory.mktemp("cloud") / "server.log"
    with stand_in_server(smol_path, api_key=CLOUD_KEY, log=log) as url:
        yield url


@pytest.fixture(scope="session")
def proxy_session(cloud_server: str):
    proxy = FaultProxy(cloud_server)
    yield proxy
    proxy.close()


@pytest.fixture
def proxy(proxy_session: FaultProxy) -> FaultProxy:
    proxy_session.reset()
    yield proxy_session
    proxy_session.reset()


def plumbing_config(cloud_url: str, *, router_model: str = SMOL, prices: tuple[float, float] = (150.0, 600.0), **extra) -> dict:
    """A 3-tier pool on SmolLM2 (fast) with the stand-in server as a priced cloud."""
    cfg = {
        "router": {"model": router_model, "n_ctx": 2048, "plan_max_tokens": 200},
        "tiers": [
            {"name": "local-small", "backend": "llamacpp", "model": SMOL, "n_ctx": 2048, "max_tokens": 96},
            {"name": "local", "backend": "llamacpp", "model": SMOL, "n_ctx": 2048, "max_tokens": 96},
            {
                "name": "cloud", "backend": "openai", "base_url": cloud_url, "model": "stand-in-cloud",
                "input_usd_per_mtok": prices[0], "output_usd_per_mtok": prices[1], "max_tokens": 96,
                "timeout_s": 60, "max_retries": 2,
            },
        ],
        "runtime": {"threads": 2, "threads_per_model": 1},
        # One answer per call: these tests are about plumbing (the agreement vote has its own tests).
        "executor": {"samples": 1},
        "learning": {"shadow_local": 0.0},  # no random shadow runs (they have their own tests)
    }
    for section, values in extra.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def settings_from(cfg: dict, home: Path):
    return parse_settings(cfg, home / "config.toml")


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(cfg: dict) -> str:
    """Enough TOML for config.toml: top-level scalars, tables, arrays of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in cfg.items() if not isinstance(v, (dict, list)) or (isinstance(v, list) and v and not isinstance(v[0], dict))]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"
