"""Validation by sample quality, shared by the families whose samples come from a generator (GAN,
VAE-GAN): FID or KID in the catalog's own feature space against the val split, with class
consistency for conditional models, on samples whose conditions follow the train split's proportions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prodgen.config import RunConfig
from prodgen.data.catalog import Catalog
from prodgen.errors import ProdgenError
from prodgen.models.sampling import sample_images
from prodgen.train.data import TrainingData

# The score each selectable metric reports as its headline value.
SELECTION_KEYS = {"fid": "fid", "kid": "kid_mean", "swd": "swd"}


@dataclass
class SampleValidator:
    evaluator: Any  # prodgen.metrics.evaluate.Evaluator, imported late: the metrics stack is only needed on rank 0
    codes: torch.Tensor
    category_column: int | None


def catalog_feature_network(catalog: Catalog, seed: int, say: Callable[[str], None]):
    """The catalog's feature network; a catalog without one gets one trained now."""
    from prodgen.metrics.features import fit_feature_network, load_feature_network

    try:
        return load_feature_network(catalog.name)
    except ProdgenError:
        say(f"no feature network for {catalog.name!r} yet: training one for validation scores (prodgen eval fit-features)")
        return fit_feature_network(catalog, seed=seed)


def sample_validator(config: RunConfig, data: TrainingData, catalog: Catalog, say: Callable[[str], None]) -> SampleValidator:
    from prodgen.metrics.evaluate import Evaluator

    seed = config.train.seed
    network = catalog_feature_network(catalog, seed, say)
    codes = data.codes[torch.randint(len(data.codes), (config.eval.samples,), generator=torch.Generator().manual_seed(seed))]
    column = data.conditions.names.index("category") if "category" in data.conditions.names else None
    return SampleValidator(Evaluator(catalog, reference_split="val", feature_net=network, seed=seed), codes, column)


def score_samples(validator: SampleValidator, generator: nn.Module, spec: dict[str, Any], config: RunConfig) -> dict[str, float]:
    """The scores of `generator`'s samples; "selection" is the one that picks the best checkpoint."""
    images = sample_images(generator, spec, validator.codes, seed=config.train.seed)
    labels = validator.codes[:, validator.category_column].numpy() if validator.category_column is not None else None
    metric = config.eval.metric
    scored = list(dict.fromkeys([metric, *config.eval.track])) + (["class_consistency"] if labels is not None else [])
    result = validator.evaluator.evaluate(images, labels, metrics=scored, floors=False)
    scores = {k: float(v) for k, v in result["metrics"].items() if isinstance(v, (int, float))}
    scores["selection"] = scores[SELECTION_KEYS[metric]]
    return scores
