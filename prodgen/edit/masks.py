"""Where the product is in a photo. An e-commerce packshot has a plain background: its colour is
estimated from the image border, and the background is every pixel within a tolerance of that colour
that is connected to the border (a flood fill from the border), so light parts inside the product
(a white collar, a logo) are not taken for background. Any other photo goes to GrabCut (Rother et
al. 2004, OpenCV), seeded with the product in the centre and the border as background."""

from __future__ import annotations

import cv2
import numpy as np

BORDER = 2  # pixels of each edge that estimate the background colour
BORDER_AGREEMENT = 0.8  # share of border pixels near the estimated colour for the background to count as plain


def border_pixels(image: np.ndarray) -> np.ndarray:
    """(N, C) pixels of the image's outer BORDER rows and columns."""
    b = BORDER
    return np.concatenate([image[:b].reshape(-1, image.shape[2]), image[-b:].reshape(-1, image.shape[2]),
                           image[:, :b].reshape(-1, image.shape[2]), image[:, -b:].reshape(-1, image.shape[2])])


def background_colour(image: np.ndarray) -> np.ndarray:
    """The median colour of the border, per channel (uint8, C)."""
    return np.median(border_pixels(image), axis=0).astype(np.uint8)


def plain_background_mask(image: np.ndarray, tolerance: int = 24) -> np.ndarray | None:
    """Boolean (H, W) mask of the background of an (H, W, C) uint8 image with a plain background, or
    None when the border is not plain (fewer than 80 % of its pixels within `tolerance` of its median
    colour: a lifestyle photo, a product cut by the frame)."""
    colour = background_colour(image).astype(np.int16)
    near = np.abs(image.astype(np.int16) - colour).max(axis=2) <= tolerance
    if (np.abs(border_pixels(image).astype(np.int16) - colour).max(axis=1) <= tolerance).mean() < BORDER_AGREEMENT:
        return None
    _, labels = cv2.connectedComponents(near.astype(np.uint8), connectivity=4)
    b = BORDER
    edge_labels = np.unique(np.concatenate([labels[:b].ravel(), labels[-b:].ravel(), labels[:, :b].ravel(), labels[:, -b:].ravel()]))
    return np.isin(labels, edge_labels[edge_labels > 0])  # label 0: pixels not near the background colour


GRABCUT_MARGIN = 0.06  # the border strip GrabCut starts from as certain background, as a share of each side
GRABCUT_ITERATIONS = 5


def product_mask(image: np.ndarray, tolerance: int = 24) -> tuple[np.ndarray, str]:
    """Boolean (H, W) mask of the product and the method that found it ("plain background" or "grabcut")."""
    background = plain_background_mask(image, tolerance)
    if background is not None:
        return ~background, "plain background"
    colour = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    height, width = image.shape[:2]
    margin_x, margin_y = max(1, round(width * GRABCUT_MARGIN)), max(1, round(height * GRABCUT_MARGIN))
    labels = np.zeros((height, width), np.uint8)
    background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    rectangle = (margin_x, margin_y, width - 2 * margin_x, height - 2 * margin_y)
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's RNG: the same photo, the same mask
    cv2.grabCut(np.ascontiguousarray(colour), labels, rectangle, background_model, foreground_model, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)), "grabcut"


def cutout(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA: the photo's colours, transparent outside the product."""
    colour = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    return np.concatenate([colour, (mask * 255).astype(np.uint8)[..., None]], axis=2)
