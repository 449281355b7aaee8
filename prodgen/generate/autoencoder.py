"""A VAE (or VAE-GAN) at inference: encode real product photos, decode them back, and decode a
product under another condition (`transfer`); walks between products are prodgen.generate.variants'.

It loads what a GAN loads (`ProductGenerator`: the decoder) plus the encoder the VAE families export
beside it (encoder.safetensors + encoder.json, or a checkpoint's `encoder`). Photos go through the
catalog's own preprocessing (size, channels, fit, background), so a new shot looks like the training data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.generate.photos import ProductPhotos
from prodgen.generate.pipeline import SHIPPED_DIR, ProductGenerator, WrongKind, read_network, shipped_models
from prodgen.models.sampling import to_model_range
from prodgen.models.spec import build_encoder_from_spec
from prodgen.train import checkpoint as ckpt

ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_SPEC = "encoder.json"


class NoEncoder(ProdgenError):
    """The model is a generator without an encoder (a GAN)."""


def export_model(model: str | Path, directory: Path) -> Path:
    """What `prodgen export` writes: the generator's (or translator's) weights and spec, and a VAE's encoder beside them."""
    try:
        return ProductAutoencoder.load(model).export(directory)
    except NoEncoder:
        return ProductGenerator.load(model).export(directory)
    except WrongKind:
        from prodgen.edit.translate import Translator

        return Translator.load(model).export(directory)


class ProductAutoencoder:
    def __init__(self, encoder: torch.nn.Module, spec: dict[str, Any], generator: ProductGenerator):
        self.encoder = encoder.eval().requires_grad_(False)
        self.spec = spec
        self.generator = generator
        self.conditions = generator.conditions
        self.photos = ProductPhotos(spec, generator.conditions)

    @classmethod
    def load(cls, model: str | Path) -> ProductAutoencoder:
        """Any model `ProductGenerator.load` accepts, if it has an encoder (a VAE or VAE-GAN)."""
        network = read_network(model)  # a checkpoint holds the encoder beside the generator: its tensors are read once
        generator = ProductGenerator.from_network(model, *network)
        source = Path(generator.source)
        if (source / ENCODER_WEIGHTS).exists():
            spec = json.loads((source / ENCODER_SPEC).read_text(encoding="utf-8"))
            tensors, prefix = load_file(str(source / ENCODER_WEIGHTS)), ""
        elif ckpt.is_checkpoint(source) and "encoder" in (state := ckpt.read_state(source)):
            spec, tensors, prefix = state["encoder"], network[0], state["encoder_network"] + "."
        else:
            with_encoder = [name for name in shipped_models() if (SHIPPED_DIR / name / ENCODER_WEIGHTS).exists()]
            raise NoEncoder(
                f"{model} has no encoder: it is a GAN, and reconstruct, interpolate and transfer need a VAE or VAE-GAN "
                f"(family vae or vaegan; shipped: {', '.join(with_encoder) or 'none'})."
            )
        encoder = build_encoder_from_spec(spec)
        encoder.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        return cls(encoder, spec, generator)

    def export(self, directory: Path) -> Path:
        """The decoder (as `ProductGenerator.export` writes it) and the encoder beside it."""
        self.generator.export(directory)
        with atomic_path(directory / ENCODER_WEIGHTS) as tmp:
            save_file({k: v.contiguous() for k, v in self.encoder.state_dict().items()}, str(tmp))
        write_json_atomic(directory / ENCODER_SPEC, self.spec)
        return directory

    # ----- latent space -------------------------------------------------------------------------

    def _conditions(self, codes: torch.Tensor) -> torch.Tensor | None:
        return codes if codes.shape[1] else None

    @torch.no_grad()
    def encode(self, images: np.ndarray, codes: torch.Tensor) -> torch.Tensor:
        """The posterior means of uint8 (N, H, W, C) product images."""
        x = to_model_range(torch.from_numpy(np.ascontiguousarray(images)), self.spec["pad_to"], self.spec["background"])
        return self.encoder(x, self._conditions(codes))[0]

    def reconstruct(self, images: np.ndarray, codes: torch.Tensor) -> np.ndarray:
        return self.generator.draw(self.encode(images, codes), codes)

    def transfer(self, images: np.ndarray, own_codes: torch.Tensor, target: dict[str, str]) -> np.ndarray:
        """Encode each product under its own conditions, decode under the asked ones (others kept)."""
        if not target:
            raise ProdgenError("Say what to change: --category NAME and/or --attr NAME=VALUE.")
        codes = own_codes.clone()
        for name, value in target.items():
            if name not in self.conditions.names:
                raise ProdgenError(f"This model is not conditioned on {name}; its conditions: {', '.join(self.conditions.names) or 'none'}.")
            codes[:, self.conditions.names.index(name)] = self.conditions.code_of(name, value)
        return self.generator.draw(self.encode(images, own_codes), codes)
