"""The process group torchrun describes, shared by training (DistributedDataParallel) and by sharded
generation jobs: which rank this process is, how many there are, and its device. Without torchrun a
command is rank 0 of 1."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from prodgen.errors import ProdgenError


@dataclass(frozen=True)
class DistributedEnv:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    enabled: bool = False  # in a process group: collectives run, even with one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def default_device() -> torch.device:
    """The local GPU torchrun assigns (cuda:LOCAL_RANK), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    local_rank, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    if local_rank >= count:
        raise ProdgenError(f"Process {local_rank} on this node has no GPU of its own: the node has {count}. "
                           f"Use torchrun --nproc_per_node {count}, or CUDA_VISIBLE_DEVICES= to train on the CPU.")
    return torch.device("cuda", local_rank)


def setup() -> DistributedEnv:
    """Join the process group torchrun describes in the environment; a plain run is rank 0 of 1.
    Under torchrun the group is joined even with one process, so one GPU exercises the NCCL path."""
    device = default_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if "LOCAL_RANK" not in os.environ:
        return DistributedEnv(device=device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedEnv(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device, enabled=True)


def teardown(env: DistributedEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
