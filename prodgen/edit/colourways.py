"""Colourways: the same product photo in other colours, from the photo alone (no training).

Only the product changes (the mask of prodgen.data.masks.product_mask); every pixel outside it is
copied from the input unchanged. The recolouring works in CIELAB, on 8-bit Lab tables:

- lightness: every product pixel's L* is shifted by one amount, so that the product's mean L* becomes
  the target's, with soft shoulders near 0 and 100 instead of clipping: shading and texture keep
  their contrast in L* units except where the shift pushes them against the ends of the scale;
- chroma: a*, b* become the target's, scaled down in the shadows by the pixel's new lightness
  relative to the mean (in Lab a shadow on a coloured fabric is darker and less colourful alike), and
  limited to what sRGB can show at the pixel's new lightness in the target's hue (so the gamut takes
  chroma, never lightness); the pixel's own departure from that shading model (a two-tone weave, a
  print, a logo) is added on top, damped when the target is less colourful than the product.

Gamut limits, 8-bit rounding and the optional feathering of the outline (inside the product only)
move the mean colour, so the lightness shift and the chroma are corrected, measured on a sample of
the product's pixels, until the mean colour is within CIEDE2000 1 of the aim or stops improving. A
product whose lightness spreads wide (stripes, a light print on a dark ground) or whose print has
many colours cannot always have a mean as colourful as a saturated target; then its pattern
(lightness contrast and colour departures) is reduced in steps until the miss is at most
GOOD_ENOUGH (4). The aimed lightness stays inside LIGHTNESS_RANGE, so white and black products keep
some shading.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from prodgen.errors import ProdgenError

# Lightness aimed at is kept this far inside [0, 100]: a product whose mean is pure white (or black)
# has no shading left. At the limits the miss is CIEDE2000 about 3 (pure white) and 3.5 (pure black).
LIGHTNESS_RANGE = (6.0, 95.0)
# The chroma departures from the shading model (prints, weaves) are kept in proportion to the change
# in colourfulness; this offset keeps a grey product's tiny departures from being blown up.
CHROMA_FLOOR = 5.0
SHOULDER = 10.0  # L* units from either end of the scale where the lightness shift starts to compress
SAMPLE_PIXELS = 4096  # product pixels the mean-colour correction is measured on
CORRECTIONS = 6  # steps per contrast tried
CLOSE_ENOUGH = 1.0  # CIEDE2000: stop correcting when the sample's mean is this close to the aim
STALLED = 0.2  # CIEDE2000: a step that gains less than this ends the corrections at this contrast
GOOD_ENOUGH = 4.0  # CIEDE2000: a miss this small keeps the product's whole pattern
CONTRASTS = (1.0, 0.7, 0.45, 0.25, 0.1)  # shares of the pattern kept, tried in order until the miss is good enough

HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


class NoProductFound(ProdgenError):
    """The product mask of a photo is empty."""


@dataclass(frozen=True)
class Colour:
    """A target colour: `label` names the output file (as the user gave it, without '#')."""

    label: str
    rgb: tuple[int, int, int]


def css_colours() -> dict[str, str]:
    """The 148 named colours of CSS Color Module Level 4 (grey and gray spellings both), name -> #rrggbb."""
    from matplotlib.colors import CSS4_COLORS

    return CSS4_COLORS


def parse_colour(text: str) -> Colour:
    """A CSS colour name (any letter case; spaces, hyphens and underscores ignored: 'Light Grey') or hex:
    #rgb, #rrggbb, or the same without '#' (an unquoted '#' starts a comment in most shells)."""
    given = text.strip()
    names = css_colours()
    key = re.sub(r"[\s_-]", "", given.lower())
    if key in names:
        code = names[key].lstrip("#")
    elif HEX.fullmatch(given):
        code = given.lstrip("#")
        code = "".join(c * 2 for c in code) if len(code) == 3 else code
    else:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ProdgenError(f"Unknown colour {given!r}.{hint} Use a CSS colour name (navy, seagreen) or hex (#2e8b57, #fc0).")
    rgb = tuple(int(code[i : i + 2], 16) for i in (0, 2, 4))
    return Colour(label=given.lstrip("#"), rgb=rgb)


