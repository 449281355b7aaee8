"""Where prodgen keeps its cache (`$PRODGEN_HOME`, default `~/.cache/prodgen`) and where the
files it ships inside the package (shipped models, feature networks) are."""

from __future__ import annotations

import atexit
import os
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

_extracted = ExitStack()
atexit.register(_extracted.close)


def prodgen_home() -> Path:
    return Path(os.environ.get("PRODGEN_HOME", Path.home() / ".cache" / "prodgen")).expanduser()


def catalogs_dir() -> Path:
    return prodgen_home() / "catalogs"


def catalog_dir(name: str) -> Path:
    return catalogs_dir() / name


def package_dir(*parts: str) -> Path:
    """A real folder inside the installed package, e.g. `package_dir("assets", "models")`, found with
    importlib.resources rather than from `__file__`. Wheels built by setuptools install prodgen unpacked,
    so this is the package's own folder and nothing is copied; were prodgen imported from a zip archive,
    `as_file` would extract the folder (Python 3.12+) to a temporary one that is removed at exit."""
    resource = files("prodgen")
    for part in parts:
        resource = resource / part
    return _extracted.enter_context(as_file(resource))
