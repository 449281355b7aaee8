"""The JSON that rebuilds a generator without its training config: architecture, arguments,
conditions and output geometry. Saved beside every exported generator's weights."""

from __future__ import annotations

from typing import Any

from torch import nn

from prodgen.models.registry import build_generator


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
