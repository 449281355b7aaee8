"""pix2pix: the `pix2pix` family (Isola et al. 2017, "Image-to-image translation with conditional
adversarial networks"). A U-Net learns view -> product, where the view is computed from each
catalog image on the fly (prodgen/data/views.py: edges, sketch, grey, inpaint), so any prepared
catalog is paired data. A PatchGAN discriminator judges (view, product) pairs patch by patch; the
generator minimises the conditional adversarial loss plus l1_weight * L1 to the real product.

`loss.adversarial_weight: 0` is the baseline users know: the same U-Net trained with L1 alone, no
discriminator (it is not even built). Each step may mirror the pair left-right (`model.flip`), the
paper's jitter on a small catalog. Validation translates the views of fixed val products and scores
L1 and SSIM against them, and FID/KID of the translations against the val split in the catalog's
feature space; `eval.metric` (fid, kid or l1) picks the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from prodgen.config import RunConfig, Section
from prodgen.data.catalog import Catalog
from prodgen.data.views import RANDOM_DRAWS, VIEWS, View, get_view
from prodgen.imaging import make_grid, to_rgb
from prodgen.losses import build_loss
from prodgen.metrics.reconstruction import ssim
from prodgen.models import DISCRIMINATORS, TRANSLATORS, build_discriminator, build_translator
from prodgen.models.sampling import to_model_range, to_uint8, translate_images
from prodgen.train.data import Batch, TrainingData
from prodgen.train.families import register_family
from prodgen.train.families.vae import ignored_train_options
from prodgen.train.family import GRID_COLUMNS, Family
from prodgen.train.randomness import SharedRandom
from prodgen.train.validation import catalog_feature_network

VALIDATION_VIEW_SEED = 1234  # the holes of random views on val products: the same at every evaluation
TRANSLATION_METRICS = {"fid": "fid", "kid": "kid_mean", "l1": "l1"}


class Pix2PixModelConfig(Section):
    view: str = Field("edges", description="what the model turns into a product: edges, sketch, grey or inpaint (prodgen/data/views.py)")
    generator: str = "unet"
    g_width: int = Field(64, ge=4, le=2048, description="channels of the U-Net's outermost level, doubled at each level up to 8x")
    norm: Literal["batch", "instance"] = "batch"
    upsample: Literal["transposed", "resize"] = Field("resize", description="resize: nearest-neighbour 2x and a 3x3 convolution (no checkerboards)")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="in the three innermost decoder levels, in training")
    discriminator: str = "patchgan"
    d_width: int = Field(64, ge=4, le=2048)
    d_layers: int = Field(3, ge=1, le=6, description="PatchGAN depth: 3 judges 70x70 patches, 2 judges 34x34, 1 judges 16x16")
    flip: bool = Field(True, description="mirror each training pair left-right with probability 1/2")


class Pix2PixLossConfig(Section):
    kind: Literal["bce", "hinge", "lsgan"] = "bce"
    l1_weight: float = Field(100.0, ge=0.0, description="weight of the L1 distance to the real product (the paper's lambda)")
    adversarial_weight: float = Field(1.0, ge=0.0, description="0: the L1-only baseline, trained without a discriminator")


@dataclass
class ValidationPairs:
    views: np.ndarray  # uint8 (N, H, W, view channels)
    products: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray
    evaluator: Any  # prodgen.metrics.evaluate.Evaluator against the val split


def pair_views(view: View, products: np.ndarray, uniforms: np.ndarray | None) -> np.ndarray:
    return view.make(products, uniforms if view.random else None)


def translator_config_problems(config: RunConfig, steered_by: str) -> list[str]:
    """What the translation families (pix2pix, cyclegan) refuse alike: unregistered networks, and data
    options a translator has no use for."""
    model, family, problems = config.model, config.family, []
    if model.generator not in TRANSLATORS:
        problems.append(f"model.generator: unknown translator {model.generator!r}; registered: {', '.join(sorted(TRANSLATORS))}")
    if model.discriminator not in DISCRIMINATORS:
        problems.append(f"model.discriminator: unknown discriminator {model.discriminator!r}; registered: {', '.join(sorted(DISCRIMINATORS))}")
    if config.data.conditions:
        problems.append(f"data.conditions: a {family} model is {steered_by}, not by conditions; set data.conditions: []")
    if config.data.pad_to is not None:
        problems.append("data.pad_to: a U-Net takes any size whose sides halve; set data.pad_to: null")
    if config.data.augment:
        problems.append(f"data.augment: DiffAugment is not used by {family} (pix2pix's model.flip mirrors its pairs)")
    return problems + ignored_train_options(config, {"n_dis": "alternating discriminator updates (one per step)"})


@register_family
class Pix2Pix(Family):
    name = "pix2pix"
    model_config = Pix2PixModelConfig
    loss_config = Pix2PixLossConfig
    ema = {"G_ema": "G"}
    export_network = "G_ema"
    init_sources = {"G": "G_ema"}

    @classmethod
    def check_config(cls, config: RunConfig) -> list[str]:
        problems = translator_config_problems(config, "steered by its input view")
        if config.model.view not in VIEWS:
            problems.append(f"model.view: unknown view {config.model.view!r}; views: {', '.join(VIEWS)}")
        if config.eval.metric not in TRANSLATION_METRICS:
            problems.append(f"eval.metric: a pix2pix model is validated by {', '.join(TRANSLATION_METRICS)}, not {config.eval.metric!r}")
        if config.data.mirror:  # a second mirror would flip some pairs back and draw others twice
            problems.append("data.mirror: pix2pix mirrors its pairs itself (model.flip); set data.mirror: false")
        return problems

    def __init__(self, config, data, env):
        super().__init__(config, data, env)
        self.view = get_view(config.model.view)
        self.adversarial = build_loss(config.loss.kind)
        self.uses_discriminator = config.loss.adversarial_weight > 0
        height, width = data.model_size
        self.arguments = {"in_channels": self.view.channels(data.channels), "out_channels": data.channels, "height": height, "width": width,
                          "width_mult": config.model.g_width, "norm": config.model.norm, "upsample": config.model.upsample, "dropout": config.model.dropout}

    def build_networks(self) -> dict[str, nn.Module]:
        networks = {"G": build_translator(self.config.model.generator, **self.arguments)}
        if self.uses_discriminator:
            height, width = self.data.model_size
            networks["D"] = build_discriminator(self.config.model.discriminator, channels=self.arguments["in_channels"] + self.data.channels,
                                                height=height, width=width, width_mult=self.config.model.d_width, n_layers=self.config.model.d_layers)
        return networks

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        train = self.config.train
        optimizers = {"opt_g": torch.optim.Adam(self.nets["G"].parameters(), lr=train.lr_g, betas=train.betas)}
        if self.uses_discriminator:
            optimizers["opt_d"] = torch.optim.Adam(self.nets["D"].parameters(), lr=train.lr_d, betas=train.betas)
        return optimizers

    def train_step(self, next_batch: Callable[[], Batch], random: SharedRandom) -> dict[str, float]:
        products = next_batch().images
        n = len(products)
        if self.config.model.flip:
            mirrored = random.uniform(n) < 0.5
            products = torch.where(mirrored.view(-1, 1, 1, 1), products.flip(3), products)
        uniforms = random.uniform(n, RANDOM_DRAWS).cpu().numpy()
        views = to_model_range(torch.from_numpy(pair_views(self.view, to_uint8(products), uniforms)), None, 0.0).to(products.device)
        logs: dict[str, float] = {}

        with self.autocast():
            translated = self.parallel["G"](views)
        if self.uses_discriminator:
            with self.autocast():
                real_out = self.parallel["D"](torch.cat([views, products], dim=1))
                fake_out = self.parallel["D"](torch.cat([views, translated.detach()], dim=1))
                d_loss = self.adversarial.discriminator(real_out, fake_out)
            self.apply(d_loss, "opt_d")
            logs["d_loss"] = d_loss.item()

        plain_d = self.nets["D"].requires_grad_(False) if self.uses_discriminator else None
        try:
            with self.autocast():
                l1 = (translated - products).abs().mean()
                adversarial = self.adversarial.generator(plain_d(torch.cat([views, translated], dim=1))) if plain_d else torch.zeros((), device=products.device)
                loss = self.config.loss.adversarial_weight * adversarial + self.config.loss.l1_weight * l1
            self.apply(loss, "opt_g")
        finally:
            if plain_d is not None:
                plain_d.requires_grad_(True)
        return {**logs, "g_loss": loss.item(), "l1": l1.item(), "g_adv": adversarial.item()}

    # ----- validation, samples, export ----------------------------------------------------------

    def make_validator(self, catalog: Catalog, say: Callable[[str], None]) -> ValidationPairs:
        from prodgen.metrics.evaluate import Evaluator

        val = TrainingData(catalog, self.config.data, split="val")
        positions = torch.randperm(len(val), generator=torch.Generator().manual_seed(self.config.train.seed))[: self.config.eval.samples].sort().values
        products, _ = val.read(positions)
        uniforms = np.random.default_rng(VALIDATION_VIEW_SEED).random((len(products), RANDOM_DRAWS))
        network = catalog_feature_network(catalog, self.config.train.seed, say)
        evaluator = Evaluator(catalog, reference_split="val", feature_net=network, seed=self.config.train.seed)
        return ValidationPairs(pair_views(self.view, products, uniforms), products, catalog.labels[val.rows[positions.numpy()]], evaluator)

    def validate(self, validator: ValidationPairs) -> dict[str, float]:
        translated = translate_images(self.nets["G_ema"], validator.views, self.env.device)
        products = validator.products
        scores = {"l1": float(np.abs(translated.astype(np.float32) - products).mean() / 255), "ssim": float(ssim(products, translated).mean())}
        result = validator.evaluator.evaluate(translated, validator.labels, metrics=["fid", "kid", "class_consistency"], floors=False)
        scores.update({k: float(v) for k, v in result["metrics"].items() if isinstance(v, (int, float))})
        scores["selection"] = scores[TRANSLATION_METRICS[self.config.eval.metric]]
        return scores

    def fixed_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        val = TrainingData(self.data.catalog, self.config.data, split="val")
        products, _ = val.read(torch.randperm(len(val), generator=generator)[:GRID_COLUMNS])
        uniforms = torch.rand((len(products), RANDOM_DRAWS), generator=generator).numpy()
        return {"products": torch.from_numpy(products), "views": torch.from_numpy(pair_views(self.view, products, uniforms))}

    def sample_grid(self, fixed: dict[str, torch.Tensor]) -> np.ndarray:
        """Three rows: fixed val products' views, their translations, the real products."""
        views = fixed["views"].numpy()
        shown = views[..., :3] if views.shape[-1] >= 3 else views  # an inpainting view's hole channel is not shown
        rows = [to_rgb(shown), to_rgb(translate_images(self.nets["G_ema"], views, self.env.device)), to_rgb(fixed["products"].numpy())]
        return make_grid(np.concatenate(rows), ncols=GRID_COLUMNS)

    def inference_spec(self) -> dict[str, Any]:
        return {
            "kind": "translator",
            "architecture": self.config.model.generator,
            "arguments": self.arguments,
            "view": self.view.name,
            "catalog": self.config.data.catalog,
            "output_size": [self.data.height, self.data.width, self.data.channels],
            "pad_to": self.config.data.pad_to,
            "preprocessing": self.data.preprocessing,
        }

