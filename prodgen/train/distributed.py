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
    """Every rank's generator states as one uint8 row: the CPU generator's (labels, shuffling, and z
    on the CPU) then, on a GPU, the device generator's (z and augmentations drawn there)."""
    state = torch.get_rng_state()
    if env.device.type == "cuda":
        state = torch.cat([state, torch.cuda.get_rng_state(env.device)])
    if not env.enabled:
        return [state]
    # NCCL only moves device tensors
    local = state.to(env.device)
    gathered = [torch.empty_like(local) for _ in range(env.world_size)]
    dist.all_gather(gathered, local)
    return [g.cpu() for g in gathered]


def set_rng_state(state: torch.Tensor, env: DistributedEnv) -> None:
    """Undo `gather_rng_states` for this rank; the device part applies only when resuming on a GPU."""
    cpu_size = len(torch.get_rng_state())
    torch.set_rng_state(state[:cpu_size])
    if env.device.type == "cuda" and len(state) > cpu_size:
        torch.cuda.set_rng_state(state[cpu_size:], env.device)


def broadcast_object(value, env: DistributedEnv):
    if not env.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(env: DistributedEnv) -> None:
    if env.enabled:
        dist.barrier()
