"""`r2local bench` passes the same gates as `r2local ask`: the budget, privacy
mode "confirm" and custom redaction, with the call cache on and off. The stand-in
cloud sits behind the counting proxy, so what reached it is known exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r2local import keys
from r2local.cli.bench import Options, execute
from r2local.errors import R2Error
from r2local.store.ledger import Ledger

from .conftest import CLOUD_KEY, plumbing_config, to_toml, write_config

SECRET = "ACME-314159"


def options(**kw) -> Options:
    base = dict(dataset="generated", n=4, seed=3, strategies="all-cloud", cloud_share=None, agree_below=None, calib_n=2,
                as_json=True, plot=None, ledger=None, cache=True)
    return Options(**{**base, **kw})


def setup(r2home: Path, proxy, **extra) -> None:
    write_config(r2home, to_toml(plumbing_config(proxy.url, **extra)))
    keys.set_key("cloud", CLOUD_KEY)


@pytest.mark.parametrize("cache", [True, False])
def test_daily_cap_holds_in_the_bench(r2home, proxy, cache):
    # Each cloud call of these questions reserves about $0.065 (its cost bound): two fit under $0.15.
    cap = 0.15
    setup(r2home, proxy, budget={"daily_usd": cap})
    data = execute(None, options(cache=cache))
    ledger = Ledger(Path(data["ledger"]))
    spent = ledger.charged()["today"]
    assert 0 < spent <= cap
    statuses = [ledger.question(it["results"]["all-cloud"]["question_id"])["subtasks"][0]["status"] for it in data["items"]]
    assert statuses.count("budget") >= 1 and statuses.count("done") >= 1, statuses
    cloud_rows = [c for c in ledger.iter_calls() if c["tier"] == "cloud"]
    assert all(c["reserved_usd"] > 0 for c in cloud_rows)  # every cloud call reserved its bound, as in `ask`
    assert len(proxy.completions) == len(cloud_rows) == statuses.count("done")
    ledger.close()


@pytest.mark.parametrize("cache", [True, False])
def test_confirm_mode_without_a_terminal_refuses_to_start(r2home, proxy, cache):
    setup(r2home, proxy, privacy={"mode": "confirm"})
    with pytest.raises(R2Error, match="nobody is here to confirm") as info:
        execute(None, options(cache=cache, strategies="all-cloud,r2local"))
    assert "mode = \"auto\"" in info.value.fix
    assert proxy.requests == []


def test_confirm_mode_refusal_through_the_cli(r2home, proxy):
    setup(r2home, proxy, privacy={"mode": "confirm"})
    out = subprocess.run([sys.executable, "-m", "r2local", "bench", "--dataset", "generated", "--n", "2",
                          "--strategies", "all-cloud"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         timeout=120)
    assert out.returncode == 1 and "nobody is here to confirm" in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr and proxy.requests == []


@pytest.mark.parametrize("cache", [True, False])
def test_custom_redaction_pattern_never_reaches_the_cloud(r2home, proxy, tmp_path, cache):
    setup(r2home, proxy, privacy={"extra_patterns": [r"ACME-\d{6}"]})
    path = tmp_path / "orders.jsonl"
    lines = [{"question": f"Order {SECRET} has 3 boxes of 4 cups. How many cups are in order {SECRET}?", "answer": "12"},
             {"question": f"Ticket {SECRET} lists 5 chairs and 2 tables. How many items does {SECRET} list?", "answer": "7"}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    data = execute(None, options(dataset=str(path), n=2, cache=cache, strategies="all-cloud,cot-cloud"))
    bodies = [json.dumps(r["body"]) for r in proxy.completions]
    assert bodies and not any(SECRET in b for b in bodies)
    assert any("[PRIVATE_1]" in b for b in bodies)
    ledger = Ledger(Path(data["ledger"]))
    redacted = [c for c in ledger.iter_calls() if c["tier"] == "cloud" and not c["cached"]]
    assert redacted and all(c["redactions"] >= 1 for c in redacted)
    ledger.close()
