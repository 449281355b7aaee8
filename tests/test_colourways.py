"""Colourways: colour names, palettes and --like, the recolouring (mean colour on target, shading
kept, background bit-identical, also as a Hypothesis property), `prodgen colourway` on every photo
format it reads, and its errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from prodgen.data.masks import product_mask
from prodgen.data.preprocess import decode_photo
from prodgen.edit.colourways import Colour, ciede2000, colourways, css_colours, dominant_colours, parse_colour, read_palette, recolour
from prodgen.errors import ProdgenError

from .conftest import cli_error, invoke

cv2.setNumThreads(1)


def packshot(colour=(170, 40, 50), size=(96, 80), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A product shaded from left to right with a white label and a knit-like texture, on a plain
    light background with sensor noise; and its true mask."""
    height, width = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    inside = ((yy - height / 2) / (height * 0.36)) ** 2 + ((xx - width / 2) / (width * 0.32)) ** 2 <= 1
    image = np.full((height, width, 3), 244.0)
    texture = 1 + 0.06 * np.sin(yy * 1.7)
    image[inside] = np.array(colour) * ((0.65 + 0.45 * xx / width) * texture)[inside, None]
    image[(np.abs(yy - height / 2) < 4) & (np.abs(xx - width / 2) < 5)] = 250
    image += rng.normal(0, 1.5, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8), inside


def delta_e(mean_lab: np.ndarray, rgb: tuple[int, int, int]) -> float:
    return float(deltaE_ciede2000(mean_lab, rgb2lab(np.array([[rgb]], np.uint8))[0, 0]))


