"""Benchmark: `prodgen serve` under load, 1-image generate requests on the shipped fmnist-cgan (issue: service).

    .venv/bin/python benchmarks/bench_serve.py compare --requests 400 --threads 1
    .venv/bin/python benchmarks/bench_serve.py soak --minutes 2 --concurrency 8     # errors and resident memory over time
    .venv/bin/python benchmarks/bench_serve.py kill-job --images 10000             # SIGKILL mid-job, restart, count the images

starts `prodgen serve` in a subprocess (uvicorn, ONNX Runtime, `--threads` intra-op threads) once with
micro-batching on (--max-batch 256) and once off (--max-batch 1); against each, a load generator in
this process (asyncio + httpx, one connection per concurrent client) sends 1-image generate requests
at concurrency 1 and 16, each request a new seed. Reports p50/p95/p99 latency and requests/s, and the
ratio of requests/s at concurrency 16, batching on against off. Targets: p95 <= 20 ms at concurrency 1
with batching on; >= 1.3x requests/s at concurrency 16. Writes benchmarks/results/serve-compare.json.
Each run reports the CPU the load generator itself used (share of one core) beside the server's, so
a client that is the bottleneck shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import typer

from prodgen.fileio import write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import RESULTS, machine  # noqa: E402

app = typer.Typer(no_args_is_help=True)
MODEL = "fmnist-cgan"
MODEL_HELP = "A servable model: shipped name, exported folder or run folder (e.g. a 64-px colour model's export)."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, max_batch: int, threads: int, data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    server = subprocess.Popen([sys.executable, "-m", "prodgen.cli", "serve", "--model", model, "--port", str(port), "--max-batch", str(max_batch),
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mib(pid: int) -> float:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def served_model(base: str) -> tuple[str, list[str]]:
    """The name the server gives its one model, and that model's categories."""
    (model,) = httpx.get(f"{base}/v1/models").json()["models"]
    return model["name"], model["categories"]


async def load(base: str, concurrency: int, requests: int, first_seed: int, server_pid: int | None = None) -> dict:
    """`requests` 1-image generate requests from `concurrency` clients, each waiting for its answer before the next."""
    model, categories = served_model(base)
    latencies: list[float] = []
    seeds = iter(range(first_seed, first_seed + requests))
    client_cpu, server_cpu = time.process_time(), cpu_seconds(server_pid) if server_pid else 0.0

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for seed in seeds:
                body = {"model": model, "category": categories[seed % len(categories)], "n": 1, "seed": seed}
                start = time.perf_counter()
                response = await http.post("/v1/generate", json=body)
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    figures = {"concurrency": concurrency, "requests": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
               "p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
               "client_cpu_share": round((time.process_time() - client_cpu) / elapsed, 2)}  # of one core
    if server_pid:
        figures["server_cpu_share"] = round((cpu_seconds(server_pid) - server_cpu) / elapsed, 2)
    return figures


def batch_histogram(base: str) -> dict[str, float]:
    """Requests per shared forward pass, from the server's own metrics."""
    lines = [line for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith("prodgen_batch_requests_")]
    values = {line.split("{")[0].rsplit("_", 1)[1]: float(line.rsplit(" ", 1)[1]) for line in lines if "_sum" in line or "_count" in line}
    return {"passes": values.get("count", 0.0), "mean_requests_per_pass": round(values["sum"] / values["count"], 2) if values.get("count") else 0.0}


@app.command()
def compare(requests: int = 400, threads: int = 1, warmup: int = 50, model: str = typer.Option(MODEL, help=MODEL_HELP)) -> None:
    """Latency and throughput of 1-image generate requests, micro-batching on (--max-batch 256) and off (--max-batch 1)."""
    figures: dict = {"model": model, "server_threads": threads, "requests_per_run": requests}
    with tempfile.TemporaryDirectory() as scratch:
        for label, max_batch in (("batching_on", 256), ("batching_off", 1)):
            server, base = start_server(model, max_batch, threads, Path(scratch) / label)
            try:
                asyncio.run(load(base, 4, warmup, first_seed=10**6))
                runs = [asyncio.run(load(base, concurrency, requests, first_seed=concurrency * 10**5, server_pid=server.pid)) for concurrency in (1, 16)]
                figures[label] = {"max_batch": max_batch, "runs": runs, "batching": batch_histogram(base)}
            finally:
                server.terminate()
                server.wait()
            print(label, json.dumps(figures[label]), flush=True)
    on, off = figures["batching_on"]["runs"], figures["batching_off"]["runs"]
    figures["p95_ms_concurrency_1_batching_on"] = on[0]["p95_ms"]
    figures["speedup_concurrency_16"] = round(on[1]["requests_per_s"] / off[1]["requests_per_s"], 2)
    figures["machine"] = {**machine(), "load_average": os.getloadavg()}
    write_json_atomic(RESULTS / ("serve-compare.json" if model == MODEL else f"serve-compare-{Path(model).name}.json"), figures)
    print(json.dumps({k: v for k, v in figures.items() if not k.startswith("batching")}, indent=1))


