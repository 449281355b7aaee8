"""Where the product is in a photo. An e-commerce packshot has a plain background: its colour is
estimated from the image border, and the background is every pixel within a tolerance of that colour
that is connected to the border (a flood fill from the border), so light parts inside the product
(a white collar, a logo) are not taken for background."""

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
