"""The generator shipped with prodgen: loads by name on a fresh clone and makes the asked category."""

from __future__ import annotations

import json

import numpy as np
import torch

from prodgen.generate.pipeline import SHIPPED_DIR, ProductGenerator, shipped_models
from prodgen.metrics.features import load_feature_network


def test_fmnist_cgan_is_shipped_with_its_model_card():
    assert "fmnist-cgan" in shipped_models()
    card = json.loads((SHIPPED_DIR / "fmnist-cgan" / "model_card.json").read_text())
    assert card["catalog"] == "fashion-mnist" and card["training_minutes"] > 30
    assert card["test_scores"]["metrics"]["fid"] > 0


def test_shipped_card_states_the_counts_and_k_it_was_scored_with():
    from prodgen.generate.card import render_model_card

    directory = SHIPPED_DIR / "fmnist-cgan"
    card = json.loads((directory / "model_card.json").read_text())
    scores = card["test_scores"]
    # from the report of the scoring run (benchmarks/results/report-ship2-00001-fmnist-cgan/report.json)
    assert (scores["reference_split"], scores["num_samples"], scores["num_reference"]) == ("test", 10_000, 10_000)
    assert scores["metric_definitions"]["precision"] == "Kynkäänniemi et al. 2019, k=5"  # scored before k=3 became the default
    text = (directory / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert text == render_model_card("fmnist-cgan", card)
    assert "10,000 generated class-conditional samples against the 10,000 real test images" in text
    assert "| recall (Kynkäänniemi et al. 2019, k=5) | 0.7340 |" in text


def test_shipped_generator_draws_the_asked_category(tmp_path):
    generator = ProductGenerator.load("fmnist-cgan")
    sneakers = generator.sample(64, {"category": "Sneaker"}, seed=7)
    assert sneakers.shape == (64, 28, 28, 1)
    assert np.array_equal(sneakers, generator.sample(64, {"category": "Sneaker"}, seed=7))
    classifier = load_feature_network("fashion-mnist")
    predicted = classifier.extract(sneakers).predictions
    # the domain classifier, not the generator, judges: most samples must read as sneakers
    assert (np.asarray(classifier.categories)[predicted] == "Sneaker").mean() > 0.7


def test_fmnist_vaegan_is_shipped_with_its_encoder_and_reconstruction_scores():
    assert "fmnist-vaegan" in shipped_models()
    directory = SHIPPED_DIR / "fmnist-vaegan"
    assert {"generator.safetensors", "generator.json", "encoder.safetensors", "encoder.json", "model_card.json"} <= {p.name for p in directory.iterdir()}
    card = json.loads((directory / "model_card.json").read_text())
    assert card["catalog"] == "fashion-mnist" and card["config"]["family"] == "vaegan"
    assert card["test_scores"]["num_samples"] == 10_000 and card["reconstruction_scores"]["split"] == "test"
    assert "Reconstruction" in (directory / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_shipped_vaegan_reconstructs_real_test_products_as_what_they_are(fashion_mnist):
    """The decoder samples the asked category, and the encoder's reconstructions of real test
    products keep their structure (SSIM) and their category (read by the domain classifier)."""
    from prodgen.data.catalog import read_rows
    from prodgen.data.conditions import catalog_conditions
    from prodgen.generate.autoencoder import ProductAutoencoder
    from prodgen.metrics.reconstruction import ssim

    autoencoder = ProductAutoencoder.load("fmnist-vaegan")
    bags = autoencoder.generator.sample(64, {"category": "Bag"}, seed=3)
    assert (np.asarray(autoencoder.photos.classify(bags)) == autoencoder.conditions.values[0].index("Bag")).mean() > 0.7

    rows = fashion_mnist.split_indices("test")[:200]
    images = read_rows(fashion_mnist.images, rows)
    _, codes = catalog_conditions(fashion_mnist, ["category"])
    rebuilt = autoencoder.reconstruct(images, torch.from_numpy(codes[rows]))
    assert rebuilt.shape == images.shape
    assert ssim(images, rebuilt).mean() > 0.7
    assert (autoencoder.photos.classify(rebuilt) == codes[rows, 0]).mean() > 0.8
