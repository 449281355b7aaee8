"""Catalog views: what a paired translation model (pix2pix) learns to turn back into the product.

Any prepared catalog becomes paired data without labelling: each product image is paired with a view
of itself computed on the fly, and the model learns view -> product. The same function makes the
view of a new photo at inference (`prodgen translate --from-photo`), so training and use agree.

- edges:   Canny edges (thresholds from the image's median grey, the usual automatic rule), dark lines on white
- sketch:  an XDoG pencil sketch (Winnemoeller et al. 2012): a difference of Gaussians, soft-thresholded
- grey:    the product in greyscale (colourisation)
- inpaint: the product with a rectangle blanked out to mid grey, plus that rectangle as a fourth channel (completion)

Line views are dark on white, like a designer's drawing, so a person's sketch can be fed as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from prodgen.errors import ProdgenError

HOLE_FILL = 128  # what an inpainting view shows where the product was blanked out
HOLE_SIDES = (0.25, 0.5)  # a hole's sides, as shares of the image's sides
RANDOM_DRAWS = 4  # uniform draws per image that a random view takes


def _grey(images: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 luma of (N, H, W, 1|3) images (ITU-R BT.601, as OpenCV and Pillow compute it)."""
    if images.shape[-1] == 1:
        return images[..., 0]
    return np.stack([cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) for image in images])


def edges(images: np.ndarray, uniforms: np.ndarray | None = None) -> np.ndarray:
    out = []
    for grey in _grey(images):
        blurred = cv2.GaussianBlur(grey, (3, 3), 0)
        median = float(np.median(blurred))
        low, high = int(max(0, 0.67 * median)), int(min(255, 1.33 * median))  # Canny thresholds around the median, a common automatic choice
        out.append(255 - cv2.Canny(blurred, low, max(high, low + 1)))
    return np.stack(out)[..., None]


# sigma in pixels of the model's image; tau < 1 leaves flat areas just above epsilon (white paper),
# while the dark side of every edge falls below it; phi sets how soft the pencil's ramp is. Chosen by
# looking at clothing-small at 64 px beside other settings (sigma 0.8, tau 0.97-0.98, phi 60-200).
XDOG_SIGMA, XDOG_K, XDOG_TAU, XDOG_EPSILON, XDOG_PHI = 0.6, 1.6, 0.99, -0.01, 50.0


def sketch(images: np.ndarray, uniforms: np.ndarray | None = None) -> np.ndarray:
    """XDoG: D = G_sigma * I - tau G_{k sigma} * I on [0, 1]; white above epsilon, a soft tanh ramp to black below."""
    out = []
    for grey_levels in _grey(images).astype(np.float32) / 255:
        narrow = cv2.GaussianBlur(grey_levels, (0, 0), XDOG_SIGMA)
        wide = cv2.GaussianBlur(grey_levels, (0, 0), XDOG_SIGMA * XDOG_K)
        difference = narrow - XDOG_TAU * wide
        lines = np.where(difference >= XDOG_EPSILON, 1.0, 1 + np.tanh(XDOG_PHI * (difference - XDOG_EPSILON)))
        out.append(np.clip(lines * 255, 0, 255).round().astype(np.uint8))
    return np.stack(out)[..., None]


def grey(images: np.ndarray, uniforms: np.ndarray | None = None) -> np.ndarray:
    return _grey(images)[..., None]


def random_holes(uniforms: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 4) rectangles (top, left, bottom, right) from (N, 4) uniform draws in [0, 1): sides drawn
    from HOLE_SIDES of the image's, placed anywhere inside it. The draws come from the caller, so a
    training step takes them from its shared random stream and inference from a seed."""
    low, high = HOLE_SIDES
    hole_h = (low + (high - low) * uniforms[:, 0]) * height
    hole_w = (low + (high - low) * uniforms[:, 1]) * width
    hole_h, hole_w = hole_h.astype(int), hole_w.astype(int)
    top = (uniforms[:, 2] * (height - hole_h + 1)).astype(int)
    left = (uniforms[:, 3] * (width - hole_w + 1)).astype(int)
    return np.stack([top, left, top + hole_h, left + hole_w], axis=1)


def with_holes(images: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """RGB (or grey) with each rectangle blanked to HOLE_FILL, and a last channel that is 255 inside it."""
    out = np.concatenate([images, np.zeros(images.shape[:3] + (1,), np.uint8)], axis=3)
    for image, (top, left, bottom, right) in zip(out, holes):
        image[top:bottom, left:right, :-1] = HOLE_FILL
        image[top:bottom, left:right, -1] = 255
    return out


def inpaint(images: np.ndarray, uniforms: np.ndarray | None = None) -> np.ndarray:
    if uniforms is None:
        raise ProdgenError("The inpaint view blanks out random rectangles: give it uniform draws (or use with_holes).")
    return with_holes(images, random_holes(uniforms, images.shape[1], images.shape[2]))


@dataclass(frozen=True)
class View:
    name: str
    make: Callable[[np.ndarray, np.ndarray | None], np.ndarray]  # uint8 (N, H, W, C) products [, (N, RANDOM_DRAWS) uniforms] -> views
    channels: Callable[[int], int]  # the view's channels, given the product's
    random: bool  # drawn anew for every batch (holes), or a fixed function of the image


VIEWS = {
    "edges": View("edges", edges, lambda c: 1, False),
    "sketch": View("sketch", sketch, lambda c: 1, False),
    "grey": View("grey", grey, lambda c: 1, False),
    "inpaint": View("inpaint", inpaint, lambda c: c + 1, True),
}


# A CycleGAN's input: the photo itself, in colour (not offered to pix2pix, which would learn the identity).
PHOTO = View("photo", lambda images, uniforms=None: images, lambda c: c, False)


def get_view(name: str) -> View:
    if name == PHOTO.name:
        return PHOTO
    if name not in VIEWS:
        raise ProdgenError(f"Unknown catalog view {name!r}; views: {', '.join(VIEWS)}.")
    return VIEWS[name]


def as_view_input(images: np.ndarray, view: View) -> np.ndarray:
    """Images a person made (a drawn sketch, an edge map, a grey photo) in the view's channels, taken
    as they are; a colour drawing is read as its grey levels."""
    if view.random:
        raise ProdgenError(f"A {view.name} model completes a photo: give a product photo and the region to fill (--from-photo with --hole).")
    return images if view is PHOTO else _grey(images)[..., None]