def read_palette(path: Path) -> list[Colour]:
    """Colours from a palette file: a `.json` file holds a JSON list of colour strings; any other file
    holds one colour per line (blank lines ignored). Each colour as parse_colour reads it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProdgenError(f"Cannot read the palette {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProdgenError(f"The palette {path} is not valid JSON ({exc}): write a list of colours, e.g. [\"navy\", \"#2e8b57\"].") from exc
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ProdgenError(f"The palette {path} must hold a JSON list of colour strings, e.g. [\"navy\", \"#2e8b57\"].")
        located = [(f"entry {i + 1}", entry) for i, entry in enumerate(entries)]
    else:
        located = [(f"line {i + 1}", line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not located:
        raise ProdgenError(f"The palette {path} lists no colours.")
    colours = []
    for where, entry in located:
        try:
            colours.append(parse_colour(entry))
        except ProdgenError as exc:
            raise ProdgenError(f"{path}, {where}: {exc}") from exc
    return colours


def rgb_of(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from an (H, W, 1|3) photo; a grey photo's levels repeated, so unchanged pixels stay equal."""
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


# 8-bit Lab (OpenCV: L* x 2.55, a* + 128, b* + 128) costs a third of float Lab, and the transform
# becomes table look-ups; a round trip through it stays within CIEDE2000 0.75 of the colour for 99 %
# of sRGB colours (3.2 at worst). Pixel lists are (1, N, 3) uint8 arrays: one image row, which
# OpenCV converts two to three times faster than N rows of one pixel.
def lab8_of(pixels: np.ndarray) -> np.ndarray:
    """(1, N, 3) uint8 sRGB -> (1, N, 3) uint8 OpenCV Lab."""
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab)


def srgb_of(lab8: np.ndarray) -> np.ndarray:
    """(1, N, 3) uint8 OpenCV Lab -> (1, N, 3) uint8 sRGB; colours outside sRGB are clipped per channel."""
    return cv2.cvtColor(lab8, cv2.COLOR_Lab2RGB)


def lab_units(lab8: np.ndarray) -> np.ndarray:
    """8-bit Lab values (..., 3) as float L*, a*, b*."""
    return (np.asarray(lab8, np.float64) - [0, 128, 128]) * [100 / 255, 1, 1]


def mean_lab8(lab8: np.ndarray) -> np.ndarray:
    """The mean colour of (1, N, 3) 8-bit Lab pixels as float L*, a*, b*."""
    return lab_units(cv2.mean(lab8)[:3])


