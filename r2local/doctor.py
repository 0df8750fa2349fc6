"""`r2local doctor`: what works on this machine, what does not, and the fix.

Each check returns one line: ok, warn or fail, a summary, the fix when not ok,
and data for ``--json``. Nothing here contacts the network unless asked
(``cloud=True``: one request that costs nothing, listing the endpoint's models).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from r2local import keys, paths
from r2local.errors import R2Error

OK, WARN, FAIL = "ok", "warn", "fail"
_MARGIN = 1 << 30  # free space to keep beyond the models still to fetch


@dataclass
class Check:
    id: str
    status: str  # ok, warn, fail
    summary: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _config(ctx: dict[str, Any]) -> Check:
    from r2local.config import load_settings

    where = paths.config_path()
    try:
        settings = load_settings(pool=ctx["pool"])
    except R2Error as exc:
        return Check("config", FAIL, exc.message, exc.fix, {"path": str(where)})
    ctx["settings"] = settings
    source = str(where) if where.exists() else f"no {where.name}: the built-in pool {settings.pool!r}"
    tiers = ", ".join(f"{t.name} ({t.backend})" for t in settings.tiers)
    return Check("config", OK, f"{source}; tiers {tiers}",
                 data={"path": str(where), "exists": where.exists(), "pool": settings.pool,
                       "tiers": [t.name for t in settings.tiers]})


def _llamacpp(ctx: dict[str, Any]) -> Check:
    from r2local.backends import llamaprobe

    verdict = llamaprobe.check()
    data = {**verdict.to_json(), "features": verdict.features(), "cached": verdict.cached}
    data.pop("key", None)
    if verdict.status == "ok":
        features = ", ".join(f for f in verdict.features() if f not in ("SSE3", "SSSE3")) or "no SIMD"
        return Check("llamacpp", OK, f"llama-cpp-python {verdict.version} decodes on this CPU ({features})", data=data)
    if verdict.status == "missing":
        status = FAIL if _uses(ctx, "llamacpp") else WARN
        return Check("llamacpp", status, "llama-cpp-python is not installed", "pip install 'r2local[llamacpp]'", data)
    fix = f"rebuild llama-cpp-python: {verdict.rebuild_command()}"
    if verdict.status == "fallback":
        return Check("llamacpp", WARN, verdict.message(), fix, data)
    if verdict.status == "inconclusive":
        return Check("llamacpp", WARN, verdict.message(), "run `r2local doctor` again when the machine is idler", data)
    return Check("llamacpp", FAIL, verdict.message(), fix, data)


def _uses(ctx: dict[str, Any], backend: str) -> bool:
    settings = ctx.get("settings")
    if settings is None:
        return backend == "llamacpp"
    return settings.router.backend == backend or any(t.backend == backend for t in settings.tiers)


def _mlx(ctx: dict[str, Any]) -> Check:
    import importlib.util

    apple = sys.platform == "darwin" and platform.machine() == "arm64"
    installed = importlib.util.find_spec("mlx_lm") is not None
    needed = _uses(ctx, "mlx")
    data = {"apple_silicon": apple, "installed": installed, "needed": needed}
    if apple and installed:
        return Check("mlx", OK, "mlx-lm is installed (Apple Silicon)", data=data)
    if not needed:
        why = "not Apple Silicon" if not apple else "mlx-lm is not installed"
        return Check("mlx", OK, f"not used by this pool ({why})", data=data)
    if not apple:
        return Check("mlx", FAIL, "an mlx tier is configured, but MLX runs only on Apple Silicon",
                     "use backend = \"llamacpp\" for that tier", data)
    return Check("mlx", FAIL, "an mlx tier is configured, but mlx-lm is not installed", "pip install 'r2local[mlx]'", data)


def _keyring(ctx: dict[str, Any]) -> Check:
    from r2local.keystore import active

    try:
        info = active()
    except Exception as exc:  # a broken backend must not break the doctor
        return Check("keyring", FAIL, f"the keyring backend fails to load: {type(exc).__name__}",
                     keys._NO_KEYRING_FIX, {})
    data = info.to_json()
    if info.kind == "secure":
        return Check("keyring", OK, f"keys go to {info.where}", data=data)
    if info.kind == "encrypted":
        return Check("keyring", OK, f"keys go to {info.where} (encrypted)", data=data)
    if info.kind == "plaintext":
        return Check("keyring", WARN, f"the keyring backend is {info.describe()}: keys would be stored unencrypted",
                     keys._PLAINTEXT_FIX, data)
    if info.kind == "none":
        return Check("keyring", WARN, "no secure keyring on this machine; a cloud key can only come from "
                     f"${keys.ENV_KEY}", keys._NO_KEYRING_FIX, data)
    return Check("keyring", WARN, f"unknown keyring backend {info.name}: r2local cannot tell whether it encrypts",
                 "check its documentation, or choose one with PYTHON_KEYRING_BACKEND", data)


def _clouds(ctx: dict[str, Any]) -> list[Any]:
    settings = ctx.get("settings")
    return [t for t in settings.tiers if not t.is_local and t.backend == "openai"] if settings else []


def _key(ctx: dict[str, Any]) -> Check:
    clouds = [t for t in _clouds(ctx) if t.needs_key]
    if not clouds:
        return Check("key", OK, "no cloud tier needs a key", data={"tier": None})
    tier = clouds[-1].name
    st = keys.status(tier)
    data = {"tier": tier, "source": st.source, "where": st.where, "secure": st.secure, "problem": st.problem}
    if st.is_set and st.secure:
        return Check("key", OK, f"tier {tier!r}: key set (…{st.last4}) in {st.where}", data=data)
    if st.is_set:
        return Check("key", WARN, f"tier {tier!r}: key set (…{st.last4}) in {st.where}, unencrypted",
                     f"move it: `r2local key delete --tier {tier}`, then store it in a secure keyring", data)
    return Check("key", WARN, f"tier {tier!r}: no key, so r2local answers with local models only",
                 f"`r2local key set --tier {tier}` (or export {keys.ENV_KEY})", data)


def _local_refs(ctx: dict[str, Any]) -> list[str]:
    settings = ctx.get("settings")
    if settings is None:
        return []
    refs = [settings.router.model] + [t.model for t in settings.tiers if t.backend in ("llamacpp", "mlx")]
    return list(dict.fromkeys(refs))


def _models(ctx: dict[str, Any]) -> Check:
    from pathlib import Path

    from r2local.fetch import file_state
    from r2local.manifests import load_manifests

    manifests = load_manifests()
    rows, missing, bad, todo = [], [], [], 0
    for ref in _local_refs(ctx):
        if ref in manifests:
            state, path = file_state(manifests[ref])
            size = manifests[ref].expected_size
        else:  # a path in config.toml
            path = Path(ref).expanduser()
            state, size = ("ok" if path.is_file() else "missing"), None
        rows.append({"name": ref, "state": state, "path": str(path) if path else None, "size_bytes": size})
        if state == "missing":
            missing.append(ref)
            todo += size or 0
        elif state == "mismatch":
            bad.append(f"{ref} ({path})")
    ctx["bytes_to_fetch"] = todo
    data = {"store": str(paths.models_dir()), "models": rows}
    if bad:
        return Check("models", FAIL, f"checksum mismatch: {', '.join(bad)}",
                     "delete the file and run `r2local models pull`", data)
    if missing:
        return Check("models", WARN, f"not fetched yet: {', '.join(missing)}", "run `r2local models pull`", data)
    return Check("models", OK, f"{len(rows)} model file(s) present, sha256 verified", data=data)


def _threads(ctx: dict[str, Any]) -> Check:
    settings = ctx.get("settings")
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    omp = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS") if k in os.environ}
    if settings is None:
        return Check("threads", WARN, f"{cores} cores; thread budget unknown (config invalid)", data={"cores": cores})
    rt = settings.runtime
    data = {"cores": cores, "threads": rt.threads, "threads_per_model": rt.threads_per_model, "omp_env": omp}
    summary = f"budget {rt.threads} thread(s), {rt.threads_per_model} per model call, on {cores} core(s)"
    if rt.threads > cores:
        return Check("threads", WARN, summary + ": more threads than cores slows every model",
                     f"set [runtime] threads = {cores} in config.toml", data)
    if rt.threads_per_model > rt.threads:
        return Check("threads", WARN, summary + ": a call can never use more than the budget",
                     f"set [runtime] threads_per_model <= {rt.threads}", data)
    return Check("threads", OK, summary, data=data)


def _disk(ctx: dict[str, Any]) -> Check:
    store = paths.models_dir()
    free = shutil.disk_usage(store).free
    need = ctx.get("bytes_to_fetch", 0)
    data = {"store": str(store), "free_bytes": free, "needed_bytes": need}
    summary = f"{free / 2**30:.1f} GiB free for the model store ({store})"
    if need and free < need:
        return Check("disk", FAIL, summary + f"; the missing models need {need / 2**30:.2f} GiB",
                     "free space, or point R2LOCAL_MODELS_DIR at a larger disk", data)
    if free < need + _MARGIN:
        return Check("disk", WARN, summary + "; less than 1 GiB would be left", "free some space", data)
    return Check("disk", OK, summary + (f"; {need / 2**30:.2f} GiB still to fetch" if need else ""), data=data)


def _cloud(ctx: dict[str, Any]) -> Check:
    """One request that costs nothing: list the endpoint's models with the key."""
    clouds = _clouds(ctx)
    if not clouds:
        return Check("cloud", OK, "no cloud tier configured", data={"tier": None})
    tier = clouds[-1]
    data: dict[str, Any] = {"tier": tier.name, "base_url": tier.base_url or os.environ.get("OPENAI_BASE_URL")}
    key = keys.get_key(tier.name) if tier.needs_key else "none"
    if key is None:
        return Check("cloud", WARN, f"tier {tier.name!r}: not contacted, no key",
                     f"`r2local key set --tier {tier.name}` (or export {keys.ENV_KEY})", data)
    import openai

    client = openai.OpenAI(api_key=key, base_url=tier.base_url, timeout=min(tier.timeout_s, 20.0), max_retries=0)
    try:
        listed = [m.id for m in client.models.list()]
    except openai.AuthenticationError:
        return Check("cloud", FAIL, f"tier {tier.name!r}: the endpoint rejected the key",
                     f"store the right key: `r2local key set --tier {tier.name}`", data)
    except openai.APIConnectionError as exc:
        return Check("cloud", FAIL, f"tier {tier.name!r}: cannot reach the endpoint ({type(exc).__name__})",
                     "check the network and base_url in config.toml", data)
    except openai.APIStatusError as exc:
        data["status_code"] = exc.status_code
        return Check("cloud", WARN, f"tier {tier.name!r}: the endpoint answered HTTP {exc.status_code} to /models",
                     "it may not list models; `r2local ask` shows whether calls work", data)
    data["model_listed"] = tier.model in listed
    note = "" if tier.model in listed else f"; it does not list {tier.model!r}"
    return Check("cloud", OK if not note else WARN, f"tier {tier.name!r}: reachable, key accepted{note}",
                 None if not note else "check the tier's model name", data)


