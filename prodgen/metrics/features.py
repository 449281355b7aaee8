"""The domain feature network: a small CNN classifier whose penultimate embedding is the
feature space of every metric, in place of Inception (whose weights cannot be downloaded here).

One network per catalog. A user-trained one lives in `$PRODGEN_HOME/features/NAME/`; the
package ships one for `fashion-mnist` in `prodgen/assets/features/fashion-mnist/`, so
evaluation works on a fresh clone. Each is `model.safetensors` plus `config.json`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from prodgen.data.catalog import Catalog, read_rows
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.paths import package_dir, prodgen_home
from prodgen.progress import make_progress

ARCHITECTURE = "prodgen-feature-cnn-v1"
EMBEDDING_DIM = 128
# Larger catalogs are shrunk to this side before the CNN: the metrics need category-level
# features, not fine texture, and 2 CPU cores cannot train on 256 px photos in minutes.
MAX_INPUT_SIDE = 64
# Shipped feature networks (package data, found through importlib.resources): one folder per catalog.
SHIPPED_DIR = package_dir("assets", "features")
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def features_home() -> Path:
    return prodgen_home() / "features"


def cached_network_dir(catalog_name: str) -> Path:
    return features_home() / catalog_name


def shipped_network_dir(catalog_name: str) -> Path:
    return SHIPPED_DIR / catalog_name


class FeatureCNN(nn.Module):
    """Three conv stages (sized for 2 CPU cores), adaptive pooling to 4x4 (so any H x W works), a 128-d embedding, a linear head."""

    def __init__(self, in_channels: int, num_classes: int, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *stage(in_channels, 24),
            nn.MaxPool2d(2),
            *stage(24, 48),
            nn.MaxPool2d(2),
            *stage(48, 96),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.embed = nn.Linear(96 * 16, embedding_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(embedding_dim, num_classes))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, logits). The embedding is taken before the ReLU so its distribution is
        closer to the Gaussian that FID assumes and no dimension is dead."""
        embedding = self.embed(self.body(x))
        return embedding, self.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def input_size_for(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, MAX_INPUT_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_network_input(images: np.ndarray, input_size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, h, w) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if tuple(x.shape[2:]) != tuple(input_size):
        x = F.interpolate(x, size=input_size, mode="area")
    return x


@dataclass
class FeatureBatch:
    """Embeddings and predicted categories of a set of images, in input order."""

    features: np.ndarray  # (N, D) float32
    predictions: np.ndarray  # (N,) int64


class FeatureNetwork:
    """A trained FeatureCNN plus the facts needed to use it honestly (categories, input size, accuracy)."""

    def __init__(self, model: FeatureCNN, config: dict[str, Any], fingerprint: str) -> None:
        self.model = model.eval()
        self.config = config
        self.fingerprint = fingerprint

    @property
    def categories(self) -> list[str]:
        return list(self.config["categories"])

    @property
    def in_channels(self) -> int:
        return int(self.config["in_channels"])

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.config["input_size"])  # type: ignore[return-value]

    @property
    def feature_scale(self) -> float:
        return float(self.config["feature_scale"])

    def extract(self, images: np.ndarray, batch_size: int | None = None, description: str | None = None) -> FeatureBatch:
        batch = forward_in_batches(self.model, images, self.input_size, batch_size, description)
        return FeatureBatch(batch.features * np.float32(self.feature_scale), batch.predictions)

    def check_compatible(self, categories: list[str], channels: int, catalog_name: str) -> None:
        if self.categories != list(categories) or self.in_channels != channels:
            raise ProdgenError(
                f"The feature network for {catalog_name!r} was trained on {self.in_channels}-channel images of "
                f"{self.categories}, but the catalog has {channels} channels and categories {list(categories)}. "
                f"Retrain it with: prodgen eval fit-features --data {catalog_name}"
            )


def _random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half the images: a mirrored product is still the same category."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


# Pixels of network input per forward pass: 1,000 images at 32x32 (Fashion-MNIST), 250 at 64x64.
# A fixed image count would make the first layers' activations of 64x64 colour images about 0.7 GB.
PIXELS_PER_BATCH = 1000 * 32 * 32


