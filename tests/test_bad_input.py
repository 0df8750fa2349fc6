"""A user's mistakes through the real CLI: each gets a message naming the fix
(or a graceful fallback), never a traceback, and the ledger stays whole."""

import shutil
import sqlite3

import pytest

from r2local import keys
from r2local.engine.core import Engine
from r2local.errors import ConfigError
from r2local.routing.strategies import forced

from .conftest import (
    CLOUD_KEY,
    SMOL,
    plumbing_config,
    settings_from,
    to_toml,
    write_config,
)
from .test_cli import r2

LONG = "word " * 6000  # ~6000 tokens: beyond the router's 2048 and the stand-in cloud's 4096


def one_tier(model: str) -> dict:
    return {
        "router": {"model": model, "n_ctx": 2048},
        "tiers": [{"name": "local", "backend": "llamacpp", "model": model, "n_ctx": 2048, "max_tokens": 16}],
    }


def no_traceback(out) -> None:
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout


def ledger_is_whole(home) -> None:
    db = sqlite3.connect(home / "r2local.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("select count(*) from calls where status = 'running'").fetchone()[0] == 0
    assert db.execute("select count(*) from questions where status = 'running'").fetchone()[0] == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_broken_model_file_names_the_file_and_the_fix(r2home, smol_path, damage):
    bad = r2home / f"{damage}.gguf"
    r2home.mkdir(parents=True, exist_ok=True)
    if damage == "garbage":
        bad.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    elif damage == "truncated":
        with smol_path.open("rb") as src, bad.open("wb") as dst:
            dst.write(src.read(3_000_000))  # a download cut short
    write_config(r2home, to_toml(one_tier(str(bad))))
    out = r2("ask", "What is 2 + 2?")
    no_traceback(out)
    assert out.returncode == 1 and str(bad) in out.stderr and "fix:" in out.stderr
    if damage == "missing":
        assert "model file not found" in out.stderr and "check the path in config.toml" in out.stderr
    else:
        assert "not a valid GGUF file, or truncated" in out.stderr and "intact copy" in out.stderr
    ledger_is_whole(r2home)


def test_unknown_tier_and_model_names(r2home):
    write_config(r2home, to_toml(one_tier(SMOL)))
    out = r2("key", "set", "--tier", "cloud", input="sk-abcdefgh12345678\n")
    no_traceback(out)
    assert out.returncode == 1 and "no cloud tier is configured" in out.stderr
    cfg = plumbing_config("http://127.0.0.1:9/v1")
    write_config(r2home, to_toml(cfg))
    out = r2("key", "set", "--tier", "clod", input="sk-abcdefgh12345678\n")
    no_traceback(out)
    assert out.returncode == 1 and "'clod' is not a tier in config.toml" in out.stderr and "--tier cloud" in out.stderr
    out = r2("key", "status", "--tier", "local")
    assert out.returncode == 1 and "'local' is not a tier with an API key" in out.stderr
    cfg["tiers"][0]["model"] = "smollm3-9000b"
    write_config(r2home, to_toml(cfg))
    out = r2("ask", "hi")
    no_traceback(out)
    assert out.returncode == 1 and "unknown model 'smollm3-9000b'" in out.stderr and "fix:" in out.stderr
    engine = Engine(settings_from(plumbing_config("http://127.0.0.1:9/v1"), r2home))
    with pytest.raises(ConfigError, match="unknown tier 'gpu'"):
        engine.ask("hi", strategy=forced(None, "gpu"))
    engine.close()


@pytest.mark.parametrize(
    "text, field",
    [
        ("[budget]\ndaily_usd = -1\n", "budget.daily_usd"),
        ("[budget]\nweekly_usd = 3\n", "budget.weekly_usd"),
        ("[privacy]\nmode = 'paranoid'\n", "privacy.mode"),
        ("[privacy]\nextra_patterns = ['(unclosed']\n", "privacy.extra_patterns"),
        ("[privacy]\nextra_patterns = ['x*']\n", "privacy.extra_patterns"),
        ("[budget\ndaily_usd = 1\n", "invalid TOML"),
    ],
)
def test_invalid_budget_and_privacy_config(r2home, text, field):
    path = write_config(r2home, text)
    out = r2("ask", "hi")
    no_traceback(out)
    assert out.returncode == 1 and str(path) in out.stderr and field in out.stderr and "fix:" in out.stderr
    spend = r2("spend")  # the ledger is still readable, and says why the caps are unknown
    assert spend.returncode == 0 and "budget caps unknown" in spend.stderr


def test_question_longer_than_every_context_is_a_message_not_a_traceback(r2home, proxy):
    write_config(r2home, to_toml(plumbing_config(proxy.url, router={"thresholds": [0.0, 0.0]})))
    out = r2("ask", "-", "--local-only", input=LONG)
    no_traceback(out)
    assert out.returncode == 2
    assert "route: whole-local (too long to rate" in out.stdout
    assert "error: no answer: ContextOverflow" in out.stderr and "fix: shorten the question" in out.stderr
    # With the cloud on: it is tried (its server refuses or cuts the stream), then local, then the message.
    keys.set_key("cloud", CLOUD_KEY)
    out = r2("ask", "-", "--json", input=LONG)
    no_traceback(out)
    assert out.returncode == 2 and "fix: shorten the question" in out.stderr
    ledger_is_whole(r2home)


def test_config_with_only_a_cloud_tier_is_refused_with_a_fix(r2home, proxy):
    cfg = plumbing_config(proxy.url)
    cfg["tiers"] = cfg["tiers"][2:]
    write_config(r2home, to_toml(cfg))
    shutil.rmtree(r2home / "cache", ignore_errors=True)
    out = r2("ask", "hi")
    no_traceback(out)
    assert out.returncode == 1 and "no local tier" in out.stderr and "fix:" in out.stderr
