"""The pool: tiers from config + manifests, and the resident models behind them.

One resident model per (runtime, file, adapter): the router and a tier that
name the same model share one instance, and its lock serialises their calls.
An unknown model name is an error, never a silent default.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from r2local import keys
from r2local.backends import Backend, BackendSpec, Usage, backend_class
from r2local.config import RouterSection, Settings, TierSection
from r2local.errors import ConfigError, ModelError
from r2local.fetch import Progress, resolve
from r2local.manifests import Manifest, load_manifests, lookup
from r2local.modelfile import identify
from r2local.threads import ThreadBudget


@dataclass(frozen=True)
class Tier:
    index: int
    name: str
    backend: str
    model: str
    is_local: bool
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    config: TierSection
    writes_programs: bool = False  # answers quantitative tasks with a program (coder models)
    known_as: str | None = None  # the manifest a model given by path was found to be (see modelfile)

    @property
    def priced(self) -> bool:
        return self.input_usd_per_mtok > 0 or self.output_usd_per_mtok > 0

    def cost(self, usage: Usage | None = None, *, input_tokens: int = 0, output_tokens: int = 0) -> float:
        if usage is not None:
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
        return (input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok) / 1e6


def _is_path(ref: str) -> bool:
    return ref.endswith(".gguf") or "/" in ref or ref.startswith((".", "~"))


class Pool:
    def __init__(self, settings: Settings, *, progress: Progress | None = None, fetch: bool = True) -> None:
        self.settings = settings
        self.progress = progress
        self.fetch = fetch
        self.manifests = load_manifests()
        self.budget = ThreadBudget(settings.runtime.threads)
        self.tiers = [self._tier(i, t) for i, t in enumerate(settings.tiers)]
        self._check_names()
        self._resident: dict[tuple[str, str, str], Backend] = {}
        self._remote: dict[str, Backend] = {}
        self._lock = threading.Lock()

    # -- tiers -----------------------------------------------------------------
    def _tier(self, index: int, cfg: TierSection) -> Tier:
        manifest = self.manifests.get(cfg.model)
        in_price = cfg.input_usd_per_mtok
        out_price = cfg.output_usd_per_mtok
        if manifest is not None and manifest.format == "api":
            in_price = manifest.input_usd_per_mtok if in_price is None else in_price
            out_price = manifest.output_usd_per_mtok if out_price is None else out_price
        known_as = None
        if manifest is None and _is_path(cfg.model) and backend_class(cfg.backend).loads_file:
            found = identify(Path(cfg.model), self.manifests)  # a path inherits what is known about its file
            manifest, known_as = (found.manifest, f"{found.manifest.name} ({found.how})") if found else (None, None)
        programs = cfg.programs if cfg.programs is not None else bool(manifest and manifest.writes_programs)
        return Tier(index, cfg.name, cfg.backend, cfg.model, cfg.is_local, in_price or 0.0, out_price or 0.0, cfg,
                    programs, known_as)

    def _check_names(self) -> None:
        """Unknown local model names fail now, not when a subtask first reaches that tier."""
        refs = [("router.model", self.settings.router.model)]
        refs += [(f"tier {t.name!r}", t.model) for t in self.settings.tiers if backend_class(t.backend).loads_file]
        for where, ref in refs:
            if _is_path(ref):
                continue  # a path is checked when loaded (its file may appear later)
            try:
                lookup(ref, self.manifests)
            except ModelError as exc:
                raise ModelError(f"{where}: {exc.message}", fix=exc.fix) from None

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise ConfigError(f"unknown tier {name!r}", fix=f"use one of: {', '.join(t.name for t in self.tiers)}")

    @property
    def strongest_local(self) -> Tier:
        local = [t for t in self.tiers if t.is_local]
        if not local:
            raise ConfigError("the pool has no local tier", fix="add a llamacpp or mlx tier to config.toml")
        return local[-1]

    def unavailable_reason(self, tier: Tier) -> str | None:
        """Why a tier cannot be used now (no key), or None if it can."""
        if not backend_class(tier.backend).uses_key or not tier.config.needs_key:
            return None
        st = keys.status(tier.name)
        if st.is_set:
            return None
        return st.problem or f"no API key for tier {tier.name!r} (run `r2local key set --tier {tier.name}`)"

    # -- models ------------------------------------------------------------------
    def model_file(self, ref: str, progress: Progress | None = None) -> Path:
        """A local file for a manifest name or a path; fetched when allowed."""
        if _is_path(ref):
            path = Path(ref).expanduser()
            if not path.exists():
                raise ModelError(f"model file not found: {path}", fix="check the path in config.toml")
            return path
        manifest: Manifest = lookup(ref, self.manifests)
        return resolve(manifest, progress or self.progress, fetch=self.fetch)

    def _ctx_for(self, ref: str) -> int:
        # The largest context any user of this model asks for.
        sizes = [t.n_ctx for t in self.settings.tiers if t.model == ref]
        if self.settings.router.model == ref:
            sizes.append(self.settings.router.n_ctx)
        return max(sizes or [4096])

    def _local(self, backend: str, ref: str, adapter: str | None) -> Backend:
        key = (backend, ref, adapter or "")
        cls = backend_class(backend)
        if adapter and not cls.supports_lora:
            raise ConfigError(f"the {backend} backend cannot load a LoRA adapter ({adapter})",
                              fix="remove `adapter` for this model in config.toml, or use a backend that supports LoRA")
        with self._lock:
            if key not in self._resident:
                spec = BackendSpec(
                    model=ref if not _is_path(ref) else Path(ref).stem, path=self.model_file(ref),
                    n_ctx=self._ctx_for(ref), threads=self.settings.runtime.threads_per_model, budget=self.budget,
                    adapter=adapter,
                )
                self._resident[key] = cls.build(spec)
            return self._resident[key]

    def backend(self, tier: Tier) -> Backend:
        cls = backend_class(tier.backend)
        if cls.loads_file:
            return self._local(tier.backend, tier.model, tier.config.adapter)
        with self._lock:
            if tier.name not in self._remote:
                key = (lambda n=tier.name: keys.require_key(n)) if cls.uses_key and tier.config.needs_key else None
                spec = BackendSpec(model=tier.model, tier=tier.name, is_local=tier.is_local, base_url=tier.config.base_url,
                                   api_key=key, timeout_s=tier.config.timeout_s)
                self._remote[tier.name] = cls.build(spec)
            return self._remote[tier.name]

    def router(self) -> Backend:
        r: RouterSection = self.settings.router
        return self._local(r.backend, r.model, r.adapter)

    def use_router_adapter(self, adapter: str | None) -> Backend:
        """Route with another LoRA adapter (None: the plain model). The instance it
        replaces is unloaded unless a tier still uses it: an adapter swap never
        keeps two copies of the router resident for nothing."""
        r = self.settings.router
        old = (r.backend, r.model, r.adapter or "")
        self.settings.router = r.model_copy(update={"adapter": adapter})
        in_use = {(t.backend, t.model, t.config.adapter or "") for t in self.tiers}
        with self._lock:
            replaced = self._resident.pop(old, None) if old not in in_use and (adapter or "") != old[2] else None
        if replaced is not None:
            replaced.close()
        return self.router()

    def resident(self) -> list[Backend]:
        return list(self._resident.values())

    def close(self) -> None:
        with self._lock:
            for b in [*self._resident.values(), *self._remote.values()]:
                b.close()
            self._resident.clear()
            self._remote.clear()