@torch.no_grad()
def forward_in_batches(
    model: FeatureCNN, images: np.ndarray, input_size: tuple[int, int], batch_size: int | None = None, description: str | None = None
) -> FeatureBatch:
    model.eval()
    batch_size = batch_size or max(1, PIXELS_PER_BATCH // (input_size[0] * input_size[1]))
    features, predictions = [np.zeros((0, model.embed.out_features), np.float32)], [np.zeros(0, np.int64)]
    with make_progress(transient=True, enabled=description is not None) as progress:
        task = progress.add_task(description or "", total=len(images))
        for start in range(0, len(images), batch_size):
            embedding, logits = model.forward_features(to_network_input(images[start : start + batch_size], input_size))
            features.append(embedding.numpy())
            predictions.append(logits.argmax(1).numpy())
            progress.advance(task, len(embedding))
    return FeatureBatch(np.concatenate(features), np.concatenate(predictions).astype(np.int64))


def unit_rms_scale(features: np.ndarray) -> float:
    """The factor that gives features a root-mean-square of 1. KID's cubic kernel (x.y/d + 1)^3
    was designed for Inception features of about that size; raw embeddings are several times
    larger, which lets the cubic term and its noise dominate."""
    return float(1.0 / np.sqrt(np.mean(np.square(features, dtype=np.float64))))


def classifier_accuracy(model: FeatureCNN, images: np.ndarray, labels: np.ndarray, input_size: tuple[int, int]) -> float:
    if len(images) == 0:
        raise ProdgenError("Cannot measure accuracy on an empty image set.")
    return float((forward_in_batches(model, images, input_size).predictions == labels).mean())


def optimisation_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler) -> float:
    """Backward, one optimiser and schedule step; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return loss.item()


@dataclass
class TrainedClassifier:
    model: FeatureCNN
    input_size: tuple[int, int]
    epochs_run: int
    best_val_accuracy: float | None
    history: list[dict[str, float]]


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    epochs: int = 10,
    patience: int = 3,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    augment: bool = True,
    seed: int = 0,
    description: str = "training classifier",
    show_progress: bool = True,
    model: FeatureCNN | None = None,
) -> TrainedClassifier:
    """Train a FeatureCNN (a fresh one, or `model`, e.g. pre-trained, fine-tuned whole and in
    place) with Adam and a cosine schedule. With a validation set it keeps the weights of the best
    validation epoch and stops after `patience` epochs without gain; without one (CAS, where
    real data must not steer training) it runs all epochs."""
    if len(images) == 0:
        raise ProdgenError("Cannot train a classifier on zero images.")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order_rng = np.random.default_rng(seed)
    input_size = input_size_for(images.shape[1], images.shape[2])
    if model is None:
        model = FeatureCNN(images.shape[3], num_classes)
    steps_per_epoch = -(-len(images) // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    labels_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    best_state, best_accuracy, stale_epochs, history = None, -1.0, 0, []
    epoch = 0
    with make_progress(enabled=show_progress) as progress:
        task = progress.add_task(description, total=epochs * steps_per_epoch)
        for epoch in range(1, epochs + 1):
            model.train()
            order = order_rng.permutation(len(images))
            loss_sum = 0.0
            for step in range(steps_per_epoch):
                batch = np.sort(order[step * batch_size : (step + 1) * batch_size])  # sorted: faster memmap reads
                x = to_network_input(images[batch], input_size)
                if augment:
                    x = _random_flip(x, generator)
                loss_sum += optimisation_step(F.cross_entropy(model(x), labels_tensor[batch]), optimizer, schedule)
                progress.advance(task)
            record = {"epoch": epoch, "train_loss": loss_sum / steps_per_epoch}
            if val_images is not None and val_labels is not None:
                record["val_accuracy"] = classifier_accuracy(model, val_images, val_labels, input_size)
                if record["val_accuracy"] > best_accuracy:
                    best_accuracy, stale_epochs = record["val_accuracy"], 0
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    stale_epochs += 1
            history.append(record)
            progress.update(task, description=f"{description} " + " ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "epoch"))
            if stale_epochs >= patience:
                progress.update(task, total=progress.tasks[task].completed)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainedClassifier(model.eval(), input_size, epoch, best_accuracy if best_state is not None else None, history)


def save_feature_network(model: FeatureCNN, config: dict[str, Any], directory: Path) -> FeatureNetwork:
    """Write weights then config, each atomically; loading needs both, and the config names the architecture."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json_atomic(directory / CONFIG_FILE, config)
    return load_feature_network_from(directory)


