"""Benchmark: training from a catalog that is not held in memory.

    .venv/bin/python benchmarks/bench_data.py make-catalog synthetic-200k --count 200000 --size 64
    .venv/bin/python benchmarks/bench_data.py measure NAME -- prodgen train --config catalog-64 --set data.catalog=synthetic-200k ...

`make-catalog` writes a synthetic catalog (coloured shapes on white, 10 categories, 80/10/10
splits) straight to disk in chunks, in prepare's format; `measure` runs a command under
/usr/bin/time -v and records its wall time and peak resident memory in results/memory-NAME.json.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import typer

from prodgen.data.catalog import MANIFEST, MANIFEST_VERSION, SPLITS
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.paths import catalog_dir

RESULTS = Path(__file__).resolve().parent / "results"
CATEGORIES = [f"shape-{i}" for i in range(10)]
app = typer.Typer(no_args_is_help=True)


def synthetic_images(first: int, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images from index `first`: a filled box on white whose aspect ratio and hue band
    depend on the category, position, size and exact colour on the index (deterministic)."""
    rng = np.random.default_rng(first)
    labels = (np.arange(first, first + count) * 7919) % len(CATEGORIES)
    aspect = 0.35 + 0.13 * labels  # from tall to wide
    height = rng.uniform(0.35, 0.8, count) * size
    width = np.clip(height * aspect * 2, 4, size - 2)
    top = rng.uniform(0, size - height)
    left = rng.uniform(0, size - width)
    rows = np.arange(size)[None, :, None]
    cols = np.arange(size)[None, None, :]
    inside = (rows >= top[:, None, None]) & (rows < (top + height)[:, None, None]) & (cols >= left[:, None, None]) & (cols < (left + width)[:, None, None])
    hue_band = np.stack([labels * 25 % 256, (labels * 97 + 60) % 256, (labels * 173 + 120) % 256], axis=1)
    colour = np.clip(hue_band + rng.integers(-30, 30, (count, 3)), 0, 230).astype(np.uint8)
    images = np.full((count, size, size, 3), 255, dtype=np.uint8)
    images[inside] = np.repeat(colour, inside.reshape(count, -1).sum(axis=1), axis=0)
    return images, labels


def split_of(index: int) -> str:
    """80/10/10, independent of the category (which follows index % 10)."""
    decile = (index // len(CATEGORIES)) % 10
    return SPLITS[0 if decile < 8 else 1 if decile == 8 else 2]


@app.command("make-catalog")
def make_catalog(name: str, count: int = 200_000, size: int = 64, chunk: int = 10_000) -> None:
    """Write a synthetic catalog of `count` images at size x size x 3 without holding it in memory."""
    root = catalog_dir(name)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    whole = hashlib.sha256()
    entries = []
    with atomic_path(root / "images-building.npy") as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
        for first in range(0, count, chunk):
            images, labels = synthetic_images(first, min(chunk, count - first), size)
            array[first : first + len(images)] = images
            whole.update(images.tobytes())
            for offset, (image, label) in enumerate(zip(images, labels)):
                index = first + offset
                entries.append({"file": f"synthetic/{index:07d}.png", "sha256": hashlib.sha256(image.tobytes()).hexdigest(),
                                "category": CATEGORIES[label], "split": split_of(index),
                                "width": size, "height": size, "group": None, "attributes": {}})
            print(f"{first + len(images):,} / {count:,} images", file=sys.stderr)
        array.flush()
        del array
    digest = whole.hexdigest()
    images_file = f"images-{digest[:16]}.npy"
    (root / "images-building.npy").rename(root / images_file)
    manifest = {"version": MANIFEST_VERSION, "name": name, "images_file": images_file, "images_sha256": digest, "shape": [count, size, size, 3],
                "categories": CATEGORIES, "info": {"source": "benchmarks/bench_data.py make-catalog", "prepared_at": datetime.now(UTC).isoformat(timespec="seconds")},
                "entries": entries}
    write_json_atomic(root / MANIFEST, manifest)
    print(f"catalog {name}: {count:,} images of {size}x{size}x3 ({count * size * size * 3 / 2**30:.2f} GiB) in {root}, "
          f"{time.perf_counter() - started:.0f} s")


@app.command()
def measure(name: str, command: list[str] = typer.Argument(..., help="The command to run, after --.")) -> None:
    """Run a command under /usr/bin/time -v; record its wall time and peak resident memory."""
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    throughput = re.findall(r"([\d.]+) real images/s", run.stdout)
    figures = {"command": shlex.join(command), "exit_code": run.returncode, "seconds": round(seconds, 1), "peak_rss_mib": round(peak_kib / 1024, 1),
               "real_images_per_second": float(throughput[-1]) if throughput else None, "date": datetime.now(UTC).isoformat(timespec="seconds")}
    write_json_atomic(RESULTS / f"memory-{name}.json", figures)
    print(json.dumps(figures, indent=1))
    if run.returncode:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
        raise typer.Exit(run.returncode)


if __name__ == "__main__":
    app()
