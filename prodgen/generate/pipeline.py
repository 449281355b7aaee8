"""One call to load a generator, whatever it is: a shipped model name (`fmnist-cgan`), an exported
folder (generator.safetensors + generator.json), a run folder (its best checkpoint) or a checkpoint."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prodgen.data.conditions import Conditions
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.generate.metadata import weights_digest
from prodgen.models.sampling import BLOCK, CONDITION_STREAM, block_rng, crop_to, index_blocks, sample_images, to_uint8
from prodgen.models.spec import build_from_spec
from prodgen.paths import package_dir
from prodgen.train import checkpoint as ckpt

# Shipped generators (package data, found through importlib.resources): one folder per model name.
SHIPPED_DIR = package_dir("assets", "models")
WEIGHTS = "generator.safetensors"
SPEC = "generator.json"


def shipped_models() -> list[str]:
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / WEIGHTS).exists()) if SHIPPED_DIR.exists() else []


def check_sampling(n: int, truncation: float) -> None:
    """What `sample` refuses, for callers that must refuse it before writing anything (generation jobs)."""
    if n < 1:
        raise ProdgenError("Ask for at least one image.")
    if not 0 < truncation <= 1:
        raise ProdgenError(f"Truncation psi must be in (0, 1], not {truncation}.")


class WrongKind(ProdgenError):
    """A model of another kind than the command needs (a translator where a generator is wanted, or the reverse)."""


def read_network(model: str | Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any], str]:
    """The exported network of any model: (tensors, the prefix of its weights among them, its spec, where
    it was found). A shipped model name, an exported folder, a run folder (its best checkpoint) or a checkpoint."""
    path = Path(model)
    if not path.exists() and str(model) in shipped_models():
        path = SHIPPED_DIR / str(model)
    if (path / WEIGHTS).exists():
        return load_file(str(path / WEIGHTS)), "", json.loads((path / SPEC).read_text(encoding="utf-8")), str(path)
    if path.is_dir() and ckpt.list_checkpoints(path):
        path = ckpt.best_checkpoint(path) or ckpt.latest_checkpoint(path)
    if ckpt.is_checkpoint(path):
        checkpoint = ckpt.read_checkpoint(path)
        return checkpoint.tensors, checkpoint.state.get("export_network", "G_ema") + ".", checkpoint.state["generator"], str(path)
    shipped = ", ".join(shipped_models()) or "none"
    raise ProdgenError(f"No model at {model!r}: give a shipped model name ({shipped}), an exported folder, a run folder or a checkpoint.")


def save_network(tensors: dict[str, torch.Tensor], spec: dict[str, Any], directory: Path) -> Path:
    """Weights (safetensors) and spec (JSON): the folder `read_network` loads."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    write_json_atomic(directory / SPEC, spec)
    return directory


class ProductGenerator:
    def __init__(self, module: torch.nn.Module, spec: dict[str, Any], source: str):
        self.module = module.eval().requires_grad_(False)
        self.spec = spec
        self.source = source
        self.conditions = Conditions(spec["conditions"]["names"], spec["conditions"]["values"])
        self.backend, self.forward = "eager", self.module

    def use_backend(self, backend: str) -> ProductGenerator:
        """Sample through eager PyTorch, TorchScript or ONNX Runtime (prodgen.generate.backends)."""
        from prodgen.generate.backends import load_forward

        self.forward = load_forward(self.module, self.spec, self.weights_sha256, backend)
        self.backend = backend
        return self

    @functools.cached_property
    def weights_sha256(self) -> str:
        """What an image's metadata names the model by: moved or renamed, the weights are the same."""
        return weights_digest(self.module)

    @classmethod
    def load(cls, model: str | Path) -> ProductGenerator:
        return cls.from_network(model, *read_network(model))

    @classmethod
    def from_network(cls, model: str | Path, tensors: dict[str, torch.Tensor], prefix: str, spec: dict[str, Any], source: str) -> ProductGenerator:
        """The generator in what `read_network(model)` returned: for callers that need the other tensors too."""
        if spec.get("kind") == "translator":
            family = "cyclegan" if spec.get("directions") else "pix2pix"
            raise WrongKind(f"{model} is an image-to-image translator (family {family}): use `prodgen translate`, not a command that samples new products.")
        module = build_from_spec(spec)
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        return cls(module, spec, source)

    def codes_for(self, n: int, query: dict[str, str] | None, seed: int, first_index: int = 0) -> torch.Tensor:
        """Condition codes for images first_index .. first_index + n - 1 of the seed's stream: the asked
        values; conditions not asked for vary at random, drawn per block like the latents, so image i
        gets the same codes however many are asked."""
        query = query or {}
        unknown = set(query) - set(self.conditions.names)
        if unknown:
            raise ProdgenError(f"This model is not conditioned on {', '.join(sorted(unknown))}; its conditions: {', '.join(self.conditions.names) or 'none'}.")
        asked = {name: self.conditions.code_of(name, value) for name, value in query.items()}
        codes = torch.zeros((n, len(self.conditions.names)), dtype=torch.long)
        if len(asked) < len(self.conditions.names):  # the draws fill only conditions not asked for; most service requests ask them all
            done = 0
            for block, row, rows in index_blocks(first_index, n):
                drawn = block_rng(seed, block, CONDITION_STREAM).integers(0, self.conditions.cardinalities, size=(BLOCK, len(self.conditions.names)))
                codes[done : done + rows] = torch.from_numpy(drawn[row : row + rows])
                done += rows
        for column, name in enumerate(self.conditions.names):
            if name in asked:
                codes[:, column] = asked[name]
        return codes

    def sample(self, n: int, query: dict[str, str] | None = None, seed: int = 0, first_index: int = 0, truncation: float = 1.0) -> np.ndarray:
        """n uint8 (H, W, C) product images, images first_index .. of the seed's stream: the same seed,
        query, truncation and index give the same image, however many are asked at once."""
        check_sampling(n, truncation)
        return sample_images(self.forward, self.spec, self.codes_for(n, query, seed, first_index), seed, first_index, truncation)

    @torch.no_grad()
    def draw(self, z: torch.Tensor, codes: torch.Tensor) -> np.ndarray:
        """uint8 images of given latent codes and condition codes (variants, walks, decoded encodings)."""
        height, width, _ = self.spec["output_size"]
        return to_uint8(crop_to(self.forward(z, codes if codes.shape[1] else None), height, width))

    def export(self, directory: Path, card: dict[str, Any] | None = None) -> Path:
        """Weights (safetensors) and spec (JSON) alone: what serving and sharing need."""
        save_network(self.module.state_dict(), self.spec, directory)
        if card is not None:
            write_json_atomic(directory / "model_card.json", card)
        return directory
