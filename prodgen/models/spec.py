"""The JSON that rebuilds a generator (or a VAE's encoder) without its training config: architecture,
arguments, conditions and geometry. Saved beside every exported network's weights."""

from __future__ import annotations

from typing import Any

from torch import nn

from prodgen.models.registry import build_encoder, build_generator


def generator_spec(
    architecture: str,
    arguments: dict[str, Any],
    conditions: dict[str, list],
    catalog: str,
    output_size: tuple[int, int, int],
    pad_to: int | None,
) -> dict[str, Any]:
    return {
        "architecture": architecture,
        "arguments": arguments,
        "conditions": conditions,
        "catalog": catalog,
        "output_size": list(output_size),
        "pad_to": pad_to,
    }


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    return build_generator(spec["architecture"], **spec["arguments"])


def build_encoder_from_spec(spec: dict[str, Any]) -> nn.Module:
    return build_encoder(spec["architecture"], **spec["arguments"])
