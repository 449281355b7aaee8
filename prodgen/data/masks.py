"""Where the product is in a photo.

An e-commerce packshot has a plain background: its colour is estimated from the image border, and the
background is every pixel within a tolerance of that colour that is connected to the border (a flood
fill from the border), so light parts inside the product (a white collar, a logo) are not taken for
background.

Any other photo (a garment on a floor, a bed, a hanger) goes to GrabCut (Rother et al. 2004, OpenCV).
So does a border that only looks plain: a bed sheet or a wooden floor passes the colour test, but its
texture leaves specks the flood fill cannot reach, and those specks show the photo is no packshot.
GrabCut starts from two seedings and keeps one:

- colour seeds: the border's colours are clustered, and a pixel inside the frame that is as close to
  one of them as most border pixels are starts as probable background, every other pixel as probable
  product. This finds a small product on a large floor (a pair of shoes), where a rectangle start
  takes the floor for product;
- a rectangle: everything but a margin along the border starts as probable product (the classic
  GrabCut start). It is the safer start when the product's own colours also occur on the border
  (a garment hanging to the frame's edge, a backdrop close to the product's colour): colour seeds
  then mark most of the product as background, and GrabCut keeps only a sliver of it.

The colour-seeded mask is kept unless it covers less than KEEP_SHARE of the area the rectangle-seeded
one covers. In both, only the outermost border pixels close to the border's colours are certain
background, so a product that runs off the frame can still reach it. The result keeps the large
connected parts (two shoes are two parts) and fills pinholes."""

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


def border_strip(height: int, width: int) -> np.ndarray:
    """Boolean (height, width): the outer BORDER rows and columns."""
    strip = np.zeros((height, width), bool)
    strip[:BORDER], strip[-BORDER:], strip[:, :BORDER], strip[:, -BORDER:] = True, True, True, True
    return strip


def background_colour(image: np.ndarray) -> np.ndarray:
    """The median colour of the border, per channel (uint8, C)."""
    return np.median(border_pixels(image), axis=0).astype(np.uint8)


def plain_background_mask(image: np.ndarray, tolerance: int = 24) -> np.ndarray | None:
    """Boolean (H, W) mask of the background of an (H, W, C) uint8 image with a plain background, or
    None when the border is not plain (fewer than 80 % of its pixels within `tolerance` of its median
    colour: a lifestyle photo, a product cut by the frame)."""
    colour = background_colour(image).astype(np.int16)
    if (np.abs(border_pixels(image).astype(np.int16) - colour).max(axis=1) <= tolerance).mean() < BORDER_AGREEMENT:
        return None
    # inRange tests every channel against colour +- tolerance: the same as a per-channel absolute difference, several times faster
    near = cv2.inRange(image, tuple(int(v) for v in np.clip(colour - tolerance, 0, 255)), tuple(int(v) for v in np.clip(colour + tolerance, 0, 255)))
    count, labels = cv2.connectedComponents(near, connectivity=4)
    touches_border = np.zeros(count, bool)
    touches_border[labels[border_strip(*labels.shape)]] = True
    touches_border[0] = False  # label 0: pixels not near the background colour
    return touches_border[labels]


SPECKLE_COMPONENT = 0.01  # a product part smaller than this share of the image and than PART_SHARE of the largest part is a speck...
SPECKLE_SHARE = 0.005  # ...and specks over this share of the product mean a textured surface, not a packshot

WORKING_SIDE = 256  # GrabCut runs on the photo scaled down to this longer side: its time grows with the pixel count
BORDER_COLOURS = 8  # k-means clusters of the border's colours
MAJOR_COLOUR = 0.04  # a cluster must hold this share of the border to count as a background colour
BACKGROUND_QUANTILE = 90  # a pixel this close to a background colour as the quantile of border pixels starts as background
FOREIGN_BORDER = 2.0  # a border pixel farther than this multiple of that distance is product running off the frame...
FOREIGN_BORDER_MIN = 8.0  # ...and at least this far (Lab units, 0-255 scale): a plain border's distances are tiny
GRABCUT_MARGIN = 0.06  # the rectangle seeding's margin, as a share of each side
GRABCUT_ITERATIONS = 5
KEEP_SHARE = 0.4  # keep the colour-seeded mask unless it covers less than this share of the rectangle-seeded one
PART_SHARE = 0.1  # product parts smaller than this share of the largest are dropped (floor specks), larger kept (a second shoe)
PINHOLE_SHARE = 0.002  # holes smaller than this share of the image are filled; larger ones (between sleeve and body) stay


