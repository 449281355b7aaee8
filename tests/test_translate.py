"""pix2pix: catalog views, a few training steps on the tiny catalog, `prodgen translate` on files of
each kind, exports, presets that start from others, and the mistakes a user can make."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from prodgen.config import load_config
from prodgen.data.views import HOLE_FILL, HOLE_SIDES, VIEWS, random_holes
from prodgen.edit.translate import Translator
from prodgen.train.loop import train

from .conftest import cli_error, invoke, product_photo, with_overrides

TINY_PIX2PIX = {"data": {"catalog": "tiny"}, "model": {"g_width": 8, "d_width": 8, "d_layers": 2},
                "train": {"batch_size": 8, "steps": 6, "threads": 1, "seed": 1},
                "eval": {"every": 3, "samples": 100, "sample_every": 3, "log_every": 1, "checkpoint_every": 3, "keep_last": 2}}


def tiny_pix2pix(preset: str = "pix2pix-edges-64", **overrides):
    tree = load_config(preset).model_dump(mode="json")
    for section, values in TINY_PIX2PIX.items():
        tree[section].update(values)
    return with_overrides(tree, **overrides)


def rectangle_scene() -> np.ndarray:
    """A dark blue rectangle on a light floor: its outline is the only edge."""
    image = np.full((1, 32, 32, 3), 235, np.uint8)
    image[0, 8:24, 10:22] = (30, 40, 120)
    return image


def test_line_views_draw_the_outline_dark_on_white():
    image = rectangle_scene()
    outline = np.zeros((32, 32), bool)
    outline[7:25, 9:23] = True
    outline[10:22, 12:20] = False  # a band around the rectangle's border
    for name in ("edges", "sketch"):
        view = VIEWS[name].make(image, None)[0, ..., 0]
        assert view.shape == (32, 32)
        dark = view < 128
        assert dark.any() and not (dark & ~outline).any(), name  # lines only along the border
        assert (view[:4] == 255).all(), name  # the floor stays white paper


def test_grey_and_inpaint_views():
    image = rectangle_scene()
    grey = VIEWS["grey"].make(image, None)
    assert np.array_equal(grey[0, ..., 0], cv2.cvtColor(image[0], cv2.COLOR_RGB2GRAY))
    uniforms = np.array([[0.0, 1.0, 0.5, 0.25]])
    holed = VIEWS["inpaint"].make(image, uniforms)
    assert holed.shape == (1, 32, 32, 4)
    inside = holed[0, ..., 3] == 255
    assert inside.sum() == 8 * 16  # sides 0.25 * 32 and 0.5 * 32
    assert (holed[0][inside][:, :3] == HOLE_FILL).all() and np.array_equal(holed[0][~inside][:, :3], image[0][~inside])


def test_random_holes_lie_inside_the_image_with_sides_in_range():
    holes = random_holes(np.random.default_rng(0).random((500, 4)), 40, 64)
    top, left, bottom, right = holes.T
    assert (top >= 0).all() and (left >= 0).all() and (bottom <= 40).all() and (right <= 64).all()
    low, high = HOLE_SIDES
    assert ((bottom - top) >= int(low * 40)).all() and ((bottom - top) <= high * 40).all()
    assert ((right - left) >= int(low * 64)).all() and ((right - left) <= high * 64).all()


@pytest.mark.parametrize(("preset", "adversarial"), [("pix2pix-edges-64", 1.0), ("pix2pix-edges-64-l1", 0.0), ("pix2pix-inpaint-64", 1.0)])
def test_a_tiny_pix2pix_trains_validates_translates_and_exports(tiny, tmp_path, preset, adversarial):
    result = train(tiny_pix2pix(preset), runs_root=tmp_path / "runs", show_progress=False)
    assert result.step == 6 and result.best["metric"] == "fid"
    history = json.loads((result.run_dir / "history.json").read_text())
    assert [row["step"] for row in history] == [3, 6]
    assert all(0 <= row["l1"] <= 1 and -1 <= row["ssim"] <= 1 and row["fid"] >= 0 and 0 <= row["class_consistency"] <= 1 for row in history)
    logged = json.loads((result.run_dir / "log.jsonl").read_text().splitlines()[-1])
    assert ("d_loss" in logged) == (adversarial > 0)  # the L1 baseline builds no discriminator
    assert (result.run_dir / "samples" / "step-0000006.png").exists()

    photos = tmp_path / "photos"
    photos.mkdir()
    product_photo(40, 30, seed=1).save(photos / "boot.png")
    product_photo(24, 24, seed=2).save(photos / "cap.jpg", quality=95)
    product_photo(30, 30, seed=3).save(photos / "hat.webp")
    out = invoke("translate", "--model", result.run_dir, "--input", photos, "--out", tmp_path / "out", "--from-photo")
    assert out.exit_code == 0, out.output
    for stem in ("boot", "cap", "hat"):
        with Image.open(tmp_path / "out" / f"{stem}.png") as made:
            assert made.size == (16, 16) and made.mode == "RGB"  # the catalog's size
    assert (tmp_path / "out" / "translations.png").exists()

    if preset == "pix2pix-edges-64":  # a person's drawing, dark lines on white, is taken as it is
        drawing = np.full((48, 48, 3), 255, np.uint8)
        cv2.rectangle(drawing, (10, 8), (38, 40), (0, 0, 0), 2)
        Image.fromarray(drawing).save(tmp_path / "drawn.png")
        drawn = invoke("translate", "--model", result.run_dir, "--input", tmp_path / "drawn.png", "--out", tmp_path / "from-drawing")
        assert drawn.exit_code == 0, drawn.output
        translator = Translator.load(result.run_dir)
        seen = translator.views_of(translator.read(tmp_path / "drawn.png")[None], from_photo=False)
        assert seen.shape == (1, 16, 16, 1) and seen.min() < 128 and seen.max() == 255

    exported = invoke("export", result.run_dir, "--out", tmp_path / "exported")
    assert exported.exit_code == 0, exported.output
    from_run, from_export = Translator.load(result.run_dir), Translator.load(tmp_path / "exported")
    views = from_run.views_of(from_run.read(photos / "boot.png")[None], from_photo=True, seed=4)
    assert np.array_equal(from_run.translate(views), from_export.translate(views))


def test_the_l1_baseline_learns_grey_to_colour(tiny, tmp_path):
    config = tiny_pix2pix("pix2pix-grey-64", loss__adversarial_weight=0.0, train__steps=60, train__lr_g=2e-3, train__lr_schedule="constant",
                          eval__every=30, train__ema_decay=0.9)
    history = train(config, runs_root=tmp_path, show_progress=False).history
    first, last = history[0]["l1"], history[-1]["l1"]
    assert last < 0.6 * first, history


def test_a_drawing_is_taken_as_it_is_and_a_completion_needs_a_photo(tiny, tmp_path):
    run = train(tiny_pix2pix("pix2pix-inpaint-64", train__steps=1), runs_root=tmp_path / "runs", show_progress=False).run_dir
    translator = Translator.load(run)
    photo = tmp_path / "photo.png"
    product_photo(16, 16, seed=5).save(photo)
    views = translator.views_of(translator.read(photo)[None], from_photo=True, hole=(0.25, 0.25, 0.5, 0.5))
    assert (views[0, 4:12, 4:12, 3] == 255).all() and views[0, ..., 3].sum() == 64 * 255
    assert "completes a photo" in cli_error("translate", "--model", run, "--input", photo, "--out", tmp_path / "out")
    assert "inside the image" in cli_error("translate", "--model", run, "--input", photo, "--out", tmp_path / "out", "--from-photo", "--hole", "0.8,0,0.5,0.5")
    assert "LEFT,TOP,WIDTH,HEIGHT" in cli_error("translate", "--model", run, "--input", photo, "--out", tmp_path / "out", "--from-photo", "--hole", "half")


def test_translate_refuses_what_it_cannot_use(tiny, tmp_path):
    run = train(tiny_pix2pix(train__steps=1), runs_root=tmp_path / "runs", show_progress=False).run_dir
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "notes.png").write_text("not a picture")
    assert "not a usable image" in cli_error("translate", "--model", run, "--input", photos, "--out", tmp_path / "out")
    product_photo(16, 16, seed=1).save(photos / "ok.png")
    assert "holds the photos themselves" in cli_error("translate", "--model", run, "--input", photos / "ok.png", "--out", photos)
    assert "not a translator" in cli_error("translate", "--model", "fmnist-cgan", "--input", photos / "ok.png", "--out", tmp_path / "out")
    assert "use `prodgen translate`" in cli_error("generate", "--model", run, "-n", "2", "--out", tmp_path / "gen")
    assert "completion (inpaint) models" in cli_error("translate", "--model", run, "--input", photos / "ok.png", "--out", tmp_path / "o", "--hole", "0,0,0.5,0.5")
    assert "exports as safetensors" in cli_error("export", run, "--out", tmp_path / "e", "--format", "onnx")
    assert not (tmp_path / "out").exists()  # nothing written when an input is bad


@pytest.mark.parametrize(("overrides", "message"), [
    ({"data__conditions": ["category"]}, "steered by its input view"),
    ({"data__pad_to": 32}, "set data.pad_to: null"),
    ({"model__view": "cartoon"}, "unknown view 'cartoon'"),
    ({"eval__metric": "bpd"}, "validated by fid, kid, l1"),
    ({"data__augment": ["color"]}, "DiffAugment is not used by pix2pix"),
    ({"data__mirror": True}, r"pix2pix mirrors its pairs itself \(model.flip\)"),
])
def test_pix2pix_config_mistakes_are_named(overrides, message):
    from prodgen.errors import ProdgenError

    with pytest.raises(ProdgenError, match=message):
        tiny_pix2pix(**overrides)


def test_a_preset_starts_from_its_base_and_changes_only_what_it_says():
    base, baseline = load_config("pix2pix-edges-64").flat(), load_config("pix2pix-edges-64-l1").flat()
    assert {k for k in base if base[k] != baseline[k]} == {"name", "loss.l1_weight", "loss.adversarial_weight"}
    large = load_config("pix2pix-sketch-128").flat()
    assert large["model.view"] == "sketch" and large["data.catalog"] == "clothing-128" and large["model.g_width"] == 64


def test_presets_that_start_from_each_other_in_a_circle_are_refused(monkeypatch):
    from prodgen import config as config_module
    from prodgen.errors import ProdgenError

    monkeypatch.setattr(config_module, "read_preset", lambda name: {"a": "base: b\n", "b": "base: a\n"}[name])
    with pytest.raises(ProdgenError, match="a -> b -> a"):
        config_module.preset_tree("a")


def tiny_cyclegan(**overrides):
    tree = load_config("cyclegan-64").model_dump(mode="json")
    tree["data"].update(catalog="tiny", categories=["boots"])
    tree["model"].update(categories_b=["caps"], g_width=8, d_width=8)
    tree["loss"]["pool_size"] = 6
    tree["train"].update(batch_size=4, steps=4, threads=1, seed=2, lr_schedule="constant")
    tree["eval"].update(every=2, samples=100, sample_every=2, log_every=1, checkpoint_every=2, keep_last=3)
    return with_overrides(tree, **overrides)


def test_a_tiny_cyclegan_trains_both_ways_resumes_exactly_and_translates_both_ways(tiny, tmp_path):
    from prodgen.train import checkpoint as ckpt
    from prodgen.train.loop import saved_config

    straight = train(tiny_cyclegan(), runs_root=tmp_path / "straight", show_progress=False)
    history = json.loads((straight.run_dir / "history.json").read_text())
    assert all(row["fid"] == (row["fid_a_to_b"] + row["fid_b_to_a"]) / 2 for row in history)
    final = ckpt.read_checkpoint(ckpt.latest_checkpoint(straight.run_dir)).tensors
    assert int(final["pool_a.filled"]) == 6  # 4 steps of 4 translations filled the pool of 6, then swaps began
    halfway = train(tiny_cyclegan(train__steps=2), runs_root=tmp_path / "halves", show_progress=False).run_dir
    resumed = train(saved_config(halfway, ["train.steps=4"]), resume=halfway, show_progress=False)
    again = ckpt.read_checkpoint(ckpt.latest_checkpoint(resumed.run_dir)).tensors
    assert final.keys() == again.keys() and all(torch.equal(final[k], again[k]) for k in final if not k.startswith("rng."))

    photo = tmp_path / "boot.png"
    product_photo(20, 20, seed=3).save(photo)
    made = {}
    for direction in ("a-to-b", "b-to-a"):
        result = invoke("translate", "--model", straight.run_dir, "--input", photo, "--out", tmp_path / direction, "--direction", direction)
        assert result.exit_code == 0 and ("boots -> tiny: caps" if direction == "a-to-b" else "caps -> tiny: boots") in " ".join(result.output.split())
        made[direction] = np.asarray(Image.open(tmp_path / direction / "boot.png"))
    assert not np.array_equal(made["a-to-b"], made["b-to-a"])
    assert invoke("export", straight.run_dir, "--out", tmp_path / "exported").exit_code == 0
    exported = Translator.load(tmp_path / "exported", "b-to-a")
    assert np.array_equal(exported.translate(exported.read(photo)[None])[0], made["b-to-a"])
    assert "Unknown direction 'sideways'" in cli_error("translate", "--model", tmp_path / "exported", "--input", photo, "--out", tmp_path / "o", "--direction", "sideways")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model__categories_b": []}, "say both domains' categories"),
    ({"eval__metric": "kid"}, "validated by fid"),
])
def test_cyclegan_config_mistakes_are_named(overrides, message):
    from prodgen.errors import ProdgenError

    with pytest.raises(ProdgenError, match=message):
        tiny_cyclegan(**overrides)


def test_an_unknown_domain_category_is_named(tiny, tmp_path):
    from prodgen.errors import ProdgenError

    with pytest.raises(ProdgenError, match="hats not in catalog 'tiny'; its categories: boots, caps"):
        train(tiny_cyclegan(model__categories_b=["hats"]), runs_root=tmp_path, show_progress=False)
