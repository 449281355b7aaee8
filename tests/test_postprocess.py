"""Post-processing: each step's effect measured on synthetic product photos, the chain's parsing,
`generate --post` (recorded, regenerated bit for bit) and `prodgen postprocess` on a folder."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
from PIL import Image

from prodgen.cli import POST_HELP
from prodgen.errors import ProdgenError
from prodgen.generate.metadata import read_record
from prodgen.generate.postprocess import STEPS, apply_chain, parse_chain

from .conftest import invoke

LIGHT_GREY = (235, 235, 235)


def packshot(size=(48, 40), colour=(180, 40, 40), background=LIGHT_GREY, seed=0) -> np.ndarray:
    """A shaded ellipse (the product) with a white label inside it, on a plain background with sensor noise."""
    height, width = size
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float32)
    image[:] = background
    yy, xx = np.mgrid[:height, :width]
    inside = ((yy - height / 2) / (height * 0.35)) ** 2 + ((xx - width / 2) / (width * 0.3)) ** 2 <= 1
    shading = 0.7 + 0.3 * (xx / width)
    image[inside] = (np.array(colour, np.float32) * shading[inside, None])
    label = (np.abs(yy - height / 2) < 3) & (np.abs(xx - width / 2) < 3)
    image[label] = 250
    image += rng.normal(0, 2, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def product_mask(size=(48, 40)) -> np.ndarray:
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    return ((yy - height / 2) / (height * 0.35)) ** 2 + ((xx - width / 2) / (width * 0.3)) ** 2 <= 1.05


def run(image: np.ndarray, chain: str) -> np.ndarray:
    return apply_chain(image, parse_chain(chain))


@pytest.mark.parametrize("method", ["nlm", "bilateral"])
@pytest.mark.parametrize("channels", [1, 3])
def test_denoise_lowers_the_noise_level(method, channels):
    clean = packshot(background=(200, 200, 200))
    clean = clean if channels == 3 else cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY)[..., None]
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    out = run(noisy, f"denoise:{method}")
    assert out.shape == noisy.shape

    def noise(image):
        return (image.astype(float) - clean).std()

    assert noise(out) < 0.8 * noise(noisy)


def test_autocontrast_stretches_the_range_without_tinting():
    flat = (packshot().astype(np.float32) * 0.3 + 90).astype(np.uint8)  # luminance within about 90..165
    out = run(flat, "autocontrast")
    assert np.percentile(out.min(axis=2), 1) <= 1 and np.percentile(out.max(axis=2), 99) >= 254
    product = product_mask() & ~cv2.dilate((flat.max(axis=2) > 160).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (out[product].argmax(axis=1) == 0).all()  # a red product stays red
    grey = np.repeat(flat[..., :1], 3, axis=2)
    stretched = run(grey, "autocontrast:2")
    assert (stretched[..., 0] == stretched[..., 1]).all() and (stretched[..., 1] == stretched[..., 2]).all()  # grey stays grey
    assert stretched.std() > 2 * grey.std()


def test_clahe_raises_contrast_and_sharpen_steepens_edges():
    yy, xx = np.mgrid[:64, :64]
    weave = (128 + 10 * np.sin(xx / 2.0) * np.cos(yy / 3.0)).astype(np.uint8)  # a low-contrast fabric texture
    for image in (weave[..., None], np.stack([weave, weave // 2, weave // 3], axis=2)):
        lightness = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0] if image.shape[2] == 3 else image[..., 0]
        equalised = run(image, "clahe")
        equalised_lightness = cv2.cvtColor(equalised, cv2.COLOR_RGB2LAB)[..., 0] if image.shape[2] == 3 else equalised[..., 0]
        assert equalised.shape == image.shape and equalised_lightness.std() > 1.5 * lightness.std()
    blurred = cv2.GaussianBlur(packshot(), (0, 0), 1.5)

    def steepest(image):
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)).max()

    assert steepest(run(blurred, "sharpen:1.5")) > 1.2 * steepest(blurred)


def test_white_background_makes_a_light_backdrop_exactly_white_and_keeps_the_product():
    image = packshot()
    out = run(image, "white-bg")
    inside = product_mask()
    assert (out[~inside] == 255).all()
    core = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.array_equal(out[core], image[core])  # the product, its white label included, untouched
    # a dark backdrop (Fashion-MNIST's) or a busy one is left alone
    dark = packshot(background=(10, 10, 10))
    assert np.array_equal(run(dark, "white-bg"), dark)
    busy = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert np.array_equal(run(busy, "white-bg"), busy)


def test_normalise_colour_neutralises_a_cast_backdrop_only():
    cast = packshot(background=(235, 225, 200))
    out = run(cast, "normalise-colour")
    corner = out[:4, :4].reshape(-1, 3).astype(float).mean(axis=0)
    assert corner.max() - corner.min() < 3  # the backdrop is neutral now
    assert abs(corner.mean() - np.mean((235, 225, 200))) < 3  # at the same brightness
    wood = packshot(background=(210, 160, 100))
    assert np.array_equal(run(wood, "normalise-colour"), wood)


def test_upscale_and_pad_give_exact_sizes():
    image = packshot(size=(28, 20))
    assert run(image, "upscale:256").shape == (256, 183, 3)
    assert run(image[..., :1], "upscale:100").shape == (100, 71, 1)
    for ratio, (w, h) in {"1x1": (1, 1), "3x4": (3, 4), "4x5": (4, 5)}.items():
        padded = run(image, f"upscale:256,pad:{ratio}")
        assert padded.shape[1] * h == padded.shape[0] * w and min(padded.shape[:2]) >= 183
    wide = run(image, "pad:4x1")
    assert wide.shape[:2] == (28, 112) and np.array_equal(wide[:, 46:66], image)  # centred
    assert (np.abs(wide[:, :40].astype(int) - LIGHT_GREY).max() < 10)  # filled with the backdrop's colour


def test_the_chain_is_parsed_with_clear_errors_and_defaults_written_out():
    assert [str(step) for step in parse_chain("denoise, autocontrast,white-bg,upscale:256,pad:4x5")] == [
        "denoise:nlm", "autocontrast:1", "white-bg:24", "upscale:256", "pad:4x5"]
    assert parse_chain("") == []
    for chain, message in [("blur", "Unknown post-processing step 'blur'; the steps: denoise"), ("upscale", "needs an argument"),
                           ("upscale:big", "'big' invalid literal"), ("pad:4by5", "must be WIDTHxHEIGHT"),
                           ("normalise-colour:2", "takes no argument"), ("denoise:median", "must be one of nlm, bilateral")]:
        with pytest.raises(ProdgenError, match=message):
            parse_chain(chain)
    assert all(name in POST_HELP for name in STEPS)  # the command line's help names every step


def test_generate_records_the_chain_and_regenerates_through_it(tmp_path):
    made = invoke("generate", "--model", "fmnist-cgan", "--category", "Coat", "-n", 3, "--post", "denoise,autocontrast,upscale:64,pad:4x5",
                  "--out", tmp_path / "gen")
    assert made.exit_code == 0, made.output
    image = tmp_path / "gen" / "Coat-0-0002.png"
    assert Image.open(image).size == (64, 80)
    assert read_record(image)["post"] == ["denoise:nlm", "autocontrast:1", "upscale:64", "pad:4x5"]
    assert invoke("regenerate", image, "--out", tmp_path / "again").exit_code == 0
    assert (tmp_path / "again" / image.name).read_bytes() == image.read_bytes()


def test_postprocess_cleans_a_folder_and_never_touches_the_sources(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(packshot(seed=1)).save(photos / "shirt.jpg", quality=95)
    Image.fromarray(packshot(seed=2, colour=(30, 60, 160))).save(photos / "jeans.png")
    (photos / "broken.png").write_bytes(b"not a png")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir()}
    result = invoke("postprocess", "--input", photos, "--post", "white-bg,upscale:96,pad:1x1", "--out", tmp_path / "clean", "--format", "webp")
    assert result.exit_code == 0, result.output
    assert "skipped broken.png: not an image" in result.output
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == ["jeans.webp", "shirt.webp"]
    with Image.open(tmp_path / "clean" / "jeans.webp") as cleaned:
        assert cleaned.size == (96, 96)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir()} == before

    refused = invoke("postprocess", "--input", photos, "--post", "denoise", "--out", photos)
    assert isinstance(refused.exception, ProdgenError) and "holds the photos themselves" in str(refused.exception)
    nothing = invoke("postprocess", "--input", photos, "--post", "", "--out", tmp_path / "x")
    assert isinstance(nothing.exception, ProdgenError) and "Say which post-processing steps" in str(nothing.exception)


def test_learned_super_resolution_loads_local_weights_only(tmp_path):
    """No weights ship: a file the test makes (a random ESPCN) is loaded and applied, and its output
    is the network's; a missing or foreign file is refused by name before anything runs."""
    import torch

    from prodgen.generate.superres import ESPCN, save_espcn

    torch.manual_seed(0)
    model = ESPCN(scale=2, channels=3)
    weights = tmp_path / "espcn-x2.safetensors"
    save_espcn(model, weights)
    image = packshot(size=(20, 16))
    out = run(image, f"superres:{weights},upscale:64")
    assert run(image, f"superres:{weights}").shape == (40, 32, 3) and out.shape == (64, 51, 3)
    with torch.no_grad():
        expected = model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)[0].clamp(0, 1).mul(255).round()
    assert np.array_equal(run(image, f"superres:{weights}"), expected.to(torch.uint8).permute(1, 2, 0).numpy())
    with pytest.raises(ProdgenError, match=r"No super-resolution weights at .*missing.safetensors: prodgen ships none"):
        parse_chain(f"superres:{tmp_path / 'missing.safetensors'}")
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(b"not safetensors")
    with pytest.raises(ProdgenError, match="is not a safetensors file"):
        parse_chain(f"superres:{foreign}")
    with pytest.raises(ProdgenError, match="is for 3-channel images; this one has 1"):
        run(image[..., :1], f"superres:{weights}")
