"""Benchmark: `prodgen serve` under load, 1-image generate requests on the shipped fmnist-cgan (issue: service).

    .venv/bin/python benchmarks/bench_serve.py compare [--model RUN]               # batching on against off; needs Debian's wrk
    .venv/bin/python benchmarks/bench_serve.py soak --minutes 2 --concurrency 8     # errors and resident memory over time
    .venv/bin/python benchmarks/bench_serve.py kill-job --images 10000             # SIGKILL mid-job, restart, count the images

`compare` starts `prodgen serve` in a subprocess (uvicorn, ONNX Runtime, `--threads` intra-op threads)
once per --max-batch (the default 8, 256, and 1: batching off) and loads each with wrk (C, one
thread, benchmarks/serve_generate.lua: a new seed per request), at concurrency 1 once and at
concurrency 16 `--repeats` times (the median counts: runs on a shared 2-core machine vary by about
10 %). Reports p50/p95/p99 latency, requests/s, the CPU the client and the server used (shares of one
core, so a client that is the bottleneck shows), the requests per shared pass, and the forward pass
alone per image by pass size: the most that sharing passes can save. Targets: p95 <= 20 ms at
concurrency 1 with batching on, rising by at most 2 ms against off; at concurrency 16, batching on
against off >= 1.3x requests/s (fmnist) and >= 2x (a 64-px colour model). Writes
benchmarks/results/serve-compare[-MODEL].json.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import resource
import shutil
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
import torch
import typer

from prodgen.fileio import write_json_atomic
from prodgen.serve.batching import DEFAULT_MAX_BATCH

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import RESULTS, machine  # noqa: E402

app = typer.Typer(no_args_is_help=True)
MODEL = "fmnist-cgan"
WRK_SCRIPT = Path(__file__).resolve().parent / "serve_generate.lua"
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


def batch_histogram(base: str) -> dict[str, float]:
    """Requests per shared forward pass, from the server's own metrics."""
    lines = [line for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith("prodgen_batch_requests_")]
    values = {line.split("{")[0].rsplit("_", 1)[1]: float(line.rsplit(" ", 1)[1]) for line in lines if "_sum" in line or "_count" in line}
    return {"passes": values.get("count", 0.0), "mean_requests_per_pass": round(values["sum"] / values["count"], 2) if values.get("count") else 0.0}


def wrk_run(base: str, concurrency: int, seconds: int, first_seed: int, server_pid: int) -> dict:
    """`concurrency` connections sending 1-image generate requests for `seconds` (wrk, one thread, a new
    seed per request); latency percentiles, requests/s, and the CPU the client and the server used."""
    model, categories = served_model(base)
    client_before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(server_pid)
    run = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "60s", "-s", str(WRK_SCRIPT), base, "--", model, str(first_seed), *categories],
                         capture_output=True, text=True, check=True)
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    client_cpu = client_after.ru_utime + client_after.ru_stime - client_before.ru_utime - client_before.ru_stime
    return {"concurrency": concurrency, **figures, "requests_per_s": round(figures["requests"] / figures["seconds"], 1),
            "client_cpu_share": round(client_cpu / figures["seconds"], 2), "server_cpu_share": round((cpu_seconds(server_pid) - server_before) / figures["seconds"], 2)}


def forward_ms_per_image(model: str, threads: int) -> dict[int, float]:
    """The served program's forward pass alone, per image, by pass size (the best of five): what sharing
    a pass can save at most."""
    from prodgen.serve.models import load_model

    torch.set_num_threads(threads)
    generator = load_model(model, "onnx").generator
    z_dim, conditions = generator.spec["arguments"]["z_dim"], len(generator.spec["conditions"]["names"])
    costs = {}
    for size in (1, 2, 4, 8, 16, 32):
        z, codes = torch.zeros((size, z_dim)), torch.zeros((size, conditions), dtype=torch.long)
        seconds = []
        for _ in range(6):
            start = time.perf_counter()
            generator.draw(z, codes)
            seconds.append(time.perf_counter() - start)
        costs[size] = round(min(seconds[1:]) * 1000 / size, 3)
    return costs


@app.command()
def compare(seconds: int = 10, repeats: int = 3, threads: int = 1, model: str = typer.Option(MODEL, help=MODEL_HELP),
            max_batch: list[int] = typer.Option([DEFAULT_MAX_BATCH, 256, 1], help="The servers to compare, by --max-batch; 1 is batching off.")) -> None:
    """Latency and throughput of 1-image generate requests from wrk, one server per --max-batch: concurrency
    1 once, concurrency 16 `repeats` times (the median counts); the speedup of each against --max-batch 1."""
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk is not installed: apt-get install wrk (Debian's package).")
    figures: dict = {"model": model, "server_threads": threads, "load_generator": "wrk, 1 thread", "seconds_per_run": seconds,
                     "forward_ms_per_image": forward_ms_per_image(model, threads), "servers": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for batch in max_batch:
            server, base = start_server(model, batch, threads, Path(scratch) / str(batch))
            try:
                wrk_run(base, 4, 3, 10**8, server.pid)  # warm-up
                sequential = wrk_run(base, 1, seconds, 2 * 10**8, server.pid)
                concurrent = [wrk_run(base, 16, seconds, (3 + run) * 10**8, server.pid) for run in range(repeats)]
                figures["servers"][str(batch)] = {"concurrency_1": sequential, "concurrency_16": concurrent, "batching": batch_histogram(base),
                                                  "concurrency_16_median_requests_per_s": float(np.median([run["requests_per_s"] for run in concurrent]))}
            finally:
                server.terminate()
                server.wait()
            print(batch, json.dumps(figures["servers"][str(batch)]), flush=True)
    servers = figures["servers"]
    if "1" in servers:
        off = servers["1"]["concurrency_16_median_requests_per_s"]
        figures["speedup_concurrency_16"] = {batch: round(server["concurrency_16_median_requests_per_s"] / off, 2) for batch, server in servers.items() if batch != "1"}
        figures["p95_ms_concurrency_1_rise"] = {batch: round(server["concurrency_1"]["p95_ms"] - servers["1"]["concurrency_1"]["p95_ms"], 2)
                                                for batch, server in servers.items() if batch != "1"}
    figures["machine"] = {**machine(), "load_average": os.getloadavg()}
    write_json_atomic(RESULTS / ("serve-compare.json" if model == MODEL else f"serve-compare-{Path(model).name}.json"), figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "servers"}, indent=1))


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
        server, base = start_server(MODEL, DEFAULT_MAX_BATCH, threads, Path(scratch))
        try:
            asyncio.run(soak_load(base, 4, 5, server.pid, 5))  # warm-up
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
        server, base = start_server(MODEL, DEFAULT_MAX_BATCH, threads, data_dir)
        port = int(base.rsplit(":", 1)[1])
        started = time.perf_counter()
        try:
            job_id = httpx.post(f"{base}/v1/jobs", json={"model": MODEL, "rows": [{"count": images, "seed": 11}]}).json()["id"]
            at_kill = wait_for_job(base, job_id, lambda status: status["done"] >= images // 2)
            server.send_signal(signal.SIGKILL)
            server.wait()
            killed_after = time.perf_counter() - started
            server, base = start_server(MODEL, DEFAULT_MAX_BATCH, threads, data_dir, port)
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
