"""prodgen as a wheel: it carries the YAML presets, the shipped generator and the fashion-mnist
feature network (and nothing from tests/ or benchmarks/), and a fresh virtual environment holding
only the wheel (non-editable, pinned by constraints.txt) generates images and finds its presets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRESETS = tuple(sorted(path.stem for path in (REPO / "prodgen" / "configs").glob("*.yaml")))  # every preset in the source tree
# every shipped model and feature network in the source tree, each file of it
ASSETS = tuple(sorted(path.relative_to(REPO).as_posix() for path in (REPO / "prodgen" / "assets").rglob("*") if path.is_file()))
STUDIO = tuple(sorted(path.relative_to(REPO).as_posix() for path in (REPO / "prodgen" / "serve" / "static").rglob("*") if path.is_file()))
# Left out of the copy the wheel is built from: environments, caches and outputs, none of them sources.
NOT_SOURCES = (".git", ".venv", ".hypothesis", ".pytest_cache", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", "runs", "out")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline (no build isolation: setuptools from the dev extra) from a copy of
    the checkout (tests/ and benchmarks/ included, so that leaving them out is tested), so no stale
    build/ folder of the checkout can slip into it."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    started = time.perf_counter()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(root / "dist"), str(source)], cwd=root)
    print(f"\nwheel built in {time.perf_counter() - started:.1f} s")
    (built,) = (root / "dist").glob("prodgen-*.whl")
    return built


def test_the_wheel_carries_presets_and_assets_but_no_tests(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = (
        [f"prodgen/configs/{name}.yaml" for name in PRESETS]
        + list(ASSETS)
        + list(STUDIO)  # the web studio's page, styles and scripts
        + ["prodgen/presets.py", "prodgen/cli.py", "prodgen/train/loop.py", "prodgen/train/families/gan.py"]
    )
    assert "prodgen/serve/static/index.html" in STUDIO
    assert "prodgen/assets/models/fmnist-cgan/generator.safetensors" in ASSETS and "prodgen/assets/features/fashion-mnist/model.safetensors" in ASSETS
    assert not [name for name in expected if name not in names]
    assert not [name for name in names if name.split("/")[0] in ("tests", "benchmarks", "configs", "docs")]
    assert "prodgen = prodgen.cli:main" in zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A fresh virtual environment with the wheel installed non-editable, pinned by constraints.txt
    (torch comes from pip's local wheels / cache); returns its bin/ folder and a clean environment."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PRODGEN_HOME")}
    started = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root, env=env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"), str(wheel)], cwd=root, env=env, timeout=900)
    print(f"\nfresh virtual environment with the wheel installed in {time.perf_counter() - started:.1f} s")
    return venv / "bin", env


@pytest.mark.slow
def test_the_installed_wheel_finds_its_presets_outside_the_source_tree(installed, tmp_path):
    bin_dir, env = installed
    code = (
        "import prodgen, prodgen.presets as p, prodgen.config as c; "
        "print(prodgen.__file__); print(','.join(p.preset_names())); "
        "print(c.load_config('fmnist-dcgan').model.generator)"
    )
    lines = _run([str(bin_dir / "python"), "-c", code], cwd=tmp_path, env=env).stdout.splitlines()
    assert "site-packages" in lines[0] and not lines[0].startswith(str(REPO))
    assert lines[1] == ",".join(PRESETS)
    assert lines[2] == "dcgan"


@pytest.mark.slow
def test_the_installed_wheel_generates_with_the_shipped_model(installed, tmp_path):
    bin_dir, env = installed
    out = tmp_path / "out"
    env = {**env, "PRODGEN_HOME": str(tmp_path / "home")}  # the shipped model needs no cache
    _run([str(bin_dir / "prodgen"), "generate", "--model", "fmnist-cgan", "--category", "Sneaker", "-n", "4", "--seed", "7", "--out", str(out)], cwd=tmp_path, env=env)
    pngs = sorted(out.glob("*.png"))
    sheets = [p for p in pngs if "sheet" in p.name]
    assert len(sheets) == 1 and len(pngs) == 5, [p.name for p in pngs]
    assert all(p.stat().st_size > 100 for p in pngs)
    assert len(list(out.glob("Sneaker-7-*.json"))) == 4 and len((out / "manifest.jsonl").read_text().splitlines()) == 4


@pytest.mark.slow
def test_the_installed_wheel_dry_runs_the_default_preset(installed, tmp_path):
    """Needs the built-in catalog in the default PRODGEN_HOME, as `make demo` leaves it."""
    manifest = Path.home() / ".cache" / "prodgen" / "catalogs" / "fashion-mnist" / "manifest.json"
    if not manifest.exists():
        pytest.skip(f"`prodgen train --dry-run` needs the fashion-mnist catalog; {manifest} does not exist (run `make demo` once)")
    bin_dir, env = installed
    _run([str(bin_dir / "prodgen"), "train", "--dry-run"], cwd=tmp_path, env=env)
