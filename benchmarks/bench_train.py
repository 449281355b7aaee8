"""Benchmark: GAN presets trained for the same wall-clock time, then scored on 10,000 samples
against the test split in the catalog's feature space; plus steady-state training throughput.

    .venv/bin/python benchmarks/bench_train.py run --preset fmnist-cgan --minutes 30 --threads 2
    .venv/bin/python benchmarks/bench_train.py throughput --preset fmnist-dcgan --steps 40
    .venv/bin/python benchmarks/bench_train.py score RUN_DIR [RUN_DIR ...]   # final evaluation
    .venv/bin/python benchmarks/bench_train.py plot RUN_DIR [RUN_DIR ...]    # FID against wall-clock
    .venv/bin/python benchmarks/bench_train.py gallery RUN_DIR|MODEL OUT.png              # one row per category
    .venv/bin/python benchmarks/bench_train.py ship RUN_DIR fmnist-cgan "training command"

Results go to benchmarks/results/ (JSON, PNG); benchmarks/RESULTS.md records them by hand.
"""

from __future__ import annotations

import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
import typer

from prodgen.config import family_class, load_config
from prodgen.data import load_catalog
from prodgen.distributed import DistributedEnv, default_device
from prodgen.fileio import write_json_atomic
from prodgen.generate import ProductGenerator
from prodgen.generate.autoencoder import NoEncoder, ProductAutoencoder
from prodgen.generate.evaluation import evaluate_generator
from prodgen.generate.reconstruction_report import evaluate_autoencoder
from prodgen.train.checkpoint import is_checkpoint
from prodgen.train.data import BatchLoader, GlobalBatches, TrainingData, read_ahead_depth
from prodgen.train.loop import SHARED_STREAM_OFFSET, build_networks, train
from prodgen.train.randomness import SharedRandom

RESULTS = Path(__file__).resolve().parent / "results"
app = typer.Typer(no_args_is_help=True)


def run_and_checkpoint(path: Path) -> tuple[Path, str]:
    """The run folder of a run or checkpoint folder, and the checkpoint folder's name ("" for a run)."""
    return (path.parent, path.name) if is_checkpoint(path) else (path, "")


def run_key(run_dir: Path, tag: str = "") -> str:
    """Names result files by run folder and its parent (runs/bench/00001-x -> bench-00001-x): run numbers restart per folder.
    A checkpoint folder is named after its run (runs/bench/00001-x/ckpt-0006045 -> bench-00001-x-ckpt-0006045), so the
    same checkpoint number in two runs folders cannot overwrite the other's results.
    A `tag` (bench-00001-x-TAG) keeps a re-measurement under a changed protocol beside the first one."""
    run_dir, checkpoint = run_and_checkpoint(run_dir.resolve())
    return "-".join(part for part in (run_dir.parent.name, run_dir.name, checkpoint, tag) if part)


TAG_OPTION = typer.Option("", help="Appended to the result files' names: a re-measurement under a changed protocol keeps the first one.")


