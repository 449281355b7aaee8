"""Where prodgen keeps its cache: `$PRODGEN_HOME`, default `~/.cache/prodgen`."""

from __future__ import annotations

import os
from pathlib import Path


def prodgen_home() -> Path:
    return Path(os.environ.get("PRODGEN_HOME", Path.home() / ".cache" / "prodgen")).expanduser()


def catalogs_dir() -> Path:
    return prodgen_home() / "catalogs"


def catalog_dir(name: str) -> Path:
    return catalogs_dir() / name
