"""Generation jobs, from 16 images to millions: rows of (conditions, count, seed), each cut into the
aligned blocks of BLOCK images that sampling computes (prodgen.models.sampling). Units (row, block)
are dealt round-robin to the processes torchrun starts, on one machine or many; a process holds one
block in memory at a time and writes each image (metadata embedded, JSON beside it) as it goes.

A unit is complete when its manifest part exists, written after its images. A re-run (after a crash,
a SIGKILL, or of the same command) skips complete units and redoes the others, which rewrites the
same bytes: image i of a row is the same whatever process made it. Rank 0 then joins the parts into
`manifest.jsonl`, one line per image in plan order, and draws the contact sheet."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch.distributed as dist
from PIL import Image

from prodgen.distributed import DistributedEnv
from prodgen.errors import ProdgenError
from prodgen.fileio import write_bulk, write_text_atomic
from prodgen.generate.metadata import image_record
from prodgen.generate.outputs import FORMATS, check_format, encoded_files, write_image
from prodgen.generate.pipeline import ProductGenerator, check_sampling
from prodgen.generate.postprocess import apply_chain, parse_chain
from prodgen.imaging import labelled_rows, save_png
from prodgen.models.sampling import BLOCK

MANIFEST = "manifest.jsonl"
PARTS = ".prodgen-job"  # unit manifests, named by their row's digest (model weights, conditions, seed, options) and block
SHEET_COLUMNS, SHEET_LIMIT, THUMBNAIL = 8, 256, 128  # the contact sheet shows a job's first 256 images, at most 128 px a side


@dataclass(frozen=True)
class Row:
    """`count` images of one condition query from one seed's stream (images 0 .. count - 1)."""

    asked: dict[str, str]
    count: int
    seed: int = 0

    def label(self) -> str:
        return ("-".join(value for _, value in sorted(self.asked.items())) or "sample").replace("/", "-").replace(" ", "_")

    def file_stem(self, index: int) -> str:
        return f"{self.label()}-{self.seed}-{index:0{max(4, len(str(self.count - 1)))}d}"


