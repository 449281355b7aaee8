"""A trained translator at inference: a pix2pix model makes a drawing, an edge map, a grey photo or a
photo with a region to fill in into a product image; a CycleGAN takes a photo of one domain to the other.

Inputs go through the model's catalog preprocessing (size, fit, background) exactly as training
images did. A person's drawing is taken as it is (its grey levels); `from_photo` instead computes the
model's view of a product photo with the very function training used (prodgen/data/views.py), e.g.
to redraw a product from its own edges or to complete a photo with a blanked-out region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodgen.data.views import RANDOM_DRAWS, as_view_input, get_view, random_holes, with_holes
from prodgen.errors import ProdgenError
from prodgen.generate.photos import ProductPhotos
from prodgen.generate.pipeline import WrongKind, read_network, save_network
from prodgen.models import build_translator
from prodgen.models.sampling import translate_images


def parse_hole(text: str) -> tuple[float, float, float, float]:
    """`LEFT,TOP,WIDTH,HEIGHT` as shares (0-1) of the model's image."""
    try:
        left, top, width, height = (float(part) for part in text.split(","))
    except ValueError:
        raise ProdgenError(f"Invalid hole {text!r}: give LEFT,TOP,WIDTH,HEIGHT as shares of the image, e.g. 0.3,0.4,0.4,0.3") from None
    if not (0 <= left < 1 and 0 <= top < 1 and 0 < width <= 1 - left and 0 < height <= 1 - top):
        raise ProdgenError(f"Invalid hole {text!r}: it must lie inside the image (shares between 0 and 1, with a width and height above 0).")
    return left, top, width, height


class Translator:
    def __init__(self, module: torch.nn.Module, spec: dict[str, Any], source: str, bundle: dict[str, torch.Tensor], direction: str | None = None):
        self.module = module.eval().requires_grad_(False)
        self.spec, self.source, self.direction = spec, source, direction
        self.bundle = bundle  # every tensor the model's export holds (a CycleGAN's two directions)
        self.view = get_view(spec["view"])
        self.photos = ProductPhotos(spec, conditions=None)

    @classmethod
    def load(cls, model: str | Path, direction: str | None = None) -> Translator:
        """Any model folder, run or checkpoint of the pix2pix or cyclegan family (what `prodgen export`
        writes for it); a CycleGAN translates `direction` (a-to-b by default, or b-to-a)."""
        tensors, prefix, spec, source = read_network(model)
        if spec.get("kind") != "translator":
            raise WrongKind(f"{model} is a product generator, not a translator: `prodgen translate` needs a pix2pix or cyclegan model "
                            "(train one with --config pix2pix-edges-64, or another pix2pix-* or cyclegan-* preset).")
        directions = spec.get("directions")
        if directions:
            direction = direction or "a-to-b"
            if direction not in directions:
                raise ProdgenError(f"Unknown direction {direction!r}; this CycleGAN translates " + ", ".join(
                    f"{name} ({d['from']} -> {d['to']})" for name, d in directions.items()) + ".")
            prefix = directions[direction]["network"] + "."
            networks = tuple(d["network"] + "." for d in directions.values())
            bundle = {k: v for k, v in tensors.items() if k.startswith(networks)}
        elif direction is not None:
            raise ProdgenError(f"--direction is for CycleGAN models; {model} translates {spec['view']} -> product, one way.")
        else:
            bundle = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        module = build_translator(spec["architecture"], **spec["arguments"])
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        return cls(module, spec, source, bundle, direction)

    def export(self, directory: Path) -> Path:
        return save_network(self.bundle, self.spec, directory)

    def describe(self) -> str:
        if self.direction is not None:
            chosen = self.spec["directions"][self.direction]
            return f"{chosen['from']} -> {chosen['to']}"
        return f"{self.view.name} -> product"

    def read(self, path: Path) -> np.ndarray:
        """One input file as training saw images: the catalog's size, fit and background."""
        return self.photos.read(path)

    def views_of(self, images: np.ndarray, from_photo: bool, hole: tuple[float, float, float, float] | None = None, seed: int = 0) -> np.ndarray:
        """The model's input for each image: the image itself (a drawing), or its view computed as in
        training (`from_photo`); a completion model blanks `hole` (LEFT,TOP,WIDTH,HEIGHT shares), or a
        random rectangle per image drawn from `seed`."""
        if not self.view.random:
            return self.view.make(images, None) if from_photo else as_view_input(images, self.view)
        if not from_photo:
            as_view_input(images, self.view)  # raises: a completion model needs the photo
        height, width = images.shape[1:3]
        if hole is None:
            holes = random_holes(np.random.default_rng(seed).random((len(images), RANDOM_DRAWS)), height, width)
        else:
            left, top, hole_width, hole_height = hole
            rectangle = [round(top * height), round(left * width), round((top + hole_height) * height), round((left + hole_width) * width)]
            holes = np.array([rectangle] * len(images))
        return with_holes(images, holes)

    def translate(self, views: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) products from uint8 views."""
        return translate_images(self.module, views, batch_size=64)
