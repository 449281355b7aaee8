"""A VAE (or VAE-GAN) at inference: encode real product photos, decode them back, walk between two
products in latent space, and decode a product under another condition (`transfer`).

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

from prodgen.data.preprocess import BadImage, prepare_like_catalog
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.generate.pipeline import SHIPPED_DIR, ProductGenerator, shipped_models
from prodgen.models.sampling import crop_to, to_model_range, to_uint8
from prodgen.models.spec import build_encoder_from_spec
from prodgen.train import checkpoint as ckpt

ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_SPEC = "encoder.json"
INTERPOLATIONS = ("slerp", "linear")


class NoEncoder(ProdgenError):
    """The model is a generator without an encoder (a GAN)."""


def export_model(model: str | Path, directory: Path) -> Path:
    """What `prodgen export` writes: the generator's weights and spec, and a VAE's encoder beside them."""
    try:
        return ProductAutoencoder.load(model).export(directory)
    except NoEncoder:
        return ProductGenerator.load(model).export(directory)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), which keeps a Gaussian code's norm where a straight line would shrink it."""
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1.0, 1.0).unsqueeze(-1)
    omega = torch.arccos(cosine)
    if float(omega.abs().max()) < 1e-4:  # (nearly) the same direction: the line is the arc
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class ProductAutoencoder:
    def __init__(self, encoder: torch.nn.Module, spec: dict[str, Any], generator: ProductGenerator):
        self.encoder = encoder.eval().requires_grad_(False)
        self.spec = spec
        self.generator = generator
        self.conditions = generator.conditions
        self._classifier = None

    @classmethod
    def load(cls, model: str | Path) -> ProductAutoencoder:
        """Any model `ProductGenerator.load` accepts, if it has an encoder (a VAE or VAE-GAN)."""
        generator = ProductGenerator.load(model)
        source = Path(generator.source)
        if (source / ENCODER_WEIGHTS).exists():
            spec = json.loads((source / ENCODER_SPEC).read_text(encoding="utf-8"))
            tensors, prefix = load_file(str(source / ENCODER_WEIGHTS)), ""
        elif (source / ckpt.STATE).exists() and "encoder" in (state := ckpt.read_state(source)):
            spec, tensors, prefix = state["encoder"], ckpt.read_checkpoint(source).tensors, state["encoder_network"] + "."
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

    # ----- photos in ----------------------------------------------------------------------------

    def read_photo(self, path: Path) -> np.ndarray:
        """One photo, preprocessed as the catalog's images were; a file that is not a usable image is a ProdgenError."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ProdgenError(f"Cannot read {path}: {exc.strerror or exc}") from None
        preprocessing = self.spec.get("preprocessing")
        if not preprocessing:
            height, width, channels = self.spec["input_size"]
            preprocessing = {"width": width, "height": height, "channels": channels, "fit": "pad"}
        try:
            return prepare_like_catalog(data, preprocessing)
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

    # ----- latent space -------------------------------------------------------------------------

    def _conditions(self, codes: torch.Tensor) -> torch.Tensor | None:
        return codes if codes.shape[1] else None

    @torch.no_grad()
    def encode(self, images: np.ndarray, codes: torch.Tensor) -> torch.Tensor:
        """The posterior means of uint8 (N, H, W, C) product images."""
        x = to_model_range(torch.from_numpy(np.ascontiguousarray(images)), self.spec["pad_to"], self.spec["background"])
        return self.encoder(x, self._conditions(codes))[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, codes: torch.Tensor) -> np.ndarray:
        height, width, _ = self.spec["input_size"]
        return to_uint8(crop_to(self.generator.module(z, self._conditions(codes)), height, width))

    def reconstruct(self, images: np.ndarray, codes: torch.Tensor) -> np.ndarray:
        return self.decode(self.encode(images, codes), codes)

    def interpolate(self, first: np.ndarray, last: np.ndarray, first_codes: torch.Tensor, last_codes: torch.Tensor, steps: int, method: str = "slerp") -> np.ndarray:
        """`steps` images from the first product's code to the last's (both included). Conditions
        cannot be blended: frames before the middle keep the first product's, the rest the last's."""
        if steps < 2:
            raise ProdgenError(f"--steps must be at least 2 (the two products themselves), got {steps}.")
        if method not in INTERPOLATIONS:
            raise ProdgenError(f"Unknown interpolation {method!r}; choose {' or '.join(INTERPOLATIONS)}.")
        a, b = self.encode(first[None], first_codes), self.encode(last[None], last_codes)
        blend = slerp if method == "slerp" else torch.lerp
        fractions = [i / (steps - 1) for i in range(steps)]
        z = torch.cat([blend(a, b, t) for t in fractions])
        codes = torch.cat([first_codes if t < 0.5 else last_codes for t in fractions])
        return self.decode(z, codes)

    def transfer(self, images: np.ndarray, own_codes: torch.Tensor, target: dict[str, str]) -> np.ndarray:
        """Encode each product under its own conditions, decode under the asked ones (others kept)."""
        if not target:
            raise ProdgenError("Say what to change: --category NAME and/or --attr NAME=VALUE.")
        codes = own_codes.clone()
        for name, value in target.items():
            if name not in self.conditions.names:
                raise ProdgenError(f"This model is not conditioned on {name}; its conditions: {', '.join(self.conditions.names) or 'none'}.")
            codes[:, self.conditions.names.index(name)] = self.conditions.code_of(name, value)
        return self.decode(self.encode(images, own_codes), codes)
