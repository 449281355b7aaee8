"""Batch jobs of the service: the same files as `prodgen generate --plan`, streamed as a ZIP; records in
SQLite that survive an app restart, a graceful stop mid-job and a SIGKILL of `prodgen serve`; an
atomic claim (no job run twice); bad jobs refused before anything is queued or written."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from prodgen.generate.jobs import Job, Row, run_job
from prodgen.generate.pipeline import ProductGenerator
from prodgen.serve import jobs
from prodgen.serve.app import create_app
from prodgen.serve.jobs import MAX_ATTEMPTS, JobRecord, JobRunner, JobStore
from prodgen.serve.settings import ServeSettings

from .conftest import invoke

torch.set_num_threads(1)
PLAN = "category,count,seed\nBag,3,7\nDress,2,\n"


def settings(data_dir: Path, **options) -> ServeSettings:
    return ServeSettings(models=["fmnist-cgan"], backend="eager", data_dir=data_dir, **options)


# PostgreSQL runs where a database is given (e.g. PRODGEN_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST:PORT/DB,
# psycopg installed); its job table is dropped before each test.
POSTGRES_URL = os.environ.get("PRODGEN_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return settings(tmp_path).database_url
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: set PRODGEN_TEST_POSTGRES_URL to a database these tests may empty")
    store = JobStore(POSTGRES_URL)
    JobRecord.__table__.drop(store.engine)
    store.close()
    return POSTGRES_URL


def wait_for(client, job_id: str, states=("done", "failed"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {status['state']} after {timeout} s")


def zip_members(response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def cli_plan_output(tmp_path_factory) -> Path:
    """What `prodgen generate --plan` writes for PLAN: the files a job's ZIP must hold, byte for byte."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "plan.csv").write_text(PLAN)
    made = invoke("generate", "--model", "fmnist-cgan", "--plan", folder / "plan.csv", "--seed", 4, "--backend", "eager", "--out", folder / "out")
    assert made.exit_code == 0, made.output
    return folder / "out"


@pytest.mark.parametrize("how", ["json", "csv"])
def test_a_job_makes_the_files_of_prodgen_generate_plan_and_streams_them_as_a_zip(tmp_path, cli_plan_output, how):
    with TestClient(create_app(settings(tmp_path))) as client:
        if how == "json":
            rows = [{"category": "Bag", "count": 3, "seed": 7}, {"category": "Dress", "count": 2}]  # row 1 without a seed: seed + 1, as in a plan
            response = client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": rows, "seed": 4})
        else:
            response = client.post("/v1/jobs/plan", data={"model": "fmnist-cgan", "seed": "4"}, files={"plan": ("plan.csv", PLAN.encode(), "text/csv")})
        assert response.status_code == 202, response.text
        queued = response.json()
        assert (queued["total"], queued["result"]) == (5, None) and len(queued["id"]) == 32
        status = wait_for(client, queued["id"])
        assert (status["state"], status["done"], status["progress"], status["attempts"]) == ("done", 5, 1.0, 1)
        assert status["result"] == f"/v1/jobs/{queued['id']}/result" and status["finished_at"].endswith("Z")
        members = zip_members(client.get(status["result"]))
    expected = {path.name: path.read_bytes() for path in cli_plan_output.iterdir() if path.is_file()}
    assert "manifest.jsonl" in members and "Dress-5-0001.png" in members and "Dress-5-0001.json" in members
    assert members == expected


