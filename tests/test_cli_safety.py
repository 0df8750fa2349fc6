"""Crash safety, key hygiene and the confirm prompt, on real `r2local` subprocesses."""

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r2local import keys
from r2local.store.ledger import Ledger
from tests.support.standin import free_port

from .conftest import CLOUD_KEY, plumbing_config, to_toml, write_config
from .test_cli import r2

CANARY = "R2LEAKCANARY"
WRONG_KEY = "sk-wrong-R2LEAKCANARY-0000ffff"


def cloud_config(url: str, **extra) -> str:
    # One subtask that wants the cloud, short answers: the shortest real path to a cloud call.
    # One thread: the router's burst over 2 threads crawls on a machine shared with other work.
    router = {"strategy": "plan-and-allocate", "thresholds": [0.0, 0.0], "max_subtasks": 1, "plan_max_tokens": 64}
    cfg = plumbing_config(url, router=router, runtime={"threads": 1}, **extra)
    for tier in cfg["tiers"]:
        tier["max_tokens"] = 32
    return to_toml(cfg)


def wait_for(db_path: Path, sql: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db_path.exists():
            try:
                with sqlite3.connect(db_path, timeout=1) as db:
                    if db.execute(sql).fetchone()[0]:
                        return
            except sqlite3.OperationalError:
                pass  # not migrated yet
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {sql}")


def rows(db_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()


def test_kill_9_during_a_cloud_call_loses_nothing(r2home, proxy):
    write_config(r2home, cloud_config(proxy.url, budget={"daily_usd": 5.0}))
    keys.set_key("cloud", CLOUD_KEY)
    proxy.faults[:] = ["delay:15"]  # the cloud call hangs: kill it in flight
    db_path = r2home / "r2local.db"
    proc = subprocess.Popen([sys.executable, "-m", "r2local", "ask", "What is 6 * 7?", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(db_path, "select count(*) from calls where tier = 'cloud' and status = 'running'")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = rows(db_path, "select id, status from calls order by id")
    [(qid, q_created)] = rows(db_path, "select id, created_at from questions")
    assert all(c >= q_created for (c,) in rows(db_path, "select created_at from calls"))  # question row first

    ledger = Ledger()  # the next start
    assert ledger.interrupted == 1
    q = ledger.question(qid)
    assert q["status"] == "interrupted" and q["finished_at"]
    assert [(c["id"]) for c in q["calls"]] == [cid for cid, _ in before]  # no row lost
    [cut] = [c for c in q["calls"] if c["tier"] == "cloud"]
    assert cut["status"] == "interrupted" and cut["error_class"] == "Interrupted"
    assert cut["cost_usd"] == cut["reserved_usd"] > 0  # the provider may have billed it: charged its bound
    assert ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ledger.close()

    out = r2("ask", "What is 2 + 3?", "--local-only", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["answer"]
    spend = json.loads(r2("spend", "--json").stdout)
    assert spend["today_usd"] == pytest.approx(cut["cost_usd"]) and spend["budget"]["reserved_usd"] == 0
    assert spend["budget"]["daily_left_usd"] == pytest.approx(5.0 - cut["cost_usd"])
    assert "budget left: today $" in r2("spend").stdout


def test_the_key_leaks_nowhere(r2home, proxy):
    """Questions that reach the cloud, fail there, meet a wrong key and a dead
    cloud; then every file under R2LOCAL_HOME and all output is searched."""
    keys.set_key("cloud", CLOUD_KEY)
    outputs = []
    env_debug = {**os.environ, "OPENAI_LOG": "debug"}  # the SDK's own logging, at its most talkative

    def run(*args, env=None, input=None):
        out = subprocess.run([sys.executable, "-m", "r2local", *args], capture_output=True, text=True,
                             timeout=600, env=env, input=input)
        outputs.append(out)
        assert "Traceback" not in out.stderr, out.stderr
        return out

    write_config(r2home, cloud_config(proxy.url))
    reached = run("ask", f"My key is {CLOUD_KEY}; is it safe to share? Answer yes or no.", "--json", env=env_debug)
    assert reached.returncode == 0 and json.loads(reached.stdout)["cloud_share"] == 1.0
    proxy.faults[:] = ["500", "503", "500"]
    failed = run("ask", "What is 3 + 4?", "--json", env=env_debug)
    assert [s["status"] for s in json.loads(failed.stdout)["subtasks"]] == ["fallback"]
    wrong = run("ask", "What is 5 + 6?", "--json", env={**env_debug, "OPENAI_API_KEY": WRONG_KEY})
    assert "AuthFailed" in json.loads(wrong.stdout)["subtasks"][0]["reason"]
    write_config(r2home, cloud_config(f"http://127.0.0.1:{free_port()}/v1"))  # the cloud is down
    down = run("ask", "What is 7 + 8?", "--json")
    assert "ConnectionFailed" in json.loads(down.stdout)["subtasks"][0]["reason"]
    run("logs", "-n", "100")
    run("logs", "--json", "-n", "100")
    run("spend", "--json")
    run("key", "status")
    run("key", "set", input=CLOUD_KEY + "\n")

    assert len(proxy.completions) >= 4  # the cloud was really reached (and failed, and refused the key)
    assert CANARY not in json.dumps([r["body"] for r in proxy.completions])  # redacted before it left
    files = [p for p in r2home.rglob("*") if p.is_file()]
    assert {"r2local.db", "config.toml"} <= {p.name for p in files}
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path
    for out in outputs:
        assert CANARY not in out.stdout and CANARY not in out.stderr, out.args
    db = sqlite3.connect(r2home / "r2local.db")
    assert db.execute("select count(*) from questions where question like '%…3a9c%'").fetchone()[0] == 1  # masked


def _drain_until(fd: int, needle: bytes, timeout: float = 240) -> bytes:
    seen = b""
    deadline = time.time() + timeout
    while needle not in seen:
        assert time.time() < deadline, seen[-2000:]
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_confirm_with_stdin_piped_asks_nobody_and_stays_local(r2home, proxy):
    write_config(r2home, cloud_config(proxy.url, privacy={"mode": "confirm"}))
    keys.set_key("cloud", CLOUD_KEY)
    out = r2("ask", "-", "--json", input="What is 2 + 2?")
    assert out.returncode == 0, out.stderr
    assert "nobody to ask" in out.stderr and "send it?" not in out.stderr and proxy.requests == []
    assert json.loads(out.stdout)["subtasks"][0]["status"] == "kept-local"


def test_an_internal_error_is_scrubbed_of_the_key(r2home):
    from click.testing import CliRunner

    from r2local.cli.commands import cli

    @cli.command("boom")
    def boom():
        keys.remember(CLOUD_KEY)
        raise RuntimeError(f"something printed the key {CLOUD_KEY}")

    try:
        out = CliRunner().invoke(cli, ["boom"])
    finally:
        del cli.commands["boom"]
    assert out.exit_code == 1 and "internal error (RuntimeError)" in out.output
    assert "Traceback" in out.output and CANARY not in out.output and "…3a9c" in out.output


@pytest.mark.parametrize("answer", ["n", "y"])
def test_confirm_on_a_terminal_shows_exactly_what_would_leave(r2home, proxy, answer):
    write_config(r2home, cloud_config(proxy.url, privacy={"mode": "confirm"}))
    keys.set_key("cloud", CLOUD_KEY)
    email = "jane.doe@example.org"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "r2local", "ask", f"Copy this line: My e-mail is {email}.", "--json"],
                            stdin=slave, stderr=slave, stdout=subprocess.PIPE)
    os.close(slave)
    try:
        shown = _drain_until(master, b"send it? [y/N]").decode(errors="replace")
        os.write(master, f"{answer}\n".encode())
        stdout, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode == 0
    assert "would be sent to 'cloud' (stand-in-cloud at http://127.0.0.1" in shown
    assert "[EMAIL_1]" in shown and email not in shown and "redacted: 1 email" in shown and "cost at most $" in shown
    node = json.loads(stdout)["subtasks"][0]
    if answer == "n":
        assert proxy.completions == [] and node["status"] == "kept-local" and "declined" in node["reason"]
    else:
        [request] = proxy.completions
        assert email not in json.dumps(request["body"]) and node["tier"] == "cloud" and node["status"] == "done"
        assert email in node["answer"] and node["redactions"] == 1


def test_kill_9_during_planning_leaves_the_plan_call_interrupted(r2home, proxy):
    """Every call's row is written before the call: a crash while the router plans leaves it, marked."""
    cfg = plumbing_config(proxy.url, router={"strategy": "plan-and-allocate", "plan_max_tokens": 400},
                          runtime={"threads": 1})
    write_config(r2home, to_toml(cfg))
    db_path = r2home / "r2local.db"
    proc = subprocess.Popen([sys.executable, "-m", "r2local", "ask", "Plan a week of meals for a family of four, "
                             "with a shopping list and costs.", "--local-only"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(db_path, "select count(*) from calls where role = 'plan' and status = 'running'")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    ledger = Ledger()
    assert ledger.interrupted == 1
    [plan] = [c for c in ledger.question(ledger.questions(1)[0]["id"])["calls"] if c["role"] == "plan"]
    assert plan["status"] == "interrupted" and plan["error_class"] == "Interrupted" and plan["tier"] == "router"
    logs = r2("logs")
    assert "plan" in logs.stdout and "interrupted" in logs.stdout  # `r2local logs` shows it, not "no calls yet"
    ledger.close()