def speckled(product: np.ndarray) -> bool:
    """Whether the flood fill's product carries the specks a textured surface leaves, rather than
    being one or a few large parts as a packshot's is."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(product.astype(np.uint8), connectivity=8)
    if count <= 1:
        return False
    areas = stats[1:, cv2.CC_STAT_AREA]
    specks = areas < min(SPECKLE_COMPONENT * product.size, PART_SHARE * areas.max())  # a small product alone is no speck
    return areas[specks].sum() > SPECKLE_SHARE * product.sum()


def background_distance(lab: np.ndarray, strip: np.ndarray) -> np.ndarray:
    """(H, W) Lab distance from each pixel to the nearest of the border's major colours."""
    pixels = lab[strip]
    clusters = min(BORDER_COLOURS, len(pixels))
    cv2.setRNGSeed(0)  # k-means++ draws its first centres from OpenCV's RNG
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, assignment, centres = cv2.kmeans(pixels, clusters, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    share = np.bincount(assignment.ravel(), minlength=clusters) / len(pixels)
    major = centres[share >= min(MAJOR_COLOUR, share.max())]
    return np.sqrt(((lab[:, :, None, :] - major) ** 2).sum(axis=-1)).min(axis=-1)


def grabcut_seeds(distance: np.ndarray, strip: np.ndarray, by_colour: bool) -> np.ndarray:
    """GrabCut's starting labels: probable product inside the margin, probable background in it,
    certain background on the border where it has a background colour; with `by_colour`, pixels
    inside as close to a background colour as most of the border start as probable background."""
    height, width = distance.shape
    margin_x, margin_y = max(1, round(width * GRABCUT_MARGIN)), max(1, round(height * GRABCUT_MARGIN))
    labels = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    labels[margin_y:-margin_y, margin_x:-margin_x] = cv2.GC_PR_FGD
    typical = np.percentile(distance[strip], BACKGROUND_QUANTILE)
    if by_colour:
        labels[(labels == cv2.GC_PR_FGD) & (distance <= typical)] = cv2.GC_PR_BGD
    labels[strip & (distance <= max(FOREIGN_BORDER_MIN, FOREIGN_BORDER * typical))] = cv2.GC_BGD
    return labels


def main_parts(mask: np.ndarray) -> np.ndarray:
    """The mask's large connected parts, pinholes filled."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = areas >= PART_SHARE * areas[1:].max()
    keep[0] = False
    mask = keep[labels]
    _, holes, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    pinhole = stats[:, cv2.CC_STAT_AREA] < PINHOLE_SHARE * mask.size
    pinhole[0] = False  # label 0: the product itself
    pinhole[holes[border_strip(*mask.shape)]] = False  # background reaching the frame is no hole, however small
    return mask | pinhole[holes]


def grabcut(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's RNG: the same photo, the same mask
    cv2.grabCut(image, labels, None, background_model, foreground_model, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return main_parts(np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)))


def grabcut_mask(colour: np.ndarray) -> np.ndarray:
    """Boolean (H, W) product mask of an RGB photo by GrabCut from colour seeds, or from a rectangle
    when the colour seeds lose the product (see the module's docstring)."""
    height, width = colour.shape[:2]
    scale = min(1.0, WORKING_SIDE / max(height, width))
    small = cv2.resize(colour, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else colour
    small = np.ascontiguousarray(small)
    strip = border_strip(*small.shape[:2])
    # a light blur keeps fabric and floor texture from splitting the border's colours into noise
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    distance = background_distance(lab, strip)
    by_rectangle = grabcut(small, grabcut_seeds(distance, strip, by_colour=False))
    colour_seeds = grabcut_seeds(distance, strip, by_colour=True)
    found = by_rectangle
    if (colour_seeds == cv2.GC_PR_FGD).any():  # GrabCut needs some probable product to start from
        by_colour = grabcut(small, colour_seeds)
        if by_colour.sum() >= KEEP_SHARE * by_rectangle.sum():
            found = by_colour
    if scale < 1:
        found = cv2.resize(found.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    return found


def product_mask(image: np.ndarray, tolerance: int = 24) -> tuple[np.ndarray, str]:
    """Boolean (H, W) mask of the product and the method that found it ("plain background" or "grabcut")."""
    background = plain_background_mask(image, tolerance)
    if background is not None and not speckled(~background):
        return ~background, "plain background"
    colour = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    return grabcut_mask(colour), "grabcut"


def cutout(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA: the photo's colours, transparent outside the product."""
    colour = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    return np.concatenate([colour, (mask * 255).astype(np.uint8)[..., None]], axis=2)
