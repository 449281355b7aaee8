"""What a model family tells the training loop. The loop (prodgen/train/loop.py) owns everything
families share: time and step budget, learning-rate schedule, EMA copies, the non-finite-loss
guard, validation and early stopping, checkpoints and exact resume, logs, sample grids, progress,
DistributedDataParallel. A family owns its networks, optimisers, training step, validation score,
samples and what inference loads.

Template for a new family (one module in prodgen/train/families/, plus a preset YAML with
`family: NAME` in prodgen/configs/; nothing in the loop changes):

    from prodgen.config import Section
    from prodgen.train.families import register_family
    from prodgen.train.family import Family

    class MyModelConfig(Section):          # the preset's `model:` section, validated by pydantic
        width: int = 64

    @register_family
    class MyFamily(Family):
        name = "my-family"                 # `family: my-family` in a preset selects it
        model_config = MyModelConfig
        loss_config = None                 # or a Section class for a `loss:` section
        ema = {"net_ema": "net"}           # EMA copies the loop keeps: copy name -> network name
        export_network = "net_ema"         # the weights inference loads

        @classmethod
        def check_config(cls, config):     # cross-field checks: an option this family would ignore is an error
            return [] if config.eval.metric == "mse" else ["eval.metric: my-family scores 'mse'"]

        def build_networks(self):          # called once, after torch.manual_seed(train.seed)
            return {"net": MyNetwork(self.config.model.width)}

        def build_optimizers(self):        # self.nets holds the networks, placed on the device
            return {"opt": torch.optim.Adam(self.nets["net"].parameters(), lr=self.config.train.lr_g)}

        def train_step(self, next_batch, random):
            batch = next_batch()           # this process's share of the global batch, on the device
            with self.autocast():
                loss = (self.parallel["net"](batch.images) - batch.images).pow(2).mean()
            self.apply(loss, "opt")        # backward + step, skipped on every rank if any loss is not finite
            return {"loss": loss.item()}   # logged to log.jsonl and TensorBoard

        def validate(self, validator):     # rank 0; "selection" (lower is better) drives best/early stop
            ...
            return {"mse": value, "selection": value}

        def sample_grid(self, fixed):      # uint8 (N, H, W, C) images for samples/step-*.png
            ...

Random numbers in a training step come from `random` (a SharedRandom), never from torch's global
generator: its draws do not depend on the number of processes, and its state is checkpointed.
`self.parallel[name]` is the network as training calls it (DDP-wrapped under torchrun: calling it
all-reduces that network's gradients in the next backward); `self.nets[name]` is the plain module,
for forward passes whose gradients must not be synchronised (e.g. D inside G's update).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from prodgen.config import RunConfig, Section
from prodgen.data.catalog import Catalog
from prodgen.distributed import DistributedEnv
from prodgen.models.spec import generator_spec
from prodgen.train import distributed
from prodgen.train.data import Batch, TrainingData
from prodgen.train.randomness import SharedRandom

GRID_COLUMNS = 10  # sample grids: one row of this many images per category


class Family:
    name: ClassVar[str]
    model_config: ClassVar[type[Section]]
    loss_config: ClassVar[type[Section] | None] = None
    ema: ClassVar[dict[str, str]] = {}
    export_network: ClassVar[str]
    # an encoder inference can load beside the generator (VAE families): `reconstruct`, `interpolate`, `transfer`
    encoder_network: ClassVar[str | None] = None
    # where `--init-from` takes each network's weights from in the other run's checkpoint
    init_sources: ClassVar[dict[str, str]] = {}
    # validation scores `eval.track` may name: recorded beside the selection metric at each evaluation
    trackable_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: RunConfig, data: TrainingData, env: DistributedEnv):
        self.config, self.data, self.env = config, data, env
        self.nets: dict[str, nn.Module] = {}  # every network, EMA copies included (what checkpoints hold)
        self.parallel: dict[str, nn.Module] = {}  # the trained networks as training calls them
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.all_updates_applied = True
        self.step = 0  # steps completed before the current one, set by the loop (e.g. for warm-ups)

    # ----- what a family implements -------------------------------------------------------------

    @classmethod
    def check_config(cls, config: RunConfig) -> list[str]:
        """Problems with this config for this family (an ignored option, an impossible combination)."""
        return []

    def build_networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def build_state(self) -> dict[str, nn.Module]:
        """Modules that hold training state other than weights (an image pool, as buffers): checkpointed
        and restored with the networks, never trained, averaged or wrapped for DDP."""
        return {}

    def train_step(self, next_batch: Callable[[], Batch], random: SharedRandom) -> dict[str, float]:
        """One training step; may read several batches and step several optimisers (through `apply`)."""
        raise NotImplementedError

    def fixed_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Inputs of the sample grid, drawn once per run and kept in checkpoints."""
        return {}

    def sample_grid(self, fixed: dict[str, torch.Tensor]) -> np.ndarray:
        raise NotImplementedError

    def make_validator(self, catalog: Catalog, say: Callable[[str], None]) -> Any:
        """Whatever `validate` needs (rank 0, before the run's seed is set: it may draw random numbers)."""
        return None

    def validate(self, validator: Any) -> dict[str, float]:
        raise NotImplementedError

    def inference_spec(self) -> dict[str, Any]:
        """The JSON that rebuilds `export_network` for inference, without the training config."""
        raise NotImplementedError

    def encoder_spec(self) -> dict[str, Any] | None:
        """The JSON that rebuilds `encoder_network` for inference (families with an encoder)."""
        return None

    def find_unused_parameters(self, network: str) -> bool:
        """Whether a training step can leave some of this network's parameters without a gradient (DDP must then look for them)."""
        return False

    # ----- what the loop and a training step share ----------------------------------------------

    def apply(self, loss: torch.Tensor, optimizer: str) -> bool:
        """Backward and step, unless the loss is non-finite on any rank: then every rank skips it."""
        chosen = self.optimizers[optimizer]
        chosen.zero_grad(set_to_none=True)
        if not distributed.all_ranks_finite(loss.detach(), self.env):
            self.all_updates_applied = False
            return False
        loss.backward()
        chosen.step()
        return True

    def autocast(self):
        """bfloat16 forward passes when asked; bf16 keeps fp32's exponent range, so no loss scaling."""
        if self.config.train.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.env.device.type, dtype=torch.bfloat16)

    def init_from(self, tensors: dict[str, torch.Tensor]) -> list[str]:
        """Fine-tuning: take every weight whose name and shape match; returns those left fresh
        (e.g. the embeddings of categories the other run did not have). Runs before the EMA copies
        exist; they start from the networks' new weights."""
        fresh = []
        for name in self.nets:
            source = self.init_sources.get(name, name)
            own = self.nets[name].state_dict()
            offered = {k[len(source) + 1 :]: v for k, v in tensors.items() if k.startswith(source + ".")}
            matching = {k: v for k, v in offered.items() if k in own and own[k].shape == v.shape}
            fresh += [f"{name}.{k}" for k in own if k not in matching]
            self.nets[name].load_state_dict({**own, **matching})
        return fresh


