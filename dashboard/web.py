"""The ASGI app: the page's static files, its JSON and event stream, and the service
endpoints (/metrics, /healthz, /readyz). Read-only: every route is a GET.

Optional basic auth covers everything but /healthz and /readyz (container probes carry
no credentials and learn nothing from them).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard.metrics import DashboardMetrics

__all__ = ["KEEPALIVE_S", "STATIC", "Backend", "build_app", "event_stream"]

STATIC = Path(__file__).resolve().parent / "static"
_OPEN_PATHS = ("/healthz", "/readyz")
#: Seconds without a push after which a stream gets a keep-alive comment.
KEEPALIVE_S = 15.0


class Backend(Protocol):
    """What the routes need from the service."""

    metrics: DashboardMetrics

    def ready(self) -> tuple[bool, str]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def device(self, device_id: str) -> dict[str, Any] | None: ...

    def events(self) -> Response: ...


class BasicAuth(BaseHTTPMiddleware):
    def __init__(self, app: Any, username: str, password: str) -> None:
        super().__init__(app)
        self._expected = f"{username}:{password}".encode()

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in _OPEN_PATHS or self._allowed(request):
            return await call_next(request)
        return Response(
            "authentication required\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="iotml dashboard", charset="UTF-8"'},
        )

    def _allowed(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return False
        return secrets.compare_digest(given, self._expected)


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status, media_type="application/json")


def build_app(
    backend: Backend,
    basic_auth: tuple[str, str] | None = None,
    lifespan: Any = None,
) -> Starlette:
    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def snapshot(request: Request) -> Response:
        return _json(backend.snapshot())

    async def device(request: Request) -> Response:
        data = backend.device(request.path_params["device_id"])
        return _json(data) if data is not None else _json({"error": "unknown device"}, 404)

    async def events(request: Request) -> Response:
        return backend.events()

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(backend.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, reason = backend.ready()
        return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    routes = [
        Route("/", index),
        Route("/api/snapshot", snapshot),
        Route("/api/devices/{device_id:path}", device),
        Route("/events", events),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/health", healthz),
        Route("/readyz", readyz),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(BasicAuth, *basic_auth)] if basic_auth else []
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def event_stream(chunks: Any) -> StreamingResponse:
    """The response of an SSE stream (no caching, no proxy buffering)."""
    return StreamingResponse(
        chunks,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
