"""benchmarks/catalog_travel.py: a prepared catalog packed as WebP photos and unpacked on another home."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from prodgen.data import load_catalog

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "catalog_travel.py"


def travel(verb: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRODGEN_HOME": str(home), "PYTHONPATH": str(SCRIPT.parents[1])}
    return subprocess.run([sys.executable, str(SCRIPT), verb, *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_catalog_arrives_whole_and_close_to_its_photos(tiny_home, tmp_path, monkeypatch):
    packed = travel("pack", "tiny", str(tmp_path / "tiny.tar.xz"), home=tiny_home)
    assert packed.returncode == 0, packed.stderr
    note = json.loads(packed.stdout)
    assert note["count"] == 60 and note["webp_quality"] == 95

    elsewhere = tmp_path / "elsewhere"
    unpacked = travel("unpack", str(tmp_path / "tiny.tar.xz"), home=elsewhere)
    assert unpacked.returncode == 0, unpacked.stderr
    assert "matches the packer's decode" in unpacked.stdout

    monkeypatch.setenv("PRODGEN_HOME", str(tiny_home))
    original = load_catalog("tiny")
    monkeypatch.setenv("PRODGEN_HOME", str(elsewhere))
    arrived = load_catalog("tiny")
    assert arrived.entries == original.entries and arrived.categories == original.categories
    assert arrived.images.shape == original.images.shape
    error = np.abs(np.asarray(arrived.images, dtype=np.int16) - np.asarray(original.images, dtype=np.int16))
    assert abs(error.mean() - note["mean_abs_error"]) < 1e-3  # the packer reports the error the photos arrive with
    assert 0 < error.mean() < 8  # WebP at quality 95, chroma at half resolution: close to the photos, not equal
    assert arrived.digest == note["decoded_images_sha256"] != original.digest
    assert arrived.info["travelled_as"]["packed_images_sha256"] == original.digest


def test_a_damaged_pack_is_refused_with_exit_code_2(tmp_path):
    (tmp_path / "broken.tar.xz").write_bytes(b"not an archive")
    result = travel("unpack", str(tmp_path / "broken.tar.xz"), home=tmp_path / "home")
    assert result.returncode == 2 and "error:" in result.stderr
    assert not (tmp_path / "home" / "catalogs").exists()
