"""The dashboard's routes: the page, its JSON, basic auth, and settings."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import Response
from starlette.testclient import TestClient

from dashboard.metrics import DashboardMetrics
from dashboard.settings import DashboardSettings
from dashboard.web import build_app
from iotml.core.errors import ConfigError
from iotml.core.options import build_settings


class FakeBackend:
    def __init__(self) -> None:
        self.metrics = DashboardMetrics()

    def ready(self) -> tuple[bool, str]:
        return False, "Kafka not reachable"

    def snapshot(self) -> dict[str, Any]:
        return {"meta": {}, "devices": [], "alerts": []}

    def device(self, device_id: str) -> dict[str, Any] | None:
        return {"id": device_id} if device_id == "dev-1" else None

    def events(self) -> Response:
        return Response("", media_type="text/event-stream")


def test_the_page_and_its_assets_are_served_without_a_cdn():
    client = TestClient(build_app(FakeBackend()))
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    assert 'src="http' not in page.text and 'href="http' not in page.text
    assert client.get("/static/vendor/uPlot.iife.min.js").status_code == 200
    assert "MIT" in client.get("/static/vendor/uPlot.LICENSE").text


def test_device_view_json_and_unknown_device():
    client = TestClient(build_app(FakeBackend()))
    assert client.get("/api/devices/dev-1").json() == {"id": "dev-1"}
    assert client.get("/api/devices/nope").status_code == 404


def test_readyz_says_why_it_is_not_ready():
    client = TestClient(build_app(FakeBackend()))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["reason"] == "Kafka not reachable"
    assert client.get("/healthz").status_code == 200
    assert "iotml_dashboard_clients" in client.get("/metrics").text


def test_basic_auth_guards_everything_but_the_probes():
    client = TestClient(build_app(FakeBackend(), ("ops", "s3cret")))
    assert client.get("/").status_code == 401
    assert client.get("/api/snapshot", auth=("ops", "wrong")).status_code == 401
    assert client.get("/api/snapshot", auth=("ops", "s3cret")).status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503


def test_the_dashboard_binds_to_localhost_by_default_and_hides_its_password(monkeypatch):
    monkeypatch.setenv("IOTML_DASHBOARD_PASSWORD", "s3cret")
    s = build_settings(DashboardSettings, {})
    assert s.http_host == "127.0.0.1"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())


def test_a_push_interval_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="IOTML_DASHBOARD_PUSH_INTERVAL"):
        build_settings(DashboardSettings, {"dashboard_push_interval": "1ms"})
