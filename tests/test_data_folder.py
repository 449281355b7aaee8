"""Ingesting folders of product photos: layout, CSV labels, bad files, idempotence, errors."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodgen.data import PrepSettings, load_catalog, prepare_folder
from prodgen.data.folder import SKIP_REPORT
from prodgen.data.inspect import contact_sheet, summary_rows
from prodgen.errors import ProdgenError

from .conftest import product_photo, write_category_folder

SETTINGS = PrepSettings(width=32, height=32, channels=3)


def snapshot(root: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """Two good categories in every format and naming style, plus every kind of bad file."""
    root = tmp_path / "messy shop"
    write_category_folder(root, {"shoes": 8, "bags": 8})
    formats = [("JPEG", ".JPG"), ("PNG", ".Png"), ("WEBP", ".webp"), ("GIF", ".gif"), ("BMP", ".BMP"), ("TIFF", ".tiff")]
    for i, (fmt, ext) in enumerate(formats):
        folder = root / "shoes" / "nested" / "deeper" if i % 2 else root / "bags"
        folder.mkdir(parents=True, exist_ok=True)
        product_photo(50, 30, seed=100 + i).save(folder / f"Größe été {i}{ext}", format=fmt)
    bad = root / "shoes"
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.txt").write_text("not a photo")
    (bad / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nrubbish" * 20)
    whole = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(whole, "JPEG")
    (bad / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    product_photo(8, 8, seed=999).save(bad / "tiny.png")
    product_photo(3000, 3000, seed=998).save(bad / "huge.png")
    (bad / "copy.png").write_bytes((root / "shoes" / "item 0.png").read_bytes())
    product_photo(40, 40, seed=997).save(root / "loose file in root.png")
    (root / ".DS_Store").write_bytes(b"\0\0")
    return root


def test_messy_folder_is_ingested_with_a_skip_report(home, messy_folder):
    before = snapshot(messy_folder)
    result = prepare_folder(messy_folder, "shop", PrepSettings(width=32, height=32, max_pixels=5_000_000), min_per_category=8)

    assert snapshot(messy_folder) == before, "the source folder must never be modified"
    catalog = load_catalog("shop")
    assert catalog.categories == ["bags", "shoes"]
    assert catalog.images.shape == (22, 32, 32, 3)
    files = {e["file"] for e in catalog.entries}
    assert "shoes/nested/deeper/Größe été 1.Png" in files and "bags/Größe été 0.JPG" in files

    reasons = {file: reason for file, reason in result.skipped}
    assert reasons["shoes/empty.jpg"].startswith("empty file")
    assert reasons["shoes/notes.txt"].startswith("not an image")
    assert reasons["shoes/corrupt.png"].startswith(("not an image", "unreadable image header", "corrupt"))
    assert reasons["shoes/truncated.jpg"].startswith("corrupt or truncated")
    assert reasons["shoes/tiny.png"].startswith("too small")
    assert reasons["shoes/huge.png"].startswith("decompression bomb")
    assert reasons["shoes/item 0.png"] == "duplicate of shoes/copy.png", "the first file in sorted order is kept"
    assert reasons["loose file in root.png"] == "not inside a category folder"
    assert ".DS_Store" not in reasons
    with open(result.root / SKIP_REPORT, newline="", encoding="utf-8") as handle:
        assert {tuple(row) for row in csv.reader(handle)} - {("file", "reason")} == set(result.skipped)


def test_manifest_records_provenance_per_image(home, tmp_path):
    source = tmp_path / "shop"
    written = write_category_folder(source, {"hats": 8, "socks": 8}, size=(40, 30))
    catalog = prepare_folder(source, "shop", SETTINGS).catalog
    entry = next(e for e in catalog.entries if e["file"] == "hats/item 0.png")
    assert entry["sha256"] == hashlib.sha256(written[0].read_bytes()).hexdigest()
    assert (entry["width"], entry["height"]) == (40, 30)
    assert entry["category"] == "hats" and entry["split"] in ("train", "val", "test")


def test_unreadable_file_is_skipped_and_the_run_goes_on(home, tmp_path, monkeypatch):
    import prodgen.data.folder as folder

    source = tmp_path / "shop"
    write_category_folder(source, {"hats": 9})
    real = folder._sha256_file

    def locked(path):
        if path.name == "item 3.png":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(folder, "_sha256_file", locked)
    result = prepare_folder(source, "shop", SETTINGS)
    assert result.skipped == [("hats/item 3.png", "unreadable file: Permission denied")]
    assert len(result.catalog.images) == 8


def test_flat_folder_with_csv_keeps_attributes_and_products_together(home, tmp_path):
    source = tmp_path / "flat"
    source.mkdir()
    rows = []
    for i in range(30):
        product_photo(40, 40, seed=i).save(source / f"p{i}.jpg", quality=95)
        rows.append({"file": f"p{i}.jpg", "category": "shirt" if i % 2 else "dress", "sku": f"SKU{i // 3}", "colour": ["red", "blue"][i % 3 == 0], "material": "cotton"})
    product_photo(40, 40, seed=500).save(source / "unlisted.jpg")
    rows.append({"file": "gone.jpg", "category": "dress", "sku": "X", "colour": "red", "material": "wool"})
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    result = prepare_folder(source, "flat", SETTINGS, labels=labels)
    catalog = result.catalog
    assert catalog.attribute_values == {"colour": ["blue", "red"], "material": ["cotton"]}
    split_of_group: dict[str, set[str]] = {}
    for entry in catalog.entries:
        split_of_group.setdefault(entry["group"], set()).add(entry["split"])
    assert all(len(splits) == 1 for splits in split_of_group.values()), "one product's photos share a split"
    assert dict(result.skipped) == {"unlisted.jpg": "not listed in the labels CSV", "gone.jpg": "listed in the labels CSV but missing"}


def test_csv_without_required_columns_is_a_clear_error(home, tmp_path):
    write_category_folder(tmp_path / "src", {"a": 8})
    (tmp_path / "labels.csv").write_text("filename,label\nx.png,a\n")
    with pytest.raises(ProdgenError, match="'file' and 'category'"):
        prepare_folder(tmp_path / "src", "x", SETTINGS, labels=tmp_path / "labels.csv")


def test_rerun_is_idempotent_and_additions_keep_earlier_splits(home, tmp_path):
    source = tmp_path / "shop"
    write_category_folder(source, {"hats": 20, "socks": 12})
    first = prepare_folder(source, "shop", SETTINGS)
    again = prepare_folder(source, "shop", SETTINGS)
    assert again.reused == 32
    assert again.catalog.entries == first.catalog.entries
    assert np.array_equal(np.asarray(again.catalog.images), np.asarray(first.catalog.images))

    write_category_folder(source, {"hats": 15, "socks": 15}, start_seed=1000)
    grown = prepare_folder(source, "shop", SETTINGS)
    old_split = {e["sha256"]: e["split"] for e in first.catalog.entries}
    assert all(old_split[e["sha256"]] == e["split"] for e in grown.catalog.entries if e["sha256"] in old_split)
    assert len(grown.catalog.images) == 62 and grown.reused == 32


def test_splits_are_deterministic_and_stratified(tmp_path, monkeypatch):
    source = tmp_path / "shop"
    write_category_folder(source, {"hats": 40, "socks": 20})
    assignments = []
    for run in range(2):
        monkeypatch.setenv("PRODGEN_HOME", str(tmp_path / f"home{run}"))
        catalog = prepare_folder(source, "shop", SETTINGS).catalog
        assignments.append([(e["file"], e["split"]) for e in catalog.entries])
    assert assignments[0] == assignments[1]
    counts = catalog.counts()
    assert counts["hats"] == {"train": 32, "val": 4, "test": 4}
    assert counts["socks"] == {"train": 16, "val": 2, "test": 2}


def test_changing_the_size_rebuilds_pixels_but_keeps_splits(home, tmp_path):
    source = tmp_path / "shop"
    write_category_folder(source, {"hats": 10})
    small = prepare_folder(source, "shop", SETTINGS).catalog
    tall = prepare_folder(source, "shop", PrepSettings(width=32, height=40))
    assert tall.reused == 0 and tall.catalog.images.shape == (10, 40, 32, 3)
    assert [e["split"] for e in tall.catalog.entries] == [e["split"] for e in small.entries]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "Source folder not found"),
        ("empty", "No usable image"),
        ("only-bad", "No usable image"),
        ("too-few", "Too few usable images per category"),
    ],
)
def test_unusable_sources_are_clear_errors(home, tmp_path, layout, message):
    source = tmp_path / "src"
    if layout != "missing":
        source.mkdir()
    if layout == "only-bad":
        (source / "cat").mkdir()
        (source / "cat" / "a.jpg").write_bytes(b"")
    if layout == "too-few":
        write_category_folder(source, {"hats": 10, "skirts": 3})
    with pytest.raises(ProdgenError, match=message):
        prepare_folder(source, "shop", SETTINGS)


def test_cli_exits_with_code_2_and_a_message_on_bad_input(home, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "prodgen.cli", "data", "prepare", "--source", str(tmp_path / "nope"), "--name", "x"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Source folder not found" in run.stderr and "Traceback" not in run.stderr


def test_cli_prepare_and_inspect_write_catalog_and_contact_sheet(home, tmp_path):
    from typer.testing import CliRunner

    from prodgen.cli import app

    write_category_folder(tmp_path / "src", {"hats": 8, "socks": 9})
    runner = CliRunner()
    prepared = runner.invoke(app, ["data", "prepare", "--source", str(tmp_path / "src"), "--name", "shop", "--size", "24x32"])
    assert prepared.exit_code == 0, prepared.output
    sheet = tmp_path / "sheet.png"
    inspected = runner.invoke(app, ["data", "inspect", "shop", "--out", str(sheet)])
    assert inspected.exit_code == 0, inspected.output
    assert "socks" in inspected.output and "17" in inspected.output
    with Image.open(sheet) as image:
        assert image.width > 100 and image.height > 60


def test_summary_rows_and_contact_sheet(home, tmp_path):
    write_category_folder(tmp_path / "src", {"hats": 8, "socks": 10})
    catalog = prepare_folder(tmp_path / "src", "shop", SETTINGS).catalog
    rows = summary_rows(catalog)
    assert rows[-1] == ["TOTAL", "14", "2", "2", "18"]
    path = contact_sheet(catalog, tmp_path / "sheet.png", per_category=4)
    with Image.open(path) as image:
        assert image.mode == "RGB"
