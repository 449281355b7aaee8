"""`prodgen eval`: fit the domain feature network and write evaluation reports."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from prodgen.data.catalog import load_catalog
from prodgen.errors import ProdgenError
from prodgen.metrics.evaluate import REFERENCE_SPLITS, REPORT_METRICS
from prodgen.metrics.features import cached_network_dir, fit_feature_network
from prodgen.metrics.inception import check_inception_weights
from prodgen.metrics.registry import EvalOptions, get_metric, list_metrics
from prodgen.metrics.report import metric_label
from prodgen.metrics.samples import load_samples, validate_samples
from prodgen.metrics.self_supervised import DEFAULT_PRETRAIN_EPOCHS, DEFAULT_TEMPERATURE, PRETRAIN_METHODS

eval_app = typer.Typer(help="Evaluate generated product images against a catalog.", no_args_is_help=True)
console = Console()


@eval_app.command("fit-features")
def fit_features(
    data: str = typer.Option("fashion-mnist", "--data", help="Catalog name."),
    epochs: int = typer.Option(10, help="Most epochs; training stops earlier when val accuracy stalls."),
    patience: int = typer.Option(3, help="Epochs without val improvement before stopping."),
    batch_size: int = typer.Option(128, help="Training batch size."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path | None = typer.Option(None, help="Where to save; default the cache, $PRODGEN_HOME/features/NAME."),
    max_images: int | None = typer.Option(None, help="Use at most this many images of each split (a random sample), for catalogs too large for memory."),
    pretrain: str | None = typer.Option(None, help=f"Self-supervised pre-training on the unlabelled train and val photos first: {', '.join(PRETRAIN_METHODS)}."),
    pretrain_epochs: int = typer.Option(DEFAULT_PRETRAIN_EPOCHS, help="With --pretrain: pre-training epochs."),
    temperature: float = typer.Option(DEFAULT_TEMPERATURE, help="With --pretrain: temperature of the contrastive loss."),
    extra_data: list[str] = typer.Option([], "--extra-data", help="With --pretrain: another catalog (same size and channels) whose train and val photos join the pre-training; repeatable."),
) -> None:
    """Train the catalog's feature network (a CNN classifier) whose embedding the metrics use."""
    catalog = load_catalog(data)
    extra_catalogs = [load_catalog(name) for name in extra_data]
    command = f"prodgen eval fit-features --data {data} --epochs {epochs} --patience {patience} --batch-size {batch_size} --seed {seed}"
    if max_images is not None:
        command += f" --max-images {max_images}"
    if pretrain is not None:
        command += f" --pretrain {pretrain} --pretrain-epochs {pretrain_epochs} --temperature {temperature}"
        command += "".join(f" --extra-data {name}" for name in extra_data)
    network = fit_feature_network(
        catalog,
        directory=out or cached_network_dir(data),
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        command=command,
        max_images=max_images,
        pretrain=pretrain,
        pretrain_epochs=pretrain_epochs,
        temperature=temperature,
        extra_catalogs=extra_catalogs,
    )
    config = network.config
    pretrained = ""
    if "pretraining" in config:
        facts = config["pretraining"]
        pretrained = f", after {facts['epochs']} epochs of {facts['method']} on {facts['images']:,} photos ({facts['seconds']:.0f} s)"
    console.print(
        f"Feature network for [bold]{data}[/]: test accuracy [bold]{config['test_accuracy']:.2%}[/] "
        f"(val {config['val_accuracy']:.2%}, {config['epochs_run']} epochs, {config['training_seconds']:.0f} s{pretrained}), "
        f"saved to {out or cached_network_dir(data)}"
    )


def _parse_metrics(metrics: str | None, inception_weights: Path | None) -> list[str]:
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list(REPORT_METRICS)
    for name in names:
        get_metric(name)
    if inception_weights is not None and "inception_fid" not in names:
        names.append("inception_fid")
    if "inception_fid" in names:
        check_inception_weights(inception_weights)
    return names


