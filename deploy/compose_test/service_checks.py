"""What the compose test checks beyond Kafka: egress's MQTT side, the retrainer and the
dashboard.

* **egress**: a subscriber on the host's published Mosquitto port (as a device or SCADA
  system would connect) receives the alert state retained under ``iotml/<site>/<device>/
  alerts/<type>`` with the site the bridge took from the simulator's topics, live
  forecasts under ``iotml/<site>/<device>/forecast/<metric>`` with their MQTT 5 expiry,
  and the Home Assistant discovery configs retained (the compose file turns them on).
* **retrainer** (``iotml retrain --on-drift --every 1d``): with no decision recorded yet a
  scheduled retrain is due at once, so its decision (promoted or not, and why) is in
  the registry within minutes;
  ``iotml models show`` run in its container lists it, and its ``/readyz`` says the drift
  loop is consuming ``evaluations``.
* **dashboard**: on the host's published ``127.0.0.1:8080`` the page is served, ``/readyz``
  answers 200 and the fleet snapshot (what a browser gets first) lists devices with
  predictions, as the pipeline produces them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from deploy.compose_test.kafka_checks import NotSeen

MQTT_HOST, MQTT_PORT = "localhost", 1883  # the port docker-compose.yml publishes
_ALERT = re.compile(r"iotml/(site-\d+)/([^/]+)/alerts/([a-z_]+)\Z")
_FORECAST = re.compile(r"iotml/(site-\d+)/([^/]+)/forecast/([^/]+)\Z")

#: ``compose exec -T <service> <args...>`` -> its standard output.
Exec = Callable[..., str]


class Wrong(Exception):
    """What a service published or answered is not what it should be."""


class _Seen:
    def __init__(self) -> None:
        self.alert: tuple[str, dict[str, Any]] | None = None  # retained
        self.forecast: tuple[str, dict[str, Any], int | None] | None = None  # with expiry
        self.discovery: str | None = None  # retained config topic
        self.lock = threading.Lock()

    def on_message(self, client: Any, userdata: Any, m: Any) -> None:
        try:
            payload = json.loads(m.payload)
        except ValueError:
            return
        with self.lock:
            if m.retain and _ALERT.match(m.topic):
                self.alert = (m.topic, payload)
            elif _FORECAST.match(m.topic):
                expiry = getattr(m.properties, "MessageExpiryInterval", None)
                self.forecast = (m.topic, payload, expiry)
            elif m.retain and m.topic.startswith("homeassistant/") and "unique_id" in payload:
                self.discovery = m.topic

    def done(self) -> bool:
        return bool(self.alert and self.forecast and self.discovery)


def check_egress(timeout: float = 180) -> dict[str, str]:
    """Subscribe to egress's topics on the host's Mosquitto until a retained alert, a
    forecast and a retained discovery config arrived; returns figures for the report.
    Raises :class:`NotSeen`, or :class:`Wrong` naming what is wrong with a message."""
    import paho.mqtt.client as mqtt

    seen = _Seen()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"compose-test-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.on_message = seen.on_message
    client.on_connect = lambda c, *_: c.subscribe([("iotml/#", 1), ("homeassistant/#", 1)])
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while not seen.done():
            if time.monotonic() > deadline:
                missing = [k for k in ("alert", "forecast", "discovery") if not getattr(seen, k)]
                raise NotSeen(
                    f"no {', '.join(missing)} from egress on mqtt://{MQTT_HOST}:{MQTT_PORT} "
                    f"within {timeout:.0f}s"
                )
            time.sleep(0.5)
    finally:
        client.disconnect()
        client.loop_stop()
    assert seen.alert and seen.forecast and seen.discovery
    topic, alert = seen.alert
    site, device, kind = _ALERT.match(topic).groups()  # type: ignore[union-attr]
    if (alert.get("device_id"), alert.get("type"), alert.get("tags")) != (
        device,
        kind,
        {"site": site},
    ):
        raise Wrong(f"retained alert on {topic} does not match its topic: {alert}")
    f_topic, forecast, expiry = seen.forecast
    f_site, f_device, _ = _FORECAST.match(f_topic).groups()  # type: ignore[union-attr]
    if forecast.get("device_id") != f_device or forecast.get("tags") != {"site": f_site}:
        raise Wrong(f"forecast on {f_topic} does not match its topic: {forecast}")
    if not expiry:
        raise Wrong(f"forecast on {f_topic} has no MQTT 5 message expiry")
    return {
        "mqtt retained alert": f"{topic} ({alert.get('event')})",
        "mqtt forecast": f"{f_topic} (expires in {expiry}s)",
        "mqtt discovery config": seen.discovery,
    }


def check_retrainer(run: Exec, timeout: float = 420) -> dict[str, str]:
    """Wait for the retrainer's first (scheduled) decision in the registry and check it is
    ready; returns figures for the report."""
    deadline = time.monotonic() + timeout
    decisions: list[dict[str, Any]] = []
    while True:
        out = run("retrainer", "iotml", "models", "show")
        decisions = json.loads(out[out.index("{") :]).get("decisions") or []
        if decisions:
            break
        if time.monotonic() > deadline:
            raise NotSeen(f"no retrain decision in the models volume within {timeout:.0f}s")
        time.sleep(10)
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/readyz').status)"
    status = run("retrainer", "python", "-c", probe).strip()
    if status != "200":  # ready: its drift loop reads evaluations
        raise Wrong(f"retrainer /readyz answered {status!r}")
    first = decisions[-1]  # newest first
    return {
        "retrainer first decision": f"{first.get('trigger')}: "
        f"{'promoted' if first.get('promoted') else 'not promoted'} ({first.get('reason')})",
    }


DASHBOARD = "http://127.0.0.1:8080"  # the port docker-compose.yml publishes


def check_dashboard(timeout: float = 180) -> dict[str, str]:
    """Wait until the dashboard is ready and its fleet snapshot lists devices with a
    forecast; the page itself must be served."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    why = "not reached"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{DASHBOARD}/readyz", timeout=5) as r:
                ready = r.status
            with urllib.request.urlopen(f"{DASHBOARD}/", timeout=5) as r:
                page = r.read().decode("utf-8", "replace")
            with urllib.request.urlopen(f"{DASHBOARD}/api/snapshot", timeout=5) as r:
                snap = json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            why = str(exc)
            time.sleep(2)
            continue
        devices = snap.get("devices") if isinstance(snap, dict) else None
        forecasting = [d for d in devices or [] if isinstance(d, dict) and d.get("fc") is not None]
        if ready == 200 and "<html" in page.lower() and forecasting:
            return {"dashboard": f"ready, page served, {len(forecasting)} devices with a forecast"}
        why = f"/readyz {ready}, snapshot without forecasts yet"
        time.sleep(2)
    raise Wrong(f"dashboard at {DASHBOARD}: {why}")
