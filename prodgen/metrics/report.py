"""Evaluation report: `report.json` with every number, and `report.html` with the score table
beside its real-vs-real floors, a per-category table, sample grids per category and the
closest (sample, train image) pairs. Pictures are PNG files beside the HTML."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np

from prodgen.fileio import write_json_atomic, write_text_atomic
from prodgen.imaging import make_grid, save_png, to_rgb, upscale_nearest

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
GRID_IMAGES_PER_CATEGORY = 16
# Small images (28 px) are enlarged by an integer factor so the report is readable.
MIN_TILE_SIDE = 56

# Headline value key -> (label, how to read it). The k-NN metrics' paper and k come from the
# result's `metric_definitions`, so the label always shows the k that was used.
VALUE_GUIDE: dict[str, tuple[str, str]] = {
    "fid": ("FID (domain features)", "lower is better"),
    "kid_mean": ("KID mean", "lower is better"),
    "kid_std": ("KID std over subsets", "spread of the estimate"),
    "precision": ("Precision", "higher: samples look real"),
    "recall": ("Recall", "higher: samples span the real variety"),
    "density": ("Density", "about 1 for real data"),
    "coverage": ("Coverage", "higher: more real modes reached"),
    "class_consistency": ("Class consistency", "higher: samples show the asked category"),
    "modes_covered": ("Categories covered", "share of categories with at least half their real share"),
    "histogram_tv": ("Category histogram distance", "total variation, lower is better"),
    "memorisation": ("Memorisation", "share of near-copies of train images; about 0.01 for new images"),
    "memorisation_threshold": ("Near-copy distance threshold", "1st percentile of train photos' distances to their nearest other train photo"),
    "cas": ("CAS", "test accuracy of a classifier trained on samples"),
    "inception_fid": ("FID (Inception-v3)", "lower is better; comparable with published numbers"),
}


def metric_label(key: str, definitions: dict[str, str] | None = None) -> str:
    """A headline value's label, with its paper and k where it has them: "Precision (Kynkäänniemi et al. 2019, k=3)"."""
    label = VALUE_GUIDE.get(key, (key, ""))[0]
    definition = (definitions or {}).get(key)
    return f"{label} ({definition})" if definition else label


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "category"


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _tiles(images: np.ndarray) -> np.ndarray:
    return upscale_nearest(to_rgb(images), MIN_TILE_SIDE)


def _score_table(result: dict[str, Any]) -> str:
    rows = []
    definitions = result.get("metric_definitions", {})
    for key, value in result["metrics"].items():
        label, reading = metric_label(key, definitions), VALUE_GUIDE.get(key, (key, ""))[1]
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{_format(value)}</td><td>{_format(result['floors'].get(key))}</td><td>{html.escape(reading)}</td></tr>")
    return "<table><tr><th>Score</th><th>Samples</th><th>Real vs real (floor)</th><th>Reading</th></tr>" + "".join(rows) + "</table>"


def _category_table(result: dict[str, Any]) -> str:
    if "per_category" not in result["details"]:
        return ""
    rows = result["details"]["per_category"]["rows"]
    floor_rows = result["floor_details"].get("per_category", {}).get("rows", [{}] * len(rows))
    shares = result["details"].get("histogram", {})
    lines = []
    for index, (row, floor) in enumerate(zip(rows, floor_rows)):
        share = shares.get("sample_shares", [None] * len(rows))[index]
        reference_share = shares.get("reference_shares", [None] * len(rows))[index]
        lines.append(
            f"<tr><td>{html.escape(row['category'])}</td><td>{row['count']}</td>"
            f"<td>{_format(row['class_consistency'])}</td><td>{_format(floor.get('class_consistency'))}</td>"
            f"<td>{_format(row['fid'])}</td><td>{_format(floor.get('fid'))}</td>"
            f"<td>{_format(share)}</td><td>{_format(reference_share)}</td></tr>"
        )
    grouped_by = html.escape(result["details"]["per_category"]["grouped_by"])
    return (
        f"<h2>Per category</h2><p>Samples grouped by {grouped_by}. FID is shown where both sides have enough images.</p>"
        "<table><tr><th>Category</th><th>Samples</th><th>Class consistency</th><th>floor</th><th>FID</th><th>floor</th>"
        "<th>Predicted share</th><th>Reference share</th></tr>" + "".join(lines) + "</table>"
    )


