"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees,
real and fake alike, so a small catalog does not let D memorise it. The random parameters come
from the run's SharedRandom, so they do not depend on the number of processes.

Adaptive discriminator augmentation (ADA, Karras et al. 2020) applies each policy to an image with
a probability p instead of always, and tunes p from how sure D is about the real images: the
share r = E[sign(D(real))] rises as D overfits, so p goes up while r is above a target (0.6 in
the paper) and down while it is below. A catalog that D cannot memorise yet is seen unaugmented.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from prodgen.distributed import DistributedEnv
from prodgen.train.randomness import SharedRandom


def _color(x: torch.Tensor, random: SharedRandom) -> torch.Tensor:
    n = x.shape[0]
    x = x + (random.uniform(n, 1, 1, 1) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (random.uniform(n, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (random.uniform(n, 1, 1, 1) + 0.5) + mean


def _translation(x: torch.Tensor, random: SharedRandom, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with the border value."""
    n, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = random.integers(-max_dy, max_dy + 1, n, 1, 1)
    dx = random.integers(-max_dx, max_dx + 1, n, 1, 1)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp(0, w - 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, random: SharedRandom, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = random.integers(0, h + (1 - ch % 2), n, 1, 1)
    cx = random.integers(0, w + (1 - cw % 2), n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows - cy).abs() <= ch // 2) & ((cols - cx).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policies: Sequence[str], random: SharedRandom, probability: float | None = None) -> torch.Tensor:
    """Each policy in turn; with `probability`, each image gets each policy with that probability (ADA)."""
    for name in policies:
        augmented = POLICIES[name](x, random)
        x = augmented if probability is None else torch.where(random.uniform(len(x), 1, 1, 1) < probability, augmented, x)
    return x


class AdaptiveAugmentation(nn.Module):
    """ADA's p and the running sign statistics, as buffers: a checkpoint holds them, so a resumed
    run goes on with the same p. Every `interval` steps p moves by (images seen in the interval) /
    `images_to_full` towards more or less augmentation."""

    def __init__(self, target: float, images_to_full: int, interval: int = 4):
        super().__init__()
        self.target, self.images_to_full, self.interval = target, images_to_full, interval
        self.register_buffer("p", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def probability(self) -> float:
        return float(self.p)

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor, env: DistributedEnv) -> None:
        """Add one step's real-image logits (this process's share); adjust p every `interval` steps."""
        self.sign_sum += real_logits.detach().sign().sum().double()
        self.sign_count += real_logits.numel()
        self.steps += 1
        if int(self.steps) % self.interval:
            return
        totals = torch.stack([self.sign_sum, self.sign_count])
        if env.enabled:  # every process must agree on p
            dist.all_reduce(totals)
        overfitting = float(totals[0] / totals[1]) - self.target
        direction = (overfitting > 0) - (overfitting < 0)
        images = float(totals[1])  # one logit per real image (patch maps count each patch, which only speeds p up)
        self.p.add_(direction * images / self.images_to_full).clamp_(0.0, 1.0)
        self.sign_sum.zero_()
        self.sign_count.zero_()
