"""Baseline for the VAE family: the MLP VAE of the PyTorch examples repository (pytorch/examples,
vae/main.py), rewritten here from its published description, on prodgen's Fashion-MNIST catalog.

    .venv/bin/python benchmarks/baseline_mlp_vae.py --minutes 30 --threads 1 --seed 0
    .venv/bin/prodgen eval run --samples benchmarks/results/mlp-vae-seed0-samples.npz --data fashion-mnist

The model: encoder 784 -> 400 (ReLU) -> two 20-d heads (mean, log-variance); decoder 20 -> 400
(ReLU) -> 784 (sigmoid). Loss per image: binary cross-entropy summed over the 784 pixels plus the KL
of the posterior from N(0, I); Adam, learning rate 1e-3, batches of 128 (the loss is summed over the
batch, as in the example). Inputs are the [0, 1] intensities, black background as in the original.

Training runs for a wall-clock budget (evaluation included). Every `--eval-every` epochs, and when
the budget ends, the validation negative ELBO (nats per image) is measured on the whole val split;
the state with the best one is kept (model choice on validation only; the test split is not read).
At the end, 10,000 images decoded from z ~ N(0, I) with a fixed seed (the decoder's mean, sigmoid
output, as the example's sample grid shows) go to an .npz with key `images` (uint8 (N, 28, 28, 1),
no labels: the model is unconditional), with a JSON summary beside it.

Bits per dimension here are the negative ELBO under the decoder's Bernoulli likelihood of continuous
[0, 1] intensities, divided by 784 ln 2: a baseline figure, not comparable with bits/dim of a
likelihood over the 256 discrete pixel values (prodgen.metrics.reconstruction).
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import typer
from torch import nn
from torch.nn import functional as F

from prodgen.data import load_catalog
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.metrics.reconstruction import bits_per_dim

RESULTS = Path(__file__).resolve().parent / "results"
PIXELS = 28 * 28
HIDDEN = 400
LATENT = 20
app = typer.Typer(add_completion=False)


class MLPVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(PIXELS, HIDDEN)
        self.mean = nn.Linear(HIDDEN, LATENT)
        self.log_var = nn.Linear(HIDDEN, LATENT)
        self.decode_hidden = nn.Linear(LATENT, HIDDEN)
        self.decode_out = nn.Linear(HIDDEN, PIXELS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.hidden(x))
        return self.mean(h), self.log_var(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder before its sigmoid: the loss takes logits (binary_cross_entropy_with_logits
        computes the same BCE as sigmoid then BCE, without log(0) on saturated pixels)."""
        return self.decode_out(F.relu(self.decode_hidden(z)))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.encode(x)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        z = mean + noise * torch.exp(0.5 * log_var)  # reparameterisation
        return self.decode_logits(z), mean, log_var


def negative_elbo(model: MLPVAE, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """BCE summed over pixels + KL(q(z|x) || N(0, I)), summed over the batch (nats)."""
    logits, mean, log_var = model(x, generator)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    return reconstruction + kl


def as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28, 1) -> float (N, 784) in [0, 1]."""
    return torch.from_numpy(images.reshape(len(images), PIXELS).astype(np.float32) / 255.0)


@torch.no_grad()
def validation_nats(model: MLPVAE, val: torch.Tensor, seed: int, batch: int = 1000) -> float:
    """Negative ELBO per image on the val split: one z per image, drawn with the same seed at every
    evaluation so that changes between evaluations come from the model, not the noise."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total = sum(negative_elbo(model, val[i : i + batch], generator).item() for i in range(0, len(val), batch))
    model.train()
    return total / len(val)


@torch.no_grad()
def decode_samples(model: MLPVAE, count: int, seed: int) -> np.ndarray:
    """`count` decoder means for z ~ N(0, I) as uint8 (N, 28, 28, 1)."""
    model.eval()
    z = torch.randn(count, LATENT, generator=torch.Generator().manual_seed(seed))
    probabilities = torch.sigmoid(model.decode_logits(z))
    return (probabilities * 255).round().to(torch.uint8).reshape(count, 28, 28, 1).numpy()