def _policy(ctx: dict[str, Any]) -> Check:
    """Which route policy routes questions: the user's calibration, the shipped one, or none measured."""
    settings = ctx.get("settings")
    if settings is None:
        return Check("policy", WARN, "unknown (config invalid)")
    from r2local.pool import Pool
    from r2local.routing.shipped import active_policy
    from r2local.store.ledger import Ledger

    if paths.db_path().is_file():
        ledger = Ledger()
        try:
            calibration = ledger.latest_calibration()
        finally:
            ledger.close()
    else:  # no ledger yet: the doctor does not create one
        calibration = None
    pool = Pool(settings, fetch=False)
    policy = active_policy(calibration, pool.tiers)
    from r2local.routing.splitter import split_adapter

    split = split_adapter(settings.router, pool.manifests)
    data = {"source": policy.source, "kinds": sorted(policy.kinds), "bands": len(policy.bands),
            "split_adapter": split.name if split else None}
    parts = f"; parts found by rules and the router's split adapter ({split.name})" if split else \
        "; parts found by rules"
    if policy.source == "default":
        return Check("policy", OK, f"routing by the unmeasured default (one band, agreement decides){parts}",
                     data=data)
    kinds = f"; answer kinds with their own bands: {', '.join(sorted(policy.kinds))}" if policy.kinds else ""
    return Check("policy", OK, f"routing by {policy.source}{kinds}{parts}", data=data)


