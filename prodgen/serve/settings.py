"""What one server is configured with. Everything a running app holds is built from this by
`create_app`, so two apps (a test's and a restarted one) never share state."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prodgen.errors import ProdgenError
from prodgen.generate.backends import BACKENDS
from prodgen.models.sampling import BLOCK
from prodgen.paths import prodgen_home
from prodgen.serve.batching import DEFAULT_MAX_BATCH
from prodgen.serve.jobs import LEASE_SECONDS

MAX_IMAGES_PER_REQUEST = 256
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000


def default_data_dir() -> Path:
    return prodgen_home() / "serve"


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    models: list[str] = Field(default_factory=list, description="Shipped model names, exported folders, run folders or checkpoints; "
                                                                "empty: every shipped model.")
    data_dir: Path = Field(default_factory=default_data_dir, description="Job database (SQLite) and job results.")
    db_url: str | None = Field(None, description="SQLAlchemy URL of the job database; default sqlite:///<data_dir>/jobs.db.")
    api_key: str | None = Field(None, description="When set, every route but /healthz needs it (X-API-Key or Authorization: Bearer).")
    backend: str = Field("onnx", description="Forward passes through this backend; ONNX Runtime measured fastest on CPU (benchmarks/RESULTS.md).")
    max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1, le=BLOCK, description="Images that concurrent generate requests may share one forward "
                                                                          "pass with; 1 turns micro-batching off; raise it on a GPU.")
    batch_window_ms: float = Field(2.0, ge=0, le=1000, description="How long the inference worker waits for more requests to share a pass.")
    max_job_images: int = Field(1_000_000, ge=1, description="The most images one batch job may ask for.")
    job_lease_s: float = Field(LEASE_SECONDS, gt=0, le=3600, description="A running job's lease: how soon after its server stopped another "
                                                              "server (or this one, restarted) takes the job up again.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty (the default): CORS off.")

    @field_validator("backend")
    @classmethod
    def known_backend(cls, backend: str) -> str:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        return backend

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'jobs.db'}"


def read_api_key(path: Path) -> str:
    """The key in a file (surrounding whitespace dropped): kept out of the command line, where `ps` shows it."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProdgenError(f"Cannot read the API key file {path}: {exc}") from None
    if not key:
        raise ProdgenError(f"The API key file {path} is empty.")
    return key


def serve_settings(**options) -> ServeSettings:
    """Settings from the command line's options; a bad value is a ProdgenError naming it."""
    try:
        return ServeSettings(**options)
    except ValidationError as exc:
        raise ProdgenError("Invalid serve option: " + "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from None
