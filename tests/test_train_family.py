"""The family interface is enough: a family defined only in the tests (a denoising autoencoder)
trains on the unchanged loop, with EMA, validation, grids, checkpoints and exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from prodgen.config import validate_config
from prodgen.errors import ProdgenError
from prodgen.train import checkpoint as ckpt
from prodgen.train.loop import train

from . import toy_family  # noqa: F401  (registers the toy family)
from .conftest import with_overrides

TOY = {
    "name": "toy",
    "family": "toy-autoencoder",
    "data": {"catalog": "tiny", "conditions": [], "pad_to": None},
    "model": {"hidden": 16, "z_dim": 4},
    "train": {"batch_size": 8, "steps": 12, "seed": 5, "threads": 1, "lr_g": 3e-3, "lr_schedule": "linear", "decay_from": 0.5},
    "eval": {"metric": "mse", "every": 4, "samples": 100, "sample_every": 4, "log_every": 1, "checkpoint_every": 4, "keep_last": 2, "patience": 5},
}


def toy(**overrides):
    return with_overrides(TOY, **overrides)


def weights(run_dir, prefix=""):
    tensors = ckpt.read_checkpoint(ckpt.latest_checkpoint(run_dir)).tensors
    return {k: v for k, v in tensors.items() if k.startswith(prefix)}


def test_a_family_from_outside_the_package_trains_on_the_loop(tiny, tmp_path):
    result = train(toy(), runs_root=tmp_path, show_progress=False)
    run = result.run_dir
    assert result.step == 12 and result.stopped_because == "finished all steps"
    history = json.loads((run / "history.json").read_text())
    assert [row["step"] for row in history] == [4, 8, 12] and history[-1]["mse"] < history[0]["mse"]
    assert (run / "samples" / "step-0000012.png").exists()
    tensors = weights(run)
    assert {"net.encode.1.weight", "net_ema.encode.1.weight", "opt.0.exp_avg", "rng.shared", "fixed.images"} <= set(tensors)
    # the EMA copy follows the network without equalling it
    assert not torch.equal(tensors["net.encode.1.weight"], tensors["net_ema.encode.1.weight"])
    state = json.loads((ckpt.latest_checkpoint(run) / ckpt.STATE).read_text())
    assert state["export_network"] == "net_ema" and state["generator"]["architecture"] == "toy-autoencoder"
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [row["lr_scale"] for row in rows][-3:] == [0.5, round(2 / 6, 4), round(1 / 6, 4)]  # the scale before steps 10, 11, 12


def test_the_toy_family_resumes_exactly(tiny, tmp_path):
    straight = train(toy(), runs_root=tmp_path / "a", show_progress=False).run_dir
    half = train(toy(train__steps=12), runs_root=tmp_path / "b", show_progress=False).run_dir
    # stop after step 4 by resuming the copy from its step-4 checkpoint
    for late in ckpt.list_checkpoints(half)[1:]:
        late.rename(late.with_name(f".{late.name}.dropped.tmp"))
    resumed = train(toy(), resume=half, show_progress=False)
    assert resumed.step == 12
    expected, got = weights(straight), weights(half)
    assert set(expected) == set(got)
    assert all(torch.equal(expected[k], got[k]) for k in expected if not k.startswith("rng."))


def test_a_family_checks_its_own_config():
    with pytest.raises(ProdgenError, match="eval.metric: the toy autoencoder is validated by mse"):
        toy(eval__metric="fid")
    with pytest.raises(ProdgenError, match=r"model.width: Extra inputs are not permitted"):
        validate_config({**TOY, "model": {"width": 3}})
    with pytest.raises(ProdgenError, match="loss"):
        validate_config({**TOY, "loss": {"kind": "hinge"}})