@app.command()
def main(
    minutes: float = typer.Option(30.0, help="Wall-clock training budget, evaluation included (fractions allowed)."),
    threads: int = typer.Option(1, help="torch CPU threads."),
    seed: int = typer.Option(0, help="Seed for initialisation, shuffling and the reparameterisation noise."),
    eval_every: int = typer.Option(1, help="Measure the validation negative ELBO every this many epochs (and at the end)."),
    batch_size: int = typer.Option(128, help="Batch size (the example's 128)."),
    lr: float = typer.Option(1e-3, help="Adam learning rate (the example's 1e-3)."),
    num_samples: int = typer.Option(10_000, help="Samples decoded from the prior at the end."),
    sample_seed: int = typer.Option(0, help="Seed of the prior draws for the samples file."),
    out_dir: Path = typer.Option(RESULTS, help="Where the .npz and the JSON summary go."),
    name: str | None = typer.Option(None, help="File name stem; default mlp-vae-seed{SEED}."),
) -> None:
    """Train the MLP VAE baseline for a wall-clock budget and write its samples and summary."""
    if minutes <= 0 or eval_every < 1 or num_samples < 1:
        raise typer.BadParameter("--minutes must be > 0, --eval-every and --num-samples >= 1")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    stem = name or f"mlp-vae-seed{seed}"

    catalog = load_catalog("fashion-mnist")
    train_images, _ = catalog.subset("train")
    val_images, _ = catalog.subset("val")
    if train_images.shape[1:] != (28, 28, 1):
        raise typer.BadParameter(f"expected 28x28x1 images, the catalog has {train_images.shape[1:]}")
    train_x, val_x = as_input(train_images), as_input(val_images)

    model = MLPVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed)
    budget = 60.0 * minutes
    history: list[dict] = []
    best_nats, best_state, best_epoch = math.inf, None, None
    epochs = steps = 0
    eval_seconds = 0.0
    started = time.perf_counter()

    def evaluate(epoch: float) -> None:
        nonlocal best_nats, best_state, best_epoch, eval_seconds
        t0 = time.perf_counter()
        nats = validation_nats(model, val_x, seed=seed + 1)
        eval_seconds += time.perf_counter() - t0
        history.append({"epoch": round(epoch, 3), "step": steps, "seconds": round(time.perf_counter() - started, 2), "val_nats": nats})
        print(json.dumps(history[-1]), flush=True)
        if nats < best_nats:
            best_nats, best_state, best_epoch = nats, copy.deepcopy(model.state_dict()), round(epoch, 3)

    out_of_time, partial = False, 0.0
    while not out_of_time:
        order = torch.from_numpy(shuffle.permutation(len(train_x)))
        done_in_epoch = 0
        for start in range(0, len(order), batch_size):
            batch = train_x[order[start : start + batch_size]]
            loss = negative_elbo(model, batch, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            done_in_epoch += len(batch)
            if time.perf_counter() - started >= budget:
                out_of_time = True
                break
        if done_in_epoch == len(train_x):
            epochs += 1
            if not out_of_time and epochs % eval_every == 0:
                evaluate(epochs)
        else:
            partial = done_in_epoch / len(train_x)
    if not history or history[-1]["step"] != steps:
        evaluate(epochs + partial)  # the state the budget ended on is a candidate too
    seconds = time.perf_counter() - started

    model.load_state_dict(best_state)
    samples = decode_samples(model, num_samples, sample_seed)
    samples_file = out_dir / f"{stem}-samples.npz"
    with atomic_path(samples_file) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, images=samples)

    summary = {
        "model": "MLP VAE of pytorch/examples vae/main.py (784-400-20, BCE + KL), rewritten",
        "catalog": "fashion-mnist",
        "command": f"benchmarks/baseline_mlp_vae.py --minutes {minutes} --threads {threads} --seed {seed} --eval-every {eval_every}",
        "minutes_budget": minutes,
        "epochs": round(epochs + partial, 3),
        "full_epochs": epochs,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seconds": round(seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "best_epoch": best_epoch,
        "best_val_negative_elbo_nats": round(best_nats, 3),
        "best_val_bits_per_dim_bernoulli": round(bits_per_dim(best_nats, PIXELS), 4),
        "bits_per_dim_note": (
            "negative ELBO under the decoder's Bernoulli likelihood of continuous [0, 1] intensities, / (784 ln 2); "
            "not comparable with a discrete 256-level likelihood's bits/dim"
        ),
        "val_images": len(val_x),
        "val_estimate": "one z per val image, fixed seed",
        "samples_file": str(samples_file),
        "num_samples": num_samples,
        "sample_seed": sample_seed,
        "samples_are": "decoder means (sigmoid) for z ~ N(0, I), rounded to uint8",
        "history": history,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    write_json_atomic(out_dir / f"{stem}.json", summary)
    print(json.dumps({k: summary[k] for k in ("epochs", "steps", "seconds", "best_val_negative_elbo_nats", "best_val_bits_per_dim_bernoulli")}))
    print(f"samples: {samples_file}\nsummary: {out_dir / f'{stem}.json'}")


if __name__ == "__main__":
    app()
