"""Real product photos in, as a model sees them: the catalog's own preprocessing (size, channels, fit,
background), so a new shot looks like the training data, and each photo's own conditions (asked, or
the category as the catalog's classifier reads it). Shared by the encoder's commands (reconstruct,
interpolate, transfer) and by GAN inversion (`variants --like`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodgen.data.conditions import Conditions
from prodgen.data.preprocess import BadImage, prepare_like_catalog
from prodgen.errors import ProdgenError


def preprocessing_of(spec: dict[str, Any]) -> dict[str, Any]:
    """How the model's catalog made its images: the spec's record (encoders carry one), else the
    prepared catalog's, else the model's image size with the default fit."""
    if spec.get("preprocessing"):
        return spec["preprocessing"]
    from prodgen.data import load_catalog

    try:
        recorded = load_catalog(spec["catalog"]).info.get("preprocessing")
    except ProdgenError:
        recorded = None
    if recorded:
        return recorded
    height, width, channels = spec.get("input_size") or spec["output_size"]
    return {"width": width, "height": height, "channels": channels, "fit": "pad"}


class ProductPhotos:
    def __init__(self, spec: dict[str, Any], conditions: Conditions | None):
        self.spec, self.conditions = spec, conditions
        self._preprocessing: dict[str, Any] | None = None
        self._classifier = None

    def read(self, path: Path) -> np.ndarray:
        """One photo, preprocessed as the catalog's images were; a file that is not a usable image is a ProdgenError."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ProdgenError(f"Cannot read {path}: {exc.strerror or exc}") from None
        if self._preprocessing is None:
            self._preprocessing = preprocessing_of(self.spec)
        try:
            return prepare_like_catalog(data, self._preprocessing)
        except BadImage as exc:
            raise ProdgenError(f"{path} is not a usable image: {exc}") from None

    def own_codes(self, images: np.ndarray, query: dict[str, str]) -> torch.Tensor:
        """Each photo's own conditions: those asked for; the category, when not asked, as the
        catalog's classifier (its feature network) reads it; any other condition must be asked."""
        unknown = set(query) - set(self.conditions.names)
        if unknown:
            raise ProdgenError(f"This model is not conditioned on {', '.join(sorted(unknown))}; its conditions: {', '.join(self.conditions.names) or 'none'}.")
        columns = []
        for name in self.conditions.names:
            if name in query:
                columns.append(torch.full((len(images),), self.conditions.code_of(name, query[name]), dtype=torch.long))
            elif name == "category":
                columns.append(torch.from_numpy(self.classify(images)))
            else:
                raise ProdgenError(f"Say the photos' {name} with --attr {name}=VALUE (values: {', '.join(self.conditions.values[self.conditions.names.index(name)])}).")
        return torch.stack(columns, dim=1) if columns else torch.zeros((len(images), 0), dtype=torch.long)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Category codes of uint8 images, by the catalog's feature network (in the model's category order)."""
        from prodgen.metrics.features import load_feature_network

        if self._classifier is None:
            self._classifier = load_feature_network(self.spec["catalog"])
        predictions = self._classifier.extract(images).predictions
        names = self._classifier.categories
        categories = self.conditions.values[self.conditions.names.index("category")]
        return np.array([categories.index(names[p]) for p in predictions], dtype=np.int64)
