"""A model given as a .gguf path inherits what r2local knows about its file."""

from __future__ import annotations

import gguf

from r2local.engine.core import Engine
from r2local.manifests import load_manifests
from r2local.modelfile import gguf_names, identify
from r2local.pool import Pool
from r2local.routing.plan import single_plan
from r2local.routing.strategies import FixedPlan, Strategy
from r2local.store.records import Decision
from tests.test_statuses import calls

from .conftest import SMOL, settings_from


def path_pool(r2home, model: str, **tier) -> Pool:
    cfg = {"router": {"model": SMOL},
           "tiers": [{"name": "local", "backend": "llamacpp", "model": model, "n_ctx": 2048, "max_tokens": 160, **tier}]}
    return Pool(settings_from(cfg, r2home), fetch=False)


def test_the_demo_coder_by_path_writes_programs(r2home, qwen_path, smol_path):
    [tier] = path_pool(r2home, str(qwen_path)).tiers
    assert tier.writes_programs and tier.known_as == "qwen2.5-coder-0.5b-instruct (sha256)"
    [small] = path_pool(r2home, str(smol_path)).tiers
    assert not small.writes_programs and small.known_as == "smollm2-135m-instruct (sha256)"


def test_config_still_forces_programs_either_way(r2home, qwen_path, smol_path):
    assert not path_pool(r2home, str(qwen_path), programs=False).tiers[0].writes_programs
    assert path_pool(r2home, str(smol_path), programs=True).tiers[0].writes_programs


def test_an_unknown_or_missing_file_is_not_known(r2home, tmp_path):
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all")
    assert identify(tmp_path / "junk.gguf", load_manifests()) is None
    assert identify(tmp_path / "absent.gguf", load_manifests()) is None
    tier = path_pool(r2home, str(tmp_path / "absent.gguf")).tiers[0]
    assert not tier.writes_programs and tier.known_as is None


def _gguf(path, name: str | None, basename: str, size: str) -> None:
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_array("tokenizer.ggml.tokens", ["a", "bc", "def"] * 50)  # skipped on the way to the names
    if name:
        writer.add_name(name)
    writer.add_basename(basename)
    writer.add_size_label(size)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()


def test_gguf_names_identify_a_requantised_copy(r2home, tmp_path):
    # Another quantisation of the same model: a different sha256, the same names.
    _gguf(tmp_path / "coder-q8.gguf", "Qwen2.5 Coder 0.5B Instruct", "Qwen2.5-Coder", "0.5B")
    assert gguf_names(tmp_path / "coder-q8.gguf")["general.basename"] == "Qwen2.5-Coder"
    found = identify(tmp_path / "coder-q8.gguf", load_manifests())
    assert (found.manifest.name, found.how) == ("qwen2.5-coder-0.5b-instruct", "gguf metadata")
    tier = path_pool(r2home, str(tmp_path / "coder-q8.gguf")).tiers[0]
    assert tier.writes_programs and tier.known_as == "qwen2.5-coder-0.5b-instruct (gguf metadata)"
    # A basename with no matching size is not a known model.
    _gguf(tmp_path / "coder-7b.gguf", None, "Qwen2.5-Coder", "7B")
    assert identify(tmp_path / "coder-7b.gguf", load_manifests()) is None


def test_ask_json_shows_programs_with_the_real_coder_given_by_path(r2home, qwen_path):
    """The real demo coder given by path answers a one-step question with a program."""
    cfg = {"router": {"model": SMOL}, "runtime": {"threads": 2}, "executor": {"samples": 1, "max_samples": 1},
           "tiers": [{"name": "local", "backend": "llamacpp", "model": str(qwen_path), "n_ctx": 2048,
                      "max_tokens": 160}]}
    engine = Engine(settings_from(cfg, r2home))
    question = "What is 120 divided by 8?"
    plan = Strategy("fixed", FixedPlan(single_plan(question)),
                    type("On0", (), {"allocate": lambda self, job, nodes: {n.id: Decision(0) for n in nodes}})())
    try:
        result = engine.ask(question, strategy=plan, local_only=True)
        out = result.to_json()
        assert out["programs"] is True and out["answer_kind"] == "number"
        assert out["subtasks"][0]["programs"] is True
        assert any(c["role"] == "program" for c in calls(engine, result.question_id))
    finally:
        engine.close()
