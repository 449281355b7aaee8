"""Batch jobs: records in a real database (SQLAlchemy: a SQLite file by default, PostgreSQL by URL),
images on disk, made by the library's resumable job runner (prodgen.generate.jobs) in one background
thread per server.

A job is queued, then claimed by an atomic UPDATE ... WHERE state = 'queued' whose row count says
whether this runner got it, so two runners never run one job. The runner writes progress as units of
256 images complete. A server that stops (SIGKILL included) leaves its job 'running'; the next start-up
queues it again and the job runner skips the units whose manifest parts exist, so nothing is made
twice and nothing is lost, or, after MAX_ATTEMPTS starts, marks it failed with the reason. That
recovery assumes one server per database: a second server starting while the first runs a job would
queue that job again (a lease with heartbeats would lift this). A failed job's folder is removed, so
no partial file is left; its record keeps the reason."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Integer, String, Text, TypeDecorator, create_engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from prodgen.errors import ProdgenError
from prodgen.generate.jobs import Job, Row, run_job
from prodgen.generate.pipeline import ProductGenerator

MAX_ATTEMPTS = 3  # starts of one job before a server gives up on it (a job that kills its server must not kill it forever)
IDLE_POLL_S = 1.0  # how often an idle runner looks for work it was not told about (a job queued by another process)
STORED = (".png", ".jpg", ".webp", ".tar")  # already compressed: stored as they are in the result ZIP
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
log = logging.getLogger("prodgen.serve")


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator):
    """A time stamp in UTC, read back as UTC also from SQLite, which keeps no time zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class JobRecord(Base):
    __tablename__ = "prodgen_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # made by the server (uuid4 hex), never by a client
    state: Mapped[str] = mapped_column(String(16), index=True)
    model: Mapped[str] = mapped_column(String(255))  # the served model's name
    job: Mapped[str] = mapped_column(Text)  # the library's Job as JSON: rows, truncation, format, post, backend, tar
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


def now() -> datetime:
    return datetime.now(UTC)


def job_to_json(job: Job) -> str:
    return json.dumps({"model": job.model, "rows": [{"asked": row.asked, "count": row.count, "seed": row.seed} for row in job.rows],
                       "truncation": job.truncation, "format": job.format, "post": job.post, "backend": job.backend, "tar": job.tar})


def job_from_json(text: str) -> Job:
    fields = json.loads(text)
    return Job(**{**fields, "rows": [Row(**row) for row in fields["rows"]]})


class JobStore:
    """The job table: every change is one short transaction."""

    def __init__(self, url: str):
        sqlite = url.startswith("sqlite")
        # SQLite: the API's threads and the runner share the file; a busy writer is waited for, not an error
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {}, pool_pre_ping=not sqlite)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def add(self, model: str, job: Job) -> JobRecord:
        record = JobRecord(id=uuid.uuid4().hex, state=QUEUED, model=model, job=job_to_json(job), total=sum(row.count for row in job.rows),
                           done=0, attempts=0, created_at=now())
        with self.sessions.begin() as session:
            session.add(record)
        return record

    def get(self, job_id: str) -> JobRecord | None:
        with self.sessions() as session:
            return session.get(JobRecord, job_id)

    def claim(self) -> JobRecord | None:
        """The oldest queued job, now running for this runner; None when there is none."""
        with self.sessions() as session:
            candidates = session.scalars(select(JobRecord.id).where(JobRecord.state == QUEUED).order_by(JobRecord.created_at).limit(8)).all()
        for job_id in candidates:
            with self.sessions.begin() as session:
                claimed = session.execute(update(JobRecord).where(JobRecord.id == job_id, JobRecord.state == QUEUED)
                                          .values(state=RUNNING, attempts=JobRecord.attempts + 1, done=0, started_at=now())).rowcount
            if claimed == 1:
                return self.get(job_id)
        return None

    def set_done_count(self, job_id: str, done: int) -> None:
        self._update(job_id, done=done)

    def finish(self, job_id: str) -> None:
        self._update(job_id, state=DONE, done=JobRecord.total, finished_at=now())

    def fail(self, job_id: str, reason: str) -> None:
        self._update(job_id, state=FAILED, error=reason, finished_at=now())

    def requeue(self, job_id: str) -> None:
        self._update(job_id, state=QUEUED)

    def hand_back(self, job_id: str) -> None:
        """A job the runner stopped at shutdown: queued again, and this start does not count as an attempt."""
        self._update(job_id, state=QUEUED, attempts=JobRecord.attempts - 1)

    def recover(self, served: set[str]) -> None:
        """At start-up: jobs a stopped server left running are queued again, or failed with the reason
        when they were started MAX_ATTEMPTS times or their model is no longer served."""
        with self.sessions() as session:
            interrupted = session.scalars(select(JobRecord).where(JobRecord.state == RUNNING)).all()
        for record in interrupted:
            if record.attempts >= MAX_ATTEMPTS:
                self.fail(record.id, f"The server stopped while the job ran, {record.attempts} times; it is not started again.")
            elif record.model not in served:
                self.fail(record.id, f"The server stopped while the job ran, and model {record.model!r} is no longer served.")
            else:
                self.requeue(record.id)
        with self.sessions() as session:
            queued = session.scalars(select(JobRecord).where(JobRecord.state == QUEUED, JobRecord.model.not_in(served))).all()
        for record in queued:
            self.fail(record.id, f"Model {record.model!r} is no longer served.")

    def _update(self, job_id: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(**values))


