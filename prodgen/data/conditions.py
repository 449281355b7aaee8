"""Conditions: the catalog columns (category, colour, material, ...) a model is conditioned on,
and the integer code of each value. Training and inference share them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prodgen.data.catalog import Catalog
from prodgen.errors import ProdgenError


@dataclass
class Conditions:
    """Names of the conditioning columns and the values each can take (index = code)."""

    names: list[str]
    values: list[list[str]]

    @property
    def cardinalities(self) -> list[int]:
        return [len(v) for v in self.values]

    def code_of(self, name: str, value: str) -> int:
        values = self.values[self.names.index(name)]
        if value not in values:
            raise ProdgenError(f"Unknown {name} {value!r}; known: {', '.join(values)}.")
        return values.index(value)

    def decode(self, codes) -> dict[str, str]:
        """The value of each condition for one row of codes."""
        return {name: values[int(code)] for name, values, code in zip(self.names, self.values, codes)}

    def to_json(self) -> dict:
        return {"names": self.names, "values": self.values}


def catalog_conditions(catalog: Catalog, names: list[str]) -> tuple[Conditions, np.ndarray]:
    """Condition table and (N, len(names)) int64 codes for every catalog image."""
    attributes = catalog.attribute_values
    values, columns = [], []
    for name in names:
        if name == "category":
            values.append(list(catalog.categories))
            columns.append(catalog.labels)
        elif name in attributes:
            known = attributes[name]
            values.append(known)
            missing = [e["file"] for e in catalog.entries if name not in e.get("attributes", {})]
            if missing:
                raise ProdgenError(f"Condition {name!r} is missing for {len(missing)} image(s), e.g. {missing[0]}.")
            columns.append(np.array([known.index(e["attributes"][name]) for e in catalog.entries], dtype=np.int64))
        else:
            raise ProdgenError(f"Catalog {catalog.name!r} has no attribute {name!r}; it has: category, {', '.join(attributes) or '(no attributes)'}.")
    codes = np.stack(columns, axis=1) if columns else np.zeros((len(catalog.images), 0), dtype=np.int64)
    return Conditions(list(names), values), codes