@dataclass(frozen=True)
class Job:
    model: str  # as the metadata names it: a shipped name or an absolute path
    rows: list[Row] = field(default_factory=list)
    truncation: float = 1.0
    format: str = "png"
    post: str = ""
    backend: str = "eager"
    tar: bool = False  # each block as one tar file (WebDataset layout) instead of two loose files per image

    def row_key(self, row: Row, weights_sha256: str) -> str:
        """What decides a row's images' bytes, as a name: rows added to a plan leave the others' parts valid."""
        described = json.dumps({"weights": weights_sha256, "row": asdict(row), "truncation": self.truncation, "format": self.format,
                                "post": self.post, "backend": self.backend, "model": self.model, "tar": self.tar}, sort_keys=True)
        return hashlib.sha256(described.encode()).hexdigest()[:16]

    def units(self) -> list[tuple[int, int]]:
        return [(row, block) for row, spec in enumerate(self.rows) for block in range(-(-spec.count // BLOCK))]


def read_plan(path: Path, seed: int) -> list[Row]:
    """A CSV with a `count` column and condition columns (`category`, attributes), optionally `seed`;
    row k without a seed uses `seed + k`, so two rows of one category give different images."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            table = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ProdgenError(f"Cannot read the plan {path}: {exc}") from None
    if not table or "count" not in table[0]:
        raise ProdgenError(f"The plan {path} needs a header with a count column, e.g. category,count, and at least one row.")
    rows = []
    for k, line in enumerate(table, start=2):
        try:
            count = int(line["count"])
            row_seed = int(line["seed"]) if line.get("seed") not in (None, "") else seed + k - 2
        except ValueError:
            raise ProdgenError(f"{path}, line {k}: count and seed must be whole numbers, got {line.get('count')!r} and {line.get('seed')!r}.") from None
        if count < 1:
            raise ProdgenError(f"{path}, line {k}: count must be at least 1, got {count}.")
        asked = {name: value.strip() for name, value in line.items() if name not in ("count", "seed") and name and value and value.strip()}
        rows.append(Row(asked, count, row_seed))
    return rows


def _unit_part(parts: Path, row_key: str, block: int) -> Path:
    return parts / f"{row_key}-block{block:07d}.jsonl"


def _complete(part: Path, out: Path) -> bool:
    """The unit's part exists and what it lists is still there and not empty: each image with its
    JSON, or the block's tar. Files are not synced to the disk one by one (that would cost more than
    making them): a SIGKILL loses nothing the kernel has, and after a power cut a file whose data
    never reached the disk is empty, so its unit is made again."""
    if not part.exists():
        return False
    entries = [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines()]
    if entries and "shard" in entries[0]:
        return _size(out / entries[0]["shard"]) > 0
    return all(_size(out / e["file"]) > 0 and _size((out / e["file"]).with_suffix(".json")) > 0 for e in entries)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A tar of (name, bytes), the same bytes for the same members (no time stamps or owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _run_unit(generator: ProductGenerator, job: Job, row: Row, block: int, steps: list, digest: str, out: Path) -> list[str]:
    """The unit's images written; returns its manifest lines (the file's name [and its tar], then its metadata)."""
    first = block * BLOCK
    count = min(BLOCK, row.count - first)
    images = generator.sample(count, row.asked, seed=row.seed, first_index=first, truncation=job.truncation)
    codes = generator.codes_for(count, row.asked, row.seed, first).tolist()
    chain, suffix = [str(step) for step in steps], FORMATS[job.format][0]
    shard = f"{row.label()}-{row.seed}-block{block:07d}.tar" if job.tar else None
    lines, members = [], []
    for offset, (pixels, row_codes) in enumerate(zip(images, codes)):
        index = first + offset
        record = image_record(model=job.model, model_sha256=digest, seed=row.seed, index=index, asked=dict(row.asked),
                              conditions=generator.conditions.decode(row_codes), truncation=job.truncation, post=chain,
                              backend=job.backend, format=job.format)
        stem = row.file_stem(index)
        if shard:
            metadata, data, sidecar = encoded_files(apply_chain(pixels, steps), record)
            members += [(stem + suffix, data), (stem + ".json", sidecar)]
            lines.append(f'{{"file": {json.dumps(stem + suffix)}, "shard": {json.dumps(shard)}, {metadata[1:]}\n')
        else:
            metadata = write_image(out / (stem + suffix), apply_chain(pixels, steps), record, bulk=True)
            lines.append(f'{{"file": {json.dumps(stem + suffix)}, {metadata[1:]}\n')
    if shard:
        write_bulk(str(out / shard), tar_bytes(members))
    return lines


@dataclass
class JobResult:
    written: int
    reused: int
    manifest: Path | None  # on rank 0


def run_job(generator: ProductGenerator, job: Job, out: Path, env: DistributedEnv | None = None,
            progress: Callable[[int], Callable[[int], None]] | None = None) -> JobResult:
    """Make (or finish) a job's images in `out`; under torchrun, this rank's share of the units."""
    env = env or DistributedEnv()
    check_format(job.format)
    steps = parse_chain(job.post)
    if not job.rows:
        raise ProdgenError("The job has no rows.")
    for row in job.rows:  # a bad count, truncation, category or attribute fails before anything is written
        check_sampling(row.count, job.truncation)
        generator.codes_for(1, row.asked, row.seed)
    generator.use_backend(job.backend)
    digest = generator.weights_sha256
    parts = out / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    keys = [job.row_key(row, digest) for row in job.rows]
    mine = [unit for k, unit in enumerate(job.units()) if k % env.world_size == env.rank]
    advance = progress(sum(min(BLOCK, job.rows[r].count - b * BLOCK) for r, b in mine)) if progress else None
    written = reused = 0
    for row_index, block in mine:
        part = _unit_part(parts, keys[row_index], block)
        row = job.rows[row_index]
        if _complete(part, out):
            done = min(BLOCK, row.count - block * BLOCK)
            reused += done
        else:
            lines = _run_unit(generator, job, row, block, steps, digest, out)
            write_text_atomic(part, "".join(lines))
            done = len(lines)
            written += done
        if advance:
            advance(done)
    if env.enabled:
        dist.barrier()
    manifest = None
    if env.is_main:
        manifest = out / MANIFEST
        write_text_atomic(manifest, "".join(_unit_part(parts, keys[r], b).read_text(encoding="utf-8") for r, b in job.units()))
        _write_sheet(out, manifest, job.rows[0])
    return JobResult(written, reused, manifest)


def _write_sheet(out: Path, manifest: Path, first_row: Row) -> None:
    """The job's first images, eight to a row, each row labelled with its first index."""
    entries = []
    with open(manifest, encoding="utf-8") as handle:
        for line in handle:
            if len(entries) == SHEET_LIMIT:
                break
            entries.append(json.loads(line))
    images, shards = [], {}
    for entry in entries:
        if "shard" in entry:
            if entry["shard"] not in shards:
                with tarfile.open(out / entry["shard"]) as archive:
                    shards[entry["shard"]] = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
            data = shards[entry["shard"]][entry["file"]]
        else:
            data = (out / entry["file"]).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)  # upscaled outputs would make a sheet metres long
            array = np.asarray(image)
        images.append(array[..., None] if array.ndim == 2 else array)
    if len({image.shape for image in images}) != 1:
        return  # post-processing that keeps each photo's own aspect gives sizes a grid cannot hold
    stack = np.stack(images)
    rows = [(f"#{start}", stack[start : start + SHEET_COLUMNS]) for start in range(0, len(stack), SHEET_COLUMNS)]
    save_png(labelled_rows(rows, ncols=SHEET_COLUMNS, label_width=60), out / f"{first_row.label()}-{first_row.seed}-sheet.png")
