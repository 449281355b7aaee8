"""One call to load a generator, whatever it is: a shipped model name (`fmnist-cgan`), an exported
folder (generator.safetensors + generator.json), a run folder (its best checkpoint) or a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prodgen.data.conditions import Conditions
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.models.sampling import sample_images
from prodgen.models.spec import build_from_spec
from prodgen.paths import package_dir
from prodgen.train import checkpoint as ckpt

# Shipped generators (package data, found through importlib.resources): one folder per model name.
SHIPPED_DIR = package_dir("assets", "models")
WEIGHTS = "generator.safetensors"
SPEC = "generator.json"


def shipped_models() -> list[str]:
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / WEIGHTS).exists()) if SHIPPED_DIR.exists() else []


class ProductGenerator:
    def __init__(self, module: torch.nn.Module, spec: dict[str, Any], source: str):
        self.module = module.eval().requires_grad_(False)
        self.spec = spec
        self.source = source
        self.conditions = Conditions(spec["conditions"]["names"], spec["conditions"]["values"])

    @classmethod
    def load(cls, model: str | Path) -> ProductGenerator:
        path = Path(model)
        if not path.exists() and str(model) in shipped_models():
            path = SHIPPED_DIR / str(model)
        if (path / WEIGHTS).exists():
            spec = json.loads((path / SPEC).read_text(encoding="utf-8"))
            return cls._from_tensors(load_file(str(path / WEIGHTS)), "", spec, str(path))
        if path.is_dir() and ckpt.list_checkpoints(path):
            path = ckpt.best_checkpoint(path) or ckpt.latest_checkpoint(path)
        if (path / ckpt.STATE).exists():
            checkpoint = ckpt.read_checkpoint(path)
            network = checkpoint.state.get("export_network", "G_ema")
            return cls._from_tensors(checkpoint.tensors, f"{network}.", checkpoint.state["generator"], str(path))
        shipped = ", ".join(shipped_models()) or "none"
        raise ProdgenError(f"No generator at {model!r}: give a shipped model name ({shipped}), an exported folder, a run folder or a checkpoint.")

    @classmethod
    def _from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str, spec: dict[str, Any], source: str) -> ProductGenerator:
        module = build_from_spec(spec)
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        return cls(module, spec, source)

    def codes_for(self, n: int, query: dict[str, str] | None, seed: int) -> torch.Tensor:
        """Condition codes for n samples: the asked values; conditions not asked for vary at random."""
        query = query or {}
        unknown = set(query) - set(self.conditions.names)
        if unknown:
            raise ProdgenError(f"This model is not conditioned on {', '.join(sorted(unknown))}; its conditions: {', '.join(self.conditions.names) or 'none'}.")
        rng = torch.Generator().manual_seed(seed + 1)
        columns = []
        for name, values in zip(self.conditions.names, self.conditions.values):
            if name in query:
                columns.append(torch.full((n,), self.conditions.code_of(name, query[name]), dtype=torch.long))
            else:
                columns.append(torch.randint(len(values), (n,), generator=rng))
        return torch.stack(columns, dim=1) if columns else torch.zeros((n, 0), dtype=torch.long)

    def sample(self, n: int, query: dict[str, str] | None = None, seed: int = 0) -> np.ndarray:
        """n uint8 (H, W, C) product images; the same seed and query give the same images."""
        if n < 1:
            raise ProdgenError("Ask for at least one image.")
        return sample_images(self.module, self.spec, self.codes_for(n, query, seed), seed)

    def export(self, directory: Path, card: dict[str, Any] | None = None) -> Path:
        """Weights (safetensors) and spec (JSON) alone: what serving and sharing need."""
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS) as tmp:
            save_file({k: v.contiguous() for k, v in self.module.state_dict().items()}, str(tmp))
        write_json_atomic(directory / SPEC, self.spec)
        if card is not None:
            write_json_atomic(directory / "model_card.json", card)
        return directory
