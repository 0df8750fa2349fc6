from pathlib import Path

import pytest

from r2local import paths
from r2local.config import load_settings
from r2local.errors import ConfigError

from .conftest import write_config


def test_no_file_gives_the_offline_demo_pool(r2home: Path):
    s = load_settings()
    assert s.pool == "demo"
    assert [t.name for t in s.tiers] == ["local-small", "local", "cloud"]
    assert s.router.model == "qwen2.5-coder-0.5b-instruct"
    assert paths.config_path() == r2home / "config.toml"


def test_r2local_config_names_another_config_file(r2home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    other = tmp_path / "elsewhere.toml"
    other.write_text('pool = "demo"\n[budget]\ndaily_usd = 0.25\n')
    monkeypatch.setenv(paths.CONFIG_ENV, str(other))
    assert paths.config_path() == other
    assert load_settings().budget.daily_usd == 0.25
    assert paths.db_path().parent == r2home  # the ledger stays in the home


def test_contract_shape_is_accepted(r2home: Path):
    write_config(
        r2home,
        """
[router]
model = "qwen2.5-coder-0.5b-instruct"

[[tiers]]
name = "local-small"
backend = "llamacpp"
model = "smollm2-135m-instruct"

[[tiers]]
name = "cloud"
backend = "openai"
base_url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
""",
    )
    s = load_settings()
    assert [t.name for t in s.tiers] == ["local-small", "cloud"]
    assert s.tiers[1].input_usd_per_mtok == 0.15 and not s.tiers[1].is_local
    assert s.tiers[0].is_local


def test_router_section_alone_keeps_pool_tiers(r2home: Path):
    write_config(r2home, '[router]\nmax_subtasks = 3\n')
    s = load_settings()
    assert s.router.max_subtasks == 3 and len(s.tiers) == 3


@pytest.mark.parametrize(
    "text, field, hint",
    [
        ("[router\nmodel = 1", "invalid TOML", "correct the syntax"),
        ("[router]\nmodle = 'x'\n", "field router.modle", "remove or rename"),
        ("[[tiers]]\nname = 'a'\nbackend = 'gguf'\nmodel = 'm'\n", "unknown backend 'gguf'", "change the value"),
        ("[[tiers]]\nname = 'a'\nbackend = 'llamacpp'\n", "field tiers[0] ('a').model", "add the field"),
        ("[router]\nthresholds = [0.8, 0.2]\n", "ascending", "change the value"),
        ("[router]\nthresholds = [0.5]\n", "3 tiers need 2", "change the value"),
        ("pool = 'nope'\n", "unknown pool 'nope'", "demo"),
        ("[[tiers]]\nname='a'\nbackend='llamacpp'\nmodel='m'\n[[tiers]]\nname='a'\nbackend='llamacpp'\nmodel='m'\n", "unique", "change"),
    ],
)
def test_invalid_config_names_file_field_and_fix(r2home: Path, text: str, field: str, hint: str):
    path = write_config(r2home, text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert hint in info.value.fix


def test_pool_override_ignores_file_tiers(r2home: Path):
    write_config(r2home, "[[tiers]]\nname='only'\nbackend='llamacpp'\nmodel='m'\n")
    assert [t.name for t in load_settings(pool="default").tiers] == ["local-small", "local", "cloud"]


def test_the_strategies_config_accepts_are_the_registered_ones():
    """config checks [router] strategy against vocab.Routing without importing routing."""
    from r2local.routing.strategies import STRATEGIES
    from r2local.vocab import Routing

    assert {r.value for r in Routing} <= set(STRATEGIES)
