"""Benchmark: generation a shop can use, on the shipped fashion-mnist model (issue: generation).

    .venv/bin/python benchmarks/bench_generate.py backends --threads 2        # forward passes at batch 256, per backend
    .venv/bin/python benchmarks/bench_generate.py batch -n 20000 --processes 2 # `prodgen generate` end to end, to disk
    .venv/bin/python benchmarks/bench_generate.py post -n 2000                # the post-processing chain, images/s
    .venv/bin/python benchmarks/bench_generate.py kill -n 100000              # peak memory; SIGKILL halfway + re-run = uninterrupted
    .venv/bin/python benchmarks/bench_generate.py inversion --count 100       # nearest-neighbour rank of inverted test products

Each writes benchmarks/results/generate-<name>.json; benchmarks/RESULTS.md records them by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import typer

from prodgen.fileio import write_json_atomic
from prodgen.generate.jobs import MANIFEST, PARTS
from prodgen.generate.pipeline import ProductGenerator
from prodgen.models.sampling import BLOCK, block_latents

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import RESULTS, machine  # noqa: E402

app = typer.Typer(no_args_is_help=True)
MODEL = "fmnist-cgan"
PRODGEN = [sys.executable, "-c", "from prodgen.cli import main; main()"]


def record(name: str, figures: dict) -> None:
    figures = {**figures, "machine": machine()}
    write_json_atomic(RESULTS / f"generate-{name}.json", figures)
    print(json.dumps(figures, indent=1))


@app.command()
def backends(batch: int = 256, repeats: int = 20, threads: int = 2) -> None:
    """Images per second of one forward pass at `batch`, eager against TorchScript and ONNX Runtime (median of `repeats`)."""
    torch.set_num_threads(threads)
    generator = ProductGenerator.load(MODEL)
    z = block_latents(0, 0, generator.spec["arguments"]["z_dim"])[:batch]
    codes = torch.arange(batch)[:, None] % 10
    figures = {"batch": batch, "threads": threads}
    with torch.no_grad():
        reference = generator.module(z, codes)
        for backend in ("eager", "torchscript", "onnx"):
            generator.use_backend(backend)
            out = generator.forward(z, codes)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                generator.forward(z, codes)
                times.append(time.perf_counter() - started)
            figures[backend] = {"images_per_second": round(batch / float(np.median(times)), 1),
                                "max_abs_difference_in_0_1": float((out - reference).abs().max() / 2)}
    fastest = max(("torchscript", "onnx"), key=lambda b: figures[b]["images_per_second"])
    figures["fastest"] = fastest
    figures["speed_up_over_eager"] = round(figures[fastest]["images_per_second"] / figures["eager"]["images_per_second"], 2)
    record(f"backends-{threads}threads", figures)


def run_generate(out: Path, count: int, processes: int, extra: list[str], threads: int) -> tuple[float, float]:
    """Wall seconds and the children's peak resident memory (GiB) of one `prodgen generate` job."""
    command = [*PRODGEN, "generate", "--model", MODEL, "-n", str(count), "--out", str(out), *extra]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m", "prodgen.cli", *command[3:]]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def file_creation_ms(count: int = 5000) -> float:
    """What creating one small file costs on this machine's temporary folder right now (write, then
    rename into place): the floor under any images/s figure, and it varies with the host."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        for i in range(count):
            tmp = os.path.join(folder, f".{i}.tmp")
            with open(tmp, "wb") as handle:
                handle.write(b"x" * 900)
            os.replace(tmp, os.path.join(folder, f"{i}.png"))
        return round((time.perf_counter() - started) / count * 1000, 3)


@app.command()
def batch(n: int = typer.Option(20000, "-n", "--count"), processes: int = 2, backend: str = "onnx", image_format: str = typer.Option("png", "--format"),
          tar: bool = False) -> None:
    """`prodgen generate -n N` to disk, one process per core (torchrun), no post-processing: images/s end to end."""
    creation = file_creation_ms()
    with tempfile.TemporaryDirectory() as folder:
        extra = ["--backend", backend, "--format", image_format, *(["--tar"] if tar else [])]
        seconds, peak = run_generate(Path(folder) / "out", n, processes, extra, threads=1)
        written = len((Path(folder) / "out" / MANIFEST).read_text().splitlines())
    record(f"batch-{processes}proc-{backend}{'-tar' if tar else ''}", {"images": n, "written": written, "processes": processes, "backend": backend,
                                                                           "format": image_format, "tar": tar,
                                                 "seconds": round(seconds, 2), "images_per_second": round(n / seconds, 1), "peak_rss_gib": round(peak, 3),
                                                 "file_creation_ms_before": creation})


@app.command()
def post(n: int = typer.Option(2000, "-n", "--count"), chain: str = "denoise,autocontrast,white-bg,upscale:256", threads: int = 2) -> None:
    """The chain on n generated images, in one process per core: images/s (the sampling is not counted)."""
    from concurrent.futures import ProcessPoolExecutor

    from prodgen.generate.postprocess import apply_chain, parse_chain

    images = ProductGenerator.load(MODEL).sample(n, seed=0)
    steps = parse_chain(chain)
    started = time.perf_counter()
    with ProcessPoolExecutor(threads) as pool:
        shapes = list(pool.map(_chain_one, [(image, chain) for image in images], chunksize=64))
    seconds = time.perf_counter() - started
    per_step = {}
    for step in steps:  # one process, each step alone on what the steps before it made
        state = [image for image in images[:200]]
        for earlier in steps[: steps.index(step)]:
            state = [apply_chain(image, [earlier]) for image in state]
        started_step = time.perf_counter()
        for image in state:
            apply_chain(image, [step])
        per_step[str(step)] = round(200 / (time.perf_counter() - started_step), 1)
    record("post", {"images": n, "chain": chain, "processes": threads, "output_shape": list(shapes[0]), "seconds": round(seconds, 2),
                    "images_per_second": round(n / seconds, 1), "one_process_images_per_second_per_step": per_step})


def _chain_one(job: tuple[np.ndarray, str]) -> tuple[int, ...]:
    from prodgen.generate.postprocess import apply_chain, parse_chain

    image, chain = job
    return apply_chain(image, parse_chain(chain)).shape


def digest(folder: Path) -> tuple[int, str]:
    """How many files, and one SHA-256 over their names and bytes (the job's unit parts excluded)."""
    total = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for path in files:
        total.update(path.name.encode())
        total.update(path.read_bytes())
    return len(files), total.hexdigest()


@app.command()
def kill(n: int = typer.Option(100_000, "-n", "--count"), backend: str = "onnx") -> None:
    """An uninterrupted job (its peak memory), and the same job SIGKILLed halfway then re-run: the same files?"""
    extra = ["--backend", backend]
    with tempfile.TemporaryDirectory() as folder:
        whole = Path(folder) / "whole"
        seconds, peak = run_generate(whole, n, 1, extra, threads=2)
        killed = Path(folder) / "killed"
        command = [*PRODGEN, "generate", "--model", MODEL, "-n", str(n), "--out", str(killed), *extra]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        half = -(-n // BLOCK) // 2
        while process.poll() is None and len(list((killed / PARTS).glob("*.jsonl"))) < half:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_at_kill = len(list(killed.glob("*.png")))  # complete images only: each is renamed into place whole
        rerun_seconds, _ = run_generate(killed, n, 1, extra, threads=2)
        same = digest(whole) == digest(killed)
        files = digest(whole)[0]
    record("kill", {"images": n, "backend": backend, "seconds": round(seconds, 2), "peak_rss_gib": round(peak, 3),
                    "images_on_disk_at_kill": done_at_kill, "rerun_seconds": round(rerun_seconds, 2), "files": files,
                    "rerun_equals_uninterrupted": same})


@app.command()
def inversion(count: int = 100, steps: int = 300, restarts: int = 8, threads: int = 2) -> None:
    """Invert `count` test products (category from the classifier, as for a photo); for each, the rank of
    its own original among all test products by pixel distance to the inverted drawing (1: nearest)."""
    from prodgen.data import load_catalog
    from prodgen.generate.inversion import invert
    from prodgen.generate.photos import ProductPhotos
    from prodgen.imaging import make_grid, save_png

    torch.set_num_threads(threads)
    generator = ProductGenerator.load(MODEL)
    test, _ = load_catalog(generator.spec["catalog"]).subset("test")
    picked = np.sort(np.random.default_rng(0).choice(len(test), count, replace=False))
    photos = test[picked]
    codes = ProductPhotos(generator.spec, generator.conditions).own_codes(photos, {})
    started = time.perf_counter()
    found = invert(generator, photos, codes, steps=steps, restarts=restarts)
    seconds = time.perf_counter() - started
    flat = test.reshape(len(test), -1).astype(np.float32)
    ranks = []
    for k, drawn in enumerate(found.images):
        distances = ((flat - drawn.reshape(-1).astype(np.float32)) ** 2).sum(axis=1)
        ranks.append(int((distances < distances[picked[k]]).sum()) + 1)
    save_png(make_grid(np.concatenate([photos[:20], found.images[:20]]), ncols=20), RESULTS / "generate-inversion.png")
    record("inversion", {"products": count, "steps": steps, "restarts": restarts, "seconds": round(seconds, 1),
                         "median_rank": float(np.median(ranks)), "share_rank_1": float(np.mean(np.array(ranks) == 1)), "worst_rank": int(max(ranks)),
                         "pixel_mse_median": float(np.median(found.pixel_mse)), "ssim_median": float(np.median(found.ssim))})


if __name__ == "__main__":
    app()
