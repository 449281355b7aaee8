"""Benchmark: `prodgen serve` under load, 1-image generate requests on the shipped fmnist-cgan (issue: service).

    .venv/bin/python benchmarks/bench_serve.py compare --requests 400 --threads 1

starts `prodgen serve` in a subprocess (uvicorn, ONNX Runtime, `--threads` intra-op threads) once with
micro-batching on (--max-batch 256) and once off (--max-batch 1); against each, a load generator in
this process (asyncio + httpx, one connection per concurrent client) sends 1-image generate requests
at concurrency 1 and 16, each request a new seed. Reports p50/p95/p99 latency and requests/s, and the
ratio of requests/s at concurrency 16, batching on against off. Targets: p95 <= 20 ms at concurrency 1
with batching on; >= 1.3x requests/s at concurrency 16. Writes benchmarks/results/serve-compare.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import typer

from prodgen.fileio import write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import RESULTS, machine  # noqa: E402

app = typer.Typer(no_args_is_help=True)
MODEL = "fmnist-cgan"
CATEGORIES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(max_batch: int, threads: int, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    server = subprocess.Popen([sys.executable, "-m", "prodgen.cli", "serve", "--model", MODEL, "--port", str(port), "--max-batch", str(max_batch),
                               "--data-dir", str(data_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a first start exports the ONNX program
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prodgen serve stopped: {server.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("prodgen serve did not answer /healthz in 300 s")


async def load(base: str, concurrency: int, requests: int, first_seed: int) -> dict:
    """`requests` 1-image generate requests from `concurrency` clients, each waiting for its answer before the next."""
    latencies: list[float] = []
    seeds = iter(range(first_seed, first_seed + requests))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for seed in seeds:
                body = {"model": MODEL, "category": CATEGORIES[seed % 10], "n": 1, "seed": seed}
                start = time.perf_counter()
                response = await http.post("/v1/generate", json=body)
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def batch_histogram(base: str) -> dict[str, float]:
    """Requests per shared forward pass, from the server's own metrics."""
    lines = [line for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith("prodgen_batch_requests_")]
    values = {line.split("{")[0].rsplit("_", 1)[1]: float(line.rsplit(" ", 1)[1]) for line in lines if "_sum" in line or "_count" in line}
    return {"passes": values.get("count", 0.0), "mean_requests_per_pass": round(values["sum"] / values["count"], 2) if values.get("count") else 0.0}


@app.callback()
def commands() -> None:
    """Load tests of `prodgen serve` (one command today; a callback keeps `compare` a named command, as in the other benchmarks)."""


@app.command()
def compare(requests: int = 400, threads: int = 1, warmup: int = 50) -> None:
    """Latency and throughput of 1-image generate requests, micro-batching on (--max-batch 256) and off (--max-batch 1)."""
    figures: dict = {"model": MODEL, "server_threads": threads, "requests_per_run": requests}
    with tempfile.TemporaryDirectory() as scratch:
        for label, max_batch in (("batching_on", 256), ("batching_off", 1)):
            server, base = start_server(max_batch, threads, Path(scratch) / label)
            try:
                asyncio.run(load(base, 4, warmup, first_seed=10**6))
                runs = [asyncio.run(load(base, concurrency, requests, first_seed=concurrency * 10**5)) for concurrency in (1, 16)]
                figures[label] = {"max_batch": max_batch, "runs": runs, "batching": batch_histogram(base)}
            finally:
                server.terminate()
                server.wait()
            print(label, json.dumps(figures[label]), flush=True)
    on, off = figures["batching_on"]["runs"], figures["batching_off"]["runs"]
    figures["p95_ms_concurrency_1_batching_on"] = on[0]["p95_ms"]
    figures["speedup_concurrency_16"] = round(on[1]["requests_per_s"] / off[1]["requests_per_s"], 2)
    figures["machine"] = {**machine(), "load_average": os.getloadavg()}
    write_json_atomic(RESULTS / "serve-compare.json", figures)
    print(json.dumps({k: v for k, v in figures.items() if not k.startswith("batching")}, indent=1))


if __name__ == "__main__":
    app()
