"""What every request passes through: Prometheus metrics (outermost, so refused requests count too),
the optional API key and the request body limit. Plain ASGI, not Starlette's BaseHTTPMiddleware,
whose extra task per request costs more than a one-image generate's budget can spare."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodgen.serve.settings import MAX_UPLOAD_BYTES

# Reachable without the API key: the health check, and the studio's page and files, which hold no
# data (the page asks for the key and sends it with each API call)
OPEN_PATHS = frozenset({"/healthz", "/"})
OPEN_PREFIXES = ("/static/",)
MAX_BODY_BYTES = 2 * MAX_UPLOAD_BYTES + 2**16  # two photos (style transfer takes a content and a style photo) and form fields
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServeMetrics:
    """One Prometheus registry per app: two apps in one process (tests) never mix their counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("prodgen_requests", "HTTP requests by route, method and status.", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("prodgen_request_seconds", "Time to answer a request, by route.", ["route", "method"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.images = Counter("prodgen_images_generated", "Images made by generate, by model.", ["model"], registry=self.registry)
        self.pass_images = Histogram("prodgen_batch_images", "Images per shared forward pass of generate's inference worker, by model.", ["model"],
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.pass_requests = Histogram("prodgen_batch_requests", "Requests sharing one forward pass, by model.", ["model"],
                                       buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)

    def observe_pass(self, model: str, requests: int, images: int) -> None:
        self.pass_requests.labels(model).observe(requests)
        self.pass_images.labels(model).observe(images)


class MetricsMiddleware:
    """Counts and times each request under its route's template; `routes` (the API's) name the
    requests refused before routing (a 401)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, routes: list[BaseRoute]):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # an exception that escapes every handler is answered with a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = self.route_label(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route, scope["method"]).observe(time.perf_counter() - start)

    def route_label(self, scope: Scope) -> str:
        """The route's template (/v1/jobs/{job_id}), never the raw path, so the label set stays small
        whatever paths clients make up."""
        if "route" in scope:
            return scope["route"].path
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route.path
        return "unmatched"


class ApiKeyMiddleware:
    """Every path but the open ones needs the key, as `X-API-Key: KEY` or `Authorization: Bearer KEY`,
    compared in constant time."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app, self.key = app, api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send_error(send, 401, "Missing or wrong API key: send it as X-API-Key: KEY or Authorization: Bearer KEY.", [(b"www-authenticate", b"Bearer")])

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key")
        if given is None:
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            given = token.strip() if scheme.lower() == b"bearer" else b""
        return hmac.compare_digest(given, self.key)


class BodyTooLarge(HTTPException):
    """Raised while a body without a Content-Length is read; FastAPI's body parsing passes an HTTPException on to the handlers."""

    def __init__(self) -> None:
        super().__init__(413, f"The request body is over {MAX_BODY_BYTES:,} bytes (an upload is at most {MAX_UPLOAD_BYTES // 2**20} MB).")


class BodyLimitMiddleware:
    """A body over MAX_BODY_BYTES is refused: by its Content-Length before a byte is read, else as
    soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await send_error(send, 413, BodyTooLarge().detail)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


async def send_error(send: Send, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A JSON error answered by a middleware, before any route runs."""
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
