"""A model family that lives only in the tests: a small denoising autoencoder without BatchNorm.

It proves the family interface is enough (the loop trains it with no change), and, having no
BatchNorm, a 2-process run of it must equal a 1-process run with the same global batch.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from prodgen.config import Section
from prodgen.imaging import make_grid
from prodgen.models.sampling import to_uint8
from prodgen.train.data import TrainingData
from prodgen.train.families import register_family
from prodgen.train.family import Family


class ToyModelConfig(Section):
    hidden: int = Field(16, ge=1)
    z_dim: int = Field(4, ge=1)


class ToyAutoencoder(nn.Module):
    def __init__(self, pixels: int, hidden: int, z_dim: int):
        super().__init__()
        self.encode = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden), nn.Tanh(), nn.Linear(hidden, z_dim))
        self.decode = nn.Sequential(nn.Linear(z_dim, hidden), nn.Tanh(), nn.Linear(hidden, pixels), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images)).view_as(images)


@register_family
class ToyFamily(Family):
    name = "toy-autoencoder"
    model_config = ToyModelConfig
    ema = {"net_ema": "net"}
    export_network = "net_ema"

    @classmethod
    def check_config(cls, config):
        return [] if config.eval.metric == "mse" else [f"eval.metric: the toy autoencoder is validated by mse, not {config.eval.metric!r}"]

    def build_networks(self):
        height, width = self.data.model_size
        return {"net": ToyAutoencoder(self.data.channels * height * width, self.config.model.hidden, self.config.model.z_dim)}

    def build_optimizers(self):
        return {"opt": torch.optim.Adam(self.nets["net"].parameters(), lr=self.config.train.lr_g)}

    def train_step(self, next_batch, random):
        images = next_batch().images
        noisy = images + 0.1 * random.normal(len(images), *images.shape[1:])
        with self.autocast():
            loss = F.mse_loss(self.parallel["net"](noisy), images)
        self.apply(loss, "opt")
        return {"loss": loss.item()}

    def fixed_inputs(self, generator):
        return {"images": self.data.batch(torch.arange(8)).images}

    @torch.no_grad()
    def sample_grid(self, fixed) -> np.ndarray:
        images = fixed["images"].to(self.env.device)
        return make_grid(np.concatenate([to_uint8(images), to_uint8(self.nets["net_ema"](images))]), ncols=8)

    def make_validator(self, catalog, say):
        return TrainingData(catalog, self.config.data, split="val")

    @torch.no_grad()
    def validate(self, validator):
        images = validator.batch(torch.arange(len(validator))).images.to(self.env.device)
        value = F.mse_loss(self.nets["net_ema"](images), images).item()
        return {"mse": value, "selection": value}

    def inference_spec(self):
        return {"architecture": "toy-autoencoder", "hidden": self.config.model.hidden, "z_dim": self.config.model.z_dim}
