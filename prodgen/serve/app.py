"""The application factory: `create_app(settings)` loads the models and builds one app, with its own
metrics registry, inference workers and error handlers; nothing is shared between two apps.

Every refusal is a 4xx with a JSON body {"error": "..."} that says what is wrong: a ProdgenError
(the library's word for bad input) is a 422, a validation error a 422 naming the field, a missing or
wrong API key a 401, an upload over the limits a 413, an upload that is no image a 415."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware import Middleware
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from prodgen import __version__
from prodgen.errors import ProdgenError
from prodgen.serve.batching import InferenceWorker
from prodgen.serve.jobs import JobRunner, JobStore
from prodgen.serve.middleware import ApiKeyMiddleware, BodyLimitMiddleware, MetricsMiddleware, ServeMetrics
from prodgen.serve.models import ModelRegistry
from prodgen.serve.routes import STUDIO, ServeState, router, v1
from prodgen.serve.settings import ServeSettings

log = logging.getLogger("prodgen.serve")


def create_app(settings: ServeSettings) -> FastAPI:
    models = ModelRegistry.load(settings.models, settings.backend)
    generators = {name: model.generator for name, model in models.models.items() if model.generator is not None}
    metrics = ServeMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as started:  # what was started is stopped, in reverse order, also when a later start fails
            workers = {}
            for name, generator in generators.items():
                workers[name] = InferenceWorker(generator, settings.max_batch, settings.batch_window_ms / 1000,
                                                on_pass=lambda requests, images, name=name: metrics.observe_pass(name, requests, images))
                started.callback(workers[name].stop)
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            jobs = JobStore(settings.database_url, settings.job_lease_s)
            started.callback(jobs.close)
            jobs.recover(served=set(generators))
            runner = JobRunner(jobs, settings.data_dir / "jobs", model_source=lambda name: models.get(name).source)
            runner.start()
            started.callback(runner.stop)
            app.state.serve = ServeState(settings, models, metrics, workers, jobs, runner)
            yield

    middleware = [Middleware(MetricsMiddleware, metrics=metrics, routes=[*router.routes, *v1.routes])]  # outermost: refused requests count too
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]))
    if settings.api_key:
        middleware.append(Middleware(ApiKeyMiddleware, api_key=settings.api_key))
    middleware.append(Middleware(BodyLimitMiddleware))
    description = "New product images from prodgen's generators, batch jobs, and edits of product photos."
    if settings.api_key:
        description += " Every route but /healthz and the studio's files needs the API key: X-API-Key: KEY or Authorization: Bearer KEY."
    app = FastAPI(title="prodgen", version=__version__, description=description, lifespan=lifespan, middleware=middleware)
    app.include_router(router)
    app.include_router(v1)
    app.mount("/static", StaticFiles(directory=STUDIO), name="static")  # the web studio's files (GET / is its page)
    app.add_exception_handler(ProdgenError, library_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
    return app


async def library_error(_: Request, exc: ProdgenError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=422)


async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    """FastAPI's and Starlette's own (an unknown path's 404, a wrong method's 405) alike."""
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    details = [{"field": ".".join(str(part) for part in error["loc"][1:]) or error["loc"][0], "problem": error["msg"]} for error in exc.errors()]
    message = "; ".join(f"{detail['field']}: {detail['problem']}" for detail in details)
    return JSONResponse({"error": message, "details": details}, status_code=422)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "Internal error: the server's log has the details."}, status_code=500)
