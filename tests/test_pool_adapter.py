"""An adapter swap replaces the router's resident instance: the old one is
unloaded unless a tier still uses it, so two copies never stay resident."""

from __future__ import annotations

from r2local.pool import Pool

from .conftest import QWEN, SMOL, plumbing_config, settings_from
from .loragen import make_lora


def test_swapping_the_router_adapter_unloads_what_it_replaces(r2home, tmp_path, qwen_path, smol_path):
    cfg = plumbing_config("http://127.0.0.1:9/v1", router_model=QWEN)
    pool = Pool(settings_from(cfg, r2home))
    plain = pool.router()
    plain.count_tokens("load it")  # resident and loaded
    assert plain._llm is not None
    lora = make_lora(tmp_path / "a.gguf", qwen_path)
    tuned = pool.use_router_adapter(str(lora))
    assert tuned is not plain and tuned.adapter == lora and plain._llm is None  # the plain copy was unloaded
    assert [key[2] for key in pool._resident] == [str(lora)]
    back = pool.use_router_adapter(None)
    assert back.adapter is None and [key[2] for key in pool._resident] == [""]
    pool.close()


def test_a_router_instance_a_tier_shares_stays(r2home, tmp_path, smol_path):
    pool = Pool(settings_from(plumbing_config("http://127.0.0.1:9/v1", router_model=SMOL), r2home))
    shared = pool.router()
    assert pool.backend(pool.tier("local")) is shared
    tuned = pool.use_router_adapter(str(make_lora(tmp_path / "s.gguf", smol_path)))
    assert tuned is not shared and pool.backend(pool.tier("local")) is shared  # the tier keeps its model
    pool.close()