class Stopping(Exception):
    """Raised through the job runner when the server shuts down: the job stays queued and resumes at the next start."""


class JobRunner:
    """The background thread that runs queued jobs, one at a time."""

    def __init__(self, store: JobStore, results: Path, model_source: Callable[[str], str]):
        self.store, self.results = store, results
        self.model_source = model_source  # a served model's name -> what ProductGenerator.load takes
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="prodgen-jobs", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join()

    def folder(self, job_id: str) -> Path:
        return self.results / job_id

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                record = self.store.claim()
            except SQLAlchemyError:  # the database is away for a moment: jobs wait, the runner does not die
                log.exception("cannot claim a job; trying again in %s s", IDLE_POLL_S)
                record = None
            if record is None:
                self.wake.wait(IDLE_POLL_S)
                self.wake.clear()
                continue
            self._run_one(record)

    def _run_one(self, record: JobRecord) -> None:
        out = self.folder(record.id)
        try:
            # its own generator: run_job picks the backend on it, which must not touch the one generate requests share
            generator = ProductGenerator.load(self.model_source(record.model))
            out.mkdir(parents=True, exist_ok=True)
            run_job(generator, job_from_json(record.job), out, progress=lambda _total: self._progress(record.id))
        except Stopping:
            self.store.hand_back(record.id)
        except Exception as exc:  # any failure is the job's, recorded with its reason; the runner goes on with the next
            shutil.rmtree(out, ignore_errors=True)
            self.store.fail(record.id, str(exc) if isinstance(exc, ProdgenError) else f"{type(exc).__name__}: {exc}")
        else:
            self.store.finish(record.id)

    def _progress(self, job_id: str) -> Callable[[int], None]:
        made = 0

        def advance(images: int) -> None:
            nonlocal made
            made += images
            self.store.set_done_count(job_id, made)
            if self.stopping.is_set():
                raise Stopping()

        return advance


def result_files(folder: Path) -> list[Path]:
    """What a finished job's ZIP holds: images, their JSON, the manifest and the contact sheet, not the
    runner's own bookkeeping (hidden names: manifest parts, temporary files)."""
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


class _Chunks(io.RawIOBase):
    """A write-only sink the ZIP writer streams into; each file's bytes are taken as soon as written."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def zip_stream(folder: Path) -> Iterator[bytes]:
    """The result ZIP, made as it is sent: a million-image job never sits in memory or on disk twice."""
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w") as archive:
        for path in result_files(folder):
            archive.write(path, path.name, compress_type=zipfile.ZIP_STORED if path.suffix in STORED else zipfile.ZIP_DEFLATED)
            yield sink.take()
    yield sink.take()
