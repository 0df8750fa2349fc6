"""calibrate: hit the requested top-tier share when the scores allow it, and say
why not when ties in the logged scores do not."""

import subprocess
import sys

import pytest

from r2local.routing.calibration import fit_top, top_share
from r2local.engine.events import Node
from r2local.store.ledger import Ledger
from r2local.routing.thresholds import calibrate_thresholds


def fit(scores, target, tiers=3):
    return fit_top(scores, calibrate_thresholds(scores, tiers, target), target)


def test_distinct_scores_hit_the_target():
    scores = [i / 20 for i in range(20)]
    result = fit(scores, 0.2)
    assert result.share == pytest.approx(0.2) and result.note is None
    assert result.thresholds == sorted(result.thresholds)


def test_ties_are_explained():
    scores = [0.1] * 20 + [0.5] * 21 + [0.9] * 9
    result = fit(scores, 0.2)
    assert result.share == pytest.approx(0.18)
    assert result.note == ("asked 20%, got 18%: 21 of 50 logged scores tie at 0.5000 and go to the same tier, "
                           "so the top-tier share can be 18% or 60% here, not 20%")


def test_a_better_cut_than_the_quantile_is_taken():
    # The quantile cut lands inside a big tie; the next distinct score gets closer.
    scores = [0.0] * 6 + [0.3] * 2 + [0.7] * 12
    quantile = calibrate_thresholds(scores, 2, 0.5)
    result = fit_top(scores, quantile, 0.5)
    assert top_share(scores, quantile[-1]) == 0.0  # the quantile sits on the tie: nothing goes up
    assert result.share == pytest.approx(0.6) and result.thresholds == [0.3]
    assert "12 of 20 logged scores tie at 0.7000" in result.note and "0% or 60%" in result.note


def test_cli_says_why_it_missed(r2home):
    ledger = Ledger()
    qid = ledger.start_question("q", local_only=False, pool="demo")
    for i, score in enumerate([0.1] * 20 + [0.5] * 21 + [0.9] * 9):
        ledger.save_node(qid, Node(i + 1, f"step {i + 1}", [], difficulty=score))
    ledger.close()
    out = subprocess.run([sys.executable, "-m", "r2local", "calibrate", "--cloud-share", "0.2"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "top-tier share on them: 18%" in out.stdout
    assert "21 of 50 logged scores tie at 0.5000" in out.stderr
