"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees,
real and fake alike, so a small catalog does not let D memorise it. The random parameters come
from the run's SharedRandom, so they do not depend on the number of processes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

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


def diff_augment(x: torch.Tensor, policies: Sequence[str], random: SharedRandom) -> torch.Tensor:
    for name in policies:
        x = POLICIES[name](x, random)
    return x
