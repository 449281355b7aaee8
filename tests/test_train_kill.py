"""Kill-safety, tried as a user would: `prodgen train` killed with SIGKILL at random moments
(and during checkpoint writes), then `prodgen train --resume RUN` each time, ends with weights
bit-identical to an uninterrupted run. The run uses the default preset's recipe (decaying
learning rate) on a tiny catalog and crosses several epochs."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from typer.testing import CliRunner

from prodgen.cli import app
from prodgen.errors import ProdgenError
from prodgen.train import checkpoint as ckpt

from .conftest import tiny_default_tree

STEPS = 60  # the tiny train split holds 48 images: 6 global batches of 8 per epoch, so 10 epochs
# what the user types on top of the preset file, as the README shows
OVERRIDES = ["--set", f"train.steps={STEPS}", "--set", "eval.checkpoint_every=1", "--set", "eval.every=5"]


def write_preset(path: Path) -> Path:
    path.write_text(yaml.safe_dump(tiny_default_tree()))
    return path


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "prodgen.cli", "train", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors[-3000:]


def staging(run_dir: Path) -> list[Path]:
    return list(run_dir.glob(".ckpt-*.tmp"))


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.0005)


def final_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    path = ckpt.latest_checkpoint(run_dir)
    assert path.name == f"ckpt-{STEPS:07d}"
    return ckpt.read_checkpoint(path).tensors


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tiny, tmp_path):
    preset = write_preset(tmp_path / "tiny-cgan.yaml")
    finish(start("--config", str(preset), "--runs-dir", str(tmp_path / "straight"), *OVERRIDES))
    (straight,) = list((tmp_path / "straight").iterdir())

    rng = random.Random(7)
    process = start("--config", str(preset), "--runs-dir", str(tmp_path / "killed"), *OVERRIDES)
    wait_for(lambda: (tmp_path / "killed").exists() and any(ckpt.list_checkpoints(p) for p in (tmp_path / "killed").iterdir()))
    (run_dir,) = list((tmp_path / "killed").iterdir())
    kills, during_writes, resumed_steps = 0, 0, [0]
    while kills < 6 or during_writes < 2:
        assert kills < 20, f"{kills} kills, only {during_writes} during a checkpoint write"
        # kill a process that trains, not one still importing torch: wait for its first new checkpoint
        wait_for(lambda p=process: ckpt.read_state(run_dir)["step"] > resumed_steps[-1] or p.poll() is not None)
        if kills % 2:
            wait_for(lambda p=process: staging(run_dir) or p.poll() is not None)  # a checkpoint is being written right now
        else:
            time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is not None:  # finished before the kill: nothing left to interrupt
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        during_writes += bool(staging(run_dir))
        resumed_steps.append(ckpt.read_state(run_dir)["step"])
        process = start("--resume", str(run_dir))  # the run's own saved config, overrides included
    finish(process)

    assert during_writes >= 2 and kills >= 6, (kills, during_writes)
    assert any(step % 6 for step in resumed_steps[1:]), resumed_steps  # some resumes start mid-epoch
    expected, got = final_tensors(straight), final_tensors(run_dir)
    assert set(got) == set(expected)
    different = [name for name in expected if not torch.equal(got[name], expected[name])]
    assert not different, different[:10]
    assert not staging(run_dir)


def test_resume_takes_the_runs_own_config_and_only_the_allowed_overrides(tiny, tmp_path):
    preset = write_preset(tmp_path / "tiny-cgan.yaml")
    runner = CliRunner()
    first = runner.invoke(app, ["train", "--config", str(preset), "--runs-dir", str(tmp_path), "--set", "train.steps=4",
                                "--set", "eval.checkpoint_every=2", "--set", "eval.every=2"])
    assert first.exit_code == 0, first.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]

    # a ProdgenError is what main() turns into a message and exit code 2
    refused = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", "train.lr_g=1e-3"])
    assert isinstance(refused.exception, ProdgenError) and "may only change" in str(refused.exception) and "train.lr_g=1e-3" in str(refused.exception)
    with_config = runner.invoke(app, ["train", "--resume", str(run_dir), "--config", "fmnist-cgan"])
    assert isinstance(with_config.exception, ProdgenError) and "drop --config" in str(with_config.exception)

    longer = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", "train.steps=6"])
    assert longer.exit_code == 0, longer.output
    state = ckpt.read_state(run_dir)
    assert state["step"] == 6 and state["config"]["train"]["steps"] == 6
    # everything else is the run's own: the overrides it started with survive the resume
    assert state["config"]["eval"]["checkpoint_every"] == 2 and state["config"]["data"]["catalog"] == "tiny"
