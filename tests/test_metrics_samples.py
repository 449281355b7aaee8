"""Sample files and arrays: good ones load, bad ones give a clear ProdgenError."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodgen.errors import ProdgenError
from prodgen.metrics.inception import check_inception_weights, inception_features
from prodgen.metrics.samples import load_samples, validate_samples

SHAPE = (8, 8, 1)
CATEGORIES = ["bag", "shoe"]


def _validate(images, labels=None):
    return validate_samples(images, labels, SHAPE, num_classes=2)


def test_valid_samples_pass_unchanged():
    images = np.full((3, *SHAPE), 255, np.uint8)
    out, labels = _validate(images, np.array([0, 1, 1]))
    assert out is images and labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((0, *SHAPE), np.uint8), None, "no images"),
        (np.full((2, *SHAPE), np.nan, np.float32), None, "NaN"),
        (np.zeros((2, *SHAPE), np.float32), None, "must be uint8"),
        (np.zeros((2, 8, 8), np.uint8), None, r"needs \(N, 8, 8, 1\)"),
        (np.zeros((2, 8, 8, 3), np.uint8), None, r"shape \(2, 8, 8, 3\)"),
        (np.zeros((2, *SHAPE), np.uint8), np.array([0]), "labels must be 2 integers"),
        (np.zeros((2, *SHAPE), np.uint8), np.array([0, 2]), r"labels must lie in 0\.\.1"),
    ],
)
def test_bad_samples_are_rejected_with_a_reason(images, labels, message):
    with pytest.raises(ProdgenError, match=message):
        _validate(images, labels)


def test_npz_with_images_and_labels_loads(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 256, (4, *SHAPE), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", images=images, labels=np.array([0, 1, 0, 1]))
    loaded, labels = load_samples(tmp_path / "s.npz", CATEGORIES, 1)
    assert np.array_equal(loaded, images) and labels.tolist() == [0, 1, 0, 1]


def test_npy_of_objects_is_refused_without_unpickling(tmp_path: Path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProdgenError, match="not a plain numeric .npy array"):
        load_samples(tmp_path / "evil.npy", CATEGORIES, 1)


@pytest.mark.parametrize(("name", "content", "message"), [("broken.npz", b"not a zip", "not a plain numeric .npz"), ("x.txt", b"", "must be a .npy")])
def test_unreadable_or_unknown_files_are_refused(tmp_path: Path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ProdgenError, match=message):
        load_samples(tmp_path / name, CATEGORIES, 1)


def test_missing_path_names_it(tmp_path: Path):
    with pytest.raises(ProdgenError, match="Samples not found"):
        load_samples(tmp_path / "nope.npy", CATEGORIES, 1)


def _png(path: Path, value: int, size: int = 8, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), value if mode == "L" else (value, value, value, 0)).save(path)


def test_png_folder_with_category_subfolders_gives_labels(tmp_path: Path):
    _png(tmp_path / "shoe" / "a.png", 10)
    _png(tmp_path / "bag" / "b.png", 20)
    _png(tmp_path / "bag" / "c.png", 0, mode="RGBA")  # fully transparent: becomes white
    images, labels = load_samples(tmp_path, CATEGORIES, 1)
    assert images.shape == (3, 8, 8, 1)
    assert labels.tolist() == [0, 0, 1]
    assert images[:, 0, 0, 0].tolist() == [20, 255, 10]


def test_png_folder_errors(tmp_path: Path):
    _png(tmp_path / "hats" / "a.png", 10)
    with pytest.raises(ProdgenError, match="not categories"):
        load_samples(tmp_path, CATEGORIES, 1)
    flat = tmp_path / "flat"
    _png(flat / "a.png", 1)
    _png(flat / "b.png", 1, size=9)
    with pytest.raises(ProdgenError, match="differ in size"):
        load_samples(flat, CATEGORIES, 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProdgenError, match="no PNG files"):
        load_samples(tmp_path / "empty", CATEGORIES, 1)


def test_inception_fid_without_weights_names_the_missing_file(tmp_path: Path):
    missing = tmp_path / "inception.pth"
    with pytest.raises(ProdgenError, match=f"not found: {missing}"):
        inception_features(np.zeros((1, 8, 8, 1), np.uint8), missing)
    with pytest.raises(ProdgenError, match="needs local Inception-v3 weights"):
        check_inception_weights(None)


def test_inception_fid_without_torch_fidelity_says_how_to_install(tmp_path: Path):
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(ProdgenError, match="pip install torch-fidelity"):
            inception_features(np.zeros((1, 8, 8, 1), np.uint8), weights)
    else:
        with pytest.raises(ProdgenError, match="Cannot load Inception weights"):
            inception_features(np.zeros((1, 8, 8, 1), np.uint8), weights)
