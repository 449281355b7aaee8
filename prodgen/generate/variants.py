"""Moving around a product in latent space: its variants (a neighbourhood of controllable size, for
"more like this" recommendations) and walks between two products. A product is an anchor: image i of
a seed's stream, or a real photo, encoded (VAE families) or inverted (GANs: prodgen.generate.inversion)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodgen.errors import ProdgenError
from prodgen.generate.inversion import invert
from prodgen.generate.photos import ProductPhotos
from prodgen.generate.pipeline import ProductGenerator
from prodgen.models.sampling import stream_latents

INTERPOLATIONS = ("slerp", "linear")


@dataclass
class Anchor:
    z: torch.Tensor  # (1, z_dim)
    codes: torch.Tensor  # (1, conditions)
    report: dict[str, Any] = field(default_factory=dict)  # where it came from, and how well a photo was matched
    photo: np.ndarray | None = None  # the preprocessed photo, for a photo's anchor


def seed_anchor(generator: ProductGenerator, seed: int, index: int, query: dict[str, str], truncation: float = 1.0) -> Anchor:
    """Image `index` of the seed's stream, as `prodgen generate --seed` draws it."""
    if index < 0:
        raise ProdgenError(f"--index must be 0 or more, got {index}.")
    z = stream_latents(seed, index, 1, generator.spec["arguments"]["z_dim"]) * truncation
    codes = generator.codes_for(1, query, seed, first_index=index)
    return Anchor(z, codes, {"seed": seed, "index": index, "truncation": truncation, "conditions": generator.conditions.decode(codes[0])})


def photo_anchor(generator: ProductGenerator, path: Path, query: dict[str, str], steps: int | None = None, restarts: int = 8) -> Anchor:
    """A real photo. A model with an encoder starts from the posterior mean (and with `steps` > 0
    refines it by inversion); a GAN is inverted from `restarts` random codes (300 steps by default).
    The report gives how closely the anchor draws the photo."""
    from prodgen.generate.autoencoder import NoEncoder, ProductAutoencoder

    try:
        autoencoder = ProductAutoencoder.load(generator.source)
    except NoEncoder:
        autoencoder = None
    steps = (0 if autoencoder else 300) if steps is None else steps
    if autoencoder is None and steps < 1:
        raise ProdgenError("This model has no encoder: finding a photo's code takes inversion steps (--invert-steps of at least 1).")
    photos = autoencoder.photos if autoencoder else ProductPhotos(generator.spec, generator.conditions)
    photo = photos.read(path)[None]
    codes = photos.own_codes(photo, query)
    start = autoencoder.encode(photo, codes) if autoencoder else None
    found = invert(generator, photo, codes, steps=steps, restarts=restarts, start=start)
    report = {"photo": str(path), "conditions": generator.conditions.decode(codes[0]),
              "started_from": "the encoder's posterior mean" if autoencoder else f"the best of {restarts} random codes", "inversion_steps": steps,
              "pixel_mse": float(found.pixel_mse[0]), "ssim": float(found.ssim[0]), "objective": float(found.loss[0])}
    return Anchor(found.z, codes, report, photo[0])


def neighbourhood(anchor: Anchor, n: int, distance: float, seed: int = 0) -> torch.Tensor:
    """n codes around the anchor's: sqrt(1 - d^2) z + d e with e ~ N(0, I), so a prior sample stays a
    prior sample (the same norm on average), d = 0 is the anchor itself and d = 1 an unrelated product."""
    if n < 1:
        raise ProdgenError(f"Ask for at least one variant, got {n}.")
    if not 0 < distance <= 1:
        raise ProdgenError(f"--distance must be in (0, 1], not {distance}.")
    noise = torch.randn(n, anchor.z.shape[1], generator=torch.Generator().manual_seed(seed))
    return math.sqrt(1 - distance**2) * anchor.z + distance * noise


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), which keeps a Gaussian code's norm where a straight line would shrink it."""
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1.0, 1.0).unsqueeze(-1)
    omega = torch.arccos(cosine)
    if float(omega.abs().max()) < 1e-4:  # (nearly) the same direction: the line is the arc
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def walk(first: Anchor, last: Anchor, steps: int, method: str = "slerp") -> tuple[torch.Tensor, torch.Tensor]:
    """`steps` codes from the first anchor to the last (both included). Conditions cannot be blended:
    frames before the middle keep the first anchor's, the rest the last's."""
    if steps < 2:
        raise ProdgenError(f"--steps must be at least 2 (the two products themselves), got {steps}.")
    if method not in INTERPOLATIONS:
        raise ProdgenError(f"Unknown interpolation {method!r}; choose {' or '.join(INTERPOLATIONS)}.")
    blend = slerp if method == "slerp" else torch.lerp
    fractions = [i / (steps - 1) for i in range(steps)]
    z = torch.cat([blend(first.z, last.z, t) for t in fractions])
    codes = torch.cat([first.codes if t < 0.5 else last.codes for t in fractions])
    return z, codes