async def soak_load(base: str, concurrency: int, seconds: float, server_pid: int, sample_every: float) -> dict:
    """Generate requests from `concurrency` clients for `seconds`; every response checked; the server's RSS sampled."""
    model, categories = served_model(base)
    counts = {"requests": 0, "errors": 0}
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()

    async def client(index: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            seed = index * 10**7
            while time.perf_counter() - started < seconds:
                seed += 1
                response = await http.post("/v1/generate", json={"model": model, "category": categories[seed % len(categories)], "n": 1 + seed % 4, "seed": seed})
                counts["requests"] += 1
                counts["errors"] += response.status_code != 200 or len(response.json()["images"]) != 1 + seed % 4

    async def sampler() -> None:
        while time.perf_counter() - started < seconds:
            samples.append((round(time.perf_counter() - started, 1), round(resident_mib(server_pid), 1)))
            await asyncio.sleep(sample_every)

    await asyncio.gather(sampler(), *(client(i) for i in range(concurrency)))
    return {**counts, "seconds": round(time.perf_counter() - started, 1), "rss_mib": samples}


@app.command()
def soak(minutes: float = 2.0, concurrency: int = 8, threads: int = 1, warmup_seconds: float = 15.0, sample_every: float = 5.0) -> None:
    """A load run of `minutes`: zero errors, and the server's resident memory after warm-up flat within 10 %."""
    with tempfile.TemporaryDirectory() as scratch:
        server, base = start_server(MODEL, 256, threads, Path(scratch))
        try:
            asyncio.run(load(base, 4, 50, first_seed=10**6))
            run = asyncio.run(soak_load(base, concurrency, minutes * 60, server.pid, sample_every))
        finally:
            server.terminate()
            server.wait()
    settled = [rss for at, rss in run["rss_mib"] if at >= warmup_seconds]
    figures = {"model": MODEL, "concurrency": concurrency, "server_threads": threads, **run, "rss_after_warmup_mib": settled[0],
               "rss_max_mib": max(settled), "rss_growth": round(max(settled) / settled[0] - 1, 4), "machine": {**machine(), "load_average": os.getloadavg()}}
    write_json_atomic(RESULTS / "serve-soak.json", figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_mib"}, indent=1))


def wait_for_job(base: str, job_id: str, until, deadline_s: float = 3600) -> dict:
    deadline = time.monotonic() + deadline_s
    while not until(status := httpx.get(f"{base}/v1/jobs/{job_id}").json()):
        if status["state"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id}: {status}")
        time.sleep(0.5)
    return status


@app.command("kill-job")
def kill_job(images: int = 10_000, threads: int = 1) -> None:
    """A batch job SIGKILLed halfway through, the server restarted: it must finish with exactly `images` distinct images."""
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        server, base = start_server(MODEL, 256, threads, data_dir)
        port = int(base.rsplit(":", 1)[1])
        started = time.perf_counter()
        try:
            job_id = httpx.post(f"{base}/v1/jobs", json={"model": MODEL, "rows": [{"count": images, "seed": 11}]}).json()["id"]
            at_kill = wait_for_job(base, job_id, lambda status: status["done"] >= images // 2)
            server.send_signal(signal.SIGKILL)
            server.wait()
            killed_after = time.perf_counter() - started
            server, base = start_server(MODEL, 256, threads, data_dir, port)
            final = wait_for_job(base, job_id, lambda status: status["state"] == "done")
            with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/result", timeout=600) as response:
                archive = zipfile.ZipFile(io.BytesIO(response.read()))
        finally:
            server.kill()
            server.wait()
    manifest = [json.loads(line) for line in archive.read("manifest.jsonl").decode().splitlines()]
    pictures = [entry["file"] for entry in manifest]  # the images the manifest lists (the ZIP also holds the contact sheet)
    digests = {hashlib.sha256(archive.read(name)).hexdigest() for name in pictures}
    figures = {"model": MODEL, "images_asked": images, "done_when_killed": at_kill["done"], "killed_after_s": round(killed_after, 1),
               "attempts": final["attempts"], "manifest_entries": len(manifest), "manifest_indexes_complete": sorted(e["index"] for e in manifest) == list(range(images)),
               "image_files_listed": len(set(pictures)), "pngs_in_zip": sum(name.endswith(".png") for name in archive.namelist()), "distinct_images": len(digests), "seconds": round(time.perf_counter() - started, 1),
               "machine": {**machine(), "load_average": os.getloadavg()}}
    write_json_atomic(RESULTS / "serve-kill-job.json", figures)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    app()
