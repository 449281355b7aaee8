"""Feature network, evaluator, report and CLI end to end on a tiny synthetic catalog."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prodgen.data.catalog import Catalog, save_catalog
from prodgen.errors import ProdgenError
from prodgen.metrics.cli import eval_app
from prodgen.metrics.evaluate import REPORT_METRICS, Evaluator, catalog_labels, evaluate
from prodgen.metrics.features import (
    cached_network_dir,
    fit_feature_network,
    load_feature_network,
    load_feature_network_from,
    shipped_network_dir,
)
from prodgen.metrics.registry import EvalOptions
from prodgen.metrics.report import write_report

torch.set_num_threads(2)
SIZE = 16
CATEGORIES = ["bar", "column", "square"]
SPLIT_COUNTS = {"train": 240, "val": 90, "test": 90}
FAST_OPTIONS = EvalOptions(kid_subsets=10, kid_subset_size=50, cas_epochs=2)


def _draw(category: int, rng: np.random.Generator) -> np.ndarray:
    """A dark shape on white with jitter and noise, so no two images are identical."""
    image = np.full((SIZE, SIZE), 235.0)
    y, x = rng.integers(2, 6, size=2)
    extent = rng.integers(7, 10)
    if category == 0:
        image[y + 3 : y + 6, x : x + extent] = 40
    elif category == 1:
        image[y : y + extent, x + 3 : x + 6] = 40
    else:
        image[y : y + 7, x : x + 7] = 90
    image += rng.normal(0, 12, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)[..., None]


def _tiny_catalog(seed: int = 0) -> Catalog:
    rng = np.random.default_rng(seed)
    images, entries = [], []
    for split, count in SPLIT_COUNTS.items():
        for i in range(count):
            images.append(_draw(i % 3, rng))
            entries.append({"category": CATEGORIES[i % 3], "split": split})
    return Catalog(name="tiny", images=np.stack(images), categories=CATEGORIES, entries=entries)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prodgen-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRODGEN_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def catalog(home: Path) -> Catalog:
    catalog = _tiny_catalog()
    save_catalog(catalog)
    return catalog


@pytest.fixture(scope="module")
def network(catalog: Catalog):
    return fit_feature_network(catalog, epochs=3, patience=2, batch_size=32, show_progress=False)


def test_feature_network_learns_the_tiny_catalog_and_records_it(network, catalog: Catalog):
    config = network.config
    assert config["test_accuracy"] >= 0.9
    assert config["categories"] == CATEGORIES and config["in_channels"] == 1 and config["input_size"] == [SIZE, SIZE]
    assert (cached_network_dir("tiny") / "model.safetensors").stat().st_size < 2_000_000


def test_feature_network_round_trips_through_safetensors(network, catalog: Catalog):
    images = catalog.subset("test")[0]
    reloaded = load_feature_network("tiny")
    assert reloaded.fingerprint == network.fingerprint
    first, second = network.extract(images), reloaded.extract(images)
    assert first.features.shape == (90, 128)
    assert np.array_equal(first.features, second.features) and np.array_equal(first.predictions, second.predictions)


def test_feature_network_takes_rgb_and_other_sizes(home: Path):
    rng = np.random.default_rng(1)
    images = np.stack([np.repeat(_draw(i % 3, rng), 3, axis=-1) for i in range(60)])
    images = np.pad(images, ((0, 0), (2, 3), (0, 5), (0, 0)), constant_values=255)  # 21 x 21 RGB
    entries = [{"category": CATEGORIES[i % 3], "split": ("train", "val", "test")[i % 60 // 20]} for i in range(60)]
    rgb = Catalog(name="tiny-rgb", images=images, categories=CATEGORIES, entries=entries)
    net = fit_feature_network(rgb, directory=home / "rgb-net", epochs=1, show_progress=False)
    assert net.extract(images[:5]).features.shape == (5, 128)
    assert load_feature_network_from(home / "rgb-net").config["in_channels"] == 3


def test_missing_feature_network_says_how_to_train_one(home: Path):
    with pytest.raises(ProdgenError, match="prodgen eval fit-features --data no-such"):
        load_feature_network("no-such")


def test_shipped_fashion_mnist_network_meets_the_accuracy_bar():
    directory = shipped_network_dir("fashion-mnist")
    net = load_feature_network_from(directory)
    assert net.config["test_accuracy"] >= 0.92
    assert len(net.categories) == 10 and net.input_size == (28, 28)
    assert (directory / "model.safetensors").stat().st_size < 2_000_000


def test_real_images_score_like_the_floor_and_a_collapsed_generator_does_not(network, catalog: Catalog):
    evaluator = Evaluator(catalog, "val", network, FAST_OPTIONS, seed=0)
    test_images, test_labels = catalog.subset("test")
    real = evaluator.evaluate(test_images, test_labels, metrics=("fid", "pr", "dc", "class_consistency", "histogram"))
    collapsed = evaluator.evaluate(np.repeat(test_images[:1], 90, axis=0), np.zeros(90, np.int64), metrics=("fid", "pr", "dc"))
    assert real["metrics"]["class_consistency"] >= 0.9 and real["metrics"]["modes_covered"] == 1.0
    assert real["metrics"]["recall"] > 0.5 and real["floors"]["recall"] > 0.5
    assert collapsed["metrics"]["recall"] < 0.05 and collapsed["metrics"]["coverage"] < 0.05
    assert collapsed["metrics"]["fid"] > 5 * real["metrics"]["fid"]
    assert set(real["floors"]) == set(real["metrics"])


def test_copies_of_train_images_are_flagged_as_memorised(network, catalog: Catalog):
    evaluator = Evaluator(catalog, "test", network, FAST_OPTIONS, seed=0)
    copies = evaluator.evaluate(catalog.subset("train")[0][:60], metrics=("memorisation",))
    fresh = evaluator.evaluate(catalog.subset("val")[0], metrics=("memorisation",))
    assert copies["metrics"]["memorisation"] == 1.0
    assert fresh["metrics"]["memorisation"] < 0.1
    assert copies["floors"]["memorisation"] < 0.1  # held-out real images
    pairs = copies["details"]["memorisation"]["closest_pairs"]
    assert pairs[0]["distance"] < 1e-2 and pairs[0]["train"] == pairs[0]["sample"]


def test_fixed_seed_gives_identical_numbers(network, catalog: Catalog):
    images, labels = catalog.subset("test")
    runs = [
        evaluate(images, labels, catalog, "val", ("fid", "kid", "pr", "dc", "cas"), network, seed=seed, options=FAST_OPTIONS)
        for seed in (7, 7, 8)
    ]
    assert runs[0]["metrics"] == runs[1]["metrics"] and runs[0]["floors"] == runs[1]["floors"]
    assert runs[0]["metrics"]["kid_mean"] != runs[2]["metrics"]["kid_mean"]


def test_metrics_needing_labels_are_skipped_with_a_reason(network, catalog: Catalog):
    result = evaluate(catalog.subset("test")[0], None, catalog, "val", ("fid", "class_consistency"), network, options=FAST_OPTIONS)
    assert "fid" in result["metrics"] and "class_consistency" not in result["metrics"]
    assert "labelled" in result["skipped"]["class_consistency"]


def test_labels_follow_the_train_shares_and_a_balanced_catalog_gets_the_old_balanced_order():
    labels = catalog_labels(1000, [118, 55, 118, 120, 120, 120, 120, 119, 45, 120], seed=0)  # clothing-small's train split
    # quotas 111.85, 52.13, 111.85, 113.74 (x4), 112.80, 42.65, 113.74: the 7 left over go to the largest remainders, ties to the first
    assert np.bincount(labels).tolist() == [112, 52, 112, 114, 114, 114, 114, 113, 42, 113]
    assert catalog_labels(1000, [118, 55, 118, 120, 120, 120, 120, 119, 45, 120], seed=1).tolist() != labels.tolist()
    for count in (1000, 1005, 7):  # what equal shares were before: categories in turn, shuffled by the seed
        balanced = np.random.default_rng(4).permutation(np.arange(count) % 10)
        assert catalog_labels(count, [5400] * 10, seed=4).tolist() == balanced.tolist()
    assert np.bincount(catalog_labels(5, [0, 3, 1], seed=0), minlength=3).tolist() == [0, 4, 1]
    with pytest.raises(ProdgenError, match="Cannot draw"):
        catalog_labels(5, [0, 0], seed=0)


def test_sampler_protocol_gets_labels_in_train_shares(network, catalog: Catalog):
    test_images, test_labels = catalog.subset("test")
    asked = []

    def sample_fn(n: int, labels: np.ndarray | None, seed: int) -> np.ndarray:
        asked.append((n, labels, seed))
        return np.stack([test_images[test_labels == label][i % 30] for i, label in enumerate(labels)])

    result = Evaluator(catalog, "val", network, FAST_OPTIONS, seed=3).evaluate_sampler(sample_fn, 60, metrics=("class_consistency",))
    n, labels, seed = asked[0]
    assert (n, seed) == (60, 3) and np.bincount(labels).tolist() == [20, 20, 20]
    assert result["metrics"]["class_consistency"] >= 0.9


def test_train_split_is_not_a_reference(network, catalog: Catalog):
    with pytest.raises(ProdgenError, match="Reference split"):
        Evaluator(catalog, "train", network)


def test_cli_writes_json_and_html_reports(network, catalog: Catalog, home: Path):
    images, labels = catalog.subset("test")
    np.savez(home / "samples.npz", images=images, labels=labels)
    out = home / "report"
    args = ["run", "--samples", str(home / "samples.npz"), "--data", "tiny", "--out", str(out), "--metrics", ",".join(REPORT_METRICS)]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["reference_split"] == "test" and report["num_samples"] == 90 and report["num_reference"] == 90
    assert report["feature_network"]["trained_on_this_catalog"] is True
    for key in ("fid", "kid_mean", "precision", "coverage", "class_consistency", "memorisation", "cas"):
        assert key in report["metrics"] and key in report["floors"]
    assert len(report["details"]["per_category"]["rows"]) == 3
    page = (out / "report.html").read_text()
    assert "Real vs real" in page and "nearest_pairs.png" in page and "grids/00-bar.png" in page
    assert (out / "nearest_pairs.png").exists() and len(list((out / "grids").glob("*.png"))) == 3


def test_report_names_the_paper_and_k_of_each_knn_metric_and_floors_use_the_same_k(network, catalog: Catalog, home: Path):
    evaluator = Evaluator(catalog, "test", network, FAST_OPTIONS, seed=0)
    images = catalog.subset("val")[0][:60]
    result = evaluator.evaluate(images, metrics=("fid", "pr", "dc"))
    write_report(result, images, np.zeros(60, np.int64), catalog.subset("train")[0], home / "knn-report")
    report = json.loads((home / "knn-report" / "report.json").read_text())
    assert report["metric_definitions"] == {
        "precision": "Kynkäänniemi et al. 2019, k=3",
        "recall": "Kynkäänniemi et al. 2019, k=3",
        "density": "Naeem et al. 2020, k=5",
        "coverage": "Naeem et al. 2020, k=5",
    }
    assert report["options"]["precision_recall_k"] == 3 and report["options"]["density_coverage_k"] == 5
    # the real-vs-real floor beside each metric was computed with that metric's k
    assert report["details"]["pr"]["k"] == report["floor_details"]["pr"]["k"] == 3
    assert report["details"]["dc"]["k"] == report["floor_details"]["dc"]["k"] == 5
    assert report["num_samples"] == 60 and report["num_reference"] == 90
    page = (home / "knn-report" / "report.html").read_text(encoding="utf-8")
    assert "Precision (Kynkäänniemi et al. 2019, k=3)" in page and "Recall (Kynkäänniemi et al. 2019, k=3)" in page
    assert "Density (Naeem et al. 2020, k=5)" in page and "Coverage (Naeem et al. 2020, k=5)" in page
    assert "60 unconditional samples against the real <b>test</b> split (90 images)" in page

    other = Evaluator(catalog, "test", network, EvalOptions(precision_recall_k=5, density_coverage_k=3, kid_subsets=10, kid_subset_size=50), seed=0)
    changed = other.evaluate(images, metrics=("pr", "dc"))
    assert changed["metric_definitions"]["recall"] == "Kynkäänniemi et al. 2019, k=5"
    assert changed["metric_definitions"]["coverage"] == "Naeem et al. 2020, k=3"
    assert changed["floor_details"]["pr"]["k"] == 5 and changed["floor_details"]["dc"]["k"] == 3


def test_cli_rejects_bad_samples_and_missing_inception_weights(network, catalog: Catalog, home: Path):
    np.save(home / "bad.npy", np.zeros((4, 5, 5, 1), np.uint8))
    result = CliRunner().invoke(eval_app, ["run", "--samples", str(home / "bad.npy"), "--data", "tiny"])
    assert isinstance(result.exception, ProdgenError) and "(N, 16, 16, 1)" in str(result.exception)
    missing = home / "missing-inception.pth"
    result = CliRunner().invoke(eval_app, ["run", "--samples", str(home / "bad.npy"), "--data", "tiny", "--inception-weights", str(missing)])
    assert isinstance(result.exception, ProdgenError) and str(missing) in str(result.exception)


def test_cli_fit_features_trains_and_reports_accuracy(catalog: Catalog, home: Path):
    result = CliRunner().invoke(eval_app, ["fit-features", "--data", "tiny", "--epochs", "1", "--out", str(home / "cli-net")])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    assert "--epochs 1" in json.loads((home / "cli-net" / "config.json").read_text())["training_command"]


def test_cli_lists_metrics():
    result = CliRunner().invoke(eval_app, ["metrics"])
    assert result.exit_code == 0 and "memorisation" in result.output and "cas" in result.output
