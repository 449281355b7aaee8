"""Benchmark: feature extraction, FID, KID, precision/recall and density/coverage on 10,000
samples against 10,000 reference images on 2 CPU threads (the issue's bar: FID + KID + PR < 60 s).

Until a generator exists, real test images play the samples and a train subset the reference.

    .venv/bin/python benchmarks/bench_metrics.py [--catalog fashion-mnist] [--count 10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from prodgen.data.catalog import load_catalog
from prodgen.fileio import write_json_atomic
from prodgen.metrics.features import load_feature_network
from prodgen.metrics.fid import fid_from_features
from prodgen.metrics.kid import kernel_distance
from prodgen.metrics.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K, density_coverage, metric_definitions, precision_recall

RESULTS = Path(__file__).resolve().parent / "results" / "metrics.json"


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="fashion-mnist")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    catalog = load_catalog(args.catalog)
    network = load_feature_network(args.catalog)
    samples = catalog.subset("test")[0][: args.count]
    train = catalog.subset("train")[0]
    reference = train[np.sort(np.random.default_rng(0).choice(len(train), min(args.count, len(train)), replace=False))]

    sample_batch, sample_seconds = timed(network.extract, samples)
    reference_batch, reference_seconds = timed(network.extract, reference)
    fake, real = sample_batch.features, reference_batch.features
    fid, fid_seconds = timed(fid_from_features, real, fake)
    (kid_mean, kid_std), kid_seconds = timed(kernel_distance, real, fake, 100, 1000, 0)
    (precision, recall), pr_seconds = timed(precision_recall, real, fake, PRECISION_RECALL_K)
    (density, coverage), dc_seconds = timed(density_coverage, real, fake, DENSITY_COVERAGE_K)

    result = {
        "catalog": args.catalog,
        "samples": len(samples),
        "reference": len(reference),
        "feature_dim": int(fake.shape[1]),
        "metric_definitions": metric_definitions(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "seconds": {
            "sample_features": sample_seconds,
            "reference_features": reference_seconds,
            "fid": fid_seconds,
            "kid_100x1000": kid_seconds,
            f"precision_recall_k{PRECISION_RECALL_K}": pr_seconds,
            f"density_coverage_k{DENSITY_COVERAGE_K}": dc_seconds,
            "fid_kid_pr_with_sample_features": round(sample_seconds + fid_seconds + kid_seconds + pr_seconds, 3),
        },
        "values": {
            "fid": fid,
            "kid_mean": kid_mean,
            "kid_std": kid_std,
            "precision": precision,
            "recall": recall,
            "density": density,
            "coverage": coverage,
        },
    }
    write_json_atomic(RESULTS, result)
    for name, seconds in result["seconds"].items():
        print(f"{name:>34}: {seconds:8.2f} s")
    print("values:", {k: round(v, 5) for k, v in result["values"].items()})
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
