"""What the GAN loop reads: the train split as a uint8 tensor, condition codes per image,
and a resumable stream of shuffled batches split across ranks by DistributedSampler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DistributedSampler

from prodgen.config import DataConfig
from prodgen.data.catalog import Catalog
from prodgen.errors import ProdgenError


@dataclass
class Conditions:
    """Names of the conditioning columns and the values each can take (index = code)."""

    names: list[str]
    values: list[list[str]]

    @property
    def cardinalities(self) -> list[int]:
        return [len(v) for v in self.values]

    def code_of(self, name: str, value: str) -> int:
        values = self.values[self.names.index(name)]
        if value not in values:
            raise ProdgenError(f"Unknown {name} {value!r}; known: {', '.join(values)}.")
        return values.index(value)

    def to_json(self) -> dict:
        return {"names": self.names, "values": self.values}


def catalog_conditions(catalog: Catalog, names: list[str]) -> tuple[Conditions, np.ndarray]:
    """Condition table and (N, len(names)) int64 codes for every catalog image."""
    attributes = catalog.attribute_values
    values, columns = [], []
    for name in names:
        if name == "category":
            values.append(list(catalog.categories))
            columns.append(catalog.labels)
        elif name in attributes:
            known = attributes[name]
            values.append(known)
            missing = [e["file"] for e in catalog.entries if name not in e.get("attributes", {})]
            if missing:
                raise ProdgenError(f"Condition {name!r} is missing for {len(missing)} image(s), e.g. {missing[0]}.")
            columns.append(np.array([known.index(e["attributes"][name]) for e in catalog.entries], dtype=np.int64))
        else:
            raise ProdgenError(f"Catalog {catalog.name!r} has no attribute {name!r}; it has: category, {', '.join(attributes) or '(no attributes)'}.")
    codes = np.stack(columns, axis=1) if columns else np.zeros((len(catalog.images), 0), dtype=np.int64)
    return Conditions(list(names), values), codes


def to_model_range(images_u8: torch.Tensor, pad_to: int | None, background: float) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1], padded with the catalog's background if asked."""
    x = images_u8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
    if pad_to is not None:
        dh, dw = pad_to - x.shape[2], pad_to - x.shape[3]
        if dh < 0 or dw < 0:
            raise ProdgenError(f"data.pad_to={pad_to} is smaller than the images ({x.shape[3]}x{x.shape[2]}).")
        x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=background)
    return x


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Undo `pad_to`: generated images come back at the catalog's size."""
    top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
    return x[:, :, top : top + height, left : left + width]


class TrainingData:
    def __init__(self, catalog: Catalog, config: DataConfig, split: str = "train"):
        indices = catalog.split_indices(split)
        self.images = torch.from_numpy(np.ascontiguousarray(catalog.images[indices]))
        self.conditions, codes = catalog_conditions(catalog, config.conditions)
        self.codes = torch.from_numpy(codes[indices])
        self.pad_to = config.pad_to
        # Fashion-MNIST is light on black, photo catalogs are on white: pad with what is there.
        corner = float(np.median(np.asarray(catalog.images[indices[:256], 0, 0, :])))
        self.background = corner / 127.5 - 1
        self.height, self.width, self.channels = catalog.height, catalog.width, catalog.channels

    def __len__(self) -> int:
        return len(self.images)

    @property
    def model_size(self) -> tuple[int, int]:
        return (self.pad_to, self.pad_to) if self.pad_to else (self.height, self.width)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_model_range(self.images[indices], self.pad_to, self.background), self.codes[indices]

    def random_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Conditions of random training images: valid combinations, in catalog proportions."""
        return self.codes[torch.randint(len(self.codes), (n,), generator=generator)]


class BatchStream:
    """Endless shuffled batches for one rank; its position survives checkpoints exactly."""

    def __init__(self, size: int, batch_size: int, rank: int, world_size: int, seed: int):
        if size < batch_size * world_size:
            raise ProdgenError(f"The train split has {size} images, fewer than one global batch ({batch_size * world_size}); lower train.batch_size.")
        self.sampler = DistributedSampler(range(size), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.epoch, self.position = 0, 0
        self._order: list[int] | None = None

    def _epoch_order(self) -> list[int]:
        if self._order is None:
            self.sampler.set_epoch(self.epoch)
            self._order = list(self.sampler)
        return self._order

    def next(self) -> torch.Tensor:
        order = self._epoch_order()
        if self.position + self.batch_size > len(order):
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
            order = self._epoch_order()
        batch = order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return torch.tensor(batch, dtype=torch.long)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None