def test_bad_jobs_are_refused_before_anything_is_queued_or_written(tmp_path):
    with TestClient(create_app(settings(tmp_path, max_job_images=1000))) as client:
        def refused(response, status: int = 422) -> str:
            assert response.status_code == status, response.text
            return response.json()["error"]

        assert "known: T-shirt/top" in refused(client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": [{"count": 2}, {"category": "Hat", "count": 1}]}))
        assert "at most 1,000 per job" in refused(client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": [{"count": 600}, {"count": 401}]}))
        assert "rows" in refused(client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": []}))
        assert "count" in refused(client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": [{"count": 0}]}))
        assert "superres" in refused(client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": [{"count": 1}], "post": "superres:x.safetensors"}))
        assert "Unknown model" in refused(client.post("/v1/jobs", json={"model": "fmnist-vaegan", "rows": [{"count": 1}]}))
        bad_plan = refused(client.post("/v1/jobs/plan", data={"model": "fmnist-cgan"}, files={"plan": ("p.csv", b"category,count\nBag,many\n")}))
        assert bad_plan.startswith("plan.csv, line 2: count and seed must be whole numbers") and str(tmp_path) not in bad_plan
        assert "count column" in refused(client.post("/v1/jobs/plan", data={"model": "fmnist-cgan"}, files={"plan": ("p.csv", b"category\nBag\n")}))
        assert "No job" in refused(client.get("/v1/jobs/" + "0" * 32), 404)
        assert "Not Found" in refused(client.get("/v1/jobs/..%2F..%2Fetc"), 404)  # no route takes a path
        assert "job_id" in refused(client.get("/v1/jobs/ABC/result"), 422)
    assert not (tmp_path / "jobs").exists() or not any((tmp_path / "jobs").iterdir())
    assert not [path for path in tmp_path.iterdir() if path.is_dir() and path.name.startswith("tmp")]  # the plan's scratch folders are gone


def test_a_job_that_fails_leaves_no_file_and_says_why(tmp_path):
    store = JobStore(settings(tmp_path).database_url)
    # queued behind the API's back, as an older server might have: rows it would now refuse
    record = store.add("fmnist-cgan", Job(model="fmnist-cgan", rows=[Row({"category": "Hat"}, 3, 0)], backend="eager"))
    store.close()
    with TestClient(create_app(settings(tmp_path))) as client:
        status = wait_for(client, record.id)
        assert status["state"] == "failed" and "Unknown category 'Hat'" in status["error"]
        assert "It failed: Unknown category" in client.get(f"/v1/jobs/{record.id}/result").json()["error"]
    assert not (tmp_path / "jobs" / record.id).exists()


def test_a_finished_job_survives_an_app_restart(tmp_path, database_url):
    with TestClient(create_app(settings(tmp_path, db_url=database_url))) as client:
        job_id = client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": [{"category": "Bag", "count": 4}]}).json()["id"]
        first = wait_for(client, job_id)
        zipped = client.get(f"/v1/jobs/{job_id}/result").content
    assert JobStore(database_url).get(job_id).state == "done"
    with TestClient(create_app(settings(tmp_path, db_url=database_url))) as client:
        assert client.get(f"/v1/jobs/{job_id}").json() == first
        assert client.get(f"/v1/jobs/{job_id}/result").content == zipped


def test_a_job_stopped_by_a_shutdown_resumes_after_the_restart_without_redoing_its_units(tmp_path):
    rows = [{"category": "Sneaker", "count": 256 * 4, "seed": 1}]
    with TestClient(create_app(settings(tmp_path))) as client:
        job_id = client.post("/v1/jobs", json={"model": "fmnist-cgan", "rows": rows, "post": "denoise"}).json()["id"]
        while client.get(f"/v1/jobs/{job_id}").json()["done"] < 256:
            time.sleep(0.05)
    stopped = JobStore(settings(tmp_path).database_url).get(job_id)
    assert stopped.state == "queued" and stopped.attempts == 0 and 0 < stopped.done < 256 * 4  # handed back, not counted as an attempt
    first_image = tmp_path / "jobs" / job_id / "Sneaker-1-0000.png"
    made_before = first_image.stat().st_mtime_ns
    with TestClient(create_app(settings(tmp_path))) as client:
        status = wait_for(client, job_id)
        members = zip_members(client.get(f"/v1/jobs/{job_id}/result"))
    assert (status["state"], status["done"], status["attempts"]) == ("done", 256 * 4, 1)
    assert first_image.stat().st_mtime_ns == made_before  # its unit was complete: not made again
    assert len(members["manifest.jsonl"].decode().splitlines()) == 256 * 4


def test_an_interrupted_job_resumes_when_its_lease_expires_or_fails_after_max_attempts(tmp_path):
    store = JobStore(settings(tmp_path).database_url, lease_seconds=0.5)
    generator = ProductGenerator.load("fmnist-cgan")
    job = Job(model="fmnist-cgan", rows=[Row({"category": "Coat"}, 3, 2), Row({"category": "Bag"}, 2, 5)], backend="eager")
    resumable, given_up = store.add("fmnist-cgan", job), store.add("fmnist-cgan", job)
    assert store.claim("stopped-server").id == resumable.id  # the oldest first; its lease is never renewed
    # the server "dies" with the first row's units made: the runner's own files for them exist
    run_job(generator, Job(model="fmnist-cgan", rows=job.rows[:1], backend="eager"), tmp_path / "jobs" / resumable.id)
    first_row = (tmp_path / "jobs" / resumable.id / "Coat-2-0000.png").stat().st_mtime_ns
    with store.sessions.begin() as session:  # and the other one was interrupted MAX_ATTEMPTS times
        session.execute(update(JobRecord).where(JobRecord.id == given_up.id).values(state="running", attempts=MAX_ATTEMPTS))
    store.close()
    with TestClient(create_app(settings(tmp_path))) as client:
        status = wait_for(client, resumable.id)
        failed = client.get(f"/v1/jobs/{given_up.id}").json()
        names = set(zip_members(client.get(f"/v1/jobs/{resumable.id}/result")))
    assert (status["state"], status["done"], status["attempts"]) == ("done", 5, 2)
    assert (tmp_path / "jobs" / resumable.id / "Coat-2-0000.png").stat().st_mtime_ns == first_row
    assert {"Coat-2-0002.png", "Bag-5-0001.png", "Bag-5-0001.json", "manifest.jsonl"} <= names
    assert failed["state"] == "failed" and f"{MAX_ATTEMPTS} times" in failed["error"]


def test_a_lease_keeps_a_running_job_from_other_runners_until_it_expires(database_url, monkeypatch):
    # The store's clock, moved by hand: with real sleeps a loaded machine could let the lease lapse before the renewal.
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    monkeypatch.setattr(jobs, "now", lambda: clock[0])
    first, second = JobStore(database_url, lease_seconds=0.4), JobStore(database_url, lease_seconds=60)
    job = first.add("fmnist-cgan", Job(model="fmnist-cgan", rows=[Row({"category": "Bag"}, 2, 0)], backend="eager"))
    assert first.claim("a").id == job.id
    assert second.claim("b") is None  # running under a live lease
    clock[0] += timedelta(seconds=0.25)
    assert first.renew(job.id, "a") and second.claim("b") is None  # renewed in time
    clock[0] += timedelta(seconds=0.5)
    taken = second.claim("b")  # "a" stopped renewing: "b" takes the job over
    assert (taken.id, taken.runner, taken.attempts) == (job.id, "b", 2)
    assert not first.renew(job.id, "a") and not first.set_done_count(job.id, "a", 1)  # "a" learns it lost the job
    first.finish(job.id, "a")
    assert first.get(job.id).state == "running"  # a runner without the lease cannot end the job
    second.finish(job.id, "b")
    assert first.get(job.id).state == "done"


def test_a_runner_that_lost_its_lease_stops_and_leaves_the_job_to_its_new_owner(tmp_path, monkeypatch):
    store = JobStore(settings(tmp_path).database_url)
    job = store.add("fmnist-cgan", Job(model="fmnist-cgan", rows=[Row({"category": "Bag"}, 256 * 3, 0)], backend="eager"))
    runner = JobRunner(store, tmp_path / "jobs", model_source=lambda name: name)
    claimed = store.claim(runner.name)
    with store.sessions.begin() as session:  # another server takes the job over while this runner works on it
        session.execute(update(JobRecord).where(JobRecord.id == job.id).values(runner="other", attempts=2))
    runner._run_one(claimed)
    record = store.get(job.id)
    assert (record.state, record.runner, record.attempts, record.done) == ("running", "other", 2, 0)  # untouched by the old runner
    assert len(list((tmp_path / "jobs" / job.id).glob("*.png"))) == 256  # it stopped after its first unit


def test_a_job_table_of_an_earlier_prodgen_gets_the_lease_columns(database_url):
    url = database_url
    JobStore(url).close()
    with JobStore(url).engine.begin() as connection:  # the table as it was before leases: without their columns
        connection.execute(text("ALTER TABLE prodgen_jobs DROP COLUMN lease_until"))
        connection.execute(text("ALTER TABLE prodgen_jobs DROP COLUMN runner"))
    store = JobStore(url)
    job = store.add("fmnist-cgan", Job(model="fmnist-cgan", rows=[Row({"category": "Bag"}, 1, 0)], backend="eager"))
    assert store.claim("a").runner == "a" and store.get(job.id).lease_until is not None


def test_two_runners_never_claim_the_same_job(database_url):
    url = database_url
    stores = [JobStore(url) for _ in range(4)]
    added = {stores[0].add("fmnist-cgan", Job(model="fmnist-cgan", rows=[Row({}, 1, k)])).id for k in range(5)}
    claims: list[str] = []
    barrier = threading.Barrier(8)

    def claim_all(store: JobStore) -> None:
        barrier.wait()
        while (record := store.claim(f"runner-{id(store)}")) is not None:
            claims.append(record.id)

    threads = [threading.Thread(target=claim_all, args=(stores[k % 4],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claims) == sorted(added)  # each job exactly once
    for store in stores:
        store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "prodgen.cli", "serve", "--model", "fmnist-cgan", "--backend", "eager", "--port", str(port), "--data-dir", str(data_dir), "--job-lease", "2"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        assert server.poll() is None, server.stderr.read().decode()
    raise AssertionError("prodgen serve did not answer /healthz within 120 s")


@pytest.mark.slow
def test_a_job_survives_a_sigkill_of_prodgen_serve(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    try:
        job_id = httpx.post(f"{base}/v1/jobs", json={"model": "fmnist-cgan", "rows": [{"count": 256 * 5, "seed": 3}], "post": "denoise"}).json()["id"]
        while httpx.get(f"{base}/v1/jobs/{job_id}").json()["done"] < 256:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait()
        killed = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}").get(job_id)
        assert killed.state == "running" and killed.done < 256 * 5
        server = start_server(tmp_path, port)
        deadline = time.monotonic() + 300
        while (status := httpx.get(f"{base}/v1/jobs/{job_id}").json())["state"] != "done":
            assert status["state"] in ("queued", "running") and time.monotonic() < deadline, status
            time.sleep(0.2)
        assert (status["done"], status["attempts"]) == (256 * 5, 2)
        with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/result") as response, zipfile.ZipFile(io.BytesIO(response.read())) as archive:
            manifest = archive.read("manifest.jsonl").decode().splitlines()
        assert [json.loads(line)["index"] for line in manifest] == list(range(256 * 5))
    finally:
        server.kill()
        server.wait()
