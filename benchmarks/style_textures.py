"""Style images for training and measuring AdaIN, since there is no art dataset here: procedural
textures (stripes, checks, dots, multi-scale noise, paint-like strokes) and the clothing photos' own
fabrics (a crop from the middle of a garment). A product is restyled with another fabric or print,
so these are the styles the feature is for; the procedural families span what an AdaIN decoder must
learn to draw: hard and soft edges, orientations, periods from a few pixels to a quarter of the
image, two to five colours, and isotropic noise from fine grain to large blotches.

    from style_textures import procedural_texture, fabric_crop, TEXTURE_KINDS
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TEXTURE_KINDS = ("stripes", "checks", "dots", "noise", "strokes")
CLOTHING = Path("/work/shared/catalogs/clothing-small")


def palette(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` colours (float RGB in [0, 1]) of random hue, saturation and value."""
    hsv = np.stack([rng.uniform(0, 180, count), rng.uniform(40, 255, count), rng.uniform(50, 255, count)], axis=1)
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255


def coordinates(size: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    return xx * np.cos(angle) + yy * np.sin(angle), -xx * np.sin(angle) + yy * np.cos(angle)


def stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    u, _ = coordinates(size, rng.uniform(0, np.pi))
    colours = palette(rng, int(rng.integers(2, 4)))
    band = (u / rng.uniform(4, size / 4)) % 1.0
    edges = np.sort(rng.uniform(0, 1, len(colours) - 1))
    return colours[np.searchsorted(edges, band)]


def checks(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gingham or tartan: two sets of bands across each other, their colours mixed where they cross."""
    u, v = coordinates(size, rng.choice([0.0, np.pi / 4, rng.uniform(0, np.pi)]))
    period = rng.uniform(6, size / 4)
    first, second = ((u / period) % 1 < rng.uniform(0.3, 0.7)), ((v / period) % 1 < rng.uniform(0.3, 0.7))
    base, across, both = palette(rng, 3)
    image = np.where(first[..., None], across, base)
    return np.where((first & second)[..., None], both, np.where(second[..., None], across * 0.5 + base * 0.5, image))


def dots(rng: np.random.Generator, size: int) -> np.ndarray:
    background, *inks = palette(rng, int(rng.integers(2, 4)))
    spacing = rng.uniform(6, size / 5)
    radius = spacing * rng.uniform(0.15, 0.45)
    image = np.tile(background, (size, size, 1))
    jitter = rng.uniform(0, 0.3) * spacing
    for row, y in enumerate(np.arange(-spacing, size + spacing, spacing)):
        for x in np.arange(-spacing, size + spacing, spacing) + (spacing / 2 if row % 2 else 0):
            centre = (int(x + rng.normal(0, jitter + 1e-6)), int(y + rng.normal(0, jitter + 1e-6)))
            cv2.circle(image, centre, max(1, int(radius)), tuple(float(c) for c in inks[rng.integers(len(inks))]), -1, lineType=cv2.LINE_AA)
    return image


def noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Octaves of blurred white noise (fine grain to blotches a quarter of the image wide) through a colour ramp."""
    field = np.zeros((size, size), np.float32)
    for sigma in rng.choice([1, 2, 4, 8, 16, 32], size=int(rng.integers(1, 4)), replace=False):
        octave = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), float(sigma))
        field += octave / (octave.std() + 1e-6)
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    colours = palette(rng, int(rng.integers(2, 5)))
    stops = np.linspace(0, 1, len(colours))
    return np.stack([np.interp(field, stops, colours[:, c]) for c in range(3)], axis=2).astype(np.float32)


def strokes(rng: np.random.Generator, size: int) -> np.ndarray:
    """Paint-like: hundreds of short thick strokes of a few colours, mostly along one direction, slightly blurred."""
    colours = palette(rng, int(rng.integers(3, 6)))
    image = np.tile(colours[0], (size, size, 1))
    direction, spread = rng.uniform(0, np.pi), rng.uniform(0.1, 1.2)
    length, width = rng.uniform(size / 20, size / 5), rng.uniform(1.5, size / 30)
    for _ in range(int(3 * (size / length) * (size / width))):
        angle = direction + rng.normal(0, spread)
        x, y = rng.uniform(0, size, 2)
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        colour = colours[rng.integers(len(colours))] * rng.uniform(0.85, 1.15)
        cv2.line(image, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), tuple(float(c) for c in np.clip(colour, 0, 1)),
                 max(1, int(width * rng.uniform(0.6, 1.4))), lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(image, (0, 0), 0.7)


MAKERS = {"stripes": stripes, "checks": checks, "dots": dots, "noise": noise, "strokes": strokes}


def procedural_texture(kind: str, seed: int, size: int) -> np.ndarray:
    """(size, size, 3) uint8 texture of a kind, the same for the same seed."""
    image = MAKERS[kind](np.random.default_rng(seed), size)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def fabric_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A square from the middle of a garment photo (a fifth to a third of its shorter side), resized to `size`:
    the fabric, mostly without the background."""
    height, width = photo.shape[:2]
    side = int(min(height, width) * rng.uniform(0.2, 0.34))
    y = int(height / 2 + rng.uniform(-0.1, 0.1) * height - side / 2)
    x = int(width / 2 + rng.uniform(-0.1, 0.1) * width - side / 2)
    return cv2.resize(np.ascontiguousarray(photo[y : y + side, x : x + side]), (size, size), interpolation=cv2.INTER_CUBIC)


def clothing_photos() -> list[Path]:
    return sorted(p for p in CLOTHING.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def held_out_photos() -> list[Path]:
    """The benchmark's content photos, never seen by the decoder's training: the first photo (by name) of each category."""
    first: dict[str, Path] = {}
    for path in clothing_photos():
        first.setdefault(path.parent.name, path)
    return list(first.values())


def benchmark_styles(size: int) -> dict[str, np.ndarray]:
    """The benchmark's style images: one texture of each kind from seeds training never draws (training uses 0 ... 10^6),
    and the paisley print of the held-out longsleeve photo (itself one of the content photos, so that one pair
    restyles a garment with its own fabric)."""
    from prodgen.data.preprocess import decode_photo

    styles = {kind: procedural_texture(kind, 10_000_000 + k, size) for k, kind in enumerate(TEXTURE_KINDS)}
    fabric_source = held_out_photos()[2]
    styles["fabric"] = fabric_crop(decode_photo(fabric_source.read_bytes()), size, np.random.default_rng(7))
    return styles
