"""Multi-process training through torch.distributed, launched by torchrun.

Every rank holds the same models; after each backward pass gradients are averaged with
all_reduce (as StyleGAN2-ADA does), which also works with the double backward of R1 and
gradient penalties. Logging and checkpoints happen on rank 0 only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedEnv:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup() -> DistributedEnv:
    """Join the process group torchrun describes in the environment; a plain run is rank 0 of 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size == 1:
        return DistributedEnv(device=device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedEnv(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def teardown(env: DistributedEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, env: DistributedEnv) -> None:
    """Start every rank from rank 0's weights and buffers."""
    if env.enabled:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(module: nn.Module, env: DistributedEnv) -> None:
    if not env.enabled:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= env.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_ranks_finite(value: torch.Tensor, env: DistributedEnv) -> bool:
    """True when the loss is finite on every rank, so all ranks skip a bad step together."""
    flag = torch.tensor([float(torch.isfinite(value).all())], device=value.device)
    if env.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def gather_rng_states(env: DistributedEnv) -> list[torch.Tensor]:
    """Every rank's CPU generator state (z, labels and augmentations on CPU draw from it); on
    CUDA the device generator is not captured, so GPU resumes are close, not bit-exact."""
    state = torch.get_rng_state()
    if not env.enabled:
        return [state]
    # NCCL only moves device tensors
    local = state.to(env.device)
    gathered = [torch.empty_like(local) for _ in range(env.world_size)]
    dist.all_gather(gathered, local)
    return [g.cpu() for g in gathered]


def broadcast_object(value, env: DistributedEnv):
    if not env.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(env: DistributedEnv) -> None:
    if env.enabled:
        dist.barrier()
