"""DistributedDataParallel on 2 gloo processes (CPU): replicas stay identical, a 2-process run
equals a 1-process run with the same global batch, and resumes across process counts are allowed
only where the result cannot change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from prodgen.errors import ProdgenError
from prodgen.train import checkpoint as ckpt
from prodgen.train.loop import saved_config, train

from .conftest import tiny_default_tree
from .test_train_family import TOY, toy, weights

WORKER = Path(__file__).with_name("train_worker.py")


def torchrun(tmp_path: Path, tree: dict, *args: str, processes: int = 2) -> subprocess.CompletedProcess:
    config_path = tmp_path / f"{tree['name']}.yaml"
    config_path.write_text(yaml.safe_dump(tree))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               str(WORKER), "train", "--config", str(config_path), *args]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run


def test_gan_replicas_stay_identical_on_two_processes(tiny, tmp_path):
    """The default preset's recipe (BatchNorm in G and D, AC heads, BCE) at a tiny size."""
    tree = tiny_default_tree(train__steps=4, eval__checkpoint_every=2, eval__every=2)
    torchrun(tmp_path, tree, "--runs-dir", str(tmp_path / "runs"))
    (run_dir,) = list((tmp_path / "runs").iterdir())
    for checkpoint in ckpt.list_checkpoints(run_dir):
        state = json.loads((checkpoint / ckpt.STATE).read_text())
        assert state["world_size"] == 2
        # DDP's all-reduce keeps both ranks' weights bit-identical; the loop refuses to save otherwise
        for network in ("G", "D"):
            first, second = state["replicas"][network]
            assert first == second
    assert state["step"] == 4

    # the GAN's BatchNorm normalises each process's share of the batch: one process would change the result
    with pytest.raises(ProdgenError, match=r"trained by 2 process\(es\), this resume runs 1\. The BatchNorm layers of G, D normalise"):
        train(saved_config(run_dir, ["train.steps=6"]), resume=run_dir, show_progress=False)


def test_two_processes_compute_the_one_process_run(tiny, tmp_path):
    """The toy family has no BatchNorm, so 2 processes with half the batch each must follow the
    1-process run: same data, same noise, gradients averaged by DDP."""
    torchrun(tmp_path, TOY, "--runs-dir", str(tmp_path / "two"))
    (two,) = list((tmp_path / "two").iterdir())
    one = train(toy(), runs_root=tmp_path / "one", show_progress=False).run_dir
    expected, got = weights(one, "net"), weights(two, "net")
    assert set(expected) == set(got)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)

    # without BatchNorm the process count may change on resume: 1 process continues the 2-process run
    more = train(toy(train__steps=16), resume=two, show_progress=False)
    assert more.step == 16 and json.loads((ckpt.latest_checkpoint(two) / ckpt.STATE).read_text())["world_size"] == 1


def test_vae_gan_replicas_stay_identical_on_two_processes(tiny, tmp_path):
    """Encoder, decoder, noise level and discriminator all under DDP (three G passes with the transfer
    loss, and four D passes per update)."""
    from .test_train_vae import tiny_vae

    tree = tiny_vae("fmnist-vaegan", train__steps=4, eval__checkpoint_every=2, eval__every=2, loss__transfer_weight=1.0).model_dump(mode="json")
    torchrun(tmp_path, tree, "--runs-dir", str(tmp_path / "runs"))
    (run_dir,) = list((tmp_path / "runs").iterdir())
    state = json.loads((ckpt.latest_checkpoint(run_dir) / ckpt.STATE).read_text())
    assert state["world_size"] == 2 and state["step"] == 4
    assert set(state["replicas"]) == {"E", "G", "scale", "D"}
    assert all(len(set(prints)) == 1 for prints in state["replicas"].values())
