"""Conversations and the server with real parts: `r2local ask` / `-c` / `--cid` and
`r2local serve` as a user runs them (subprocesses, config file, ledger), SmolLM2 as
every local model. The small model's follow-up answer may be wrong: what is checked
is that the earlier turn reaches its prompt and that the ledger links the turns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import openai
import pytest

from r2local.store.ledger import Ledger

from .conftest import plumbing_config, to_toml, write_config
from .test_cli import r2
from .test_serve import FIRST, FOLLOW, HISTORY, free_port

OFFLINE_CLOUD = "http://127.0.0.1:9/v1"  # never contacted: these runs are local-only or keyless


@pytest.fixture
def configured(r2home):
    write_config(r2home, to_toml(plumbing_config(OFFLINE_CLOUD)))
    return r2home


def test_ask_continues_a_conversation_and_the_follow_up_sees_the_first_turn(configured):
    one = r2("ask", FIRST, "--json", "--local-only")
    assert one.returncode == 0, one.stderr
    first = json.loads(one.stdout)
    two = r2("ask", "-c", FOLLOW, "--json")  # not asked local-only: the conversation is
    assert two.returncode == 0, two.stderr
    second = json.loads(two.stdout)
    cid = first["conversation_id"]
    assert cid and second["conversation_id"] == cid
    assert "offline: --local-only" in two.stderr

    ledger = Ledger()
    q2 = ledger.question(second["question_id"])
    sent = q2["subtasks"][-1]["sent"]
    contents = [m["content"] for m in sent]
    assert FIRST in contents and first["answer"] in contents and contents[-1] == FOLLOW
    assert q2["local_only"] == 1 and q2["conversation_id"] == cid and q2["turn"] == 2

    three = r2("ask", "--cid", cid[-6:], "What about 2 boxes?", "--json")
    assert three.returncode == 0, three.stderr
    assert [t["turn"] for t in ledger.turns(cid)] == [1, 2, 3]
    listed = [json.loads(line) for line in r2("conversations", "--json").stdout.splitlines()]
    assert [(c["id"], c["turns"], c["local_only"]) for c in listed] == [(cid, 3, 1)]
    human = r2("conversations").stdout
    assert cid in human and "3 turns" in human
    missing = r2("ask", "--cid", "nope", "hi")
    assert missing.returncode == 1 and "no conversation 'nope'" in missing.stderr


def test_serve_on_real_models_through_the_openai_sdk(configured):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "r2local", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in line, proc.stderr.read() if proc.poll() is not None else line
        token = proc.stdout.readline().split()[1]
        assert token == (configured / "serve-token").read_text().strip()
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0, timeout=120)
        deadline = time.monotonic() + 120
        while True:  # uvicorn binds just after the banner
            try:
                api.models.list()
                break
            except openai.APIConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        reply = api.chat.completions.create(model="r2local", messages=HISTORY)
        extra = reply.model_extra["r2local"]
        assert reply.choices[0].message.content and extra["tier"] in ("local-small", "local")
        assert extra["cost_usd"] == 0 and extra["offline"]  # no key for the cloud tier: local only
        chunks = list(api.chat.completions.create(model="r2local-local", messages=HISTORY, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        last = chunks[-1].model_extra["r2local"]
        ledger = Ledger()
        q = ledger.question(last["question_id"])
        assert text.strip() and q["answer"] and q["local_only"] == 1
        assert FIRST in json.dumps(q["subtasks"][-1]["sent"])  # the client's history reached the model
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="no", max_retries=0).models.list()
    finally:
        proc.terminate()
        proc.wait(30)
