"""Ingest a folder of product photos into a prepared catalog.

Category = top-level sub-folder, or a flat folder plus a labels CSV
(`file,category[,product|sku][,attribute columns...]`). Unusable files are
skipped and listed with a reason; the source folder is only ever read.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from prodgen.data.catalog import (
    BUILTIN_CATALOGS,
    MANIFEST,
    Catalog,
    load_catalog_from,
    save_catalog,
    validate_catalog_name,
)
from prodgen.data.preprocess import BadImage, PrepSettings, preprocess_image
from prodgen.data.splits import assign_splits, validate_fractions
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path
from prodgen.paths import catalog_dir

GROUP_COLUMNS = ("product", "product_id", "sku", "sku_id", "group")
SKIP_REPORT = "skipped.csv"
_SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass
class Candidate:
    relpath: str
    category: str
    group: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class PrepareResult:
    catalog: Catalog
    skipped: list[tuple[str, str]]
    reused: int
    root: Path


def _walk_files(source: Path) -> list[str]:
    """Relative POSIX paths of every regular file below `source`, hidden and system files excepted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.lower() in _SYSTEM_FILES:
                continue
            path = Path(dirpath) / name
            if path.is_file():
                found.append(path.relative_to(source).as_posix())
    return found


def _read_labels_csv(labels: Path) -> tuple[dict[str, Candidate], list[tuple[str, str]]]:
    if not labels.is_file():
        raise ProdgenError(f"Labels CSV not found: {labels}")
    with open(labels, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "file" not in columns or "category" not in columns:
            raise ProdgenError(f"{labels} must have a header with 'file' and 'category' columns; found {columns}.")
        group_column = next((c for c in GROUP_COLUMNS if c in columns), None)
        attribute_columns = [c for c in columns if c not in ("file", "category", group_column)]
        rows: dict[str, Candidate] = {}
        problems = []
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            relpath = Path(row["file"]).as_posix()
            if not row["file"] or not row["category"]:
                problems.append((f"{labels.name}:{line}", "labels CSV row without file or category"))
                continue
            rows[relpath] = Candidate(
                relpath=relpath,
                category=row["category"],
                group=row.get(group_column) or None if group_column else None,
                attributes={c: row[c] for c in attribute_columns if row.get(c)},
            )
    return rows, problems


def _candidates(source: Path, labels: Path | None) -> tuple[list[Candidate], list[tuple[str, str]]]:
    files = _walk_files(source)
    if labels is None:
        skipped = [(f, "not inside a category folder") for f in files if "/" not in f]
        return [Candidate(relpath=f, category=f.split("/", 1)[0]) for f in files if "/" in f], skipped
    listed, skipped = _read_labels_csv(labels)
    present = set(files)
    label_file = labels.resolve()
    candidates = []
    for f in files:
        if f in listed:
            candidates.append(listed[f])
        elif (source / f).resolve() != label_file:
            skipped.append((f, "not listed in the labels CSV"))
    skipped += [(f, "listed in the labels CSV but missing") for f in listed if f not in present]
    return candidates, skipped


def _decode_file(task: tuple[Path, PrepSettings]) -> tuple[np.ndarray | None, tuple[int, int] | None, str | None]:
    """Runs in a worker process: (array, original size, skip reason)."""
    path, settings = task
    try:
        return (*preprocess_image(path.read_bytes(), settings), None)
    except OSError as exc:
        return None, None, f"unreadable file: {exc.strerror or exc}"
    except BadImage as exc:
        return None, None, str(exc)


def _decode_all(tasks: list[tuple[Path, PrepSettings]], workers: int, advance: Callable[[int], None]) -> Iterator:
    if workers <= 1 or len(tasks) < 64:
        for task in tasks:
            yield _decode_file(task)
            advance(1)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(_decode_file, tasks, chunksize=16):
            yield result
            advance(1)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _previous_state(root: Path, settings: PrepSettings) -> tuple[dict[str, str], dict[str, tuple[np.ndarray, tuple[int, int]]]]:
    """Split per group, and reusable (pixels, original size) per sha256, from an earlier run of the same catalog."""
    if not (root / MANIFEST).exists():
        return {}, {}
    old = load_catalog_from(root)
    previous_splits = {e["group"]: e["split"] for e in old.entries}
    if old.info.get("preprocessing") != settings.as_dict():
        return previous_splits, {}
    return previous_splits, {e["sha256"]: (old.images[i], (e["width"], e["height"])) for i, e in enumerate(old.entries)}


def write_skip_report(path: Path, skipped: list[tuple[str, str]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "reason"])
            writer.writerows(skipped)


def prepare_folder(
    source: str | os.PathLike,
    name: str,
    settings: PrepSettings,
    labels: str | os.PathLike | None = None,
    fractions: dict[str, float] | None = None,
    seed: int = 0,
    min_per_category: int = 8,
    workers: int | None = None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> PrepareResult:
    """Build (or update) catalog `name` from the photos under `source`.

    Re-running is idempotent: images already prepared with the same settings are reused,
    and every group keeps the split it had.
    """
    validate_catalog_name(name)
    if name in BUILTIN_CATALOGS:
        raise ProdgenError(f"{name!r} is a built-in catalog name; choose another --name.")
    source = Path(source).expanduser()
    if not source.exists():
        raise ProdgenError(f"Source folder not found: {source}")
    if not source.is_dir():
        raise ProdgenError(f"Source is not a folder: {source}")
    fractions = validate_fractions(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
    root = catalog_dir(name)
    previous_splits, reusable = _previous_state(root, settings)

    candidates, skipped = _candidates(source, Path(labels).expanduser() if labels else None)
    slots: list[tuple[Candidate, str]] = []
    first_seen: dict[str, str] = {}
    for candidate in candidates:
        try:
            digest = _sha256_file(source / candidate.relpath)
        except OSError as exc:
            skipped.append((candidate.relpath, f"unreadable file: {exc.strerror or exc}"))
            continue
        if digest in first_seen:
            skipped.append((candidate.relpath, f"duplicate of {first_seen[digest]}"))
            continue
        first_seen[digest] = candidate.relpath
        slots.append((candidate, digest))

    to_decode = [(source / c.relpath, settings) for c, digest in slots if digest not in reusable]
    advance = progress(len(to_decode)) if progress else (lambda _n: None)
    decoded = iter(list(_decode_all(to_decode, workers or os.cpu_count() or 1, advance)))
    kept: list[tuple[Candidate, str, np.ndarray, tuple[int, int]]] = []
    for candidate, digest in slots:
        array, size, reason = reusable[digest] + (None,) if digest in reusable else next(decoded)
        if reason is not None:
            skipped.append((candidate.relpath, reason))
        else:
            kept.append((candidate, digest, array, size))
    reused = sum(digest in reusable for _, digest, _, _ in kept)

    if not kept:
        reasons = Counter(reason.split(":")[0] for _, reason in skipped)
        summary = "; ".join(f"{n} {r}" for r, n in reasons.most_common()) or "the folder holds no files"
        raise ProdgenError(f"No usable image in {source} ({summary}).")
    per_category = Counter(c.category for c, *_ in kept)
    too_few = {c: n for c, n in per_category.items() if n < min_per_category}
    if too_few:
        listing = ", ".join(f"{c!r} has {n}" for c, n in sorted(too_few.items()))
        raise ProdgenError(
            f"Too few usable images per category ({listing}); at least {min_per_category} are needed. "
            "Add photos, merge the category, or lower --min-per-category."
        )

    groups = [f"{c.category}/{c.group}" if c.group else digest for c, digest, _, _ in kept]
    splits = assign_splits([c.category for c, *_ in kept], groups, fractions, seed=seed, previous=previous_splits)
    entries = [
        {
            "file": c.relpath,
            "sha256": digest,
            "category": c.category,
            "split": split,
            "width": size[0],
            "height": size[1],
            "group": group,
            "attributes": c.attributes,
        }
        for (c, digest, _, size), group, split in zip(kept, groups, splits)
    ]
    catalog = Catalog(
        name=name,
        images=np.stack([array for *_, array, _ in kept]),
        categories=sorted(per_category),
        entries=entries,
        info={
            "source": str(source.resolve()),
            "labels_csv": str(Path(labels).resolve()) if labels else None,
            "preprocessing": settings.as_dict(),
            "split_fractions": fractions,
            "split_seed": seed,
            "skipped": len(skipped),
            "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    root = save_catalog(catalog)
    write_skip_report(root / SKIP_REPORT, skipped)
    return PrepareResult(catalog=catalog, skipped=skipped, reused=reused, root=root)