def machine() -> dict:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": platform.processor() or platform.machine(), "gpu": gpu, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def synchronize(device: torch.device) -> None:
    """GPU kernels run asynchronously: wait for them before reading the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@app.command()
def run(preset: str, minutes: float = 30.0, threads: int = 2, runs_dir: Path = Path("runs/bench"),
        set_: list[str] | None = typer.Option(None, "--set")) -> None:
    """Train one preset for a fixed wall-clock budget (validation FID recorded over time)."""
    overrides = [f"train.max_minutes={minutes}", f"train.threads={threads}", "train.steps=10000000", *(set_ or [])]
    config = load_config(preset, overrides)
    result = train(config, runs_root=runs_dir)
    print(json.dumps({"run_dir": str(result.run_dir), "step": result.step, "best": result.best, "stopped": result.stopped_because}))


@app.command()
def throughput(preset: str, steps: int = 40, warmup: int = 5, threads: int = 2,
               set_: list[str] | None = typer.Option(None, "--set"), out: Path | None = None) -> None:
    """Real images per second of the training step alone (no evaluation, logging or checkpoints), on
    the GPU when there is one. Saved to `out`, or for presets as shipped on the CPU to results/."""
    torch.set_num_threads(threads)
    config = load_config(preset, set_ or [])
    data = TrainingData(load_catalog(config.data.catalog), config.data)
    device = default_device()
    env = DistributedEnv(device=device)
    torch.manual_seed(config.train.seed)
    family = family_class(config.family)(config, data, env)
    build_networks(family)
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    loader = BatchLoader(data, GlobalBatches(len(data), config.train.batch_size, 0, 1, config.train.seed),
                         read_ahead_depth(config.train.prefetch, device), prepare=lambda batch: batch.to(device, memory_format))
    random = SharedRandom(config.train.seed + SHARED_STREAM_OFFSET, 0, 1, device)
    read = 0

    def next_batch():
        nonlocal read
        read += 1
        return loader.next()

    for _ in range(warmup):
        family.train_step(next_batch, random)
    synchronize(device)
    read, started = 0, time.perf_counter()
    for _ in range(steps):
        family.train_step(next_batch, random)
    synchronize(device)
    loader.close()
    seconds = time.perf_counter() - started
    figures = {"preset": preset, "batch_size": config.train.batch_size, "model_size": data.model_size, "steps": steps,
               "seconds": round(seconds, 2), "real_images_per_second": round(read * config.train.batch_size / seconds, 1),
               "device": str(device), "precision": config.train.precision, "channels_last": config.train.channels_last, "machine": machine()}
    print(json.dumps(figures))
    if out is not None:
        write_json_atomic(out, figures)
    elif not set_ and device.type == "cpu":  # variants are probes; only the presets as shipped are recorded
        write_json_atomic(RESULTS / f"throughput-{preset}.json", figures)


@app.command()
def score(run_dirs: list[Path], count: int = 10_000, threads: int = 2, cas: bool = True, tag: str = TAG_OPTION) -> None:
    """Final scores of each run's best checkpoint on `count` samples against the test split, with floors."""
    torch.set_num_threads(threads)
    for run_dir in run_dirs:
        generator = ProductGenerator.load(run_dir)
        catalog = load_catalog(generator.spec["catalog"])
        out = RESULTS / f"report-{run_key(run_dir, tag)}"
        result = evaluate_generator(generator, catalog, count=count, split="test", out_dir=out, include_cas=cas)
        # What was scored travels with the scores, so a model card states the real counts and each metric's k.
        scored = {key: result[key] for key in ("reference_split", "num_samples", "num_reference", "conditional", "seed", "metric_definitions",
                                               "floor_source", "options")}
        summary = {"run": str(run_dir), "checkpoint": generator.source, **scored, "metrics": result["metrics"], "floors": result["floors"],
                   "seconds": result["seconds"], "machine": machine()}
        write_json_atomic(RESULTS / f"scores-{run_key(run_dir, tag)}.json", summary)
        print(json.dumps(summary, indent=1))
        try:  # a VAE's reconstructions too, on the same split, once
            autoencoder = ProductAutoencoder.load(run_dir)
        except NoEncoder:
            continue
        reconstruction = evaluate_autoencoder(autoencoder, catalog, "test", out_dir=RESULTS / f"reconstruction-{run_key(run_dir, tag)}")
        write_json_atomic(RESULTS / f"reconstruction-{run_key(run_dir, tag)}.json", reconstruction)
        print(json.dumps(reconstruction["metrics"], indent=1))


@app.command()
def plot(run_dirs: list[Path], out: Path = RESULTS / "fid_vs_time.png", metric: str = "fid", until: float | None = None) -> None:
    """Validation FID against wall-clock minutes for each run, one line each (up to `until` minutes: resumed runs go on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for run_dir in run_dirs:
        history = [h for h in json.loads((run_dir / "history.json").read_text()) if until is None or h["seconds"] <= 60 * until]
        axis.plot([h["seconds"] / 60 for h in history], [h[metric] for h in history], marker="o", label=f"{run_dir.parent.name}/{run_dir.name}")
    axis.set_xlabel("wall-clock minutes of training")
    axis.set_ylabel(f"validation {metric.upper()} (domain features, val split)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    print(f"plot: {out}")


@app.command()
def gallery(model: str, out: Path, per_category: int = 10, seed: int = 0, threads: int = 2) -> None:
    """A per-category sample grid (one row per category) of a run's best EMA generator or a shipped model."""
    from prodgen.generate.gallery import category_gallery

    torch.set_num_threads(threads)
    print(f"gallery: {category_gallery(ProductGenerator.load(model), out, per_category=per_category, seed=seed)}")


@app.command()
def ship(run_dir: Path, name: str, command: str) -> None:
    """Export a run's best EMA generator (and a VAE's encoder) into prodgen/assets/models/NAME with its model card."""
    from prodgen.generate.autoencoder import export_model
    from prodgen.generate.card import model_card, write_model_card
    from prodgen.generate.pipeline import SHIPPED_DIR

    generator = ProductGenerator.load(run_dir)
    scores_file = RESULTS / f"scores-{run_key(run_dir)}.json"
    scores = json.loads(scores_file.read_text()) if scores_file.exists() else None
    reconstruction_file = RESULTS / f"reconstruction-{run_key(run_dir)}.json"
    reconstruction = json.loads(reconstruction_file.read_text()) if reconstruction_file.exists() else None
    target = export_model(run_dir, SHIPPED_DIR / name)  # a VAE's encoder too
    write_model_card(target, model_card(generator, command, scores, reconstruction))
    print(f"shipped {generator.source} as {target}")


if __name__ == "__main__":
    app()