def target_lab(rgb: tuple[int, int, int]) -> np.ndarray:
    """A target colour's L*, a*, b* (float, exact: no 8-bit rounding)."""
    return cv2.cvtColor(np.array([[rgb]], np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0].astype(np.float64)


def product_pixels(colour: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The (1, N, 3) pixels of an (H, W, 3) uint8 image under a boolean mask, in raster order. Each
    pixel is moved as one 3-byte item: several times faster than indexing the rows of an (N, 3) array."""
    return np.ascontiguousarray(colour).reshape(-1).view("V3")[mask.ravel()].view(np.uint8).reshape(1, -1, 3)


def inner_feather(mask: np.ndarray, feather: int) -> np.ndarray:
    """Per product pixel (in mask order), the share of the new colour: rising from 1/(feather+1) on the
    product's outline to 1 at `feather` pixels inside it. Outside the mask nothing is blended."""
    if feather <= 0:
        return np.ones(int(mask.sum()), np.float32)
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)  # 1 on the outline, 0 outside
    return np.minimum(distance[mask] / (feather + 1), 1).astype(np.float32)


def shifted_lightness(lightness: np.ndarray, shift: float) -> np.ndarray:
    """L* + shift, with soft shoulders: the identity (shading kept as it is) up to SHOULDER from either
    end of [0, 100], then an exponential approach to the end, with the same slope at the knee."""
    shifted = lightness + shift
    top, bottom = shifted > 100 - SHOULDER, shifted < SHOULDER
    shifted[top] = 100 - SHOULDER * np.exp(-(shifted[top] - (100 - SHOULDER)) / SHOULDER)
    shifted[bottom] = SHOULDER * np.exp((shifted[bottom] - SHOULDER) / SHOULDER)
    return shifted


def ciede2000(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between L*, a*, b* colours (..., 3), after Sharma,
    Wu and Dalal (2005), whose test pairs it is checked on."""
    (l1, a1, b1), (l2, a2, b2) = np.moveaxis(np.asarray(first, np.float64), -1, 0), np.moveaxis(np.asarray(second, np.float64), -1, 0)
    mean_chroma7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    stretch = 1 + 0.5 * (1 - np.sqrt(mean_chroma7 / (mean_chroma7 + 25.0**7)))
    a1, a2 = a1 * stretch, a2 * stretch
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    neutral = c1 * c2 == 0
    turn = h2 - h1
    turn = np.where(neutral, 0, np.where(turn > 180, turn - 360, np.where(turn < -180, turn + 360, turn)))
    delta_hue = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(turn / 2))
    mean_l, mean_c = (l1 + l2) / 2, (c1 + c2) / 2
    mean_h = np.where(neutral, h1 + h2, np.where(np.abs(h1 - h2) <= 180, (h1 + h2) / 2,
                                                 np.where(h1 + h2 < 360, (h1 + h2 + 360) / 2, (h1 + h2 - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(mean_h - 30)) + 0.24 * np.cos(np.radians(2 * mean_h))
         + 0.32 * np.cos(np.radians(3 * mean_h + 6)) - 0.20 * np.cos(np.radians(4 * mean_h - 63)))
    rotation = -np.sin(np.radians(60 * np.exp(-(((mean_h - 275) / 25) ** 2)))) * 2 * np.sqrt(mean_c**7 / (mean_c**7 + 25.0**7))
    lightness = (l2 - l1) / (1 + 0.015 * (mean_l - 50) ** 2 / np.sqrt(20 + (mean_l - 50) ** 2))
    chroma = (c2 - c1) / (1 + 0.045 * mean_c)
    hue = delta_hue / (1 + 0.015 * mean_c * t)
    return np.sqrt(lightness**2 + chroma**2 + hue**2 + rotation * chroma * hue)


LEVEL_LIGHTNESS = np.arange(256) * (100 / 255)  # L* of each 8-bit Lab level

# CIELAB -> linear sRGB with OpenCV's D65 white and matrix, to tell which colours sRGB can show
WHITE_XYZ = np.array([0.950456, 1.0, 1.088754])
XYZ_TO_LINEAR_SRGB = np.array([[3.240479, -1.53715, -0.498535], [-0.969256, 1.875991, 0.041556], [0.055648, -0.204043, 1.057311]])


def in_srgb(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each L*, a*, b* colour lies inside the sRGB gamut."""
    fy = (lightness + 16) / 116
    f = np.stack([fy + a / 500, fy, fy - b / 200])
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * WHITE_XYZ[:, None]
    rgb = XYZ_TO_LINEAR_SRGB @ xyz
    return ((rgb >= -1e-4) & (rgb <= 1 + 1e-4)).all(axis=0)


@functools.lru_cache(maxsize=256)
def gamut_of(rgb: tuple[int, int, int]) -> np.ndarray:
    """The largest chroma sRGB can show at each 8-bit Lab lightness level in the hue of `rgb` (red
    for a grey): computed once per target colour, not per photo."""
    lab = target_lab(rgb)
    chroma = np.hypot(*lab[1:])
    return max_chroma(LEVEL_LIGHTNESS, lab[1:] / chroma if chroma > 1e-6 else np.array([1.0, 0.0]))


def max_chroma(lightness: np.ndarray, hue: np.ndarray) -> np.ndarray:
    """The largest chroma sRGB can show at each lightness in one hue (a unit a*, b* vector), to 0.01."""
    low, high = np.zeros_like(lightness), np.full_like(lightness, 200.0)
    for _ in range(15):
        middle = (low + high) / 2
        inside = in_srgb(lightness, middle * hue[0], middle * hue[1])
        low, high = np.where(inside, middle, low), np.where(inside, high, middle)
    return low


class Recolouring:
    """The colour transform of one product (its pixels in 8-bit Lab) to one target colour. Its settings:
    the lightness shift, the chroma (a*, b*) at the aimed lightness, and `contrast`, the share of the
    product's pattern kept: its lightness contrast and its colour departures."""

    def __init__(self, lab8: np.ndarray, rgb: tuple[int, int, int]):
        self.lab8 = lab8
        self.mean = mean_lab8(lab8)
        target = target_lab(rgb)
        self.aim = target.copy()
        self.aim[0] = np.clip(target[0], *LIGHTNESS_RANGE)
        self.lightness_shift = float(self.aim[0] - self.mean[0])
        self.chroma = self.aim[1:].copy()
        self.contrast = 1.0
        product_chroma, target_chroma = np.hypot(*self.mean[1:]), np.hypot(*target[1:])
        self.departure_kept = float(min(1.0, (target_chroma + CHROMA_FLOOR) / (product_chroma + CHROMA_FLOOR)))
        self.gamut = gamut_of(rgb)

    def tables(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The transform as tables by 8-bit lightness level: the new level (256), and the offsets
        (256, 2) that make the new a and b levels: offset + kept * old level; and `kept`."""
        lightness = self.mean[0] + self.contrast * (LEVEL_LIGHTNESS - self.mean[0])
        new_lightness = shifted_lightness(lightness, self.lightness_shift)
        # the chroma the shading model expects before and after: the mean chroma, scaled down in the
        # shadows by the pixel's lightness relative to the mean (not up in the highlights, where a dark
        # target would turn neon); what the pixel departs from it by is its own pattern, kept
        before = np.minimum(LEVEL_LIGHTNESS / max(self.mean[0], 1e-3), 1)[:, None] * self.mean[1:]
        after = np.minimum(new_lightness / self.aim[0], 1)[:, None] * self.chroma
        # ... and no more than sRGB can show at the new lightness: the chroma gives way, so that the
        # lightness (the shading) stays as the curve says instead of being bent by clipping
        wanted = np.maximum(np.hypot(*after.T), 1e-6)
        after *= np.minimum(1, np.interp(new_lightness, LEVEL_LIGHTNESS, self.gamut) / wanted)[:, None]
        kept = self.departure_kept * self.contrast
        # new level = after + kept * (old level - 128 - before) + 128, +0.5 to round
        offsets = np.ascontiguousarray(after - kept * before + 128 * (1 - kept) + 0.5, np.float32)
        return np.clip(new_lightness * 2.55 + 0.5, 0, 255).astype(np.uint8), offsets, kept

    def apply(self, lab8: np.ndarray) -> np.ndarray:
        """(1, N, 3) 8-bit Lab -> (1, N, 3) uint8 sRGB."""
        lightness_table, offsets, kept = self.tables()
        lightness, a, b = cv2.split(lab8)
        planes = [cv2.LUT(lightness, lightness_table)]
        for plane, offset in zip((a, b), offsets.T):
            level = np.take(offset, lightness)
            level += plane * np.float32(kept)
            planes.append(np.clip(level, 0, 255, out=level).astype(np.uint8))
        return srgb_of(cv2.merge(planes))

    def fit(self, original: np.ndarray, share: np.ndarray) -> None:
        """Correct the settings so that the product's mean colour after the transform, the 8-bit
        rounding, gamut limits and the feathering (`share` of the new colour over the `original` sRGB
        pixels) lands on the target, measured on a sample of pixels. The pattern is given up only as
        far as needed: a product whose lightness spreads wide (stripes, a light print on a dark ground)
        cannot have a mean as colourful as a saturated target, since sRGB's most colourful colours sit
        at one lightness per hue, and a many-coloured print's departures get clipped unevenly by the
        gamut of a dark or vivid target."""
        step = max(1, self.lab8.shape[1] // SAMPLE_PIXELS)
        lab8, original = np.ascontiguousarray(self.lab8[:, ::step]), np.ascontiguousarray(original[:, ::step])
        share = None if share.min() == 1 else share[None, ::step, None]
        best = (np.inf, self.settings())
        for contrast in CONTRASTS:
            self.contrast = contrast
            previous, last_miss = None, np.inf
            for _ in range(CORRECTIONS):
                new = self.apply(lab8)
                result = mean_lab8(lab8_of(new if share is None else blend(new, original, share)))
                miss = float(ciede2000(self.aim, result))
                best = min(best, (miss, self.settings()), key=lambda tried: tried[0])
                if miss < CLOSE_ENOUGH or miss > last_miss - STALLED:
                    break
                last_miss = miss
                setting = np.array([self.lightness_shift, *self.chroma])
                # where the gamut limits, a step of the setting moves the result by less: divide the
                # next step by the response to the last one (a secant step, lightness and chroma apart)
                response = np.ones(3)
                if previous is not None:
                    moved, pushed = result - previous[1], setting - previous[0]
                    response[0] = moved[0] * pushed[0] / max(pushed[0] ** 2, 1e-9)
                    response[1:] = moved[1:] @ pushed[1:] / max(pushed[1:] @ pushed[1:], 1e-9)
                previous = (setting, result)
                response = np.where(response > 0, np.clip(response, 0.25, 1), 1)  # <= 0: moved by the other setting
                step = (self.aim - result) / response
                self.lightness_shift += float(step[0])
                self.chroma = self.chroma + step[1:]
            if best[0] <= GOOD_ENOUGH:
                break
        self.lightness_shift, self.chroma, self.contrast = best[1]

    def settings(self) -> tuple[float, np.ndarray, float]:
        return self.lightness_shift, self.chroma.copy(), self.contrast


def blend(new: np.ndarray, original: np.ndarray, share: np.ndarray) -> np.ndarray:
    """`share` of `new` over `original` (uint8 arrays of one shape; `share` broadcasts)."""
    return (share * new + (1 - share) * original + 0.5).astype(np.uint8)


def recolour(image: np.ndarray, mask: np.ndarray, rgb: tuple[int, int, int], feather: int = 0) -> np.ndarray:
    """The photo (H, W, 1|3 uint8) with its product (boolean (H, W) mask) in colour `rgb`: (H, W, 3)
    uint8. Pixels outside the mask are the input's. `feather` pixels inside the outline blend from the
    old colour to the new; off by default, since the old colour then shows as a rim when the two differ
    much (the outline's mixed pixels already keep their lightness under the transform)."""
    if not mask.any():
        raise NoProductFound("no product found (its mask is empty)")
    result = np.array(rgb_of(image), order="C")  # a copy: the caller's image is never written to
    original = product_pixels(result, mask)
    share = inner_feather(mask, feather)
    transform = Recolouring(lab8_of(original), rgb)
    transform.fit(original, share)
    new = transform.apply(transform.lab8)
    edge = np.flatnonzero(share < 1)  # only the feathered outline is blended
    new[0, edge] = blend(new[0, edge], original[0, edge], share[edge, None])
    result.reshape(-1).view("V3")[mask.ravel()] = new.reshape(-1).view("V3")
    return result


KMEANS_PIXELS = 20_000  # at most about this many product pixels are clustered
MERGE_DISTANCE = 12.0  # Lab units (lightness halved) under which two k-means colours count as one


def dominant_colours(image: np.ndarray, mask: np.ndarray, count: int = 1) -> list[tuple[int, int, int]]:
    """The product's `count` main colours (fewer if it has fewer), largest share first: k-means in Lab
    on its pixels, clusters whose centres are close merged (lightness counting half: shading splits
    one colour into lighter and darker clusters)."""
    if not mask.any():
        raise NoProductFound("no product found (its mask is empty)")
    lab8 = lab8_of(product_pixels(rgb_of(image), mask)).reshape(-1, 3)
    lab = lab_units(lab8[:: max(1, len(lab8) // KMEANS_PIXELS)]).astype(np.float32)
    clusters = min(len(lab), count + 2)
    cv2.setRNGSeed(0)  # the same photo, the same colours
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.1)
    _, labels, centres = cv2.kmeans(lab, clusters, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    sizes = np.bincount(labels.ravel(), minlength=clusters).astype(np.float64)
    groups: list[tuple[float, np.ndarray]] = []  # (pixels, mean Lab), merged
    for index in np.argsort(-sizes):
        centre, size = centres[index].astype(np.float64), sizes[index]
        for i, (weight, mean) in enumerate(groups):
            if np.linalg.norm((mean - centre) * [0.5, 1, 1]) < MERGE_DISTANCE:
                groups[i] = (weight + size, (weight * mean + size * centre) / (weight + size))
                break
        else:
            groups.append((size, centre))
    groups.sort(key=lambda group: -group[0])
    rgb = cv2.cvtColor(np.array([[mean for _, mean in groups[:count]]], np.float32), cv2.COLOR_Lab2RGB)[0]
    return [tuple(int(v) for v in np.rint(np.clip(c, 0, 1) * 255)) for c in rgb]


def colours_like(path: Path, count: int = 1, tolerance: int = 24) -> list[Colour]:
    """The main colours of the product in another photo, labelled by their hex codes."""
    if count < 1:
        raise ProdgenError(f"Ask for at least one colour of the --like photo, not {count}.")
    from prodgen.data.preprocess import BadImage, decode_photo

    try:
        image = decode_photo(path.read_bytes())
    except (OSError, BadImage) as exc:
        raise ProdgenError(f"Cannot read the --like photo {path}: {exc}") from exc
    try:
        return product_colours(image, count, tolerance)
    except NoProductFound as exc:
        raise ProdgenError(f"--like photo {path}: {exc}") from exc


def product_colours(image: np.ndarray, count: int, tolerance: int = 24) -> list[Colour]:
    """The main colours of the product in a photo, labelled by their hex codes. Raises NoProductFound."""
    from prodgen.data.masks import product_mask

    return [Colour(label="{:02x}{:02x}{:02x}".format(*rgb), rgb=rgb) for rgb in dominant_colours(image, product_mask(image, tolerance)[0], count)]


def distinct_colours(colours: list[Colour]) -> list[Colour]:
    """One colour per output name, ignoring letter case (the first kept), as the files are named."""
    unique: dict[str, Colour] = {}
    for colour in colours:
        unique.setdefault(colour.label.lower(), colour)
    return list(unique.values())


def target_colours(names: list[str], palette: Path | None = None, like: Path | None = None, like_count: int = 1,
                   tolerance: int = 24) -> list[Colour]:
    """The colours asked for, in order (--to names, then the palette's, then the --like photo's); one
    per output name, ignoring letter case (the first kept)."""
    colours = [parse_colour(name) for name in names]
    if palette is not None:
        colours += read_palette(palette)
    if like is not None:
        colours += colours_like(like, like_count, tolerance)
    if not colours:
        raise ProdgenError("Say which colours to make: --to COLOUR (repeatable), --palette FILE or --like PHOTO.")
    return distinct_colours(colours)


def colourways(image: np.ndarray, colours: list[Colour], feather: int = 0, tolerance: int = 24) -> list[np.ndarray]:
    """The photo once per colour, the product found by product_mask. Raises NoProductFound."""
    from prodgen.data.masks import product_mask

    mask, _ = product_mask(image, tolerance)
    return [recolour(image, mask, colour.rgb, feather) for colour in colours]
