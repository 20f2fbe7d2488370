"""The HTTP endpoint every long-running service exposes: /metrics, /healthz, /readyz.

* ``/metrics``: Prometheus text format from the service's registry.
* ``/healthz``: liveness, 200 while the process serves requests.
* ``/readyz``: 200 when the service's readiness check passes, else 503; the body says why.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

#: Returns (ready, reason). Must be cheap and thread-safe.
ReadyCheck = Callable[[], tuple[bool, str]]


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        ready: ReadyCheck,
        host: str = "0.0.0.0",
        port: int = 8000,
    ) -> None:
        self._registry = registry
        self._ready = ready
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = host, port

    def start(self) -> HealthServer:
        registry, ready = self._registry, self._ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/health"):
                    self._send(200, b'{"status":"ok"}\n', "application/json")
                elif path == "/readyz":
                    ok, reason = ready()
                    body = json.dumps({"ready": ok, "reason": reason}).encode() + b"\n"
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would flood the log

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="iotml-http", daemon=True
        )
        self._thread.start()
        log.info(
            "metrics and health on http://%s:%d (/metrics /healthz /readyz)", self.host, self.port
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Service(Protocol):
    """A long-running service as the CLI runs it."""

    @property
    def metrics(self) -> Any: ...  # has ``registry``

    def ready(self) -> tuple[bool, str]: ...

    def run(self) -> None: ...

    def stop(self) -> None: ...


def run_service(service: Service, host: str, port: int) -> None:
    """Run ``service`` until it stops, with /metrics, /healthz and /readyz on ``port``
    (0: none) and SIGTERM/SIGINT asking it to stop."""
    import signal

    server = (
        HealthServer(service.metrics.registry, service.ready, host, port).start() if port else None
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    try:
        service.run()
    finally:
        if server is not None:
            server.stop()