CHECKS: list[tuple[str, Callable[[dict[str, Any]], Check]]] = [
    ("config", _config), ("llamacpp", _llamacpp), ("mlx", _mlx), ("keyring", _keyring), ("key", _key),
    ("models", _models), ("threads", _threads), ("disk", _disk), ("policy", _policy),
]


def run(pool: str | None = None, cloud: bool = False) -> list[Check]:
    """Every check in order (a check that raises is reported, never fatal)."""
    ctx: dict[str, Any] = {"pool": pool}
    out = []
    for name, fn in CHECKS + ([("cloud", _cloud)] if cloud else []):
        try:
            out.append(fn(ctx))
        except R2Error as exc:
            out.append(Check(name, FAIL, keys.scrub(exc.message), exc.fix))
        except Exception as exc:  # the doctor reports, it does not crash
            out.append(Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {keys.scrub(str(exc))}",
                             "please report it"))
    return out


def report(checks: list[Check], cloud: bool) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("r2local")
    except PackageNotFoundError:
        own = None
    return {
        "ok": all(c.status != FAIL for c in checks),
        "r2local": own,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cloud_checked": cloud,
        "checks": [asdict(c) for c in checks],
    }


def text(checks: list[Check], cloud: bool) -> str:
    head = report([], cloud)
    lines = [f"r2local {head['r2local'] or '(source)'} · Python {head['python']} · {head['platform']}"]
    for c in checks:
        lines.append(f"{c.status:<5} {c.id:<9} {c.summary}")
        if c.fix:
            lines.append(f"{'':<16}fix: {c.fix}")
    if not cloud:
        lines.append("      cloud     not contacted; `r2local doctor --cloud` sends one free request (lists models)")
    return "\n".join(lines)
