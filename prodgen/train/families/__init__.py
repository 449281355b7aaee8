"""Model families registered by name; `family: NAME` in a config chooses one. Every module in this
package is a family and registers itself when imported (see prodgen/train/family.py for the template)."""

from __future__ import annotations

import importlib
import pkgutil

from prodgen.errors import ProdgenError

FAMILIES: dict[str, type] = {}


def register_family(cls: type) -> type:
    FAMILIES[cls.name] = cls
    return cls


def get_family(name: str) -> type:
    if name not in FAMILIES:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
    if name not in FAMILIES:
        raise ProdgenError(f"Unknown model family {name!r}; registered: {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[name]
