"""Checkpoints: safetensors tensors (weights, optimiser moments, RNG states) plus a JSON state.

Each checkpoint is a folder `ckpt-STEP` written under a temporary name and renamed into place,
so a process killed at any moment leaves only complete checkpoints. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from prodgen.errors import ProdgenError
from prodgen.fileio import write_json_atomic

TENSORS = "tensors.safetensors"
STATE = "state.json"
PREFIX = "ckpt-"
BEST_POINTER = "best.json"


def flatten_optimizer(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam's per-parameter tensors go to safetensors, its hyper-parameters to JSON."""
    state = optimizer.state_dict()
    tensors = {
        f"{prefix}.{index}.{key}": value.detach().cpu().clone().contiguous()
        for index, per_param in state["state"].items()
        for key, value in per_param.items()
        if torch.is_tensor(value)
    }
    return tensors, {"param_groups": state["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            index, key = name[len(prefix) + 1 :].split(".", 1)
            per_param.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})


def module_tensors(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


def load_module(module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    if not own:
        raise ProdgenError(f"Checkpoint holds no weights for {prefix!r}.")
    module.load_state_dict(own)


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def write_checkpoint(run_dir: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    target = run_dir / f"{PREFIX}{step:07d}"
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=run_dir))
    try:
        save_file(tensors, str(staging / TENSORS))
        (staging / STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
        for file in staging.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def is_checkpoint(path: Path) -> bool:
    """Whether a folder is one checkpoint (it holds the state file), not a run folder or anything else."""
    return (Path(path) / STATE).exists()


def resolve(path: Path) -> Path:
    """A checkpoint folder itself, or a run folder's latest checkpoint."""
    path = Path(path)
    if not path.exists():
        raise ProdgenError(f"No run folder or checkpoint at {path}.")
    return path if is_checkpoint(path) else latest_checkpoint(path)


def read_state(path: Path) -> dict[str, Any]:
    """The JSON half of a checkpoint (step, config, scores), without loading its tensors."""
    path = resolve(path)
    try:
        return json.loads((path / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProdgenError(f"Cannot read checkpoint {path}: {exc}") from exc


def read_checkpoint(path: Path) -> Checkpoint:
    path = resolve(path)
    state = read_state(path)
    try:
        tensors = load_file(str(path / TENSORS))
    except (OSError, ValueError) as exc:
        raise ProdgenError(f"Cannot read checkpoint {path}: {exc}") from exc
    return Checkpoint(path=path, tensors=tensors, state=state)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (staging folders start with '.', so they never match)."""
    return sorted(p for p in run_dir.glob(f"{PREFIX}*") if is_checkpoint(p) and (p / TENSORS).exists())


def latest_checkpoint(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    if not found:
        raise ProdgenError(f"No checkpoint in {run_dir}.")
    return found[-1]


def best_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / BEST_POINTER
    if not pointer.exists():
        return None
    path = run_dir / json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    return path if path.exists() else None


def mark_best(run_dir: Path, checkpoint: Path, metric: str, value: float, step: int) -> None:
    write_json_atomic(run_dir / BEST_POINTER, {"checkpoint": checkpoint.name, "metric": metric, "value": value, "step": step})


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Delete old checkpoints beyond the last `keep_last`, never the best one, and stale staging folders."""
    protected = best_checkpoint(run_dir)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        if old != protected:
            # renamed first, so a process killed while deleting leaves a staging folder (cleaned below), never half a checkpoint
            doomed = old.with_name(f".{old.name}.deleting.tmp")
            os.rename(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
    for staging in run_dir.glob(f".{PREFIX}*.tmp"):
        shutil.rmtree(staging, ignore_errors=True)
