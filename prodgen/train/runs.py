"""Numbered run folders (`runs/00003-fmnist-cgan`), as StyleGAN2-ADA names them."""

from __future__ import annotations

import re
from pathlib import Path

_NUMBERED = re.compile(r"^(\d{5})-")


def new_run_dir(root: Path, name: str) -> Path:
    """Create the next numbered folder; mkdir without exist_ok makes concurrent starts safe."""
    root.mkdir(parents=True, exist_ok=True)
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    while True:
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _NUMBERED.match(p.name))]
        path = root / f"{max(numbers, default=0) + 1:05d}-{safe_name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