def _write_grids(images: np.ndarray, groups: np.ndarray, categories: list[str], out_dir: Path) -> str:
    sections = []
    for index, name in enumerate(categories):
        members = images[groups == index][:GRID_IMAGES_PER_CATEGORY]
        if len(members) == 0:
            continue
        file_name = f"grids/{index:02d}-{_slug(name)}.png"
        save_png(make_grid(_tiles(members), ncols=8), out_dir / file_name)
        sections.append(f"<figure><img src='{file_name}' alt='{html.escape(name)}'><figcaption>{html.escape(name)}</figcaption></figure>")
    return "<h2>Samples per category</h2>" + "".join(sections)


def _write_pairs(images: np.ndarray, train_images: np.ndarray, pairs: list[dict[str, Any]], out_dir: Path) -> str:
    if not pairs:
        return ""
    samples = images[[p["sample"] for p in pairs]]
    neighbours = train_images[[p["train"] for p in pairs]]
    save_png(make_grid(_tiles(np.concatenate([samples, neighbours])), ncols=len(pairs)), out_dir / "nearest_pairs.png")
    distances = ", ".join(f"{p['distance']:.3g}" for p in pairs)
    return (
        "<h2>Closest samples to the training set</h2><p>Top row: the samples nearest to a train image; bottom row: that train image. "
        f"Feature distances, left to right: {distances}.</p><img src='nearest_pairs.png' alt='nearest pairs'>"
    )


def write_report(
    result: dict[str, Any],
    images: np.ndarray,
    groups: np.ndarray,
    train_images: np.ndarray,
    out_dir: str | Path,
) -> dict[str, Path]:
    """Write the JSON and HTML report for `result` (from Evaluator.evaluate) into `out_dir`.
    `groups` gives each sample's category for the grids: its label, or its predicted category."""
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / REPORT_JSON, result)
    network = result["feature_network"]
    skipped = "".join(f"<li>{html.escape(name)}: {html.escape(why)}</li>" for name, why in result["skipped"].items())
    pairs = result["details"].get("memorisation", {}).get("closest_pairs", [])
    body = [
        f"<h1>prodgen evaluation: {html.escape(result['catalog'])}</h1>",
        f"<p>{result['num_samples']} {'class-conditional' if result['conditional'] else 'unconditional'} samples against the real "
        f"<b>{html.escape(result['reference_split'])}</b> split"
        + (f" ({result['num_reference']} images)" if "num_reference" in result else "")
        + f", seed {result['seed']}. Features: prodgen domain network "
        f"(test accuracy {_format(network['test_accuracy'])}, fingerprint {network['fingerprint'][:12]}). "
        "Floors score real images the same way (same settings, same k), so they show what a perfect generator would reach.</p>",
        ""
        if network["trained_on_this_catalog"]
        else "<p><b>Warning:</b> the feature network was trained on a different version of this catalog; retrain it with "
        f"<code>prodgen eval fit-features --data {html.escape(result['catalog'])}</code>.</p>",
        _score_table(result),
        "<p>Floors from: " + "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in result["floor_source"].items()) + ".</p>"
        if result["floor_source"]
        else "",
        f"<p>Not computed:</p><ul>{skipped}</ul>" if skipped else "",
        _category_table(result),
        _write_grids(images, groups, result["categories"], out_dir),
        _write_pairs(images, train_images, pairs, out_dir),
    ]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}figure{display:inline-block;margin:8px}img{image-rendering:pixelated}"
    )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>prodgen evaluation</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    write_text_atomic(out_dir / REPORT_HTML, page)
    return {"json": out_dir / REPORT_JSON, "html": out_dir / REPORT_HTML}
