#!/usr/bin/env bash
# The README's VAE-GAN pictures, from a shipped or run model, with prodgen's own commands:
# samples per category, an interpolation between two real test products (given to `interpolate`
# as photos: dark product on white, as a shop would have them) and a category transfer.
#   benchmarks/vae_pictures.sh MODEL PREFIX      e.g. benchmarks/vae_pictures.sh fmnist-vaegan docs/images/fmnist-vaegan
set -euo pipefail
model=$1 prefix=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=.venv/bin/python
$py benchmarks/bench_train.py gallery "$model" "${prefix}_samples.png" --per-category 10 --threads 2
# test products 0 and 2 of the catalog, written as photos (Fashion-MNIST is light on black: inverted)
$py - "$work" <<'PY'
import sys
from pathlib import Path
from PIL import Image
from prodgen.data import load_catalog
from prodgen.data.catalog import read_rows
catalog = load_catalog("fashion-mnist")
rows = catalog.split_indices("test")[[0, 2]]
for name, image in zip(("first", "last"), read_rows(catalog.images, rows)):
    Image.fromarray(255 - image[..., 0]).save(Path(sys.argv[1]) / f"{name}.png")
PY
.venv/bin/prodgen interpolate --model "$model" --from "$work/first.png" --to "$work/last.png" --steps 8 --out "$work/walk"
$py - "$work/walk/interpolation.png" "${prefix}_interpolation.png" <<'PY'
import sys
from PIL import Image
strip = Image.open(sys.argv[1])
strip.resize((strip.width * 3, strip.height * 3), Image.NEAREST).save(sys.argv[2])  # 28-px frames, shown 3x
PY
echo "pictures: ${prefix}_samples.png ${prefix}_interpolation.png"
