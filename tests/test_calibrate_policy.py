"""`r2local calibrate` fits the route policy from graded answers: per difficulty
band, each tier's measured accuracy; a tier gets traffic only where it beats the
cheaper ones. The ledgers here are written the way the bench writes them."""

from __future__ import annotations

import json
import subprocess
import sys

from r2local.engine.events import Node
from r2local.store.ledger import Ledger
from r2local.store.records import CallEnd, CallRecord, Feedback
from r2local.vocab import CallStatus, FeedbackSource, Role, Verdict

from .conftest import plumbing_config, to_toml, write_config


def graded(ledger: Ledger, text: str, strategy: str, tier: str, correct: bool, *, conf=None, probs=None,
           adapter=None, reason=None) -> None:
    qid = ledger.start_question(text, local_only=False, pool="demo", strategy=strategy)
    ledger.save_node(qid, Node(1, text, [], tier=tier, status="unsure" if reason else "done", answer="x",
                               confidence=conf, reason=reason))
    if probs is not None:
        ledger.record_call(CallRecord(Role.ROUTE, "router", "llamacpp", "smol", qid, adapter=adapter),
                           CallEnd(CallStatus.OK, output=json.dumps(probs)))
    ledger.add_feedback(Feedback(qid, Verdict.GOOD if correct else Verdict.BAD, FeedbackSource.BENCH, tier=tier))


def test_calibrate_fits_bands_from_the_bench_ledger(r2home, tmp_path):
    write_config(r2home, to_toml(plumbing_config("http://127.0.0.1:9/v1")))
    bench = Ledger(r2home / "bench.db")
    for i in range(24):
        hard = i >= 16
        text = f"question {i}"
        probs = {"easy": 0.1, "medium": 0.2, "hard": 0.7} if hard else {"easy": 0.7 - i / 100, "medium": 0.2, "hard": 0.1}
        graded(bench, text, "r2local", "local", not hard, conf=1.0, probs=probs)
        graded(bench, text, "all-small", "local-small", i % 4 == 0 and not hard)  # rarely right: it gets nothing
        graded(bench, text, "all-local", "local", not hard, conf=0.5 if hard else 1.0)
        graded(bench, text, "all-cloud", "cloud", True)
    bench.close()
    out = subprocess.run([sys.executable, "-m", "r2local", "calibrate", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["graded_questions"] == 24
    bands = data["policy"]["bands"]
    assert all(b["tier"] != "local-small" for b in bands)
    assert bands[0]["route"] == "whole-local" and bands[0]["tier"] == "local"
    assert bands[-1]["route"] == "whole-cloud" and bands[-1]["accuracy"]["local"] == 0.0
    assert data["agree_below"] == 1.0 and data["expected"]["accuracy"] == 1.0  # agreement < 1 caught every miss
    cal = Ledger().latest_calibration()
    assert cal["policy"]["bands"] == bands
    text = subprocess.run([sys.executable, "-m", "r2local", "calibrate"], capture_output=True, text=True).stdout
    assert "route policy from 24 graded questions" in text and "local-small" in text and "whole-cloud on cloud" in text


def test_calibrate_with_nothing_graded_names_the_fix(r2home):
    write_config(r2home, to_toml(plumbing_config("http://127.0.0.1:9/v1")))
    out = subprocess.run([sys.executable, "-m", "r2local", "calibrate"], capture_output=True, text=True)
    assert out.returncode == 1 and "r2local bench --dataset generated" in out.stderr


def test_the_latest_rating_of_a_question_is_the_one_fitted(r2home):
    """A router with a new adapter rates the same question differently; the bands must be fitted on
    the ratings it gives now, not on the first ones the ledger ever saw."""
    from r2local.routing.outcomes import read_rows

    ledger = Ledger(r2home / "bench.db")
    graded(ledger, "q", "all-local", "local", True, probs={"easy": 0.8, "medium": 0.1, "hard": 0.1})
    graded(ledger, "q", "r2local", "local", True, probs={"easy": 0.1, "medium": 0.2, "hard": 0.7}, adapter="router@v3")
    (row,) = read_rows([ledger], "local")
    assert row.probs == {"easy": 0.1, "medium": 0.2, "hard": 0.7}
    (row,) = read_rows([ledger], "local", None)  # the router without an adapter: its own rating
    assert row.probs == {"easy": 0.8, "medium": 0.1, "hard": 0.1}
    (row,) = read_rows([ledger], "local", "router@v3")
    assert row.probs["hard"] == 0.7
    ledger.close()


def test_a_local_answer_held_back_by_another_check_is_replayed_as_sent_up(r2home):
    """A replay at another agreement bar (calibration, leave-one-out) must still send up an answer the
    product held back for another reason (a skipped time factor, degenerate output); a low-agreement one
    is left to the bar."""
    from r2local.routing.outcomes import read_rows, votes

    ledger = Ledger(r2home / "bench.db")
    graded(ledger, "factor", "all-local", "local", False, reason="the program never converts between days and weeks")
    graded(ledger, "split", "all-local", "local", False, conf=0.4,
           reason="low agreement (2/5 samples agree, below 0.60)")
    graded(ledger, "kept", "all-local", "local", True, conf=1.0)
    graded(ledger, "factor", "all-cloud", "cloud", True, reason="not a local tier's reason")
    rows = {r.question: r for r in read_rows([ledger], "local")}
    assert [rows[q].tiers["local"].held for q in ("factor", "split", "kept")] == [True, False, False]
    assert rows["factor"].tiers["cloud"].held is False
    # A held answer is a vote that climbs at any bar, with or without an agreement share recorded.
    graded(ledger, "unread", "all-local", "local", False, conf=None, reason="the answer names none of the options")
    graded(ledger, "unread", "all-cloud", "cloud", True)
    found = {v.held: v for v in votes(read_rows([ledger], "local"), "local", "cloud")}
    assert found[True].agreement == 0.0 and found[True].up(0.0)
