"""benchmarks/bench_train.py's result-file names: one per run and checkpoint, whatever runs folder holds them."""

from pathlib import Path

import pytest

from prodgen.train.checkpoint import STATE

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def run_key(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_train import run_key

    return run_key


def test_a_run_is_named_by_its_runs_folder_and_a_checkpoint_by_its_run(run_key, tmp_path):
    for runs in ("a", "b"):
        checkpoint = tmp_path / runs / "00001-catalog-64" / "ckpt-0006000"
        checkpoint.mkdir(parents=True)
        (checkpoint / STATE).write_text("{}")
    assert run_key(tmp_path / "a" / "00001-catalog-64") == "a-00001-catalog-64"
    assert run_key(tmp_path / "a" / "00001-catalog-64", "seed1") == "a-00001-catalog-64-seed1"
    # the same checkpoint number in two runs folders must not share (and overwrite) one result file
    assert run_key(tmp_path / "a" / "00001-catalog-64" / "ckpt-0006000") == "a-00001-catalog-64-ckpt-0006000"
    assert run_key(tmp_path / "b" / "00001-catalog-64" / "ckpt-0006000", "v2") == "b-00001-catalog-64-ckpt-0006000-v2"
