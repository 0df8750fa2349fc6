"""Typed settings from one TOML file, validated with errors naming file and field.

A config without ``[[tiers]]`` takes its tiers (and router) from a built-in pool
(``pool = "demo"`` by default), so an empty or absent file runs offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from r2local import paths
from r2local.errors import ConfigError
from r2local.vocab import Routing

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouterSection(_Section):
    model: str = Field("qwen2.5-coder-0.5b-instruct", description="Manifest name or .gguf path of the router model.")
    strategy: str = Field(
        "r2local",
        description="How questions are routed: r2local (a route per question) or plan-and-allocate (always plan, "
        "place every step by thresholds).",
    )
    backend: str = Field("llamacpp", description="Runtime for the router model: a local one that can score labels.")
    adapter: str | None = Field(None, description="LoRA adapter file for the router.")
    max_subtasks: int = Field(6, ge=1, le=16, description="Cap on the number of subtasks in a plan.")
    thresholds: list[float] | None = Field(
        None, description="Difficulty cut points, one fewer than tiers, ascending in [0, 1]."
    )
    plan_max_tokens: int = Field(320, ge=32, description="Token cap for the decomposer's JSON plan.")
    find_parts: bool = Field(
        True,
        description="Where the rules keep a message whole but it may hold several asks, let the router (with the "
        "split adapter shipped for its model) look for independent parts: one more router call on such messages.",
    )
    n_ctx: int = Field(4096, ge=256, description="Router context window.")

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if any(not 0.0 <= t <= 1.0 for t in v):
                raise ValueError("each threshold must be between 0 and 1")
            if v != sorted(v):
                raise ValueError("thresholds must be in ascending order")
        return v


class TierSection(_Section):
    name: str = Field(min_length=1, description="Tier name; also the keyring user for its key.")
    backend: str = Field(description="Runtime: llamacpp, mlx or openai.")
    model: str = Field(min_length=1, description="Manifest name, .gguf path, or the endpoint's model id.")
    local: bool | None = Field(None, description="Whether calls stay on this machine (default: by backend).")
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint; unset: OPENAI_BASE_URL, else OpenAI's, as the SDK does."
    )
    needs_key: bool = Field(True, description="Whether the endpoint needs an API key (openai backend).")
    input_usd_per_mtok: float | None = Field(None, ge=0, description="Price per million input tokens.")
    output_usd_per_mtok: float | None = Field(None, ge=0, description="Price per million output tokens.")
    max_tokens: int = Field(384, ge=1, description="Answer token cap for this tier.")
    n_ctx: int = Field(4096, ge=256, description="Context window for local runtimes.")
    adapter: str | None = Field(None, description="LoRA adapter for local runtimes.")
    programs: bool | None = Field(
        None, description="Whether this model writes programs for quantitative tasks (default: from its manifest; "
        "a .gguf path inherits it from the manifest its file matches by sha256 or GGUF name).",
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout (openai backend).")
    max_retries: int = Field(2, ge=0, le=10, description="Retries on transient errors (openai backend).")

    @property
    def is_local(self) -> bool:
        from r2local.backends import BACKENDS

        return self.local if self.local is not None else bool(getattr(BACKENDS.get(self.backend), "local_by_default", False))


class RuntimeSection(_Section):
    threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="CPU threads shared by all resident local models.",
    )
    threads_per_model: int = Field(1, ge=1, description="Threads one local model uses per call.")


class ExecutorSection(_Section):
    samples: int = Field(
        3, ge=1, le=9,
        description="Answers a local tier gives for one task, compared for the agreement signal (1: no sampling).",
    )
    max_samples: int = Field(
        6, ge=1, le=12,
        description="When the first `samples` answers split, draw more, up to this many in all, before deciding "
        "keep or escalate (sampling stops as soon as the rest could not change the decision; below `samples`: "
        "no extra samples).",
    )
    agree_below: float = Field(
        0.6, ge=0, le=1,
        description="Escalate a local answer when the share of its samples stating the same answer is below this.",
    )
    sample_temperature: float = Field(0.7, gt=0, le=2, description="Temperature of the extra samples.")
    early_stop: bool = Field(
        True, description="Stop sampling once more samples could not change the decision (saves local time)."
    )
    sample_order: Literal[
        "auto", "mixed", "programs", "program-brief", "programs-then-prose", "prose", "prose-brief", "brief",
        "program-brief-programs", "program-lines",
    ] = Field(
        "auto",
        description="Which samples vote, in what order: auto (the order measured best for each answer kind) or a "
        "named order (programs, prose, the answer alone, mixed; see ORDERS in r2local/engine/answering.py).",
    )
    programs: bool = Field(
        True, description="Let tiers that write programs answer quantitative tasks with one, run in the sandbox."
    )
    program_timeout_s: float = Field(2.0, gt=0, le=60, description="Wall-clock limit for one program run.")
    escalate_below: float | None = Field(
        None, ge=0, le=1,
        description="Also escalate when the mean token probability is below this (off: it did not separate right "
        "from wrong answers; it is recorded as a feature).",
    )
    max_escalations: int = Field(1, ge=0, le=4, description="Tier steps one subtask may climb.")
    max_parallel: int = Field(4, ge=1, description="Subtasks running at once.")


class BudgetSection(_Section):
    daily_usd: float | None = Field(None, ge=0, description="Cloud spend cap per local calendar day; unset: no cap.")
    monthly_usd: float | None = Field(None, ge=0, description="Cloud spend cap per local calendar month; unset: no cap.")


class LearningSection(_Section):
    shadow_local: float = Field(
        0.1, ge=0, le=1,
        description="Share of locally answered questions also answered one local tier up (free: local time only); "
        "agreement between the two is a training label.",
    )
    shadow_cloud: float = Field(
        0.0, ge=0, le=1,
        description="Share of locally answered questions also answered on the cloud, for learning (costs money: "
        "within the budget, never in local-only, asked first in confirm mode).",
    )


class PrivacySection(_Section):
    mode: Literal["local-only", "confirm", "auto"] = Field(
        "auto",
        description="local-only: never contact a non-local tier; confirm: ask before each cloud call; auto: send.",
    )
    extra_patterns: list[str] = Field(
        default_factory=list, description="More regular expressions to redact before any cloud call."
    )

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        import re

        for i, pattern in enumerate(v):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {i} ({pattern!r}) is not a valid regular expression: {exc}") from None
            if compiled.search(""):
                raise ValueError(f"pattern {i} ({pattern!r}) matches the empty string")
        return v


class Settings(_Section):
    pool: str = Field("demo", description="Built-in pool used when no [[tiers]] are given.")
    router: RouterSection = Field(default_factory=RouterSection)
    tiers: list[TierSection] = Field(min_length=1)
    runtime: RuntimeSection = Field(default_factory=RuntimeSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    privacy: PrivacySection = Field(default_factory=PrivacySection)
    learning: LearningSection = Field(default_factory=LearningSection)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        from r2local.backends import BACKENDS

        names = [t.name for t in self.tiers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(dupes)}")
        for tier in self.tiers:
            if tier.backend not in BACKENDS:
                raise ValueError(
                    f"tier {tier.name!r}: unknown backend {tier.backend!r}; use one of {', '.join(sorted(BACKENDS))}"
                )
        if self.router.strategy not in [r.value for r in Routing]:
            names = ", ".join(r.value for r in Routing)
            raise ValueError(f"router.strategy {self.router.strategy!r} is unknown; use one of {names}")
        router = BACKENDS.get(self.router.backend)
        if router is None or not router.loads_file or not hasattr(router, "score_labels"):
            usable = sorted(n for n, c in BACKENDS.items() if c.loads_file and hasattr(c, "score_labels"))
            raise ValueError(f"router.backend {self.router.backend!r} cannot route; use one of {', '.join(usable)}")
        th = self.router.thresholds
        if th is not None and len(th) != len(self.tiers) - 1:
            raise ValueError(
                f"router.thresholds has {len(th)} values; {len(self.tiers)} tiers need {len(self.tiers) - 1}"
            )
        return self

    def tier(self, name: str) -> TierSection:
        for t in self.tiers:
            if t.name == name:
                return t
        raise ConfigError(f"unknown tier {name!r}", fix=f"use one of: {', '.join(t.name for t in self.tiers)}")


def pool_path(name: str) -> Path:
    return paths.builtin_models_dir() / "pools" / f"{name}.toml"


def available_pools() -> list[str]:
    return sorted(p.stem for p in (paths.builtin_models_dir() / "pools").glob("*.toml"))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", fix=f"correct the syntax in {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", fix="check the path and its permissions") from None


def _merge_pool(data: dict[str, Any], source: Path, pool: str | None) -> dict[str, Any]:
    name = pool or data.get("pool", "demo")
    if "tiers" in data and pool is None:
        return data
    path = pool_path(str(name))
    if not path.is_file():
        raise ConfigError(
            f"{source}: field 'pool': unknown pool {name!r}",
            fix=f"use one of: {', '.join(available_pools())}, or give [[tiers]]",
        )
    merged = read_toml(path)
    merged["pool"] = name
    for key, value in data.items():
        if key == "pool" or (key == "tiers" and pool is not None):
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int) and parts and parts[-1] == "tiers":
            tiers = data.get("tiers") or []
            label = tiers[item].get("name") if item < len(tiers) and isinstance(tiers[item], dict) else None
            parts[-1] = f"tiers[{item}]" + (f" ({label!r})" if label else "")
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _fix_for(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "remove or rename the field (see README's config reference)"
    if kind == "missing":
        return "add the field"
    return "change the value as described"


def parse_settings(data: dict[str, Any], source: Path, pool: str | None = None) -> Settings:
    merged = _merge_pool(data, source, pool)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _loc(tuple(err["loc"]), merged)
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: field {field}: {msg}{more}", fix=_fix_for(err)) from None


def load_settings(path: Path | None = None, pool: str | None = None) -> Settings:
    """Read config.toml (absent file: the built-in pool) and validate it.

    Args:
        path: config file; default ``paths.config_path()``.
        pool: force a built-in pool's tiers, ignoring the file's [[tiers]].
    """
    path = path or paths.config_path()
    data = read_toml(path) if path.exists() else {}
    return parse_settings(data, path, pool)
