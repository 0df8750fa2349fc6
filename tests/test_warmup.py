"""The warm-up: the local models loaded and every prompt's fixed prefix evaluated once, written as
snapshots that a later process restores (a cold first question spent ~14 s of ~20 on them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from r2local.engine.core import Engine
from r2local.engine.warmup import PLACEHOLDER, prompts_for, warm

from .conftest import SMOL, plumbing_config, settings_from
from .test_cli import r2

OFFLINE_CLOUD = "http://127.0.0.1:9/v1"  # never contacted: the warm-up touches local tiers only


def test_warm_prefills_each_local_prompt_and_records_nothing(r2home: Path):
    engine = Engine(settings_from(plumbing_config(OFFLINE_CLOUD), r2home))
    seconds = warm(engine)
    assert list(seconds) == [SMOL] and seconds[SMOL] > 0  # router and both tiers share one resident model
    backend = engine.pool.router()
    assert backend._llm is not None  # loaded now, not on the first question
    snapshots = list(backend.prompt_cache.disk.glob("*.kv"))
    assert len(snapshots) >= len(prompts_for(False))  # each prompt family once (the rating prompt too)
    assert engine.ledger.questions(limit=10) == [] and engine.ledger.calls(limit=10) == []  # answers nothing
    engine.close()

    later = Engine(settings_from(plumbing_config(OFFLINE_CLOUD), r2home))  # a new process: nothing in memory
    result = later.ask("What is 6 times 7?", local_only=True)
    cache = later.pool.router().prompt_cache
    assert result.answer and cache.disk_hits >= 2 and cache.hits + cache.disk_hits >= 2  # rating and answer
    later.close()


def test_prompts_for_a_tier_that_writes_programs_include_the_program_prompts():
    plain, coder = prompts_for(False), prompts_for(True)
    assert len(coder) == len(plain) + 4 and all(p[-1]["content"] == PLACEHOLDER for p in coder[:-1])
    programs = coder[-4:]  # numbers, yes/no checks on numbers, choices between computed numbers (two examples)
    assert all("Python program" in p[0]["content"] for p in programs)
    assert len({p[0]["content"] for p in programs}) == 3 and len({p[1]["content"] for p in programs}) == 4


def test_pull_warms_the_pools_models_unless_told_not_to(r2home: Path):
    from .conftest import to_toml, write_config

    write_config(r2home, to_toml(plumbing_config(OFFLINE_CLOUD)))
    skipped = r2("models", "pull", "--no-warm")
    assert skipped.returncode == 0 and "warm" not in skipped.stderr and not list(r2home.glob("cache/kv/*/*.kv"))
    pulled = r2("models", "pull")
    assert pulled.returncode == 0 and f"warm: {SMOL}" in pulled.stderr, pulled.stderr
    assert list(r2home.glob("cache/kv/*/*.kv"))


@pytest.mark.slow
def test_warm_prefills_the_split_prompt_under_the_shipped_adapter(r2home: Path, qwen_path: Path, smol_path: Path):
    from r2local.config import parse_settings

    engine = Engine(parse_settings({"pool": "demo", "runtime": {"threads": 2}}, r2home / "config.toml"))
    warm(engine)
    router = engine.pool.router()
    assert engine.router.can_split and router.active_adapter == (None, 1.0)  # swapped back after the split prompt
    base = router.prompt_cache.disk
    router.set_adapter(engine.router.split_adapter)
    assert router.prompt_cache.disk != base and list(router.prompt_cache.disk.glob("*.kv"))  # its own snapshot
    engine.close()
