"""``iotml dashboard`` at run time: the Kafka intake thread, the push loop and the web app.

The intake thread writes the fleet state under a lock; every ``dashboard_push_interval``
the event loop takes the changes since the last push, encodes them once and hands the
bytes to every connected page. A page that connects gets a snapshot taken in the same
loop step as its registration, so it misses no change (it may see a few twice, which the
page ignores by time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response

from dashboard.fleet import FleetState
from dashboard.intake import Intake
from dashboard.metrics import DashboardMetrics
from dashboard.settings import DashboardSettings
from dashboard.sse import Broadcaster, encode_event
from dashboard.web import KEEPALIVE_S, build_app, event_stream

__all__ = ["Dashboard"]

log = logging.getLogger(__name__)


class Dashboard:
    def __init__(self, settings: DashboardSettings, metrics: DashboardMetrics | None = None):
        self.settings = settings
        self.metrics = metrics or DashboardMetrics()
        self.fleet = FleetState(settings.dashboard_max_points, settings.dashboard_max_devices)
        self.lock = threading.Lock()
        self.intake = Intake(settings, self.fleet, self.lock, self.metrics)
        self.broadcaster = Broadcaster(settings.dashboard_client_queue)
        self._push_seq = 0
        self._server: Any = None

    # ---- what the routes call ----

    def ready(self) -> tuple[bool, str]:
        if not self.intake.kafka_up:
            return False, "Kafka not reachable"
        if not self.intake.attached:
            return False, "Kafka topics not assigned yet"
        return True, "ok"

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self.fleet.snapshot()

    def device(self, device_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.fleet.device(device_id)

    def events(self) -> Response:
        # snapshot and registration in one loop step: no push can fall between them
        first = encode_event("snapshot", self.snapshot(), str(self._push_seq))
        client = self.broadcaster.connect()
        self.metrics.clients.set(len(self.broadcaster.clients))

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in client.stream(first, KEEPALIVE_S):
                    yield chunk
            finally:
                self.broadcaster.disconnect(client)
                self.metrics.clients.set(len(self.broadcaster.clients))

        return event_stream(chunks())

    # ---- the push loop ----

    def push(self) -> None:
        """Send the changes since the last push to every page."""
        started = time.perf_counter()
        with self.lock:
            delta = self.fleet.take_delta()
            self.metrics.devices.set(self.fleet.device_count)
            self.metrics.open_alerts.set(len(self.fleet.open_alerts()))
        if delta is None:
            return
        self._push_seq += 1
        message = encode_event("delta", delta, str(self._push_seq))
        before = self.broadcaster.dropped
        self.broadcaster.publish(message)
        self.metrics.dropped_clients.inc(self.broadcaster.dropped - before)
        self.metrics.clients.set(len(self.broadcaster.clients))
        self.metrics.pushes.inc()
        self.metrics.push_seconds.observe(time.perf_counter() - started)

    async def _push_loop(self) -> None:
        interval = self.settings.dashboard_push_interval / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self.push()
            except Exception:  # the loop must outlive any one push
                log.exception("push failed")

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.intake.start()
        task = asyncio.create_task(self._push_loop())
        try:
            yield
        finally:
            task.cancel()
            self.broadcaster.close_all()
            await asyncio.to_thread(self.intake.stop)

    def app(self) -> Starlette:
        s = self.settings
        auth = None
        if s.dashboard_password is not None:
            auth = (s.dashboard_username, s.dashboard_password.get_secret_value())
        return build_app(self, auth, lifespan=self._lifespan)

    # ---- running ----

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT or :meth:`stop`."""
        s = self.settings
        config = uvicorn.Config(
            self.app(),
            host=s.http_host,
            port=s.http_port,
            log_config=None,  # the service's own logging
            access_log=False,
            timeout_graceful_shutdown=3,
        )
        self._server = _Server(config, self._end_streams)
        log.info(
            "dashboard on http://%s:%d/ (Kafka %s; %s; basic auth %s)",
            s.http_host,
            s.http_port,
            s.kafka_bootstrap,
            ", ".join(s.input_topics()),
            "on" if s.dashboard_password is not None else "off",
        )
        self._server.run()

    def stop(self) -> None:
        """Ask :meth:`run` to return (any thread)."""
        server = self._server
        if server is not None and server.loop is not None:
            server.loop.call_soon_threadsafe(server.shut_down)

    def _end_streams(self) -> None:
        # uvicorn waits for open connections before it shuts down, and an event stream
        # never ends by itself
        self.broadcaster.close_all()
        self.metrics.clients.set(0)


class _Server(uvicorn.Server):
    """uvicorn's server with the service's own SIGTERM/SIGINT handling: end the event
    streams, stop, exit 0 (uvicorn's own handlers re-raise the signal after shutdown)."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop
        self.loop: asyncio.AbstractEventLoop | None = None

    def shut_down(self) -> None:
        self.should_exit = True
        self._on_stop()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.shut_down)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.loop.remove_signal_handler(sig)
