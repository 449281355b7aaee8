"""Multi-process training on torch's own engine: DistributedDataParallel, launched by torchrun.

Each trained network is wrapped in DDP, which broadcasts rank 0's weights at the start and
all-reduces gradients in buckets while backward is still running. Logging, validation and
checkpoints happen on rank 0. Without torchrun a run is rank 0 of 1 and nothing is wrapped.
Joining the process group itself is prodgen.distributed's, which sharded generation shares.
"""

from __future__ import annotations

import hashlib

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from prodgen.distributed import DistributedEnv
from prodgen.errors import ProdgenError


def has_batchnorm(module: nn.Module) -> bool:
    """BatchNorm (not SyncBatchNorm) normalises each process's share of the batch: the result then depends on the number of processes."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm) for m in module.modules())


def sync_batchnorm(module: nn.Module, env: DistributedEnv) -> nn.Module:
    """BatchNorm layers become SyncBatchNorm (statistics over the global batch); torch runs those on GPUs only."""
    if env.device.type != "cuda":
        raise ProdgenError("train.sync_batchnorm needs GPUs: torch's SyncBatchNorm does not run on the CPU. Set it to false.")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def wrap(module: nn.Module, env: DistributedEnv, find_unused_parameters: bool = False) -> nn.Module:
    """The module that training calls: DDP in a process group (gradients all-reduced during backward), else the module itself."""
    if not env.enabled:
        return module
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def all_ranks_finite(value: torch.Tensor, env: DistributedEnv) -> bool:
    """True when the loss is finite on every rank, so all ranks skip a bad step together."""
    flag = torch.tensor([float(torch.isfinite(value).all())], device=value.device)
    if env.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def gather_rng_states(env: DistributedEnv) -> list[torch.Tensor]:
    """Every rank's global generator states as one uint8 row: the CPU generator's then, on a GPU,
    the device generator's (anything a network draws there itself)."""
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


def replica_fingerprints(networks: dict[str, nn.Module], env: DistributedEnv) -> dict[str, list[str]]:
    """A SHA-256 prefix of each network's parameters on every rank (as StyleGAN2-ADA checks its
    replicas before each snapshot): DDP keeps them equal, so a difference is a bug to stop for."""
    mine = {}
    for name, network in networks.items():
        digest = hashlib.sha256()
        for parameter in network.parameters():
            digest.update(parameter.detach().cpu().flatten().view(torch.uint8).numpy().tobytes())
        mine[name] = digest.hexdigest()[:16]
    every = [mine]
    if env.enabled:
        every = [None] * env.world_size
        dist.all_gather_object(every, mine)
    return {name: [rank[name] for rank in every] for name in networks}


def broadcast_object(value, env: DistributedEnv):
    if not env.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
