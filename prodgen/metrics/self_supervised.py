"""Self-supervised pre-training of the feature network: SimCLR (Chen et al. 2020).

A few hundred labelled photos per category are too few for a CNN to learn what makes a dress a
dress rather than which photos were in the train split. SimCLR first teaches the network, on the
unlabelled photos, to map two random augmentations of one photo close together and those of other
photos apart; the supervised stage then starts from those weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prodgen.errors import ProdgenError
from prodgen.metrics.features import FeatureCNN, optimisation_step, to_network_input
from prodgen.progress import make_progress

PRETRAIN_METHODS = ("simclr",)
# Chosen by val accuracy after fine-tuning on `clothing-white` (50 epochs, about 11 minutes on one
# CPU thread): 0.782 at temperature 0.2, 0.774 at 0.5 (one val photo apart).
DEFAULT_TEMPERATURE = 0.2
DEFAULT_PRETRAIN_EPOCHS = 50
PROJECTION_DIM = 64

# Augmentation strengths (SimCLR's recipe, with a milder crop: at 64 px a crop of 8 % of a photo
# often shows no product at all).
CROP_AREA = (0.25, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
JITTER_STRENGTH = 0.4
JITTER_PROBABILITY = 0.8
GREYSCALE_PROBABILITY = 0.2
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _random_resized_crop_and_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image resampled (bilinear, through one affine grid) from a random crop covering
    CROP_AREA of it with aspect CROP_ASPECT, mirrored half the time, back at its full size."""
    n = len(x)
    area = _uniform(n, *CROP_AREA, generator)
    aspect = torch.exp(_uniform(n, math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1]), generator))
    # Crop width and height as fractions of the image (affine_grid's unit is half the image).
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = _uniform(n, -1.0, 1.0, generator) * (1.0 - width)
    centre_y = _uniform(n, -1.0, 1.0, generator) * (1.0 - height)
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = width * mirror
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _greyscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    return torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA_WEIGHTS, dtype=x.dtype)).unsqueeze(1)


def _colour_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and (for colour) saturation each scaled by a factor in
    1 +- JITTER_STRENGTH, on JITTER_PROBABILITY of the images; x in [0, 1]."""
    n = len(x)

    def factors() -> torch.Tensor:
        return _uniform(n, 1 - JITTER_STRENGTH, 1 + JITTER_STRENGTH, generator)[:, None, None, None]

    jittered = x * factors()
    mean = jittered.mean(dim=(1, 2, 3), keepdim=True)
    jittered = (jittered - mean) * factors() + mean
    if x.shape[1] == 3:
        grey = _greyscale(jittered)
        jittered = (jittered - grey) * factors() + grey
    chosen = torch.rand(n, generator=generator) < JITTER_PROBABILITY
    return torch.where(chosen[:, None, None, None], jittered.clamp(0.0, 1.0), x)


def _random_greyscale(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Colour images turned grey with GREYSCALE_PROBABILITY, so colour alone cannot tell two photos apart."""
    if x.shape[1] != 3:
        return x
    chosen = torch.rand(len(x), generator=generator) < GREYSCALE_PROBABILITY
    return torch.where(chosen[:, None, None, None], _greyscale(x).expand_as(x), x)


def augment_view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random SimCLR view of each network input (N, C, H, W) in [-1, 1]: crop and resize,
    mirror, colour jitter, greyscale. Same generator state, same views."""
    unit = (_random_resized_crop_and_flip(x, generator) + 1.0) / 2.0
    unit = _random_greyscale(_colour_jitter(unit, generator), generator)
    return unit * 2.0 - 1.0


def nt_xent_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy: row i of `first` and of `second` are two
    views of one image; each of the 2N views must pick its partner out of the other 2N - 1 by
    cosine similarity / temperature."""
    views = F.normalize(torch.cat([first, second]), dim=1)
    n = len(first)
    similarity = views @ views.T / temperature
    similarity.fill_diagonal_(float("-inf"))  # a view is not its own partner
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(similarity, partners)


class SimCLRNetwork(nn.Module):
    """The feature CNN's body and embedding with a 2-layer projection head; the loss is taken on
    the projection, so the embedding keeps what the augmentations change (colour, position),
    which the metrics need. The head is dropped after pre-training."""

    def __init__(self, encoder: FeatureCNN) -> None:
        super().__init__()
        self.encoder = encoder
        dim = encoder.embed.out_features
        self.projection = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, PROJECTION_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder.forward_features(x)[0])


@dataclass
class PretrainResult:
    epochs: int
    images: int
    temperature: float
    seconds: float
    history: list[dict[str, float]]


def pretrain_simclr(
    model: FeatureCNN,
    images: np.ndarray,
    input_size: tuple[int, int],
    *,
    epochs: int = DEFAULT_PRETRAIN_EPOCHS,
    batch_size: int = 128,
    temperature: float = DEFAULT_TEMPERATURE,
    learning_rate: float = 2e-3,
    seed: int = 0,
    description: str = "SimCLR pre-training",
    show_progress: bool = True,
) -> PretrainResult:
    """Train `model`'s body and embedding in place with SimCLR (Adam, cosine schedule) on
    unlabelled uint8 (N, H, W, C) images."""
    if len(images) < 2:
        raise ProdgenError(f"SimCLR pre-training needs at least 2 images (each batch contrasts photos), got {len(images)}.")
    if epochs < 1 or temperature <= 0:
        raise ProdgenError(f"SimCLR pre-training needs at least 1 epoch and a positive temperature, got {epochs} and {temperature}.")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order_rng = np.random.default_rng(seed)
    network = SimCLRNetwork(model)
    # Whole batches only, the remainder spread over them: a batch of one photo has nothing to contrast it with.
    steps_per_epoch = max(1, len(images) // batch_size)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=1e-6)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    history = []
    started = time.perf_counter()
    network.train()
    with make_progress(enabled=show_progress) as progress:
        task = progress.add_task(description, total=epochs * steps_per_epoch)
        for epoch in range(1, epochs + 1):
            batches = np.array_split(order_rng.permutation(len(images)), steps_per_epoch)
            loss_sum = 0.0
            for batch in batches:
                x = to_network_input(images[np.sort(batch)], input_size)  # sorted: faster memmap reads
                loss = nt_xent_loss(network(augment_view(x, generator)), network(augment_view(x, generator)), temperature)
                loss_sum += optimisation_step(loss, optimizer, schedule)
                progress.advance(task)
            history.append({"epoch": epoch, "contrastive_loss": loss_sum / steps_per_epoch})
            progress.update(task, description=f"{description} contrastive_loss={history[-1]['contrastive_loss']:.4f}")
    model.eval()
    return PretrainResult(epochs, len(images), temperature, round(time.perf_counter() - started, 1), history)
