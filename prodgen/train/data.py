"""What the training loop reads: one split of a prepared catalog, read from disk batch by batch.

The catalog's image array is never loaded whole: each batch's rows are read from the .npy file
(`read_rows`: pread, not the memory map) on a background thread while the current batch trains,
so a catalog larger than RAM trains in a flat amount of memory (the kernel's page cache, not this
process, keeps what is hot). Which rows form each batch is a pure function of (seed, epoch, batch number), as with
torch's DistributedSampler, so a resumed run reads exactly the batches an uninterrupted one does.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from prodgen.config import DataConfig
from prodgen.data.catalog import Catalog, read_rows
from prodgen.data.conditions import catalog_conditions
from prodgen.errors import ProdgenError
from prodgen.models.sampling import to_model_range


@dataclass
class Batch:
    """Real images in the model's range (N, C, H, W) and their condition codes (N, len(conditions))."""

    images: torch.Tensor
    codes: torch.Tensor

    def to(self, device: torch.device, memory_format: torch.memory_format) -> Batch:
        return Batch(self.images.to(device, memory_format=memory_format, non_blocking=True), self.codes.to(device))


class TrainingData:
    """One split of a catalog: rows on disk, condition codes in memory."""

    def __init__(self, catalog: Catalog, config: DataConfig, split: str = "train"):
        self.catalog = catalog
        self.rows = catalog.split_indices(split)
        if config.categories:
            unknown = sorted(set(config.categories) - set(catalog.categories))
            if unknown:
                raise ProdgenError(f"data.categories: {', '.join(unknown)} not in catalog {catalog.name!r}; its categories: {', '.join(catalog.categories)}.")
            chosen = [catalog.categories.index(name) for name in config.categories]
            self.rows = self.rows[np.isin(catalog.labels[self.rows], chosen)]
        self.images = catalog.images
        self.conditions, codes = catalog_conditions(catalog, config.conditions)
        self.codes = torch.from_numpy(codes[self.rows])
        self.pad_to = config.pad_to
        self.mirror = config.mirror
        # Fashion-MNIST is light on black, photo catalogs are on white: pad with what is there.
        corner = float(np.median(read_rows(self.images, self.rows[:256])[:, 0, 0, :]))
        self.background = corner / 127.5 - 1
        self.height, self.width, self.channels = catalog.height, catalog.width, catalog.channels
        self.preprocessing = catalog.info.get("preprocessing")  # how a new photo becomes an image like these

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def draws(self) -> int:
        """The images a shuffled epoch holds: each photo, and with data.mirror each photo mirrored too
        (positions len(self) .. 2 * len(self) - 1), so an epoch shows both orientations once."""
        return len(self.rows) * (2 if self.mirror else 1)

    @property
    def model_size(self) -> tuple[int, int]:
        return (self.pad_to, self.pad_to) if self.pad_to else (self.height, self.width)

    def read(self, positions: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """The uint8 rows at these positions of the split, from disk, and their codes. Only I/O and
        numpy: the loader thread that calls it must not compete with training for torch's threads
        (a conversion there cost catalog-64 about a fifth of its speed on 2 cores). Positions from
        len(self) on are the photos mirrored left-right (see `draws`)."""
        photos = positions % len(self.rows)
        images = read_rows(self.images, self.rows[photos.numpy()])  # a copy: mirroring it leaves the catalog alone
        mirrored = (positions >= len(self.rows)).numpy()
        if mirrored.any():
            images[mirrored] = images[mirrored, :, ::-1]
        return images, self.codes[photos]

    def to_batch(self, images: np.ndarray, codes: torch.Tensor) -> Batch:
        return Batch(to_model_range(torch.from_numpy(images), self.pad_to, self.background), codes)

    def batch(self, positions: torch.Tensor) -> Batch:
        """The images at these positions of the split, in the model's range."""
        return self.to_batch(*self.read(positions))


class GlobalBatches:
    """Shuffled global batches, as DistributedSampler shards them: each epoch is a permutation
    drawn from seed + epoch, cut into global batches (the incomplete last one is dropped), and
    rank r takes rows [r*b, (r+1)*b) of each global batch of size b * world_size. The global batch
    is the same whatever the number of processes."""

    def __init__(self, size: int, global_batch: int, rank: int, world_size: int, seed: int):
        if global_batch % world_size:
            raise ProdgenError(f"train.batch_size={global_batch} must divide evenly over {world_size} processes.")
        if size < global_batch:
            raise ProdgenError(f"The train split has {size} images, fewer than one batch ({global_batch}); lower train.batch_size.")
        self.size, self.global_batch, self.seed = size, global_batch, seed
        self.local = global_batch // world_size
        self.start = rank * self.local
        self.per_epoch = size // global_batch
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def positions(self, epoch: int, index: int) -> torch.Tensor:
        if epoch != self._epoch:
            self._epoch, self._order = epoch, torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))
        first = index * self.global_batch + self.start
        return self._order[first : first + self.local]


def read_ahead_depth(setting: int | None, device: torch.device) -> int:
    """`train.prefetch`, or when unset: 4 batches ahead when something is free to read them (a GPU
    does the training, or torch leaves a CPU core idle), else 0. A reader thread beside torch
    threads on every core slows each step: catalog-64 on 2 cores trained at about 115 instead of
    about 145 real images/s with it (benchmarks/RESULTS.md)."""
    if setting is not None:
        return setting
    return 4 if device.type == "cuda" or torch.get_num_threads() < (os.cpu_count() or 1) else 0


class BatchLoader:
    """The endless stream of this rank's batches, read `depth` ahead on a background thread (depth 0:
    on the training thread, when it is called). Its state is the position of the next batch to hand
    out (epoch, batch in epoch), so a resumed run continues with exactly the batches an uninterrupted
    one would have read."""

    def __init__(self, data: TrainingData, batches: GlobalBatches, depth: int = 4, prepare: Callable[[Batch], Batch] = lambda b: b):
        self.data, self.batches, self.depth, self.prepare = data, batches, depth, prepare
        self.epoch, self.index = 0, 0
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if self._thread is not None:
            raise RuntimeError("load the loader's state before the first batch")
        self.epoch, self.index = int(state["epoch"]), int(state["batch"])

    def _advance(self, epoch: int, index: int) -> tuple[int, int]:
        return (epoch + 1, 0) if index + 1 >= self.batches.per_epoch else (epoch, index + 1)

    def _produce(self) -> None:
        epoch, index = self.epoch, self.index
        try:
            while not self._stop.is_set():
                item = self.data.read(self.batches.positions(epoch, index))
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                epoch, index = self._advance(epoch, index)
        except BaseException as exc:  # handed to the training thread, which raises it
            self._queue.put(exc)

    def next(self) -> Batch:
        if self.depth == 0:
            images, codes = self.data.read(self.batches.positions(self.epoch, self.index))
            self.epoch, self.index = self._advance(self.epoch, self.index)
            return self.prepare(self.data.to_batch(images, codes))
        if self._thread is None:
            self._queue = queue.Queue(maxsize=self.depth)
            self._thread = threading.Thread(target=self._produce, name="prodgen-batches", daemon=True)
            self._thread.start()
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        self.epoch, self.index = self._advance(self.epoch, self.index)
        return self.prepare(self.data.to_batch(*item))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
