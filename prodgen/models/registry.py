"""Generators and discriminators registered by name, so configs choose them with a string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from prodgen.errors import ProdgenError

GENERATORS: dict[str, type[nn.Module]] = {}
DISCRIMINATORS: dict[str, type[nn.Module]] = {}


def register_generator(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        GENERATORS[name] = cls
        return cls

    return add


def register_discriminator(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        DISCRIMINATORS[name] = cls
        return cls

    return add


def _build(table: dict[str, type[nn.Module]], kind: str, name: str, **kwargs: Any) -> nn.Module:
    if name not in table:
        raise ProdgenError(f"Unknown {kind} {name!r}; registered: {', '.join(sorted(table))}.")
    return table[name](**kwargs)


def build_generator(name: str, **kwargs: Any) -> nn.Module:
    return _build(GENERATORS, "generator", name, **kwargs)


def build_discriminator(name: str, **kwargs: Any) -> nn.Module:
    return _build(DISCRIMINATORS, "discriminator", name, **kwargs)