def load_feature_network_from(directory: Path) -> FeatureNetwork:
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except (OSError, json.JSONDecodeError) as exc:
        raise ProdgenError(f"Cannot read the feature network in {directory}: {exc}") from exc
    if config.get("architecture") != ARCHITECTURE:
        raise ProdgenError(f"{directory / CONFIG_FILE} describes architecture {config.get('architecture')!r}; this prodgen reads {ARCHITECTURE!r}.")
    model = FeatureCNN(config["in_channels"], len(config["categories"]), config["embedding_dim"])
    try:
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    except (RuntimeError, OSError) as exc:
        raise ProdgenError(f"{directory / WEIGHTS_FILE} does not match its config: {exc}") from exc
    # The scale is part of the feature space, so cached features must change with it too.
    fingerprint = hashlib.sha256(weights + repr(float(config["feature_scale"])).encode()).hexdigest()
    return FeatureNetwork(model, config, fingerprint)


def load_feature_network(catalog_name: str) -> FeatureNetwork:
    """The user's own network for this catalog if trained, else the one shipped with prodgen."""
    for directory in (cached_network_dir(catalog_name), shipped_network_dir(catalog_name)):
        if (directory / CONFIG_FILE).exists():
            return load_feature_network_from(directory)
    raise ProdgenError(
        f"No feature network for catalog {catalog_name!r} (looked in {cached_network_dir(catalog_name)} and "
        f"{shipped_network_dir(catalog_name)}). Train one with: prodgen eval fit-features --data {catalog_name}"
    )


def fit_feature_network(
    catalog: Catalog,
    *,
    directory: Path | None = None,
    epochs: int = 10,
    patience: int = 3,
    batch_size: int = 128,
    seed: int = 0,
    command: str | None = None,
    show_progress: bool = True,
    max_images: int | None = None,
    pretrain: str | None = None,
    pretrain_epochs: int | None = None,
    temperature: float | None = None,
    extra_catalogs: Sequence[Catalog] = (),
) -> FeatureNetwork:
    """Train on the catalog's train split with early stopping on val, measure test accuracy, save.
    `max_images` caps each split at a random sample of that many images, so a catalog too large
    for memory still gets a feature network.

    With `pretrain="simclr"` the network first learns from the unlabelled train and val photos of
    the catalog and of `extra_catalogs` (see `self_supervised`); the test split stays unseen."""
    train_images, train_labels = catalog.subset("train", max_images, seed)
    val_images, val_labels = catalog.subset("val", max_images, seed)
    test_images, test_labels = catalog.subset("test", max_images, seed)
    if len(val_images) == 0 or len(test_images) == 0:
        raise ProdgenError(f"Catalog {catalog.name!r} needs non-empty val and test splits to train and measure a feature network.")
    started = time.perf_counter()
    model, pretraining = None, None
    if pretrain is not None:
        model, pretraining = _pretrained_network(
            catalog, extra_catalogs, pretrain, pretrain_epochs, temperature, batch_size, seed, max_images, show_progress
        )
    elif extra_catalogs:
        raise ProdgenError("Extra catalogs are only used for pre-training: add --pretrain simclr.")
    trained = train_classifier(
        train_images,
        train_labels,
        catalog.num_classes,
        val_images=val_images,
        val_labels=val_labels,
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        description=f"feature network for {catalog.name}",
        show_progress=show_progress,
        model=model,
    )
    train_features = forward_in_batches(trained.model, train_images, trained.input_size).features
    config = {
        "architecture": ARCHITECTURE,
        "catalog": catalog.name,
        "catalog_images_sha256": catalog.digest,
        "categories": list(catalog.categories),
        "in_channels": catalog.channels,
        "image_size": [catalog.height, catalog.width],
        "input_size": list(trained.input_size),
        "input_range": [-1.0, 1.0],
        "embedding_dim": EMBEDDING_DIM,
        "feature_scale": round(unit_rms_scale(train_features), 6),
        "test_accuracy": round(classifier_accuracy(trained.model, test_images, test_labels, trained.input_size), 5),
        "val_accuracy": round(trained.best_val_accuracy or 0.0, 5),
        "epochs_run": trained.epochs_run,
        "seed": seed,
        "training_seconds": round(time.perf_counter() - started, 1),
        "training_command": command or f"prodgen eval fit-features --data {catalog.name} --epochs {epochs} --seed {seed}",
        "torch_threads": torch.get_num_threads(),
        "history": trained.history,
    }
    if pretraining is not None:
        config["pretraining"] = pretraining
    return save_feature_network(trained.model, config, directory or cached_network_dir(catalog.name))


