"""Every on-disk location r2local uses, derived from one root.

``R2LOCAL_HOME`` overrides the root (tests, portable installs); without it the
platform's usual config / data / cache directories are used. ``R2LOCAL_CONFIG``
names the config file alone (runs that share a home but not a pool).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "R2LOCAL_HOME"
MODELS_ENV = "R2LOCAL_MODELS_DIR"
CONFIG_ENV = "R2LOCAL_CONFIG"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def user_dir() -> Path:
    """Data root: holds the ledger and, under R2LOCAL_HOME, everything else."""
    home = _home()
    if home is not None:
        return _ensure(home)
    import platformdirs

    return _ensure(platformdirs.user_data_path("r2local"))


def config_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    home = _home()
    if home is not None:
        return _ensure(home) / "config.toml"
    import platformdirs

    return _ensure(platformdirs.user_config_path("r2local")) / "config.toml"


def db_path() -> Path:
    return user_dir() / "r2local.db"


def cache_dir() -> Path:
    home = _home()
    if home is not None:
        return _ensure(home / "cache")
    import platformdirs

    return _ensure(platformdirs.user_cache_path("r2local"))


def models_dir() -> Path:
    """Where fetched model files live; R2LOCAL_MODELS_DIR shares one store."""
    value = os.environ.get(MODELS_ENV)
    return _ensure(Path(value).expanduser() if value else cache_dir() / "models")


def user_manifests_dir() -> Path:
    """User-written model manifests, read after the built-in ones."""
    return user_dir() / "models"


def builtin_models_dir() -> Path:
    """The shipped manifests: packaged in the wheel, or the checkout's models/."""
    here = Path(__file__).resolve().parent
    packaged = here / "_models"
    return packaged if packaged.is_dir() else here.parent / "models"
