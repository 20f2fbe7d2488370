"""`iotml demo` runs the whole pipeline through real brokers and shows predictions and the
injected fault's alert, on Kafka and, through egress, retained on MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

import pytest

from iotml.stack.procs import free_port

pytestmark = pytest.mark.slow


def test_demo_shows_predictions_and_an_alert_for_the_injected_fault(tmp_path, kafka_broker):
    args = [
        sys.executable,
        "-m",
        "iotml",
        "demo",
        "--plain",
        "--duration",
        "130",
        "--stack-dir",
        str(tmp_path / "stack"),
        "--cache-dir",
        str(kafka_broker.cache_dir),
        "--model-registry",
        str(tmp_path / "models"),
        "--kafka-port",
        str(free_port()),
        "--kafka-controller-port",
        str(free_port()),
        "--mqtt-port",
        str(free_port()),
        "--devices",
        "4",
        "--fault",
        "dev-0003:drop@60s",
        "--dashboard-port",
        str(page_port := free_port()),
    ]
    seen: dict[str, Any] = {}
    watcher = threading.Thread(target=_watch_page, args=(page_port, seen), daemon=True)
    watcher.start()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    seen["stop"] = True
    watcher.join(10)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the live page: served while the demo ran, listing the fleet with forecasts
    assert f"live page: http://127.0.0.1:{page_port}/" in proc.stderr, proc.stderr[-2000:]
    assert seen.get("page") and seen.get("devices", 0) >= 1, seen
    lines = proc.stdout.splitlines()
    assert any(line.startswith("prediction device=") for line in lines), proc.stdout[-2000:]
    assert any(line.startswith("alert open device=dev-0003") for line in lines), proc.stdout[-3000:]
    # the MQTT side: egress published the alert back, retained on its site's topic (the
    # simulator puts dev-0003 at site-1), as a subscriber connecting at the end sees it
    mqtt = [line.split() for line in lines if line.startswith("mqtt retained ")]
    assert any(
        topic.startswith("iotml/site-1/dev-0003/alerts/") and event in ("open", "cleared")
        for _, _, topic, event, _ in mqtt
    ), proc.stdout[-3000:]
    assert lines[-1].endswith(f"{len(mqtt)} retained alert topics on MQTT")


def _watch_page(port: int, seen: dict[str, Any]) -> None:
    """Poll the demo's live page until it served the page and a snapshot with forecasts."""
    base = f"http://127.0.0.1:{port}"
    while not seen.get("stop"):
        try:
            with urllib.request.urlopen(f"{base}/", timeout=3) as r:
                seen["page"] = "<html" in r.read().decode("utf-8", "replace").lower()
            with urllib.request.urlopen(f"{base}/api/snapshot", timeout=3) as r:
                devices = json.loads(r.read()).get("devices", [])
            seen["devices"] = max(
                seen.get("devices", 0), sum(1 for d in devices if d.get("fc") is not None)
            )
            if seen["page"] and seen["devices"] >= 1:
                return
        except (OSError, ValueError):
            pass
        time.sleep(2)
