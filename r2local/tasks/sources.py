"""Dataset files from PyPI packages: ``pip download --no-deps`` into a temp
folder, the few files a loader needs copied out and checked against the
sha256 recorded here, the package itself never installed or kept.

The bigbench sdist (358 MB) declares a ``file://`` dependency, which recent
pip refuses to prepare ("Distributions from PyPI cannot declare direct URL
dependencies") after it has downloaded and unpacked the archive. With
``--no-clean`` the unpacked tree stays in pip's temp folder (which we point
into our own), so the files are read from there; older pip saves the archive
and they are read from it with tarfile. Either way the checksums decide.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from r2local import paths
from r2local.errors import R2Error
from r2local.fetch import Progress, sha256_file

DATASETS_ENV = "R2LOCAL_DATASETS_DIR"


@dataclass(frozen=True)
class Source:
    package: str  # a pip requirement, pinned
    binary: bool  # a wheel (True) or an sdist
    size_mb: int
    members: dict[str, str]  # path inside the package -> sha256


CHAMP = Source(
    "champ-dataset==1.0.0", True, 8,
    {"champ_dataset/dataset_files/v0.json": "72fa7727c8c3d4377d297b2cd171dc35ad86e2cfe9df2043131ba8a5389e5a71"},
)
BIGBENCH = Source(
    "bigbench==1.0.0", False, 358,
    {
        "bigbench/benchmark_tasks/strategyqa/task.json":
            "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803",
        "bigbench/benchmark_tasks/elementary_math_qa/question_only/task.json":
            "765c8817c43b068720fd3bf99abaed09132420df530e58b2e6bd5a16823d58eb",
    },
)


def datasets_dir() -> Path:
    """Where fetched dataset files live; R2LOCAL_DATASETS_DIR shares one store."""
    value = os.environ.get(DATASETS_ENV)
    path = Path(value).expanduser() if value else paths.cache_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _target(source: Source, member: str) -> Path:
    return datasets_dir() / source.package.replace("==", "-") / member


def dataset_file(source: Source, member: str, progress: Progress | None = None) -> Path:
    """The verified local copy of ``member``, fetching the package once if needed."""
    target = _target(source, member)
    if not (target.is_file() and sha256_file(target) == source.members[member]):
        _fetch(source, progress)
    return target


def _pip(source: Source, dest: Path, tmp: Path) -> subprocess.CompletedProcess:
    tty = sys.stderr.isatty()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-clean"]
    cmd += ["--only-binary=:all:" if source.binary else "--no-binary=:all:", "-d", str(dest), source.package]
    cmd += ["--progress-bar", "on" if tty else "off"] + ([] if tty else ["-q"])
    env = {**os.environ, "TMPDIR": str(tmp)}  # so --no-clean leaves the unpacked sdist where we can find it
    try:
        # pip draws its progress bar on stdout: show it on our stderr, keep our stdout clean.
        return subprocess.run(cmd, stdout=sys.stderr if tty else subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env=env)
    except OSError as exc:
        raise R2Error(f"cannot run pip: {exc}", fix="install pip in this environment (python -m ensurepip)") from None


def _fetch(source: Source, progress: Progress | None) -> None:
    if progress:
        progress(f"{source.package} ({source.size_mb} MB, once)", 0, None)
    with tempfile.TemporaryDirectory(dir=datasets_dir(), prefix=".fetch-") as tmp:
        dest, pip_tmp = Path(tmp) / "dl", Path(tmp) / "pip"
        pip_tmp.mkdir()
        proc = _pip(source, dest, pip_tmp)
        archives = sorted(dest.glob("*")) if dest.is_dir() else []
        if proc.returncode != 0 and "direct URL" not in proc.stderr:
            raise _download_error(source, proc.stderr)
        for member, digest in source.members.items():
            data = _read(archives[0], member) if archives else _read_unpacked(pip_tmp, member)
            if data is None:
                raise R2Error(f"{source.package} has no file {member}", fix="report this: the package changed")
            if hashlib.sha256(data).hexdigest() != digest:
                raise R2Error(f"{source.package}: {member} does not match its recorded sha256",
                              fix="retry; if it persists the package changed and r2local needs updating")
            target = _target(source, member)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.with_suffix(".partial").write_bytes(data)
            target.with_suffix(".partial").replace(target)
    if progress:
        progress(f"{source.package} ({source.size_mb} MB, once)", 1, 1)


def _download_error(source: Source, stderr: str) -> R2Error:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "WARNING" not in ln]
    if "No matching distribution" in stderr:
        # The release left PyPI (bigbench 1.0.0 did in 2026: only a 0.0.1 placeholder is served).
        # A copy from elsewhere is as good: the recorded sha256 decides, wherever the file came from.
        where = "; ".join(f"{m} -> {_target(source, m)}" for m in source.members)
        return R2Error(f"{source.package} is not on PyPI any more, so its files cannot be fetched",
                       fix=f"copy the files from another copy of the package to: {where} "
                           f"(each is checked against its recorded sha256), or set {DATASETS_ENV} to a store that has them")
    return R2Error(f"cannot download {source.package} from PyPI: {lines[-1] if lines else 'pip failed'}",
                   fix="check your network or pip index settings")


def _read(archive: Path, member: str) -> bytes | None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member) if member in zf.namelist() else None
    with tarfile.open(archive) as tf:
        for info in tf:
            # sdist members sit under "<name>-<version>/".
            if info.isfile() and info.name.split("/", 1)[-1] == member:
                fh = tf.extractfile(info)
                return fh.read() if fh else None
    return None


def _read_unpacked(pip_tmp: Path, member: str) -> bytes | None:
    for path in pip_tmp.glob(f"pip-*/*/{member}"):
        return path.read_bytes()
    return None