def _pretrained_network(
    catalog: Catalog,
    extra_catalogs: Sequence[Catalog],
    method: str,
    epochs: int | None,
    temperature: float | None,
    batch_size: int,
    seed: int,
    max_images: int | None,
    show_progress: bool,
) -> tuple[FeatureCNN, dict[str, Any]]:
    """A FeatureCNN pre-trained on the train and val photos of `catalog` and `extra_catalogs`,
    and the facts of its pre-training for the config."""
    # Imported here: self_supervised builds on this module's network and input pipeline.
    from prodgen.metrics import self_supervised

    if method not in self_supervised.PRETRAIN_METHODS:
        raise ProdgenError(f"Unknown pre-training method {method!r}; choose one of {', '.join(self_supervised.PRETRAIN_METHODS)}.")
    for extra in extra_catalogs:
        if extra.name == catalog.name:
            raise ProdgenError(f"--extra-data {extra.name} is the catalog being fitted; its photos are pre-trained on already.")
        if (extra.height, extra.width, extra.channels) != (catalog.height, catalog.width, catalog.channels):
            raise ProdgenError(
                f"Catalog {extra.name!r} holds {extra.height}x{extra.width} images with {extra.channels} channels, but {catalog.name!r} "
                f"holds {catalog.height}x{catalog.width} with {catalog.channels}: pre-training needs the same size and channels."
            )
    # Labels stay unused and the test split unseen, so the test accuracy remains an honest measurement.
    photos = [catalog.subset(split, max_images, seed)[0] for split in ("train", "val")]
    test_photos = set().union(*(_source_photo_keys(catalog.entries[row]) for row in catalog.split_indices("test")))
    excluded = 0
    for extra in extra_catalogs:
        rows = np.sort(np.concatenate([extra.split_indices("train"), extra.split_indices("val")]))
        # Another catalog may be prepared from the same photos (a white-background version) with
        # other splits: its copies of this catalog's test photos must stay out too.
        unseen = np.array([not _source_photo_keys(extra.entries[row]) & test_photos for row in rows], dtype=bool)
        excluded += int((~unseen).sum())
        rows = rows[unseen]
        if max_images is not None and len(rows) > 2 * max_images:
            rows = np.sort(np.random.default_rng(seed).choice(rows, size=2 * max_images, replace=False))
        photos.append(read_rows(extra.images, rows))
    images = np.concatenate(photos)
    model = FeatureCNN(catalog.channels, catalog.num_classes)
    result = self_supervised.pretrain_simclr(
        model,
        images,
        input_size_for(catalog.height, catalog.width),
        epochs=self_supervised.DEFAULT_PRETRAIN_EPOCHS if epochs is None else epochs,
        batch_size=batch_size,
        temperature=self_supervised.DEFAULT_TEMPERATURE if temperature is None else temperature,
        seed=seed,
        description=f"{method} pre-training on {len(images):,} photos",
        show_progress=show_progress,
    )
    facts = {
        "method": method,
        "epochs": result.epochs,
        "images": result.images,
        "catalogs": [catalog.name, *(extra.name for extra in extra_catalogs)],
        "excluded_test_photos": excluded,
        "temperature": result.temperature,
        "seconds": result.seconds,
        "history": result.history,
    }
    return model, facts


def _source_photo_keys(entry: dict[str, Any]) -> set[str]:
    """A catalog entry's source-photo hash and product group: what identifies a photo (or its
    product) across catalogs prepared from the same folder."""
    return {str(entry[key]) for key in ("sha256", "group") if entry.get(key)}