@eval_app.command("run")
def run(
    samples: Path | None = typer.Option(None, "--samples", help=".npy / .npz (images, labels) of uint8 NHWC, or a folder of PNGs (optionally in category sub-folders)."),
    model: str | None = typer.Option(None, "--model", help="Generator to sample from: shipped name, exported folder, run folder or checkpoint."),
    count: int = typer.Option(10_000, help="With --model: how many samples (categories in the catalog's train shares)."),
    data: str | None = typer.Option(None, "--data", help="Catalog the samples imitate (default: the model's catalog, or fashion-mnist)."),
    reference: str = typer.Option("test", help=f"Real split to compare with: {', '.join(REFERENCE_SPLITS)}."),
    metrics: str | None = typer.Option(None, help=f"Comma-separated metrics; default {','.join(REPORT_METRICS)}."),
    out: Path = typer.Option(Path("runs/eval"), help="Report folder."),
    seed: int = typer.Option(0, help="Seed for sampling, subsets, floors and CAS training."),
    floors: bool = typer.Option(True, help="Also score real images (the real-vs-real floor) for each metric."),
    inception_weights: Path | None = typer.Option(None, help="Local Inception-v3 weights (torch-fidelity's .pth) to add Inception FID."),
) -> None:
    """Score samples (a file or folder, or drawn from a generator) and write report.json and report.html."""
    from prodgen.generate.evaluation import catalog_samples, report_on_samples
    from prodgen.generate.pipeline import ProductGenerator

    if (samples is None) == (model is None):
        raise ProdgenError("Give exactly one of --samples FILE_OR_DIR or --model MODEL.")
    names = _parse_metrics(metrics, inception_weights)
    if model is not None:
        generator = ProductGenerator.load(model)
        catalog = load_catalog(data or generator.spec["catalog"])
        images, labels = catalog_samples(generator, catalog, count, seed)
        source = generator.source
    else:
        catalog = load_catalog(data or "fashion-mnist")
        images, labels = load_samples(samples, list(catalog.categories), catalog.channels)
        source = str(samples)
    images, labels = validate_samples(images, labels, (catalog.height, catalog.width, catalog.channels), catalog.num_classes, source)
    with console.status("computing metrics"):
        result = report_on_samples(catalog, images, labels, reference, names, out, seed, floors, EvalOptions(inception_weights=inception_weights))
    table = Table("Score", "Samples", "Real vs real")
    for key, value in result["metrics"].items():
        floor = result["floors"].get(key)
        table.add_row(metric_label(key, result.get("metric_definitions")), f"{value:.4g}", "" if floor is None else f"{floor:.4g}")
    console.print(table)
    for name, why in result["skipped"].items():
        console.print(f"skipped {name}: {why}")
    console.print(f"Report: {result['report_files']['html']} and {result['report_files']['json']}")


@eval_app.command("autoencoder")
def autoencoder_scores(
    model: str = typer.Option(..., "--model", help="A VAE or VAE-GAN: shipped name, exported folder, run folder or checkpoint."),
    split: str = typer.Option("test", help=f"Real split: {', '.join(REFERENCE_SPLITS)}."),
    count: int | None = typer.Option(None, help="Score a random sample of this many products (default: the whole split)."),
    seed: int = typer.Option(0, help="Seed of the posterior samples, the product sample and the transfer targets."),
    out: Path = typer.Option(Path("runs/eval-autoencoder"), help="Folder for reconstruction.json and reconstructions.png."),
) -> None:
    """Test ELBO and bits/dim, reconstruction MSE/PSNR/SSIM and transfer accuracy of a VAE or VAE-GAN."""
    from prodgen.generate.autoencoder import ProductAutoencoder
    from prodgen.generate.reconstruction_report import evaluate_autoencoder

    if split not in REFERENCE_SPLITS:
        raise ProdgenError(f"Unknown split {split!r}; choose one of {', '.join(REFERENCE_SPLITS)}.")
    autoencoder = ProductAutoencoder.load(model)
    with console.status(f"scoring reconstructions on the {split} split"):
        result = evaluate_autoencoder(autoencoder, load_catalog(autoencoder.spec["catalog"]), split, count, seed, out)
    table = Table("Score", "Value")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    console.print(f"{result['num_images']} {split} products; report: {out / 'reconstruction.json'} and {out / 'reconstructions.png'}")


@eval_app.command("metrics")
def metrics_list() -> None:
    """List the available metrics."""
    table = Table("Name", "Needs labels", "Fast", "Description")
    for spec in list_metrics():
        table.add_row(spec.name, "yes" if spec.needs_labels else "", "yes" if spec.fast else "", spec.description)
    console.print(table)

