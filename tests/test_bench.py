"""`r2local bench` on real parts: SmolLM2 as router and local tiers, the stand-in
server as the priced cloud, a handful of generated questions."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r2local import keys
from r2local.cli.bench import Options, execute
from r2local.bench.report import text
from r2local.bench.strategies import ORDER
from r2local.store.ledger import Ledger

from .conftest import CLOUD_KEY, plumbing_config, to_toml, write_config

FIELDS = {"strategy", "n", "correct", "accuracy", "ci95", "cloud_cost_usd", "paid_usd", "cloud_share", "cloud_tokens",
          "mean_latency_s", "failed"}
PRICE_IN, PRICE_OUT = 150.0, 600.0  # plumbing_config's cloud prices, USD per Mtok


@pytest.fixture
def bench_home(r2home, cloud_server):
    write_config(r2home, to_toml(plumbing_config(cloud_server, executor={"samples": 2, "max_samples": 2})))  # a vote of two
    keys.set_key("cloud", CLOUD_KEY)
    return r2home


def options(**kw) -> Options:
    base = dict(dataset="generated", n=3, seed=0, strategies=None, cloud_share=None, agree_below=None, calib_n=2, as_json=True,
                plot=None, ledger=None, cache=True)
    return Options(**{**base, **kw})


def ledger_rows(ledger: Ledger, qids: list[str]) -> list[dict]:
    return [c for q in qids for c in ledger.question(q)["calls"]]


def usd(rows: list[dict]) -> float:
    return sum((c["cost_usd"] or 0) + (c["saved_usd"] or 0) for c in rows)


@pytest.mark.slow
def test_bench_table_shape_and_costs_add_up_to_the_ledger(bench_home):
    data = execute(None, options())
    assert data["complete"] and data["n"] == 3 and [s["strategy"] for s in data["strategies"]] == [*ORDER, "oracle"]
    stats = {s["strategy"]: s for s in data["strategies"]}
    for s in stats.values():
        assert set(s) >= FIELDS and s["n"] == 3 and 0 <= s["accuracy"] <= 1
        assert 0 <= s["ci95"][0] <= s["accuracy"] <= s["ci95"][1] <= 1 and s["mean_latency_s"] > 0
    assert stats["all-small"]["cloud_cost_usd"] == stats["all-local"]["cloud_cost_usd"] == 0
    assert stats["all-small"]["cloud_share"] == 0 and stats["all-cloud"]["cloud_share"] == 1
    assert stats["cot-cloud"]["cloud_share"] == 1 and stats["all-cloud"]["cloud_cost_usd"] > 0
    assert len(data["items"]) == 3 and all(set(it["results"]) == set(ORDER) for it in data["items"])
    h = data["headline"]
    assert h["cost_pct_of_all_cloud"] == pytest.approx(100 * stats["r2local"]["cloud_cost_usd"] / stats["all-cloud"]["cloud_cost_usd"])
    assert h["accuracy_gap_points"] == pytest.approx(100 * (stats["r2local"]["accuracy"] - stats["all-cloud"]["accuracy"]))

    assert set(data["losses"]) == {"lost_vs_all_cloud", "causes", "gained_vs_all_cloud"}
    assert sum(data["losses"]["causes"].values()) == data["losses"]["lost_vs_all_cloud"]
    ledger = Ledger(Path(data["ledger"]))
    everything = list(ledger.iter_calls())
    for name, s in stats.items():
        if name == "oracle":  # computed from the others' outcomes, no calls of its own
            continue
        rows = ledger_rows(ledger, [it["results"][name]["question_id"] for it in data["items"]])
        assert s["cloud_cost_usd"] == pytest.approx(usd(rows))
        assert s["paid_usd"] == pytest.approx(sum(c["cost_usd"] or 0 for c in rows))
        assert s["cloud_tokens"] == sum((c["input_tokens"] or 0) + (c["output_tokens"] or 0) for c in rows if c["tier"] == "cloud")
    ran = [s for name, s in stats.items() if name != "oracle"]
    assert sum(s["cloud_cost_usd"] for s in ran) == pytest.approx(usd(everything))
    assert sum(s["paid_usd"] for s in ran) == pytest.approx(sum(c["cost_usd"] or 0 for c in everything))
    # Shared calls were paid once: cached rows cost nothing and carry what they would have cost.
    cached = [c for c in everything if c["cached"]]
    assert cached and any(c["tier"] == "cloud" for c in cached)
    for c in cached:
        priced = (c["input_tokens"] * PRICE_IN + c["output_tokens"] * PRICE_OUT) / 1e6 if c["tier"] == "cloud" else 0
        assert c["cost_usd"] == 0 and c["saved_usd"] == pytest.approx(priced)
    # task-level, random and cascade ask the same prompts as the whole-question baselines.
    assert stats["task-level"]["paid_usd"] == stats["random"]["paid_usd"] == stats["cascade"]["paid_usd"] == 0
    # The oracle is never worse than any whole-question tier, and never dearer than all-cloud.
    assert stats["oracle"]["accuracy"] >= max(stats[s]["accuracy"] for s in ("all-small", "all-local", "all-cloud"))
    assert stats["oracle"]["cloud_cost_usd"] <= stats["all-cloud"]["cloud_cost_usd"] + 1e-12
    assert set(data["significance"]) >= {"all-cloud", "random", "task-level", "cascade"}
    assert data["curves"]["agreement"] and data["curves"]["difficulty"]
    table = text(data)
    assert all(name in table for name in ORDER) and "of all-cloud's cloud cost" in table

    again = execute(None, options(strategies="all-cloud,r2local"))
    for s in again["strategies"]:
        assert s["paid_usd"] == 0  # all from the cache ...
        assert s["cloud_cost_usd"] == pytest.approx(stats[s["strategy"]]["cloud_cost_usd"])  # ... counted as if not
        assert s["accuracy"] == stats[s["strategy"]]["accuracy"]
    ledger.close()


@pytest.mark.slow
def test_bench_cli_jsonl_calibration_plot(bench_home, tmp_path):
    path = tmp_path / "mine.jsonl"
    lines = [{"question": "What is 7 + 5?", "answer": "12"}, {"question": "Is the sun a star?", "answer": "yes"},
             {"question": "What is 3 * 4?", "answer": "12"}, {"question": "What is 10 - 4?", "answer": "6"}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    png = tmp_path / "plot.png"
    out = subprocess.run(
        [sys.executable, "-m", "r2local", "bench", "--dataset", str(path), "--n", "2", "--strategies", "all-cloud,r2local",
         "--cloud-share", "0.5", "--calib-n", "2", "--json", "--plot", str(png), "--no-cache"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["policy"]["source"] == "calibrated for 50% cloud share on 2 other questions"
    assert data["policy"]["bands"] and data["cache"] is False
    assert [s["strategy"] for s in data["strategies"]] == ["all-cloud", "r2local"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ledger = Ledger(Path(data["ledger"]))
    assert not [c for c in ledger.iter_calls() if c["cached"]]
    # Calibration answered 2 other questions on every tier (graded: the policy's evidence), never the benched ones.
    benched = {it["question"] for it in data["items"]}
    small = [q for q in ledger.questions(200) if q["strategy"] == "all-small"]
    assert len(small) == 2 and not {q["question"] for q in small} & benched
    assert len(ledger.feedback()) >= 8 and {f["source"] for f in ledger.feedback()} == {"bench"}
    ledger.close()


def test_bench_without_a_cloud_key_says_what_to_do(r2home, cloud_server):
    write_config(r2home, to_toml(plumbing_config(cloud_server)))
    with pytest.raises(Exception, match="needs the cloud tier"):
        execute(None, options(strategies="all-cloud"))
