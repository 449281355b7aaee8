"""Batch jobs: records in a real database (SQLAlchemy: a SQLite file by default, PostgreSQL by URL),
images on disk, made by the library's resumable job runner (prodgen.generate.jobs) in one background
thread per server.

A job is queued, then claimed by an atomic UPDATE ... WHERE (claimable) whose row count says whether
this runner got it, so two runners never run one job. A claim is a lease: the runner renews it every
third of `lease_seconds` while the job runs, and writes progress as units of 256 images complete. A
server that stops (SIGKILL included) stops renewing; once its lease has expired, any runner sharing the
database (this server restarted, or another one) claims the job again, and the job runner skips the
units whose manifest parts exist, so nothing is made twice and nothing is lost; after MAX_ATTEMPTS
claims it is marked failed with the reason. A runner that lost its lease (stalled past it) stops at its
next unit and leaves the job to its new owner; both write the same bytes under the same names, each
file atomically. Servers sharing one database must serve the same models: at start-up, queued jobs of
a model this server does not serve are failed with the reason. A failed job's folder is removed, so no
partial file is left; its record keeps the reason."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Integer, String, Text, TypeDecorator, and_, create_engine, inspect, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from prodgen.errors import ProdgenError
from prodgen.generate.jobs import Job, Row, run_job
from prodgen.generate.pipeline import ProductGenerator

MAX_ATTEMPTS = 3  # starts of one job before a server gives up on it (a job that kills its server must not kill it forever)
LEASE_SECONDS = 30.0  # how long a claim holds without renewal: how soon a stopped server's job is taken up again
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
    runner: Mapped[str | None] = mapped_column(String(32), nullable=True)  # who holds the lease of a running job
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


def now() -> datetime:
    return datetime.now(UTC)


def job_to_json(job: Job) -> str:
    return json.dumps({"model": job.model, "rows": [{"asked": row.asked, "count": row.count, "seed": row.seed} for row in job.rows],
                       "truncation": job.truncation, "format": job.format, "post": job.post, "backend": job.backend, "tar": job.tar})


def job_from_json(text: str) -> Job:
    fields = json.loads(text)
    return Job(**{**fields, "rows": [Row(**row) for row in fields["rows"]]})


def _claimable(moment: datetime):
    """Queued, or running under a lease that has expired (its runner stopped renewing it)."""
    expired = or_(JobRecord.lease_until.is_(None), JobRecord.lease_until < moment)
    return or_(JobRecord.state == QUEUED, and_(JobRecord.state == RUNNING, expired))


class JobStore:
    """The job table: every change is one short transaction."""

    def __init__(self, url: str, lease_seconds: float = LEASE_SECONDS):
        sqlite = url.startswith("sqlite")
        # SQLite: the API's threads and the runner share the file; a busy writer is waited for, not an error
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {}, pool_pre_ping=not sqlite)
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.lease = timedelta(seconds=lease_seconds)

    def _add_missing_columns(self) -> None:
        """A job table made by an earlier prodgen gets the columns added since (all nullable)."""
        table = JobRecord.__table__
        present = {column["name"] for column in inspect(self.engine).get_columns(table.name)}
        with self.engine.begin() as connection:
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))

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

    def claim(self, runner: str) -> JobRecord | None:
        """The oldest claimable job, now running under `runner`'s lease; None when there is none. A job
        whose lease expired MAX_ATTEMPTS times is failed instead, with the reason."""
        moment = now()
        with self.sessions.begin() as session:
            session.execute(update(JobRecord).where(_claimable(moment), JobRecord.state == RUNNING, JobRecord.attempts >= MAX_ATTEMPTS)
                            .values(state=FAILED, finished_at=moment, runner=None, lease_until=None,
                                    error=f"The server stopped while the job ran, {MAX_ATTEMPTS} times; it is not started again."))
        with self.sessions() as session:
            candidates = session.scalars(select(JobRecord.id).where(_claimable(moment)).order_by(JobRecord.created_at).limit(8)).all()
        for job_id in candidates:
            with self.sessions.begin() as session:
                claimed = session.execute(update(JobRecord).where(JobRecord.id == job_id, _claimable(moment))
                                          .values(state=RUNNING, attempts=JobRecord.attempts + 1, done=0, started_at=now(), runner=runner,
                                                  lease_until=now() + self.lease)).rowcount
            if claimed == 1:
                return self.get(job_id)
        return None

    def renew(self, job_id: str, runner: str) -> bool:
        """Extend `runner`'s lease; False when it is no longer the job's runner (its lease expired and another took the job)."""
        return self._update_own(job_id, runner, lease_until=now() + self.lease)

    def set_done_count(self, job_id: str, runner: str, done: int) -> bool:
        return self._update_own(job_id, runner, done=done)

    def finish(self, job_id: str, runner: str) -> None:
        self._update_own(job_id, runner, state=DONE, done=JobRecord.total, finished_at=now(), runner=None, lease_until=None)

    def fail(self, job_id: str, reason: str, runner: str | None = None) -> None:
        values = {"state": FAILED, "error": reason, "finished_at": now(), "runner": None, "lease_until": None}
        if runner is None:
            self._update(job_id, **values)
        else:
            self._update_own(job_id, runner, **values)

    def hand_back(self, job_id: str, runner: str) -> None:
        """A job the runner stopped at shutdown: queued again at once, and this start does not count as an attempt."""
        self._update_own(job_id, runner, state=QUEUED, attempts=JobRecord.attempts - 1, runner=None, lease_until=None)

    def recover(self, served: set[str]) -> None:
        """At start-up: queued jobs of a model this server no longer serves are failed with the reason
        (jobs a stopped server left running are claimed again once their lease expires)."""
        with self.sessions() as session:
            queued = session.scalars(select(JobRecord).where(JobRecord.state == QUEUED, JobRecord.model.not_in(served))).all()
        for record in queued:
            self.fail(record.id, f"Model {record.model!r} is no longer served.")

    def _update(self, job_id: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(**values))

    def _update_own(self, job_id: str, holder: str, **values: Any) -> bool:
        """Change a running job only while `holder` holds its lease."""
        with self.sessions.begin() as session:
            return session.execute(update(JobRecord).where(JobRecord.id == job_id, JobRecord.state == RUNNING, JobRecord.runner == holder)
                                   .values(**values)).rowcount == 1


class Stopping(Exception):
    """Raised through the job runner when the server shuts down: the job stays queued and resumes at the next start."""


class LeaseLost(Exception):
    """Raised through the job runner when another runner took the job (this one stalled past its lease)."""


class JobRunner:
    """The background thread that runs claimed jobs, one at a time, and a heartbeat that renews the
    lease of the job it runs."""

    def __init__(self, store: JobStore, results: Path, model_source: Callable[[str], str]):
        self.store, self.results = store, results
        self.model_source = model_source  # a served model's name -> what ProductGenerator.load takes
        self.name = uuid.uuid4().hex  # this runner's lease holder id
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
                record = self.store.claim(self.name)
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
        job_done, lease_lost = threading.Event(), threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(record.id, job_done, lease_lost), name="prodgen-jobs-lease", daemon=True)
        heartbeat.start()
        try:
            # its own generator: run_job picks the backend on it, which must not touch the one generate requests share
            generator = ProductGenerator.load(self.model_source(record.model))
            out.mkdir(parents=True, exist_ok=True)
            run_job(generator, job_from_json(record.job), out, progress=lambda _total: self._progress(record.id, lease_lost))
        except Stopping:
            self.store.hand_back(record.id, self.name)
        except LeaseLost:
            log.warning("job %s: another runner took it over (this one held no lease); leaving it to that runner", record.id)
        except Exception as exc:  # any failure is the job's, recorded with its reason; the runner goes on with the next
            shutil.rmtree(out, ignore_errors=True)
            self.store.fail(record.id, str(exc) if isinstance(exc, ProdgenError) else f"{type(exc).__name__}: {exc}", self.name)
        else:
            self.store.finish(record.id, self.name)
        finally:
            job_done.set()
            heartbeat.join()

    def _heartbeat(self, job_id: str, job_done: threading.Event, lease_lost: threading.Event) -> None:
        """Renew the lease every third of its length until the job ends or the lease is lost."""
        while not job_done.wait(self.store.lease.total_seconds() / 3):
            try:
                if not self.store.renew(job_id, self.name):
                    lease_lost.set()
                    return
            except SQLAlchemyError:  # the database is away for a moment: the next beat tries again, within the lease
                log.exception("cannot renew the lease of job %s", job_id)

    def _progress(self, job_id: str, lease_lost: threading.Event) -> Callable[[int], None]:
        made = 0

        def advance(images: int) -> None:
            nonlocal made
            made += images
            if lease_lost.is_set() or not self.store.set_done_count(job_id, self.name, made):
                raise LeaseLost()
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
