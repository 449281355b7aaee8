"""The YAML training presets that ship inside the package (`prodgen/configs/*.yaml`).

They are read with importlib.resources, so they are found wherever prodgen is installed
(a wheel, an editable install or the source tree), not only next to a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from prodgen.errors import ProdgenError

SUFFIX = ".yaml"


def _presets_dir() -> Traversable:
    return files("prodgen") / "configs"


def preset_names() -> list[str]:
    """Names of the shipped presets (`fmnist-cgan`, ...), sorted."""
    directory = _presets_dir()
    if not directory.is_dir():
        return []
    return sorted(entry.name[: -len(SUFFIX)] for entry in directory.iterdir() if entry.name.endswith(SUFFIX) and entry.is_file())


def read_preset(name: str) -> str:
    """The YAML text of a shipped preset; a ProdgenError naming the known presets when there is none by that name."""
    names = preset_names()
    if name not in names:  # also keeps names such as "../x" from reaching the file system
        raise ProdgenError(f"Unknown preset {name!r}; presets: {', '.join(names) or 'none'}, or give a YAML path.")
    return (_presets_dir() / f"{name}{SUFFIX}").read_text(encoding="utf-8")
