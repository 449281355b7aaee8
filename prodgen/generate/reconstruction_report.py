"""Score a VAE or VAE-GAN on a real split, beside the sample scores of `prodgen eval run`: the
negative ELBO and bits per dimension, reconstruction MSE, PSNR and SSIM, and for `transfer` the share
of products decoded under another category that the catalog's classifier assigns to that category."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodgen.data.catalog import Catalog, read_rows
from prodgen.data.conditions import catalog_conditions
from prodgen.errors import ProdgenError
from prodgen.fileio import write_json_atomic
from prodgen.generate.autoencoder import ProductAutoencoder
from prodgen.imaging import labelled_rows, save_png
from prodgen.metrics.reconstruction import bits_per_dim, mse, psnr, ssim
from prodgen.models.sampling import to_model_range
from prodgen.models.vae import elbo_terms

SHOWN = 8  # products in each row of the report's picture (per category when the model knows categories)


@torch.no_grad()
def negative_elbo(autoencoder: ProductAutoencoder, images: np.ndarray, codes: torch.Tensor, seed: int, batch_size: int = 500) -> np.ndarray:
    """-ELBO per image in nats: one posterior sample per image (fixed seed), the decoder's discretised Gaussian."""
    spec = autoencoder.spec
    height, width, _ = spec["input_size"]
    log_scale = torch.tensor(spec["log_scale"]).view(1, -1, 1, 1)
    generator = torch.Generator().manual_seed(seed)
    values = []
    for start in range(0, len(images), batch_size):
        x = to_model_range(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])), spec["pad_to"], spec["background"])
        part = codes[start : start + batch_size]
        conditions = part if part.shape[1] else None
        noise = torch.randn((len(x), spec["arguments"]["z_dim"]), generator=generator)
        log_px, kl, _, _ = elbo_terms(autoencoder.encoder, autoencoder.generator.module, log_scale, x, conditions, noise, height, width)
        values.append((kl - log_px).numpy())
    return np.concatenate(values)


def evaluate_autoencoder(autoencoder: ProductAutoencoder, catalog: Catalog, split: str = "test", count: int | None = None, seed: int = 0,
                         out_dir: Path | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    names = autoencoder.conditions.names
    if catalog.name != autoencoder.spec["catalog"]:
        raise ProdgenError(f"The model was trained on {autoencoder.spec['catalog']!r}, not {catalog.name!r}.")
    indices = catalog.split_indices(split)
    if count is not None and len(indices) > count:
        indices = np.sort(np.random.default_rng(seed).choice(indices, size=count, replace=False))
    images = read_rows(catalog.images, indices)
    _, all_codes = catalog_conditions(catalog, names)
    codes = torch.from_numpy(all_codes[indices])

    elbo = negative_elbo(autoencoder, images, codes, seed)
    dims = int(np.prod(images.shape[1:]))
    batches = range(0, len(images), 500)
    means = torch.cat([autoencoder.encode(images[i : i + 500], codes[i : i + 500]) for i in batches])  # reconstruction and transfer decode these
    rebuilt = np.concatenate([autoencoder.generator.draw(means[i : i + 500], codes[i : i + 500]) for i in batches])
    peak_ratio = psnr(images, rebuilt)
    result: dict[str, Any] = {
        "model": autoencoder.generator.source,
        "catalog": catalog.name,
        "split": split,
        "num_images": len(images),
        "seed": seed,
        "metrics": {
            "negative_elbo_nats": float(elbo.mean()),
            "bits_per_dim": bits_per_dim(float(elbo.mean()), dims),
            "mse": float(mse(images, rebuilt).mean()),
            "psnr_median": float(np.median(peak_ratio)),
            "ssim": float(ssim(images, rebuilt).mean()),
        },
        "definitions": {
            "negative_elbo_nats": "KL(q(z|x) || N(0, I)) - log p(x|z), one posterior sample per image, discretised Gaussian decoder over 256 levels",
            "bits_per_dim": f"negative ELBO / ({dims} dimensions x ln 2): an upper bound on the model's code length",
            "psnr_median": "median over images of 10 log10(255^2 / MSE), on the posterior mean's reconstruction",
            "ssim": "mean SSIM (Wang et al. 2004; Gaussian window, sigma 1.5) of the posterior mean's reconstruction",
        },
    }
    transferred = None
    if "category" in names:
        column = names.index("category")
        categories = autoencoder.conditions.values[column]
        rng = np.random.default_rng(seed + 1)
        # a different category for every product, uniformly among the others
        targets = (codes[:, column].numpy() + rng.integers(1, len(categories), len(images))) % len(categories)
        target_codes = codes.clone()
        target_codes[:, column] = torch.from_numpy(targets)
        transferred = np.concatenate([autoencoder.generator.draw(means[i : i + 500], target_codes[i : i + 500]) for i in batches])
        result["metrics"]["transfer_accuracy"] = float((autoencoder.photos.classify(transferred) == targets).mean())
        result["metrics"]["reconstruction_class_consistency"] = float((autoencoder.photos.classify(rebuilt) == codes[:, column].numpy()).mean())
        result["definitions"]["transfer_accuracy"] = "share of products decoded under another (random) category that the catalog's feature network assigns to that category"
    result["seconds"] = round(time.perf_counter() - started, 1)
    if out_dir is not None:
        save_png(labelled_rows(_picture_rows(autoencoder, images, rebuilt, transferred, codes), ncols=SHOWN), out_dir / "reconstructions.png")
        write_json_atomic(out_dir / "reconstruction.json", result)
    return result


def _picture_rows(autoencoder: ProductAutoencoder, images: np.ndarray, rebuilt: np.ndarray, transferred: np.ndarray | None,
                  codes: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """Originals above their reconstructions (and decodings under another category): the first
    products of each category, so every category is seen, or the first products of the split."""
    names = autoencoder.conditions.names
    if "category" not in names:
        return [("original", images[:SHOWN]), ("reconstruction", rebuilt[:SHOWN])]
    column = names.index("category")
    rows = []
    for code, category in enumerate(autoencoder.conditions.values[column]):
        chosen = np.flatnonzero(codes[:, column].numpy() == code)[:SHOWN]
        if len(chosen) == 0:
            continue
        rows += [(str(category), images[chosen]), ("  reconstructed", rebuilt[chosen]), ("  other category", transferred[chosen])]
    return rows
