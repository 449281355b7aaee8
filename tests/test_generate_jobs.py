"""Generation jobs: plans of rows, a manifest of every image, re-runs that skip what is complete, a
SIGKILLed job finished by a re-run into exactly the uninterrupted job's files, and 2 gloo processes
under torchrun that write each image once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from prodgen.errors import ProdgenError
from prodgen.generate.jobs import MANIFEST, PARTS

from .conftest import invoke

PRODGEN = [sys.executable, "-c", "from prodgen.cli import main; main()"]


def files(folder: Path) -> dict[str, bytes]:
    """Every image and JSON a job left (its unit parts excluded)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_plan_makes_each_row_with_its_own_seed_and_lists_every_image(tmp_path):
    plan = tmp_path / "plan.csv"
    plan.write_text("category,count,seed\nBag,3,\nBag,2,\nSandal,300,9\n")
    result = invoke("generate", "--model", "fmnist-cgan", "--plan", plan, "--seed", 4, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in (tmp_path / "out" / MANIFEST).read_text().splitlines()]
    assert len(entries) == 305 and len({e["file"] for e in entries}) == 305
    assert [e["file"] for e in entries[:6]] == ["Bag-4-0000.png", "Bag-4-0001.png", "Bag-4-0002.png", "Bag-5-0000.png", "Bag-5-0001.png",
                                                "Sandal-9-0000.png"]
    assert {e["conditions"]["category"] for e in entries[5:]} == {"Sandal"} and entries[-1]["index"] == 299
    assert (tmp_path / "out" / "Bag-4-sheet.png").exists()
    # the same command again: everything is there, nothing is made
    again = invoke("generate", "--model", "fmnist-cgan", "--plan", plan, "--seed", 4, "--out", tmp_path / "out")
    assert "0 made here, 305 already there" in " ".join(again.output.split())
    # a deleted image is made again (its unit is redone)
    (tmp_path / "out" / "Sandal-9-0123.png").unlink()
    third = invoke("generate", "--model", "fmnist-cgan", "--plan", plan, "--seed", 4, "--out", tmp_path / "out")
    assert "256 made here, 49 already there" in " ".join(third.output.split())
    # a row added to the plan: only it is made, and the manifest lists all four rows
    plan.write_text("category,count,seed\nBag,3,\nBag,2,\nSandal,300,9\nCoat,4,\n")
    fourth = invoke("generate", "--model", "fmnist-cgan", "--plan", plan, "--seed", 4, "--out", tmp_path / "out")
    assert "4 made here, 305 already there" in " ".join(fourth.output.split())
    assert len((tmp_path / "out" / MANIFEST).read_text().splitlines()) == 309


@pytest.mark.parametrize(("plan", "message"), [
    ("category,count\nHat,3\n", "Unknown category 'Hat'; known: T-shirt/top"),
    ("category,count\nBag,0\n", "count must be at least 1"),
    ("category,count\nBag,many\n", "count and seed must be whole numbers"),
    ("category\nBag\n", "needs a header with a count column"),
])
def test_a_bad_plan_is_refused_before_anything_is_written(tmp_path, plan, message):
    path = tmp_path / "plan.csv"
    path.write_text(plan)
    result = invoke("generate", "--model", "fmnist-cgan", "--plan", path, "--out", tmp_path / "out")
    assert isinstance(result.exception, ProdgenError) and message in str(result.exception)
    assert not (tmp_path / "out").exists()
    both = invoke("generate", "--model", "fmnist-cgan", "--plan", path, "--category", "Bag", "--out", tmp_path / "out")
    assert "drop --category" in str(both.exception)


def test_a_killed_job_rerun_gives_exactly_the_uninterrupted_jobs_files(tmp_path):
    command = [*PRODGEN, "generate", "--model", "fmnist-cgan", "-n", "2560", "--post", "upscale:96", "--seed", "3"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((tmp_path / "killed").glob(f"{PARTS}/*.jsonl"))) < 2:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    parts_at_kill = len(list((tmp_path / "killed").glob(f"{PARTS}/*.jsonl")))
    assert 2 <= parts_at_kill < 10, "the job was not killed halfway"
    for image in (tmp_path / "killed").glob("*.png"):  # what the kill left under an image's name is a whole image
        with Image.open(image) as opened:
            opened.load()
    rerun = subprocess.run([*command, "--out", str(tmp_path / "killed")], env=environment, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{parts_at_kill * 256} already there" in " ".join(rerun.stdout.split())
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], env=environment, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    finished, uninterrupted = files(tmp_path / "killed"), files(tmp_path / "whole")
    finished = {name: data for name, data in finished.items() if not name.startswith(".")}
    assert finished.keys() == uninterrupted.keys() and len(finished) == 2 * 2560 + 2  # images, their JSON, manifest, sheet
    assert all(finished[name] == uninterrupted[name] for name in finished)


def test_two_processes_share_a_job_and_write_each_image_once(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "prodgen.cli",
               "generate", "--model", "fmnist-cgan", "-n", "700", "--category", "Dress", "--out", str(tmp_path / "out")]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    made = {int(line.split()[1].rstrip(":")): int(line.split()[2]) for line in run.stdout.splitlines() if line.startswith("rank ")}
    assert made == {0: 256 + 188, 1: 256}  # units 0 and 2 on rank 0, unit 1 on rank 1: 700 writes for 700 images
    entries = [json.loads(line) for line in (tmp_path / "out" / MANIFEST).read_text().splitlines()]
    assert [e["index"] for e in entries] == list(range(700))
    one_process = invoke("generate", "--model", "fmnist-cgan", "-n", 700, "--category", "Dress", "--out", tmp_path / "one")
    assert one_process.exit_code == 0
    assert files(tmp_path / "out") == files(tmp_path / "one")


def test_a_tar_job_holds_exactly_the_loose_jobs_files_one_tar_per_block(tmp_path):
    """WebDataset layout: <stem>.png and <stem>.json per image, a tar per block of 256, the same bytes
    as the loose files; a re-run reuses the tars."""
    import tarfile

    assert invoke("generate", "--model", "fmnist-cgan", "-n", 300, "--out", tmp_path / "loose").exit_code == 0
    made = invoke("generate", "--model", "fmnist-cgan", "-n", 300, "--tar", "--out", tmp_path / "tar")
    assert made.exit_code == 0, made.output
    shards = sorted(p.name for p in (tmp_path / "tar").glob("*.tar"))
    assert shards == ["sample-0-block0000000.tar", "sample-0-block0000001.tar"]
    packed = {}
    for shard in shards:
        with tarfile.open(tmp_path / "tar" / shard) as archive:
            packed.update({m.name: archive.extractfile(m).read() for m in archive.getmembers()})
    loose = {name: data for name, data in files(tmp_path / "loose").items() if name.startswith("sample-0-0")}
    assert len(packed) == 600 and packed == loose
    entries = [json.loads(line) for line in (tmp_path / "tar" / MANIFEST).read_text().splitlines()]
    assert entries[299]["shard"] == "sample-0-block0000001.tar" and entries[299]["file"] == "sample-0-0299.png"
    assert (tmp_path / "tar" / "sample-0-sheet.png").exists()
    again = invoke("generate", "--model", "fmnist-cgan", "-n", 300, "--tar", "--out", tmp_path / "tar")
    assert "0 made here, 300 already there" in " ".join(again.output.split())
