"""reconstruct / interpolate / transfer / export / eval autoencoder on a tiny VAE-GAN, with photos
of every supported type, and the errors a user meets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from prodgen.errors import ProdgenError
from prodgen.generate.autoencoder import ProductAutoencoder
from prodgen.generate.variants import slerp
from prodgen.train.loop import train

from .conftest import config, invoke, product_photo
from .test_train_vae import tiny_vae

FORMATS = {"a.jpg": "JPEG", "b.PNG": "PNG", "c.webp": "WEBP", "d.gif": "GIF", "e.bmp": "BMP", "f.tiff": "TIFF"}


@pytest.fixture(scope="module")
def vaegan_run(tiny_home, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRODGEN_HOME", str(tiny_home))
        return train(tiny_vae("fmnist-vaegan"), runs_root=tmp_path_factory.mktemp("runs"), show_progress=False).run_dir


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (name, kind) in enumerate(FORMATS.items()):
        product_photo(37, 29, seed=100 + i).save(folder / name, format=kind)
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_reconstruct_writes_one_image_per_photo_and_a_sheet(tiny, vaegan_run, photos, tmp_path):
    result = invoke("reconstruct", "--model", vaegan_run, "--input", photos, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "reconstructions.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (16, 16)  # the model's size
    one = invoke("reconstruct", "--model", vaegan_run, "--input", photos / "c.webp", "--out", tmp_path / "one", "--category", "caps")
    assert one.exit_code == 0, one.output
    assert {p.name for p in (tmp_path / "one").iterdir()} == {"c.png", "reconstructions.png"}


def test_interpolate_writes_a_strip_and_a_gif(tiny, vaegan_run, photos, tmp_path):
    result = invoke("interpolate", "--model", vaegan_run, "--from", photos / "a.jpg", "--to", photos / "f.tiff", "--steps", 5, "--out", tmp_path,
                    "--method", "linear")
    assert result.exit_code == 0, result.output
    strip = Image.open(tmp_path / "interpolation.png")
    gif = Image.open(tmp_path / "interpolation.gif")
    durations = []
    for frame in range(gif.n_frames):  # Pillow merges identical neighbouring frames, adding up their durations
        gif.seek(frame)
        durations.append(gif.info["duration"])
    assert sum(durations) == 5 * 250 and strip.size[0] > 4 * strip.size[1]


def test_transfer_names_each_output_after_photo_and_category(tiny, vaegan_run, photos, tmp_path):
    result = invoke("transfer", "--model", vaegan_run, "--input", photos / "b.PNG", "--category", "boots", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b-boots.png").exists()


def test_export_carries_the_encoder(tiny, vaegan_run, photos, tmp_path):
    assert invoke("export", vaegan_run, "--out", tmp_path / "model").exit_code == 0
    assert {p.name for p in (tmp_path / "model").iterdir()} == {"generator.safetensors", "generator.json", "encoder.safetensors", "encoder.json"}
    from_run, exported = ProductAutoencoder.load(vaegan_run), ProductAutoencoder.load(tmp_path / "model")
    image = from_run.photos.read(photos / "a.jpg")[None]
    codes = from_run.photos.own_codes(image, {"category": "caps"})
    assert np.array_equal(from_run.reconstruct(image, codes), exported.reconstruct(image, codes))


def test_eval_autoencoder_scores_the_test_split(tiny, vaegan_run, tmp_path):
    result = invoke("eval", "autoencoder", "--model", vaegan_run, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reconstruction.json").read_text())
    metrics = report["metrics"]
    assert report["num_images"] == 6 and report["split"] == "test"
    assert metrics["bits_per_dim"] > 0 and 0 <= metrics["mse"] <= 1 and -1 <= metrics["ssim"] <= 1 and 0 <= metrics["transfer_accuracy"] <= 1
    assert (tmp_path / "reconstructions.png").exists()


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_codes():
    import torch

    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    assert torch.allclose(slerp(a, b, 0.5).norm(), torch.tensor(3.0))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconstruct", "--input", "{photos}/notes.txt"], "is not a usable image: not an image"),
        (["reconstruct", "--input", "{photos}/missing.png"], "No file or folder at"),
        (["reconstruct", "--input", "{photos}", "--category", "hats"], "Unknown category 'hats'; known: boots, caps"),
        (["transfer", "--input", "{photos}/a.jpg", "--category", "hats"], "Unknown category 'hats'"),
        (["transfer", "--input", "{photos}/a.jpg"], "Say what to change"),
        (["interpolate", "--from", "{photos}/a.jpg", "--to", "{photos}/b.PNG", "--steps", "1"], "--steps must be at least 2"),
        (["interpolate", "--from", "{photos}/a.jpg", "--to", "{photos}/b.PNG", "--method", "cubic"], "Unknown interpolation 'cubic'"),
    ],
)
def test_bad_inputs_are_clear_errors(tiny, vaegan_run, photos, tmp_path, args, message):
    args = [a.replace("{photos}", str(photos)) for a in args]
    result = invoke(args[0], "--model", vaegan_run, *args[1:], "--out", tmp_path / "out")
    assert isinstance(result.exception, ProdgenError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_gan_is_not_an_autoencoder(tiny, photos, tmp_path):
    gan = train(config(train__steps=1, eval__every=1, eval__checkpoint_every=1), runs_root=tmp_path, show_progress=False).run_dir
    result = invoke("reconstruct", "--model", gan, "--input", photos / "a.jpg", "--out", tmp_path / "out")
    assert isinstance(result.exception, ProdgenError) and "has no encoder: it is a GAN" in str(result.exception)