def product_lab(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The product's pixels in float CIELAB (scikit-image, the benchmark's ruler)."""
    return rgb2lab(image[mask][None]).reshape(-1, 3)


# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", Table 1: pairs 1, 2, 4, 7,
# 17-20, 25, 26, 31, 33 and 34. The recolouring's own formula steers it; the benchmark and these tests
# measure with scikit-image's, an independent implementation.
SHARMA_PAIRS = [
    ((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
    ((50, -1.3802, -84.2814), (50, 0, -82.7485), 1.0000), ((50, 0, 0), (50, -1, 2), 2.3669),
    ((50, 2.5, 0), (73, 25, -18), 27.1492), ((50, 2.5, 0), (61, -5, 29), 22.8977), ((50, 2.5, 0), (56, -27, -3), 31.9030),
    ((50, 2.5, 0), (58, 24, 15), 19.4535), ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441), ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
]


@pytest.mark.parametrize("first, second, expected", SHARMA_PAIRS)
def test_both_ciede2000_formulas_match_the_published_test_pairs(first, second, expected):
    assert float(ciede2000(first, second)) == pytest.approx(expected, abs=1e-4)
    assert float(deltaE_ciede2000(np.array(first, float), np.array(second, float))) == pytest.approx(expected, abs=1e-4)


def test_the_ciede2000_formula_agrees_with_scikit_image_everywhere():
    rng = np.random.default_rng(0)
    first = rng.uniform([0, -110, -110], [100, 110, 110], (5000, 3))
    second = first + rng.normal(0, 15, first.shape)
    first[:50, 1:] = 0  # greys, where the hue is undefined
    assert np.abs(ciede2000(first, second) - deltaE_ciede2000(first, second)).max() < 1e-9


def test_colours_are_css_names_in_any_spelling_or_hex():
    names = css_colours()
    assert len(names) == 148 and names["rebeccapurple"] == "#663399" and names["grey"] == names["gray"]
    assert parse_colour("navy") == Colour("navy", (0, 0, 128))
    assert parse_colour(" Light Grey ").rgb == (211, 211, 211)
    assert parse_colour("#2e8b57") == Colour("2e8b57", (46, 139, 87))
    assert parse_colour("2E8B57").rgb == (46, 139, 87)  # '#' optional: unquoted it starts a shell comment
    assert parse_colour("#fc0") == Colour("fc0", (255, 204, 0))
    for bad in ("#12345", "#ff000080", "rgb(1,2,3)", ""):
        with pytest.raises(ProdgenError, match="Unknown colour"):
            parse_colour(bad)


def test_an_unknown_colour_name_suggests_close_ones():
    with pytest.raises(ProdgenError) as error:
        parse_colour("nvay")
    assert "Did you mean navy?" in str(error.value)
    with pytest.raises(ProdgenError) as error:
        parse_colour("lightgreem")
    assert "lightgreen" in str(error.value)


def test_palettes_are_one_colour_per_line_or_a_json_list(tmp_path):
    lines = tmp_path / "palette.txt"
    lines.write_text("navy\n\n#2e8b57\n  gold  \n")
    assert [c.label for c in read_palette(lines)] == ["navy", "2e8b57", "gold"]
    listed = tmp_path / "palette.json"
    listed.write_text(json.dumps(["Red", "#fc0"]))
    assert [c.rgb for c in read_palette(listed)] == [(255, 0, 0), (255, 204, 0)]


@pytest.mark.parametrize("colour", ["red", "navy", "#2e8b57", "gold", "hotpink", "white", "black", "#808080"])
def test_the_product_takes_the_colour_and_keeps_its_shading(colour):
    image, truth = packshot()
    mask, _ = product_mask(image)
    target = parse_colour(colour).rgb
    result = recolour(image, mask, target)
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.array_equal(result[~mask], image[~mask])
    assert delta_e(product_lab(result, mask).mean(axis=0), target) <= 5
    fabric = truth & (image.min(axis=2) < 240)  # without the white label
    before, after = product_lab(image, fabric)[:, 0], product_lab(result, fabric)[:, 0]
    assert np.corrcoef(before, after)[0, 1] > 0.95  # shading and texture: the same lightness pattern ...
    assert after.std() > (0.5 if colour in ("white", "black") else 0.7) * before.std()  # ... with most of its contrast


def test_feathering_blends_only_inside_the_outline():
    image, _ = packshot()
    mask, _ = product_mask(image)
    hard, soft = recolour(image, mask, (0, 0, 128)), recolour(image, mask, (0, 0, 128), feather=2)
    assert np.array_equal(soft[~mask], image[~mask])
    outline = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    distance = {name: np.abs(result.astype(int) - image).sum(axis=2) for name, result in (("hard", hard), ("soft", soft))}
    assert distance["soft"][outline].mean() < 0.7 * distance["hard"][outline].mean()  # the outline keeps some old colour
    # inside the feather only the mean-colour correction (which counts the outline) tells them apart
    assert ciede2000(product_lab(soft, inner).mean(axis=0), product_lab(hard, inner).mean(axis=0)) < 3


def test_a_grey_photo_gets_a_colour_product_and_keeps_its_grey_background():
    image, _ = packshot(colour=(120, 120, 120))
    grey = image[..., :1]
    mask, _ = product_mask(grey)
    result = recolour(grey, mask, (46, 139, 87))
    assert result.shape == image.shape
    assert np.array_equal(result[~mask], np.repeat(grey, 3, axis=2)[~mask])
    assert delta_e(product_lab(result, mask).mean(axis=0), (46, 139, 87)) <= 5


@given(
    image=arrays(np.uint8, st.tuples(st.integers(4, 40), st.integers(4, 40), st.sampled_from([1, 3]))),
    mask_seed=st.integers(0, 2**32 - 1),
    colour=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    feather=st.integers(0, 3),
)
@settings(max_examples=60, deadline=None)
def test_pixels_outside_the_mask_are_bit_identical(image, mask_seed, colour, feather):
    mask = np.random.default_rng(mask_seed).random(image.shape[:2]) < 0.5
    mask.flat[0] = True  # never empty
    before = image.copy()
    result = recolour(image, mask, colour, feather)
    assert np.array_equal(image, before)  # the caller's array is not written to
    expected = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    assert np.array_equal(result[~mask], expected[~mask])


@given(
    background=st.integers(200, 255),
    products=st.lists(st.tuples(st.integers(2, 20), st.integers(2, 20), st.integers(3, 14), st.integers(3, 14),
                                st.tuples(st.integers(0, 150), st.integers(0, 150), st.integers(0, 150))), min_size=1, max_size=3),
    noise_seed=st.integers(0, 1000),
    colour=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
)
@settings(max_examples=40, deadline=None)
def test_colourways_of_random_packshots_leave_the_background_bit_identical(background, products, noise_seed, colour):
    """The whole path the command takes: product_mask finds the product, only it changes."""
    image = np.full((36, 36, 3), background, np.int16)
    for top, left, height, width, rgb in products:
        image[top : top + height, left : left + width] = rgb
    image = np.clip(image + np.random.default_rng(noise_seed).integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
    mask, _ = product_mask(image)
    (result,) = colourways(image, [Colour("x", colour)])
    assert np.array_equal(result[~mask], image[~mask])


def test_dominant_colours_find_a_two_colour_products_colours():
    image, truth = packshot(colour=(30, 120, 200))
    lower = np.zeros_like(truth)
    lower[40:] = True
    image[truth & lower] = (200, 160, 20)  # the lower part, some 60 % of the product, is flat gold
    mask, _ = product_mask(image)
    (main,) = dominant_colours(image, mask, 1)
    assert delta_e(rgb2lab(np.array([[main]], np.uint8))[0, 0], (200, 160, 20)) < 1
    gold, blue = dominant_colours(image, mask, 2)
    assert gold == main
    assert delta_e(product_lab(image, truth & ~lower & (image.min(axis=2) < 240)).mean(axis=0), blue) < 5


FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF", "gif": "GIF"}


@pytest.mark.parametrize("suffix", FORMATS)
def test_prodgen_colourway_recolours_a_photo_of_each_format(tmp_path, suffix):
    photos = tmp_path / "photos"
    photos.mkdir()
    source = photos / f"coat.{suffix}"
    Image.fromarray(packshot(size=(70, 50))[0]).save(source, format=FORMATS[suffix])
    original = source.read_bytes()
    result = invoke("colourway", "--input", source, "--to", "navy", "--to", "#2e8b57", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert source.read_bytes() == original
    image = decode_photo(original)
    mask, _ = product_mask(image)
    for label, rgb in (("navy", (0, 0, 128)), ("2e8b57", (46, 139, 87))):
        with Image.open(tmp_path / "out" / f"coat-{label}.png") as written:
            assert written.format == "PNG" and written.size == (50, 70)
            pixels = np.asarray(written.convert("RGB"))
        assert np.array_equal(pixels[~mask], image[~mask])
        assert delta_e(product_lab(pixels, mask).mean(axis=0), rgb) <= 5


def test_prodgen_colourway_takes_palettes_and_another_products_colours(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        Image.fromarray(packshot(seed=index)[0]).save(photos / f"item{index}.png")
    (tmp_path / "palette.json").write_text('["gold", "#6a5acd"]')
    like = tmp_path / "like.png"
    blue, _ = packshot(colour=(30, 120, 200), seed=5)
    Image.fromarray(blue).save(like)
    result = invoke("colourway", "--input", photos, "--palette", tmp_path / "palette.json", "--like", like, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    like_labels = [n.removeprefix("item0-").removesuffix(".png") for n in names if n.startswith("item0-")]
    assert len(names) == 6 and {"item0-gold.png", "item1-6a5acd.png"} <= set(names)
    (taken,) = set(like_labels) - {"gold", "6a5acd"}
    assert delta_e(rgb2lab(blue[packshot()[1]][None]).reshape(-1, 3).mean(axis=0), tuple(bytes.fromhex(taken))) < 8
    assert "6 colourways" in " ".join(result.output.split())


def test_not_an_image_and_no_product_are_clear_errors_with_exit_code_2(tmp_path):
    from prodgen.cli import app, main_guard

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "notes.png").write_text("not a picture")
    message = cli_error("colourway", "--input", photos / "notes.png", "--to", "red", "--out", tmp_path / "out")
    assert "No colourway made" in message and "notes.png" in message
    with pytest.raises(SystemExit) as stop:
        main_guard(lambda: app(["colourway", "--input", str(photos), "--to", "red", "--out", str(tmp_path / "out")], standalone_mode=False))
    assert stop.value.code == 2
    Image.fromarray(np.full((40, 30, 3), 255, np.uint8)).save(photos / "blank.png")
    message = cli_error("colourway", "--input", photos / "blank.png", "--to", "red", "--out", tmp_path / "out")
    assert "no product found" in message
    Image.fromarray(packshot()[0]).save(photos / "coat.png")  # with one usable photo the others are skipped, not fatal
    result = invoke("colourway", "--input", photos, "--to", "red", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "skipped blank.png: no product found" in output and "skipped notes.png" in output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["coat-red.png"]
    assert "holds the photos themselves" in cli_error("colourway", "--input", photos, "--to", "red", "--out", photos)
    assert "no product found" in cli_error("colourway", "--input", photos, "--like", photos / "blank.png", "--out", tmp_path / "out")
    assert "Cannot read the --like photo" in cli_error("colourway", "--input", photos, "--like", photos / "notes.png", "--out", tmp_path / "out")


def test_unknown_colours_and_bad_palettes_stop_before_any_photo_is_read(tmp_path):
    photo = tmp_path / "coat.png"
    Image.fromarray(packshot()[0]).save(photo)
    out = tmp_path / "out"
    assert "Did you mean navy?" in cli_error("colourway", "--input", photo, "--to", "red", "--to", "nvay", "--out", out)
    assert "Say which colours" in cli_error("colourway", "--input", photo, "--out", out)
    bad = {"broken.json": '["navy", ', "object.json": '{"colour": "navy"}', "numbers.json": "[1, 2]", "empty.txt": "\n\n",
           "typo.txt": "navy\ngold\nseegreen\n"}
    messages = {}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        messages[name] = cli_error("colourway", "--input", photo, "--palette", tmp_path / name, "--out", out)
    assert "not valid JSON" in messages["broken.json"]
    assert "JSON list of colour strings" in messages["object.json"] and "JSON list of colour strings" in messages["numbers.json"]
    assert "lists no colours" in messages["empty.txt"]
    assert "line 3" in messages["typo.txt"] and "seagreen" in messages["typo.txt"]
    assert "Cannot read the palette" in cli_error("colourway", "--input", photo, "--palette", tmp_path / "missing.txt", "--out", out)
    assert not out.exists()
