"""Probe the llama.cpp library in a subprocess before this process loads it.

A llama-cpp-python built from source for the build machine's CPU can die on
the first decode with a bare "Segmentation fault": e.g. when the CPU reports
Intel AMX, the native build uses it, and a VM faults on it (ggml-org/llama.cpp
#20824). The probe loads a tiny generated model in a child process and decodes
a batch; a crash there becomes a verdict that names the cause and the rebuild
command, never a dead r2local. If the default path crashes but the same decode
with llama.cpp's extra CPU buffer types off (no weight repacking, so no AMX
kernels) works, r2local loads its models that way ("fallback"): slower prompt
processing, but answers.

The verdict is cached in r2local's cache dir, keyed on the llama_cpp version
and the size and mtime of its shared libraries, so later starts cost a stat.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from r2local import paths
from r2local.errors import ModelError

PROBE_VERSION = 1
TIMEOUT_S = 180.0
_CHILD = Path(__file__).with_name("_probe_child.py")
_LIB_SUFFIXES = (".so", ".dylib", ".dll")
_WINDOWS_CRASHES = {0xC0000005: "an access violation", 0xC000001D: "an illegal instruction"}
AMX_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


@dataclass(frozen=True)
class Verdict:
    """What the probe found. status: ok, fallback, crashed, failed, missing or inconclusive."""

    status: str
    detail: str = ""
    version: str | None = None
    system_info: str = ""
    key: str = ""
    checked_at: str = ""
    cached: bool = False

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "fallback", "inconclusive")

    @property
    def uses_amx(self) -> bool:
        return "AMX_INT8 = 1" in self.system_info

    def features(self) -> list[str]:
        """Build features llama.cpp reports as on, e.g. ["AVX2", "AMX_INT8", "OPENMP"]."""
        out = []
        for part in self.system_info.replace("CPU :", "|").split("|"):
            name, _, value = part.partition("=")
            if value.strip() == "1":
                out.append(name.strip())
        return out

    def rebuild_command(self) -> str:
        version = f"=={self.version}" if self.version else ""
        if self.uses_amx:
            return (f'CFLAGS="{AMX_FLAGS}" CXXFLAGS="{AMX_FLAGS}" pip install --force-reinstall --no-cache-dir '
                    f'--no-deps --no-binary llama-cpp-python "llama-cpp-python{version}"')
        return ('CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
                f'--no-deps --no-binary llama-cpp-python "llama-cpp-python{version}"')

    def cause(self) -> str:
        if self.uses_amx:
            return "the build uses Intel AMX (AMX_INT8 = 1), which faults on this machine (e.g. in a VM)"
        return "the build uses CPU instructions this machine does not run"

    def message(self) -> str:
        if self.status == "crashed":
            return f"llama.cpp crashes on this machine: {self.detail}; probably {self.cause()}"
        if self.status == "fallback":
            return (f"llama.cpp crashed with its default CPU kernels ({self.detail}); r2local loads models with "
                    f"weight repacking off, which works but processes prompts more slowly; probably {self.cause()}")
        if self.status == "failed":
            return f"llama.cpp does not work here: {self.detail}"
        return self.detail

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("cached")
        return data


def _spec_dir() -> Path | None:
    # find_spec locates the package without importing (loading) it.
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def library_key() -> tuple[str | None, str]:
    """(llama_cpp version, a key for the exact libraries it would load); ("", "") if not installed."""
    pkg = _spec_dir()
    if pkg is None:
        return None, ""
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = None
    lib_dir = Path(os.environ.get("LLAMA_CPP_LIB_PATH") or pkg / "lib")
    parts = [f"probe{PROBE_VERSION}", str(version), str(lib_dir), sys.executable]
    if lib_dir.is_dir():
        for path in sorted(lib_dir.iterdir()):
            if any(s in path.name for s in _LIB_SUFFIXES) and path.is_file():
                st = path.stat()
                parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return version, hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _cache_file() -> Path:
    return paths.cache_dir() / "llamacpp-probe.json"


def _cached(key: str) -> Verdict | None:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        return None
    try:
        return Verdict(**data, cached=True)
    except TypeError:
        return None


def _crash_name(rc: int) -> str | None:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return _WINDOWS_CRASHES.get(rc & 0xFFFFFFFF)


def _run(model: Path, mode: str, timeout: float) -> tuple[str, dict, str]:
    """One child run: (outcome, last stage report, stderr tail); outcome ok / crash:NAME / failed / timeout."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    try:
        proc = subprocess.run([sys.executable, str(_CHILD), str(model), mode], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", {}, ""
    stages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = {}
    for stage in stages:
        last = {**last, **stage}
    tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
    crash = _crash_name(proc.returncode)
    if crash:
        return f"crash:{crash}", last, tail
    if proc.returncode == 0 and last.get("stage") == "ok":
        return "ok", last, tail
    if "No module named 'llama_cpp'" in proc.stderr:
        return "missing", last, tail
    return "failed", last, tail


def _where(stage: dict) -> str:
    return {"imported": "while loading a model", "loaded": "in its first decode"}.get(
        stage.get("stage", ""), "while loading the library")


def check(*, force: bool = False, timeout: float = TIMEOUT_S) -> Verdict:
    """The verdict for the installed llama.cpp: cached, or probed now in a subprocess."""
    version, key = library_key()
    if not key:
        return Verdict("missing", "llama-cpp-python is not installed")
    if not force and (hit := _cached(key)) is not None:
        return hit
    from r2local.backends.probe_model import write

    model = paths.cache_dir() / f"llamacpp-probe-v{PROBE_VERSION}.gguf"
    if not model.is_file():
        write(model)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    outcome, stage, tail = _run(model, "default", timeout)
    info = dict(version=stage.get("version") or version, system_info=stage.get("system_info", ""), key=key,
                checked_at=now)
    if outcome == "ok":
        verdict = Verdict("ok", "a batch and a token decoded", **info)
    elif outcome == "missing":
        return Verdict("missing", "llama-cpp-python is not installed", **info)
    elif outcome == "timeout":
        return Verdict("inconclusive", f"the probe took longer than {timeout:.0f} s (a busy machine?)", **info)
    elif outcome.startswith("crash:"):
        detail = f"{outcome[6:]} {_where(stage)}"
        again, _, _ = _run(model, "no-repack", timeout)
        verdict = Verdict("fallback" if again == "ok" else "crashed", detail, **info)
    else:
        last_line = tail.splitlines()[-1] if tail else f"the probe exited with {outcome}"
        verdict = Verdict("failed", stage.get("error") or last_line, **info)
    _cache_file().write_text(json.dumps(verdict.to_json(), indent=1))
    return verdict


_lock = threading.Lock()
_verdict: Verdict | None = None


def ensure() -> Verdict:
    """Probe once per process (cached on disk); raise a ModelError naming the fix if llama.cpp crashes here."""
    global _verdict
    with _lock:
        if _verdict is None:
            _verdict = check()
        verdict = _verdict
    if verdict.status == "crashed":
        raise ModelError(verdict.message(), fix=f"rebuild llama-cpp-python: {verdict.rebuild_command()}")
    return verdict


@contextmanager
def load_options(verdict: Verdict) -> Iterator[None]:
    """While a Llama is constructed: in fallback mode, llama.cpp's extra CPU buffer types off."""
    if verdict.status != "fallback":
        yield
        return
    import llama_cpp.llama_cpp as C

    default = C.llama_model_default_params

    def without_extra_bufts():  # llama-cpp-python's Llama() has no argument for it
        params = default()
        params.use_extra_bufts = False
        return params

    with _lock:
        C.llama_model_default_params = without_extra_bufts
        try:
            yield
        finally:
            C.llama_model_default_params = default


def reset() -> None:
    """Forget this process's verdict (tests; after a rebuild)."""
    global _verdict
    with _lock:
        _verdict = None
