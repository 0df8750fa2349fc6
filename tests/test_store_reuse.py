"""Model stores: another store's verified copy is linked, not fetched again;
`models list` shows a size for every manifest."""

import shutil
import subprocess
import sys

from r2local import fetch, paths
from r2local.manifests import load_manifests

SMOL = "smollm2-135m-instruct"


def test_a_verified_copy_in_another_store_is_linked(smol_path, tmp_path, monkeypatch):
    other = tmp_path / "users-store"
    other.mkdir()
    shutil.copy(smol_path, other / f"{SMOL}.gguf")
    mine = tmp_path / "test-store"
    monkeypatch.setenv(paths.MODELS_ENV, str(mine))
    manifest = load_manifests()[SMOL]
    linked = fetch.link_from(manifest, other)  # no marker there yet: hashed once
    assert linked is not None and linked.is_symlink() and linked.resolve() == (other / f"{SMOL}.gguf").resolve()
    assert fetch.local_path(manifest) == linked
    assert fetch.link_from(manifest, other) is None  # already here


def test_a_damaged_copy_is_not_linked(tmp_path, monkeypatch):
    other = tmp_path / "users-store"
    other.mkdir()
    (other / f"{SMOL}.gguf").write_bytes(b"GGUF not really")
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "test-store"))
    assert fetch.link_from(load_manifests()[SMOL], other) is None


def test_models_list_shows_a_size_for_every_manifest(r2home):
    out = subprocess.run([sys.executable, "-m", "r2local", "models", "list"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[2:]]
    sizes = {row[0]: row[2] + (" " + row[3] if row[3] in ("MiB", "GiB") else "") for row in rows}
    assert sizes["gpt-4o-mini"] == "-"
    assert sizes["qwen2.5-0.5b-instruct"].startswith("≈") and sizes["qwen2.5-1.5b-instruct"].startswith("≈")
    assert sizes[SMOL] == "94 MiB"
    assert all(size != "?" and size for size in sizes.values())