def generator_spec_for(
    config: RunConfig, data: TrainingData, architecture: str, width_mult: int, attention: bool = False, **options: Any
) -> dict[str, Any]:
    """The spec (JSON) of a registered generator sized for the catalog: what inference rebuilds it
    from. `options` are further architecture arguments (e.g. `upsample`)."""
    height, width = data.model_size
    arguments = {
        "z_dim": config.model.z_dim,
        "channels": data.channels,
        "height": height,
        "width": width,
        "cardinalities": data.conditions.cardinalities,
        "width_mult": width_mult,
        "attention": attention,
        **options,
    }
    return generator_spec(architecture, arguments, data.conditions.to_json(), config.data.catalog, (data.height, data.width, data.channels), config.data.pad_to)


def fixed_grid_codes(data: TrainingData, per_row: int, rng: torch.Generator) -> torch.Tensor:
    """One row per category (or value of the first condition), so the grid reads like a catalog."""
    if not data.conditions.names:
        return torch.zeros((per_row * 4, 0), dtype=torch.long)
    rows = []
    for value in range(data.conditions.cardinalities[0]):
        matching = torch.nonzero(data.codes[:, 0] == value).flatten()
        pick = matching[torch.randint(len(matching), (per_row,), generator=rng)]
        rows.append(data.codes[pick])
    return torch.cat(rows)
