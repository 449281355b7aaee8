"""Training data: rows read from disk on a background thread, global batches sharded like
DistributedSampler, and a stream position that resumes exactly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from prodgen.config import DataConfig
from prodgen.data import load_catalog
from prodgen.data.catalog import read_rows
from prodgen.errors import ProdgenError
from prodgen.train.data import BatchLoader, GlobalBatches, TrainingData


def test_rows_are_read_from_the_file_not_the_mapping(tiny):
    catalog = load_catalog("tiny")
    assert isinstance(catalog.images, np.memmap)
    rows = np.array([5, 0, 59, 17, 5])
    expected = np.asarray(catalog.images)[rows]
    assert np.array_equal(read_rows(catalog.images, rows), expected)  # pread path, order and repeats kept
    assert np.array_equal(read_rows(np.asarray(catalog.images), rows), expected)  # in-memory path


def test_a_batch_keeps_the_asked_order(tiny):
    data = TrainingData(load_catalog("tiny"), DataConfig(catalog="tiny", pad_to=None))
    positions = torch.tensor([7, 2, 30, 2])
    batch = data.batch(positions)
    catalog = load_catalog("tiny")
    expected = np.asarray(catalog.images[data.rows[positions.numpy()]])
    assert np.array_equal(((batch.images.permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy(), expected)
    assert torch.equal(batch.codes, data.codes[positions])


def test_a_mirrored_catalog_draws_each_photo_once_each_way_per_epoch(tiny):
    catalog = load_catalog("tiny")
    plain = TrainingData(catalog, DataConfig(catalog="tiny", pad_to=None))
    data = TrainingData(catalog, DataConfig(catalog="tiny", pad_to=None, mirror=True))
    n = len(data)
    assert (plain.draws, data.draws) == (n, 2 * n)
    # the tiny catalog's products are symmetric: noise shows which way an image faces
    data.images = np.random.default_rng(0).integers(0, 256, catalog.images.shape, dtype=np.uint8)
    before = data.images.copy()
    photos = before[data.rows]
    images, codes = data.read(torch.tensor([3, n + 3, n, 0]))
    assert np.array_equal(images[0], photos[3]) and np.array_equal(images[3], photos[0])
    assert np.array_equal(images[1], photos[3][:, ::-1]) and np.array_equal(images[2], photos[0][:, ::-1])
    assert torch.equal(codes, data.codes[[3, 3, 0, 0]])
    assert np.array_equal(data.images, before)  # mirroring a batch leaves the catalog alone
    batches = GlobalBatches(data.draws, 8, 0, 1, seed=2)
    epoch = torch.cat([batches.positions(0, k) for k in range(batches.per_epoch)])
    assert batches.per_epoch == 2 * n // 8 and len(set(epoch.tolist())) == len(epoch)  # no photo-orientation twice


def test_global_batches_are_shared_out_whatever_the_number_of_processes():
    one = GlobalBatches(100, 16, rank=0, world_size=1, seed=3)
    # one process reads DistributedSampler's order (what the engine read before DDP), in batches of 16
    sampler = DistributedSampler(range(100), num_replicas=1, rank=0, shuffle=True, seed=3, drop_last=True)
    sampler.set_epoch(1)
    assert one.positions(1, 2).tolist() == list(sampler)[32:48]
    assert one.per_epoch == 6
    for world in (2, 4):
        shares = [GlobalBatches(100, 16, rank=r, world_size=world, seed=3) for r in range(world)]
        for epoch, index in ((0, 0), (1, 5), (3, 2)):
            assert torch.cat([s.positions(epoch, index) for s in shares]).tolist() == one.positions(epoch, index).tolist()
    with pytest.raises(ProdgenError, match="must divide evenly over 3 processes"):
        GlobalBatches(100, 16, rank=0, world_size=3, seed=0)
    with pytest.raises(ProdgenError, match="fewer than one batch"):
        GlobalBatches(10, 16, rank=0, world_size=1, seed=0)


def test_the_loader_resumes_at_the_same_batch_across_epochs(tiny):
    data = TrainingData(load_catalog("tiny"), DataConfig(catalog="tiny", pad_to=None))
    batches = GlobalBatches(len(data), 8, 0, 1, seed=1)
    straight = BatchLoader(data, batches, depth=3)
    expected = [straight.next().codes for _ in range(15)]  # 6 batches per epoch: crosses two epoch boundaries
    straight.close()

    first = BatchLoader(data, batches, depth=3)
    for _ in range(8):
        first.next()
    state = first.state_dict()
    first.close()
    assert state == {"epoch": 1, "batch": 2}
    second = BatchLoader(data, batches, depth=3)
    second.load_state_dict(state)
    assert all(torch.equal(second.next().codes, want) for want in expected[8:])
    second.close()


def test_a_failing_read_reaches_the_training_thread(tiny):
    data = TrainingData(load_catalog("tiny"), DataConfig(catalog="tiny", pad_to=None))

    def broken(positions):
        raise ProdgenError("disk gone")

    data.read = broken
    loader = BatchLoader(data, GlobalBatches(len(data), 8, 0, 1, seed=1))
    with pytest.raises(ProdgenError, match="disk gone"):
        loader.next()
    loader.close()


def test_inference_does_not_import_the_training_loop():
    code = "import sys, prodgen.generate, prodgen.generate.evaluation; print(sorted(m for m in sys.modules if m.startswith('prodgen.train')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "prodgen.train.loop" not in loaded and "prodgen.train.families" not in loaded and "prodgen.train.family" not in loaded, loaded
