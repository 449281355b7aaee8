"""The GAN family on the training loop, on a tiny synthetic catalog: training, checkpoints, resume, guards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from prodgen.errors import ProdgenError
from prodgen.generate import ProductGenerator
from prodgen.train import checkpoint as ckpt
from prodgen.train.families.gan import GAN
from prodgen.train.loop import CPP_COMPILERS, TrainingDiverged, learning_rate_scale, train

from .conftest import config, losses


def test_tiny_run_writes_checkpoints_samples_scores_and_logs(tiny, tmp_path):
    result = train(config(), runs_root=tmp_path / "runs", show_progress=False)
    run = result.run_dir
    assert run.name == "00001-tiny" and result.step == 6
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["g_width"] == 16
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["ckpt-0000003", "ckpt-0000006"]
    assert (run / "samples" / "step-0000006.png").exists() and any((run / "tensorboard").iterdir())
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 6] and all(h["fid"] > 0 for h in history)
    best = json.loads((run / ckpt.BEST_POINTER).read_text())
    assert best["value"] == min(h["fid"] for h in history)
    state = json.loads((run / "ckpt-0000006" / ckpt.STATE).read_text())
    assert state["step"] == 6 and "opt_g" in state["optimizers"]
    tensors = ckpt.read_checkpoint(run / "ckpt-0000006").tensors
    assert any(k.startswith("opt_d.") for k in tensors) and "rng.rank0" in tensors

    generator = ProductGenerator.load(run)
    images = generator.sample(5, {"category": "caps"}, seed=1)
    assert images.shape == (5, 16, 16, 3) and images.dtype.name == "uint8"
    assert (generator.sample(5, {"category": "caps"}, seed=1) == images).all()
    exported = ProductGenerator.load(generator.export(tmp_path / "export"))
    assert (exported.sample(5, {"category": "caps"}, seed=1) == images).all()
    with pytest.raises(ProdgenError, match="Unknown category"):
        generator.sample(2, {"category": "hats"})


def test_the_best_checkpoint_can_be_chosen_by_laplacian_swd_with_fid_tracked_beside_it(tiny, tmp_path):
    run = train(config(eval__metric="swd", eval__track=["fid"]), runs_root=tmp_path, show_progress=False).run_dir
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 6] and all(h["swd"] > 0 and h["fid"] > 0 for h in history)
    best = json.loads((run / ckpt.BEST_POINTER).read_text())
    chosen = min(history, key=lambda h: h["swd"])
    assert (best["metric"], best["value"], best["step"]) == ("swd", chosen["swd"], chosen["step"])


def test_resume_continues_exactly(tiny, tmp_path):
    straight = train(config(), runs_root=tmp_path / "a", show_progress=False)
    half = train(config(train__steps=3), runs_root=tmp_path / "b", show_progress=False)
    resumed = train(config(), resume=half.run_dir, show_progress=False)
    assert resumed.run_dir == half.run_dir and resumed.step == 6
    expected, got = losses(straight.run_dir), losses(resumed.run_dir)
    assert [got[s] for s in (4, 5, 6)] == [expected[s] for s in (4, 5, 6)]


def test_resume_may_switch_to_bf16_and_channels_last(tiny, tmp_path):
    half = train(config(train__steps=3), runs_root=tmp_path, show_progress=False)
    resumed = train(config(train__precision="bf16", train__channels_last=True), resume=half.run_dir, show_progress=False)
    assert resumed.step == 6
    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in losses(resumed.run_dir).values())
    assert ProductGenerator.load(resumed.run_dir).sample(4, seed=0).shape == (4, 16, 16, 3)


@pytest.mark.parametrize(("avx512_bf16", "amx", "warned"), [(False, False, True), (True, False, False), (False, True, False)])
def test_bf16_on_a_cpu_without_bf16_units_is_trained_with_a_warning(tiny, tmp_path, monkeypatch, capsys, avx512_bf16, amx, warned):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    train(config(train__precision="bf16"), runs_root=tmp_path, dry_run=True, show_progress=False)
    assert ("this CPU has no bfloat16 units" in capsys.readouterr().out) == warned
    train(config(), runs_root=tmp_path, dry_run=True, show_progress=False)  # fp32 needs no such units
    assert "bfloat16" not in capsys.readouterr().out


def test_linear_schedule_decays_both_learning_rates_to_zero():
    train = config(train__lr_schedule="linear", train__decay_from=0.5, train__steps=100).train
    assert [learning_rate_scale(train, step, 0.0) for step in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]
    budgeted = config(train__lr_schedule="linear", train__decay_from=0.5, train__steps=10**6, train__max_minutes=10).train
    assert learning_rate_scale(budgeted, 10, elapsed_seconds=450) == 0.5  # the budget ends first
    assert learning_rate_scale(config().train, 99, 1e9) == 1.0


def test_linear_schedule_reaches_the_optimisers(tiny, tmp_path):
    run = train(config(train__lr_schedule="linear", train__decay_from=0.5), runs_root=tmp_path, show_progress=False).run_dir
    scales = [json.loads(line)["lr_scale"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert scales == [1.0, 1.0, 1.0, 1.0, round(2 / 3, 4), round(1 / 3, 4)]
    state = json.loads((ckpt.latest_checkpoint(run) / ckpt.STATE).read_text())
    assert state["optimizers"]["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 3)


@pytest.mark.parametrize(("schedule", "stop_step"), [("constant", 2), ("linear", 6)])
def test_early_stopping_waits_for_a_decaying_learning_rate(tiny, tmp_path, monkeypatch, schedule, stop_step):
    monkeypatch.setattr(GAN, "validate", lambda *args: {"fid": 1.0, "selection": 1.0})  # never improves
    decay = {"train__decay_from": 0.5} if schedule == "linear" else {}
    settings = config(train__steps=8, train__lr_schedule=schedule, eval__every=1, eval__patience=1, **decay)
    result = train(settings, runs_root=tmp_path, show_progress=False)
    # linear: steps 1-5 run at the full rate, the 6th is the first decayed one
    assert result.step == stop_step and result.stopped_because.startswith("early stop") and result.best["step"] == 1


def test_a_time_budget_scores_and_keeps_the_final_step(tiny, tmp_path):
    result = train(config(train__steps=10**6, train__max_minutes=0.02, eval__every=10**5), runs_root=tmp_path, show_progress=False)
    assert result.stopped_because == "time budget of 0.02 min reached" and 0 < result.step < 10**6
    assert [row["step"] for row in result.history] == [result.step] and result.best["step"] == result.step
    assert ckpt.latest_checkpoint(result.run_dir).name == f"ckpt-{result.step:07d}"


def test_resume_refuses_changed_hyperparameters(tiny, tmp_path):
    run = train(config(train__steps=3), runs_root=tmp_path, show_progress=False).run_dir
    with pytest.raises(ProdgenError, match=r"train.lr_g: 0.0002 -> 0.001"):
        train(config(train__lr_g=1e-3), resume=run, show_progress=False)


def test_interrupted_checkpoint_write_keeps_the_previous_one(tiny, tmp_path, monkeypatch):
    run = train(config(train__steps=3), runs_root=tmp_path, show_progress=False).run_dir
    before = ckpt.latest_checkpoint(run)

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.write_checkpoint(run, 4, {"x": torch.zeros(2)}, {"step": 4})
    assert ckpt.latest_checkpoint(run) == before
    assert not list(run.glob(".ckpt-*"))
    assert ckpt.read_checkpoint(before).step == 3


def test_nan_guard_stops_and_names_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    from prodgen import losses as loss_module

    real_generator_loss = loss_module.HingeLoss.generator
    calls = {"n": 0}

    def poisoned(self, fake, real=None):
        calls["n"] += 1
        value = real_generator_loss(self, fake, real)
        return value * float("nan") if calls["n"] > 3 else value

    monkeypatch.setattr(loss_module.HingeLoss, "generator", poisoned)
    with pytest.raises(TrainingDiverged, match=r"ckpt-0000003") as caught:
        train(config(train__steps=20, train__nan_patience=2), runs_root=tmp_path, show_progress=False)
    assert "2 consecutive steps" in str(caught.value)


def test_init_from_fine_tunes_on_another_run(tiny, tmp_path):
    source = train(config(train__steps=3), runs_root=tmp_path, show_progress=False).run_dir
    tuned = train(config(train__steps=3, train__seed=9), runs_root=tmp_path, init_from=ckpt.latest_checkpoint(source), show_progress=False)
    assert tuned.run_dir != source and tuned.step == 3


def test_dry_run_writes_nothing(tiny, tmp_path):
    result = train(config(), runs_root=tmp_path / "runs", dry_run=True, show_progress=False)
    assert result.stopped_because == "dry run" and not (tmp_path / "runs").exists()


def test_a_process_without_a_gpu_of_its_own_is_told_how_many_there_are(monkeypatch):
    from prodgen import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ProdgenError, match=r"the node has 1\. Use torchrun --nproc_per_node 1"):
        distributed.default_device()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert distributed.default_device() == torch.device("cuda", 0)


def test_cli_generate_export_and_eval_a_trained_run(tiny, tmp_path):
    from typer.testing import CliRunner

    from prodgen.cli import app

    run = train(config(train__steps=3), runs_root=tmp_path / "runs", show_progress=False).run_dir
    runner = CliRunner()
    made = runner.invoke(app, ["generate", "--model", str(run), "--category", "boots", "-n", "6", "--seed", "7", "--out", str(tmp_path / "gen")])
    assert made.exit_code == 0, made.output
    assert len(list((tmp_path / "gen").glob("boots-7-0*.png"))) == 6 and (tmp_path / "gen" / "boots-7-sheet.png").exists()

    exported = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "model")])
    assert exported.exit_code == 0, exported.output
    assert {p.name for p in (tmp_path / "model").iterdir()} == {"generator.safetensors", "generator.json"}

    scored = runner.invoke(app, ["eval", "run", "--model", str(tmp_path / "model"), "--count", "120", "--metrics", "fid,class_consistency",
                                 "--reference", "test", "--out", str(tmp_path / "report")])
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["num_samples"] == 120 and report["conditional"] and 0 <= report["metrics"]["class_consistency"] <= 1

    wrong = runner.invoke(app, ["generate", "--model", str(run), "--category", "hats", "--out", str(tmp_path / "x")])
    assert wrong.exit_code != 0 and "Unknown category 'hats'" in str(wrong.exception)


@pytest.mark.skipif(not any(shutil.which(name) for name in CPP_COMPILERS), reason="TorchInductor needs a C++ compiler on CPUs")
def test_compiled_networks_train_as_the_eager_ones_and_save_the_same_tensors(tiny, tmp_path):
    dcgan_pair = {"model__generator": "dcgan", "model__discriminator": "sn-dcgan", "train__steps": 2, "eval__every": 2}
    eager = train(config(**dcgan_pair), runs_root=tmp_path / "eager", show_progress=False).run_dir
    compiled = train(config(**dcgan_pair, train__compile=True), runs_root=tmp_path / "compiled", show_progress=False).run_dir
    # the first step starts from the same weights and batch: only the kernels' rounding differs
    assert losses(compiled)[1] == pytest.approx(losses(eager)[1], rel=1e-4)
    eager_tensors = ckpt.read_checkpoint(eager / "ckpt-0000002").tensors
    compiled_tensors = ckpt.read_checkpoint(compiled / "ckpt-0000002").tensors
    assert compiled_tensors.keys() == eager_tensors.keys()
    assert ProductGenerator.load(compiled).sample(4, seed=0).shape == (4, 16, 16, 3)


def test_compile_refuses_the_discriminator_the_compiler_breaks():
    with pytest.raises(ProdgenError, match="train.compile: the .projection. discriminator cannot be compiled"):
        config(train__compile=True)


def test_without_a_cpp_compiler_compile_says_so_and_trains_uncompiled(monkeypatch):
    from types import SimpleNamespace

    from prodgen.train import loop

    networks = {"G": torch.nn.Linear(2, 2), "D": torch.nn.Linear(2, 1)}
    family = SimpleNamespace(env=SimpleNamespace(device=torch.device("cpu")), parallel=dict(networks), nets=dict(networks))
    said = []
    monkeypatch.setattr(loop.shutil, "which", lambda name: None)
    loop.compile_trained_networks(family, said.append)
    assert "no C++ compiler" in said[0] and all(net._compiled_call_impl is None for net in networks.values())
    monkeypatch.setattr(loop.shutil, "which", lambda name: f"/usr/bin/{name}")
    loop.compile_trained_networks(family, said.append)
    assert len(said) == 1 and all(net._compiled_call_impl is not None for net in networks.values())
