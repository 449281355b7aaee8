"""Generators, discriminators, encoders and image-to-image translators registered by name, so configs choose them with a string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from prodgen.errors import ProdgenError

GENERATORS: dict[str, type[nn.Module]] = {}
DISCRIMINATORS: dict[str, type[nn.Module]] = {}
ENCODERS: dict[str, type[nn.Module]] = {}
TRANSLATORS: dict[str, type[nn.Module]] = {}


def _registrar(table: dict[str, type[nn.Module]]) -> Callable[[str], Callable[[type[nn.Module]], type[nn.Module]]]:
    def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
        def add(cls: type[nn.Module]) -> type[nn.Module]:
            table[name] = cls
            return cls

        return add

    return register


register_generator = _registrar(GENERATORS)
register_discriminator = _registrar(DISCRIMINATORS)
register_encoder = _registrar(ENCODERS)
register_translator = _registrar(TRANSLATORS)


def _build(table: dict[str, type[nn.Module]], kind: str, name: str, **kwargs: Any) -> nn.Module:
    if name not in table:
        raise ProdgenError(f"Unknown {kind} {name!r}; registered: {', '.join(sorted(table))}.")
    return table[name](**kwargs)


def build_generator(name: str, **kwargs: Any) -> nn.Module:
    return _build(GENERATORS, "generator", name, **kwargs)


def build_discriminator(name: str, **kwargs: Any) -> nn.Module:
    return _build(DISCRIMINATORS, "discriminator", name, **kwargs)


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    return _build(ENCODERS, "encoder", name, **kwargs)


def build_translator(name: str, **kwargs: Any) -> nn.Module:
    return _build(TRANSLATORS, "translator", name, **kwargs)
