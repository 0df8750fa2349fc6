"""`r2local ask` through a running `r2local serve` on the same home: found by serve.json,
answered with the server's warm models and written to its ledger, printed as an in-process
ask prints; in-process when no server runs, when serve.json is stale, or with --no-server.
Real parts: both commands as subprocesses, SmolLM2 as every local model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from r2local import paths
from r2local.serve import discovery
from r2local.store.ledger import Ledger

from .conftest import plumbing_config, to_toml, write_config
from .test_cli import r2
from .test_serve import FIRST, FOLLOW, free_port

OFFLINE_CLOUD = "http://127.0.0.1:9/v1"  # never contacted: these runs are local-only or keyless
SERVED = "answered by the running r2local serve at"


@pytest.fixture
def configured(r2home):
    write_config(r2home, to_toml(plumbing_config(OFFLINE_CLOUD)))
    return r2home


def start_serve(port: int) -> subprocess.Popen:
    """`r2local serve` as a user starts it; returns once serve.json names it (it listens then)."""
    proc = subprocess.Popen([sys.executable, "-m", "r2local", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 180
    while (running := discovery.read()) is None or running.pid != proc.pid:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "serve.json never appeared"
        time.sleep(0.2)
    return proc


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=False)
    return int(done.stdout)


def test_ask_uses_the_running_server_and_falls_back_in_process(configured):
    here = r2("ask", FIRST, "--json", "--local-only", "--no-server")  # no server yet: in-process, for the shape
    assert here.returncode == 0 and SERVED not in here.stderr, here.stderr
    port = free_port()
    proc = start_serve(port)
    try:
        running = discovery.read()
        assert running.url == f"http://127.0.0.1:{port}/v1" and running.pool is None
        one = r2("ask", FIRST, "--json", "--local-only")
        assert one.returncode == 0, one.stderr
        assert f"{SERVED} http://127.0.0.1:{port}/v1" in one.stderr
        assert "offline: --local-only" in one.stderr  # the engine's notices come along
        first, alone = json.loads(one.stdout), json.loads(here.stdout)
        assert first.keys() == alone.keys() and first["answer"] and first["status"] == "done"
        assert [n.keys() for n in first["subtasks"]] == [n.keys() for n in alone["subtasks"]][:len(first["subtasks"])]

        two = r2("ask", "-c", FOLLOW, "--json")  # continues the conversation the server started
        assert two.returncode == 0 and SERVED in two.stderr, two.stderr
        second = json.loads(two.stdout)
        cid = first["conversation_id"]
        assert cid and second["conversation_id"] == cid
        ledger = Ledger()  # one ledger, written by the server
        q2 = ledger.question(second["question_id"])
        assert (q2["conversation_id"], q2["turn"], q2["local_only"]) == (cid, 2, 1)
        assert FIRST in json.dumps(q2["subtasks"][-1]["sent"])  # the first turn reached the follow-up's prompt

        human = r2("ask", "--cid", cid[-6:], "What about 2 boxes?")
        assert human.returncode == 0 and SERVED in human.stderr, human.stderr
        assert f"conversation {cid}" in human.stdout and "question " in human.stdout
        assert [t["turn"] for t in ledger.turns(cid)] == [1, 2, 3]
        missing = r2("ask", "--cid", "nope", "hi")  # the server's refusal, as in-process: message and fix
        assert missing.returncode == 1 and "no conversation 'nope'" in missing.stderr
        assert "r2local conversations" in missing.stderr

        forced = r2("ask", FIRST, "--json", "--local-only", "--no-server")
        assert forced.returncode == 0 and SERVED not in forced.stderr
    finally:
        proc.terminate()
        proc.wait(30)
    assert discovery.read() is None  # the server removed serve.json on its way out
    after = r2("ask", FIRST, "--json", "--local-only")
    assert after.returncode == 0 and SERVED not in after.stderr, after.stderr
    assert json.loads(after.stdout)["answer"]


def test_a_stale_or_silent_serve_json_is_not_used(configured):
    from r2local.serve.token import load_or_create

    load_or_create()
    discovery.announce("http://127.0.0.1:9/v1", None)  # this test's own pid: alive, and nothing listens there
    silent = r2("ask", FIRST, "--json", "--local-only")
    assert silent.returncode == 0, silent.stderr
    assert "did not take the question (nothing listens there); answering in-process" in silent.stderr
    assert SERVED not in silent.stderr and json.loads(silent.stdout)["answer"]

    data = json.loads(discovery.serve_json().read_text())
    discovery.serve_json().write_text(json.dumps({**data, "pid": dead_pid()}))  # a server killed with -9
    stale = r2("ask", FIRST, "--json", "--local-only")
    assert stale.returncode == 0 and SERVED not in stale.stderr and "serve" not in stale.stderr, stale.stderr
    assert not discovery.serve_json().exists()  # removed
    assert len(Ledger().questions()) == 2


def test_discovery_wants_the_same_pool_and_config(r2home):
    assert discovery.find(None) == (None, None)
    running = discovery.announce("http://127.0.0.1:8077/v1", "demo")
    assert discovery.find("demo") == (running, None)
    none, why = discovery.find(None)
    assert none is None and "uses --pool demo, not (config)" in why
    write_config(r2home, "pool = 'demo'\n")  # the config changed after the server started
    none, why = discovery.find("demo")
    assert none is None and "another config" in why and str(paths.config_path()) in why
    discovery.withdraw()
    assert not discovery.serve_json().exists()
    discovery.serve_json().write_text("{not json")
    assert discovery.find(None) == (None, None)


def test_confirm_mode_at_a_terminal_is_answered_in_process(r2home, capsys):
    """The server cannot ask the user before a cloud call: such a question is not sent to it."""
    import click

    from r2local.cli.ask import _ask_served
    from r2local.cli.commands import cli
    from r2local.serve.token import load_or_create

    write_config(r2home, '[privacy]\nmode = "confirm"\n')
    load_or_create()
    discovery.announce("http://127.0.0.1:9/v1", None)  # alive (this pid); nothing listens: a try would say so
    ctx = click.Context(cli, obj={"pool": None})
    assert _ask_served(ctx, FIRST, None, False, local_only=False, interactive=True) is False
    assert capsys.readouterr().err == ""  # not even tried
    assert _ask_served(ctx, FIRST, None, False, local_only=False, interactive=False) is False  # nobody to ask anyway
    assert "did not take the question" in capsys.readouterr().err
    assert _ask_served(ctx, FIRST, None, False, local_only=True, interactive=True) is False  # no cloud: no confirm
    assert "did not take the question" in capsys.readouterr().err
