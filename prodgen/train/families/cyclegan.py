"""CycleGAN: the `cyclegan` family (Zhu et al. 2017, "Unpaired image-to-image translation using
cycle-consistent adversarial networks"). Two translators, A -> B and B -> A, learn from unpaired
images of two domains: two categories of one catalog (`data.categories` is domain A,
`model.categories_b` domain B) or two catalogs (`model.catalog_b`), e.g. product photos and line
drawings, or studio packshots and lifestyle photos.

Each step: both translators minimise the LSGAN loss against their domain's PatchGAN discriminator,
plus cycle_weight * (|B->A(A->B(a)) - a| + |A->B(B->A(b)) - b|), plus identity_weight * cycle_weight
* (|A->B(b) - b| + |B->A(a) - a|) (keeps colours when a translation is not needed); then each
discriminator learns real against a translation drawn from a pool of the last `pool_size` ones
(Shrivastava et al. 2017), which damps oscillation. The pools are checkpointed, so a resume is exact.
Domain A's batches come from the loop; domain B's rows are drawn from the shared random stream.
Validation: FID of each direction's translations of fixed val images against the other domain's val
images, in the target catalog's feature space; their mean picks the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from prodgen.config import DataConfig, RunConfig, Section
from prodgen.data.catalog import Catalog, load_catalog
from prodgen.errors import ProdgenError
from prodgen.imaging import make_grid, to_rgb
from prodgen.losses import build_loss
from prodgen.models import build_discriminator, build_translator
from prodgen.models.sampling import translate_images
from prodgen.train.data import Batch, TrainingData
from prodgen.train.families import register_family
from prodgen.train.families.pix2pix import translator_config_problems
from prodgen.train.family import GRID_COLUMNS, Family
from prodgen.train.randomness import SharedRandom
from prodgen.train.validation import catalog_feature_network

DIRECTIONS = {"a-to-b": "G_ab_ema", "b-to-a": "G_ba_ema"}


class CycleGANModelConfig(Section):
    catalog_b: str | None = Field(None, description="domain B's catalog (null: the same catalog as domain A)")
    categories_b: list[str] = Field(default_factory=list, description="domain B's categories ([]: all of catalog_b)")
    generator: str = "unet"
    g_width: int = Field(32, ge=4, le=2048)
    norm: Literal["batch", "instance"] = "instance"
    upsample: Literal["transposed", "resize"] = "resize"
    discriminator: str = "patchgan"
    d_width: int = Field(32, ge=4, le=2048)
    d_layers: int = Field(2, ge=1, le=6)


class CycleGANLossConfig(Section):
    kind: Literal["bce", "hinge", "lsgan"] = "lsgan"
    cycle_weight: float = Field(10.0, ge=0.0, description="the paper's lambda")
    identity_weight: float = Field(0.5, ge=0.0, description="identity loss, as a share of cycle_weight (the paper's 0.5)")
    pool_size: int = Field(50, ge=0, le=1000, description="translations kept for the discriminators (0: none)")


class ImagePool(nn.Module):
    """The last `size` translations as buffers (so checkpoints hold them). Each query image is, with
    probability 1/2 once the pool is full, swapped for a stored one, which D then sees instead."""

    def __init__(self, size: int, channels: int, height: int, width: int):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, channels, height, width))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: torch.Tensor, random: SharedRandom) -> torch.Tensor:
        if self.size == 0:
            return images
        n = len(images)
        swap, slots = random.uniform(n) < 0.5, random.integers(0, self.size, n)
        out = images.clone()
        for i in range(n):
            if self.filled < self.size:
                self.images[self.filled] = images[i]
                self.filled += 1
            elif swap[i]:
                out[i] = self.images[slots[i]].clone()
                self.images[slots[i]] = images[i]
        return out


@dataclass
class DomainValidation:
    a: np.ndarray
    b: np.ndarray
    features_a: np.ndarray  # domain A's val images in catalog A's feature space
    features_b: np.ndarray
    network_a: Any  # prodgen.metrics.features.FeatureNetwork of each domain's catalog
    network_b: Any


@register_family
class CycleGAN(Family):
    name = "cyclegan"
    model_config = CycleGANModelConfig
    loss_config = CycleGANLossConfig
    ema = {"G_ab_ema": "G_ab", "G_ba_ema": "G_ba"}
    export_network = "G_ab_ema"
    init_sources = {"G_ab": "G_ab_ema", "G_ba": "G_ba_ema"}

    @classmethod
    def check_config(cls, config: RunConfig) -> list[str]:
        model, problems = config.model, translator_config_problems(config, "steered by its input domain")
        if config.eval.metric != "fid":
            problems.append(f"eval.metric: a cyclegan model is validated by fid (the mean of both directions'), not {config.eval.metric!r}")
        if model.catalog_b in (None, config.data.catalog) and not (config.data.categories and model.categories_b):
            problems.append("model.categories_b: within one catalog, say both domains' categories (data.categories for A, model.categories_b for B)")
        return problems

    def __init__(self, config, data, env):
        super().__init__(config, data, env)
        model = config.model
        self.catalog_b = load_catalog(model.catalog_b) if model.catalog_b else data.catalog
        self.data_b = TrainingData(self.catalog_b, self.domain_b_config())
        if (self.data_b.height, self.data_b.width, self.data_b.channels) != (data.height, data.width, data.channels):
            raise ProdgenError(f"Domains A and B must have one image size: {data.width}x{data.height}x{data.channels} and "
                               f"{self.data_b.width}x{self.data_b.height}x{self.data_b.channels}; prepare both catalogs at the same --size.")
        if len(self.data_b) == 0:
            raise ProdgenError(f"Domain B ({self.describe('b')}) has no train images.")
        self.adversarial = build_loss(config.loss.kind)
        self.arguments = {"in_channels": data.channels, "out_channels": data.channels, "height": data.height, "width": data.width,
                          "width_mult": model.g_width, "norm": model.norm, "upsample": model.upsample, "dropout": 0.0}

    def domain_b_config(self) -> DataConfig:
        return DataConfig(catalog=self.catalog_b.name, conditions=[], categories=self.config.model.categories_b, pad_to=None, mirror=self.config.data.mirror)

    def describe(self, domain: str) -> str:
        catalog, categories = (self.config.data.catalog, self.config.data.categories) if domain == "a" else (self.catalog_b.name, self.config.model.categories_b)
        return f"{catalog}: {', '.join(categories)}" if categories else f"{catalog}: all categories"

    def build_networks(self) -> dict[str, nn.Module]:
        model = self.config.model

        def discriminator() -> nn.Module:
            return build_discriminator(model.discriminator, channels=self.data.channels, height=self.data.height, width=self.data.width,
                                       width_mult=model.d_width, n_layers=model.d_layers)

        translators = {name: build_translator(model.generator, **self.arguments) for name in ("G_ab", "G_ba")}
        return {**translators, "D_a": discriminator(), "D_b": discriminator()}

    def build_state(self) -> dict[str, nn.Module]:
        size = self.config.loss.pool_size
        return {name: ImagePool(size, self.data.channels, self.data.height, self.data.width) for name in ("pool_a", "pool_b")}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        train = self.config.train

        def adam(names: tuple[str, str], lr: float) -> torch.optim.Optimizer:
            return torch.optim.Adam([p for name in names for p in self.nets[name].parameters()], lr=lr, betas=train.betas)

        return {"opt_g": adam(("G_ab", "G_ba"), train.lr_g), "opt_d": adam(("D_a", "D_b"), train.lr_d)}

    def domain_b_batch(self, n: int, random: SharedRandom) -> torch.Tensor:
        positions = random.integers(0, self.data_b.draws, n).cpu()
        return self.data_b.batch(positions).images.to(self.env.device)

    def train_step(self, next_batch: Callable[[], Batch], random: SharedRandom) -> dict[str, float]:
        real_a = next_batch().images
        real_b = self.domain_b_batch(len(real_a), random)
        G_ab, G_ba, loss_config = self.parallel["G_ab"], self.parallel["G_ba"], self.config.loss
        D_a, D_b = self.nets["D_a"].requires_grad_(False), self.nets["D_b"].requires_grad_(False)
        try:
            with self.autocast():
                fake_b, fake_a = G_ab(real_a), G_ba(real_b)
                adversarial = self.adversarial.generator(D_b(fake_b)) + self.adversarial.generator(D_a(fake_a))
                cycle = (G_ba(fake_b) - real_a).abs().mean() + (G_ab(fake_a) - real_b).abs().mean()
                identity = torch.zeros((), device=real_a.device)
                if loss_config.identity_weight > 0:
                    identity = (G_ab(real_b) - real_b).abs().mean() + (G_ba(real_a) - real_a).abs().mean()
                g_loss = adversarial + loss_config.cycle_weight * (cycle + loss_config.identity_weight * identity)
            self.apply(g_loss, "opt_g")
        finally:
            D_a.requires_grad_(True)
            D_b.requires_grad_(True)
        pooled_b = self.nets["pool_b"].query(fake_b.detach(), random)
        pooled_a = self.nets["pool_a"].query(fake_a.detach(), random)
        with self.autocast():
            d_loss = 0.5 * (self.adversarial.discriminator(self.parallel["D_b"](real_b), self.parallel["D_b"](pooled_b))
                            + self.adversarial.discriminator(self.parallel["D_a"](real_a), self.parallel["D_a"](pooled_a)))
        self.apply(d_loss, "opt_d")
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "g_adv": adversarial.item(), "cycle": cycle.item(), "identity": identity.item()}

    # ----- validation, samples, export ----------------------------------------------------------

    def _val_images(self, data_config: DataConfig, catalog: Catalog) -> np.ndarray:
        val = TrainingData(catalog, data_config, split="val")
        if len(val) == 0:
            raise ProdgenError(f"Domain {data_config.catalog} {data_config.categories or ''} has no val images to validate with.")
        positions = torch.randperm(len(val), generator=torch.Generator().manual_seed(self.config.train.seed))[: self.config.eval.samples]
        return val.read(positions.sort().values)[0]

    def make_validator(self, catalog: Catalog, say: Callable[[str], None]) -> DomainValidation:
        seed = self.config.train.seed
        network_a, network_b = catalog_feature_network(catalog, seed, say), catalog_feature_network(self.catalog_b, seed, say)
        a, b = self._val_images(self.config.data, catalog), self._val_images(self.domain_b_config(), self.catalog_b)
        return DomainValidation(a, b, network_a.extract(a).features, network_b.extract(b).features, network_a, network_b)

    def translate(self, network: str, images: np.ndarray) -> np.ndarray:
        return translate_images(self.nets[network], images, self.env.device)

    def validate(self, validator: DomainValidation) -> dict[str, float]:
        from prodgen.metrics.fid import fid_from_features

        to_b, to_a = self.translate("G_ab_ema", validator.a), self.translate("G_ba_ema", validator.b)
        scores = {"fid_a_to_b": fid_from_features(validator.network_b.extract(to_b).features, validator.features_b),
                  "fid_b_to_a": fid_from_features(validator.network_a.extract(to_a).features, validator.features_a)}
        scores["fid"] = scores["selection"] = (scores["fid_a_to_b"] + scores["fid_b_to_a"]) / 2
        return scores

    def fixed_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        def pick(data: TrainingData) -> torch.Tensor:
            return torch.from_numpy(data.read(torch.randperm(len(data), generator=generator)[: GRID_COLUMNS // 2])[0])

        return {"a": pick(TrainingData(self.data.catalog, self.config.data, split="val")),
                "b": pick(TrainingData(self.catalog_b, self.domain_b_config(), split="val"))}

    def sample_grid(self, fixed: dict[str, torch.Tensor]) -> np.ndarray:
        """Two rows: val images of A then B, and below each its translation to the other domain."""
        a, b = fixed["a"].numpy(), fixed["b"].numpy()
        rows = [np.concatenate([a, b]), np.concatenate([self.translate("G_ab_ema", a), self.translate("G_ba_ema", b)])]
        return make_grid(to_rgb(np.concatenate(rows)), ncols=len(a) + len(b))

    def inference_spec(self) -> dict[str, Any]:
        return {
            "kind": "translator",
            "architecture": self.config.model.generator,
            "arguments": self.arguments,
            "view": "photo",
            "directions": {"a-to-b": {"network": DIRECTIONS["a-to-b"], "from": self.describe("a"), "to": self.describe("b")},
                           "b-to-a": {"network": DIRECTIONS["b-to-a"], "from": self.describe("b"), "to": self.describe("a")}},
            "catalog": self.config.data.catalog,
            "output_size": [self.data.height, self.data.width, self.data.channels],
            "pad_to": None,
            "preprocessing": self.data.preprocessing,
        }
