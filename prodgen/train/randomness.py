"""Random draws that do not depend on how many processes share a batch.

Every rank holds the same generator, draws for the whole global batch and keeps its own rows
(rows [r*b, (r+1)*b) for rank r, the rows GlobalBatches gives it). So the noise, the conditions of
generated images and the augmentations of each global batch are the same with 1 process or 8:
a 2-process run computes the 1-process run's step, up to float summation order.
"""

from __future__ import annotations

import torch


class SharedRandom:
    def __init__(self, seed: int, rank: int, world_size: int, device: torch.device):
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world_size, self.device = rank, world_size, device

    def _mine(self, draw: torch.Tensor, local: int) -> torch.Tensor:
        return draw[self.rank * local : (self.rank + 1) * local].to(self.device, non_blocking=True)

    def normal(self, local: int, *shape: int) -> torch.Tensor:
        return self._mine(torch.randn((local * self.world_size, *shape), generator=self.generator), local)

    def uniform(self, local: int, *shape: int) -> torch.Tensor:
        return self._mine(torch.rand((local * self.world_size, *shape), generator=self.generator), local)

    def integers(self, low: int, high: int, local: int, *shape: int) -> torch.Tensor:
        return self._mine(torch.randint(low, high, (local * self.world_size, *shape), generator=self.generator), local)

    def rows(self, table: torch.Tensor, local: int) -> torch.Tensor:
        """`local` rows of `table` drawn with replacement (e.g. the conditions of random training images)."""
        return table[self.integers(0, len(table), local).cpu()].to(self.device)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)
