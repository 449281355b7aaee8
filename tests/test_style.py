"""Neural style transfer: the Gram-matrix loss Gatys' optimisation lowers, the AdaIN layer, VGG-19
weights read from torchvision's layout without torchvision (and without unpickling code), the
product-only mode that leaves the background bit for bit, and `prodgen stylise`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from prodgen.data.masks import product_mask
from prodgen.edit.style import stylise, to_tensor
from prodgen.edit.style.adain import adain
from prodgen.edit.style.features import RandomMultiscale, load_features, mean_std, style_distance, vgg19_conv_indices
from prodgen.edit.style.gatys import gatys
from prodgen.errors import ProdgenError

from .conftest import cli_error, invoke


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny images keep two threads waiting on each other (and on the machine's other jobs): one is faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def packshot(size: int = 48) -> np.ndarray:
    """A shaded red garment-like ellipse with a dark stripe on a white floor: a plain-background product photo."""
    yy, xx = np.mgrid[:size, :size]
    image = np.full((size, size, 3), 255, np.uint8)
    inside = ((yy - size / 2) / (size * 0.35)) ** 2 + ((xx - size / 2) / (size * 0.25)) ** 2 <= 1
    image[inside] = (np.array([190, 40, 50]) * (0.6 + 0.4 * yy[inside, None] / size)).astype(np.uint8)
    image[inside & (np.abs(yy - size / 2) < 3)] = (30, 30, 80)
    return image


def stripes(size: int = 48, period: int = 6) -> np.ndarray:
    """Green and yellow diagonal stripes: a style with statistics far from the photo's."""
    yy, xx = np.mgrid[:size, :size]
    return np.where((((xx + yy) // (period // 2)) % 2 == 0)[..., None], [30, 160, 60], [240, 220, 40]).astype(np.uint8)


def test_gatys_lowers_the_gram_style_distance():
    torch.manual_seed(0)
    network = RandomMultiscale()
    content, style = to_tensor(packshot()), to_tensor(stripes())
    before = style_distance(network, content, style).item()
    result = gatys(network, content, style, steps=30, strength=0.9)
    assert style_distance(network, result, style).item() < 0.5 * before
    assert result.shape == content.shape and 0 <= result.min() and result.max() <= 1


def test_the_adain_layer_gives_the_content_features_the_style_mean_and_std():
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(2, 5, 8, 9, generator=generator) * 3 + 1
    style = torch.randn(2, 5, 6, 7, generator=generator) * (torch.rand(1, 5, 1, 1, generator=generator) + 0.5) - 2
    result = adain(content, style)
    for got, want in zip(mean_std(result), mean_std(style)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # what AdaIN keeps is the content's spatial layout: each channel is an increasing affine map of the content's
    assert torch.allclose(result.flatten(2).argsort(-1).float(), content.flatten(2).argsort(-1).float())


def fake_vgg19_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's vgg19().state_dict() key layout (features.N.weight/bias, classifier.*), with narrow convs to keep it small."""
    generator = torch.Generator().manual_seed(seed)
    state, in_channels = {}, 3
    for index, name in vgg19_conv_indices():
        out_channels = 4 * int(name[4])  # 4, 8, 12, 16, 20 channels in blocks 1 to 5
        state[f"features.{index}.weight"] = torch.randn(out_channels, in_channels, 3, 3, generator=generator) * 0.3
        state[f"features.{index}.bias"] = torch.randn(out_channels, generator=generator) * 0.1
        in_channels = out_channels
    state["classifier.0.weight"], state["classifier.0.bias"] = torch.zeros(8, in_channels * 49), torch.zeros(8)
    return state


def test_vgg19_weights_load_from_safetensors_and_from_a_plain_torch_save(tmp_path):
    state = fake_vgg19_state()
    save_file(state, str(tmp_path / "vgg19.safetensors"))
    torch.save(state, tmp_path / "vgg19.pth")
    image = to_tensor(packshot(32))
    networks = [load_features(str(tmp_path / name)) for name in ("vgg19.safetensors", "vgg19.pth")]
    assert networks[0].identity == networks[1].identity
    outputs = [network.features(image, ("relu1_1", "relu4_1", "relu5_1")) for network in networks]
    for layer, shape in (("relu1_1", (1, 4, 32, 32)), ("relu4_1", (1, 16, 4, 4)), ("relu5_1", (1, 20, 2, 2))):
        assert outputs[0][layer].shape == shape
        torch.testing.assert_close(outputs[0][layer], outputs[1][layer])
    normalised = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = torch.relu(torch.nn.functional.conv2d(normalised, state["features.0.weight"], state["features.0.bias"], padding=1))
    torch.testing.assert_close(outputs[0]["relu1_1"], expected)
    # the same weights saved as torchvision's vgg19().features.state_dict() (keys without "features.")
    torch.save({key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}, tmp_path / "features.pt")
    assert load_features(str(tmp_path / "features.pt")).identity == networks[0].identity


class Payload:
    """Anything a pickle would have to construct: torch.load(weights_only=True) must refuse it."""


def test_vgg19_files_that_are_missing_incomplete_or_carry_code_are_refused(tmp_path):
    with pytest.raises(ProdgenError, match="No VGG-19 weights file at .*absent.safetensors"):
        load_features(str(tmp_path / "absent.safetensors"))
    state = fake_vgg19_state()
    del state["features.21.weight"]
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(ProdgenError, match=r"no 'features\.21\.weight'"):
        load_features(str(tmp_path / "partial.safetensors"))
    torch.save({"features.0.weight": Payload()}, tmp_path / "code.pth")
    with pytest.raises(ProdgenError, match="Cannot read VGG-19 weights from .*code.pth"):
        load_features(str(tmp_path / "code.pth"))


@pytest.mark.parametrize("method", ["gatys", "adain"])
def test_keep_background_leaves_every_pixel_outside_the_product_bit_identical(method):
    photo, style = packshot(64), stripes(64)
    result = stylise(photo, style, method=method, size=64, steps=5, keep_background=True)
    inside, _ = product_mask(photo)
    assert 0.2 < inside.mean() < 0.9
    assert result.shape == photo.shape and result.dtype == np.uint8
    assert np.array_equal(result[~inside], photo[~inside])
    assert np.abs(result[inside].astype(int) - photo[inside]).mean() > 5  # the product did change


def test_prodgen_stylise_on_a_png_and_a_jpeg_writes_the_result_and_leaves_the_inputs(tmp_path):
    Image.fromarray(packshot(60)[:, 6:54]).save(tmp_path / "dress.png")
    Image.fromarray(stripes(40)).save(tmp_path / "stripes.jpg", quality=95)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    result = invoke("stylise", "--content", tmp_path / "dress.png", "--style", tmp_path / "stripes.jpg", "--out", tmp_path / "out" / "adain.png",
                    "--size", 64)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "adain.png") as written:
        assert written.size == (48, 60) and written.mode == "RGB"
    result = invoke("stylise", "--content", tmp_path / "stripes.jpg", "--style", tmp_path / "dress.png", "--out", tmp_path / "gatys.jpg",
                    "--method", "gatys", "--steps", 3, "--size", 40, "--strength", 0.5)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "gatys.jpg") as written:
        assert written.format == "JPEG" and written.size == (40, 40)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_prodgen_stylise_refuses_bad_input_with_a_clear_message(tmp_path):
    Image.fromarray(packshot(32)).save(tmp_path / "photo.png")
    (tmp_path / "notes.png").write_text("not an image")
    photo, args = tmp_path / "photo.png", ("--style", tmp_path / "photo.png", "--out", tmp_path / "out.png")
    assert "is not a usable image" in cli_error("stylise", "--content", tmp_path / "notes.png", *args)
    assert "No content image at" in cli_error("stylise", "--content", tmp_path / "absent.jpg", *args)
    assert "choose gatys or adain" in cli_error("stylise", "--content", photo, *args, "--method", "wct")
    assert "absent-vgg.pth" in cli_error("stylise", "--content", photo, *args, "--method", "gatys", "--features", tmp_path / "absent-vgg.pth")
    assert "Unknown feature network 'inception'" in cli_error("stylise", "--content", photo, *args, "--features", "inception")
    assert "outside [0, 1]" in cli_error("stylise", "--content", photo, *args, "--strength", 1.5)
    assert "one of the input images" in cli_error("stylise", "--content", photo, "--style", photo, "--out", photo)
    assert "name the output .png, .jpg or .webp" in cli_error("stylise", "--content", photo, "--style", photo, "--out", tmp_path / "out.gif")
    save_file(fake_vgg19_state(), str(tmp_path / "vgg19.safetensors"))
    message = cli_error("stylise", "--content", photo, *args, "--features", tmp_path / "vgg19.safetensors")
    assert "No AdaIN decoder" in message and "train_adain_decoder.py" in message
    result = invoke("stylise", "--content", photo, *args, "--method", "wct")
    assert result.exit_code != 0 and not (tmp_path / "out.png").exists()
