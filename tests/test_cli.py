"""`r2local` as a user runs it: a real subprocess, real config file, real ledger."""

import json
import subprocess
import sys

import pytest

from r2local import keys

from .conftest import CLOUD_KEY, plumbing_config, to_toml, write_config

QUESTION = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and how many minutes after noon is that?"


def r2(*args, input=None):
    return subprocess.run([sys.executable, "-m", "r2local", *args], input=input, capture_output=True, text=True, timeout=600)


@pytest.fixture
def configured(r2home, proxy):
    write_config(r2home, to_toml(plumbing_config(proxy.url, router={"strategy": "plan-and-allocate", "thresholds": [0.3, 0.5]})))
    keys.set_key("cloud", CLOUD_KEY)
    return proxy


def test_ask_json_spend_logs_calibrate(configured):
    out = r2("ask", QUESTION, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["answer"] and data["subtasks"]
    for sub in data["subtasks"]:
        assert sub["tier"] in ("local-small", "local", "cloud") and sub["latency_ms"] > 0
        assert (sub["cost_usd"] > 0) == (sub["tier"] == "cloud")
    assert data["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in data["subtasks"]), abs=1e-9)
    assert "offline" not in out.stderr

    spend = json.loads(r2("spend", "--json").stdout)
    assert spend["today_usd"] == pytest.approx(data["cost_usd"])
    assert {row["tier"] for row in spend["by_model"]} >= {"router"}

    logs = r2("logs", "--json", "-n", "3").stdout.strip().splitlines()
    assert len(logs) == 3 and all(json.loads(line)["question_id"] == data["question_id"] for line in logs)
    assert CLOUD_KEY not in r2("logs", "-n", "50").stdout



def test_ask_human_output_and_local_only(configured):
    out = r2("ask", "What is 12 + 30?", "--local-only")
    assert out.returncode == 0, out.stderr
    assert "offline: --local-only" in out.stderr
    assert "cloud share 0%" in out.stdout and "local" in out.stdout
    assert configured.requests == []


def test_ask_reads_stdin_and_rejects_empty(configured):
    empty = r2("ask", "-", input="   \n")
    assert empty.returncode == 1 and "the question is empty" in empty.stderr and "Traceback" not in empty.stderr


def test_invalid_config_is_a_message_not_a_traceback(r2home):
    path = write_config(r2home, "[[tiers]]\nname = 'x'\nbackend = 'llamacpp'\nmodel = 'no-such-model'\n")
    out = r2("ask", "hi")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "unknown model 'no-such-model'" in out.stderr and "fix:" in out.stderr
    path.write_text("[router\n")
    out = r2("spend")  # spend does not need the config
    assert out.returncode == 0
    out = r2("ask", "hi")
    assert out.returncode == 1 and str(path) in out.stderr and "invalid TOML" in out.stderr


def test_calibrate_from_logged_scores(r2home):
    from r2local.engine.events import Node
    from r2local.store.ledger import Ledger

    ledger = Ledger()
    qid = ledger.start_question("q", local_only=False, pool="demo")
    for i in range(20):
        ledger.save_node(qid, Node(i + 1, f"step {i + 1}", [], difficulty=i / 20))
    ledger.close()
    out = r2("calibrate", "--cloud-share", "0.2")
    assert out.returncode == 0, out.stderr
    assert "top-tier share on them: 20%" in out.stdout
    cal = Ledger().latest_calibration()
    assert cal["target_cloud_share"] == 0.2 and len(cal["thresholds"]) == 2
    assert r2("calibrate", "--reset").returncode == 0
    assert Ledger().latest_calibration() is None


def test_paths_follow_r2local_home(r2home):
    out = r2("paths")
    assert out.returncode == 0
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines() if not line.startswith("own"))
    assert lines["config"].strip() == str(r2home / "config.toml")
    assert lines["ledger"].strip() == str(r2home / "r2local.db")


def test_the_offline_line_is_said_once(r2home, proxy):
    write_config(r2home, to_toml(plumbing_config(proxy.url)))  # a cloud tier, and no key
    first = r2("ask", "What is 2 + 2?")
    assert first.returncode == 0, first.stderr
    assert "offline: no API key for tier 'cloud'" in first.stderr and "said once" in first.stderr
    again = r2("ask", "What is 3 + 3?")
    assert again.returncode == 0 and "offline" not in again.stderr
