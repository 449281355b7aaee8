"""Carry a prepared catalog to a machine that cannot prepare it, in a file small enough for a device call.

A device call carries the working tree, 64 MiB at most, and the tree itself is most of that. A prepared
128-px catalog is a raw uint8 array (clothing-white-128: 65 MB; 22 MB even with xz -9), so it travels as
one WebP per photo instead (quality 95: 5.4 MiB, a mean absolute error of about 1 level in 255), with its
manifest, in one .tar.xz. Unpacking decodes the photos and saves an ordinary catalog under
$PRODGEN_HOME. The travelled catalog is not the same array as the one packed: the packer prints the
round-trip error, and both sides print the SHA-256 of the decoded array (WebP decoding is specified
bit-exactly, so the two should agree). Train, score and fit the feature network on the decoded catalog
alike, on the machine it travelled to.

    python benchmarks/catalog_travel.py pack clothing-white-128 .gpu/catalog/clothing-white-128.tar.xz
    python benchmarks/catalog_travel.py unpack .gpu/catalog/clothing-white-128.tar.xz
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from prodgen.data.catalog import MANIFEST, Catalog, images_digest, load_catalog, save_catalog, validate_catalog_name
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_bytes_atomic
from prodgen.paths import catalog_dir

TRAVEL_NOTE = "travel.json"


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pack(name: str, destination: Path, quality: int) -> None:
    catalog = load_catalog(name)
    if catalog.channels != 3:
        raise ProdgenError(f"Catalog {name!r} has {catalog.channels} channels; only RGB catalogs travel as WebP.")
    decoded = np.empty(catalog.images.shape, dtype=np.uint8)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(destination) as partial, tarfile.open(partial, "w:xz") as archive:
        for index in range(len(catalog.images)):
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(catalog.images[index])).save(buffer, format="WEBP", quality=quality, method=6)
            decoded[index] = _decode(buffer.getvalue())
            _add_bytes(archive, f"images/{index:06d}.webp", buffer.getvalue())
        error = np.abs(decoded.astype(np.int16) - np.asarray(catalog.images, dtype=np.int16))
        note = {
            "catalog": name,
            "count": len(catalog.images),
            "shape": list(catalog.images.shape),
            "webp_quality": quality,
            "packed_images_sha256": catalog.digest,
            "decoded_images_sha256": images_digest(decoded),
            "mean_abs_error": round(float(error.mean()), 4),
            "max_abs_error": int(error.max()),
        }
        # what a Catalog is built from; save_catalog writes the rest of a manifest (file name, digest, shape) anew
        manifest = {"categories": catalog.categories, "entries": catalog.entries, "info": catalog.info}
        _add_bytes(archive, MANIFEST, json.dumps(manifest).encode())
        _add_bytes(archive, TRAVEL_NOTE, json.dumps(note, indent=2).encode())
        skipped = catalog_dir(name) / "skipped.csv"
        if skipped.exists():
            archive.add(skipped, arcname="skipped.csv")
    print(json.dumps({**note, "file": str(destination), "mib": round(destination.stat().st_size / 2**20, 2)}, indent=2))


def unpack(source: Path) -> None:
    with tarfile.open(source, "r:xz") as archive, tempfile.TemporaryDirectory() as scratch:
        archive.extractall(scratch, filter="data")
        root = Path(scratch)
        note = json.loads((root / TRAVEL_NOTE).read_text())
        manifest = json.loads((root / MANIFEST).read_text())
        name = validate_catalog_name(note["catalog"])
        files = sorted((root / "images").glob("*.webp"))
        if len(files) != note["count"]:
            raise ProdgenError(f"{source} holds {len(files)} images; its note says {note['count']}.")
        images = np.stack([_decode(path.read_bytes()) for path in files])
        info = {**manifest["info"], "travelled_as": {k: note[k] for k in ("webp_quality", "packed_images_sha256", "mean_abs_error")}}
        catalog = Catalog(name=name, images=images, categories=manifest["categories"], entries=manifest["entries"], info=info)
        where = save_catalog(catalog)
        if (root / "skipped.csv").exists():
            write_bytes_atomic(where / "skipped.csv", (root / "skipped.csv").read_bytes())
    same = catalog.digest == note["decoded_images_sha256"]
    print(f"{name}: {len(images)} images {images.shape[1:]} -> {where}; decoded SHA-256 {catalog.digest[:16]} "
          f"{'matches' if same else 'differs from'} the packer's decode ({note['decoded_images_sha256'][:16]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    packing = verbs.add_parser("pack", help="catalog -> .tar.xz of WebP photos and the manifest")
    packing.add_argument("name")
    packing.add_argument("destination", type=Path)
    packing.add_argument("--quality", type=int, default=95, choices=range(1, 101), metavar="1-100")
    unpacking = verbs.add_parser("unpack", help=".tar.xz -> a catalog under $PRODGEN_HOME")
    unpacking.add_argument("source", type=Path)
    args = parser.parse_args()
    try:
        if args.verb == "pack":
            pack(args.name, args.destination, args.quality)
        else:
            unpack(args.source)
    except (ProdgenError, OSError, KeyError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
