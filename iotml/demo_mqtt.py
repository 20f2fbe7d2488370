"""The demo's MQTT side: what ``iotml egress`` publishes back to the IoT side, seen as a
device, a PLC gateway or Home Assistant would see it, subscribed to Mosquitto.

During the run a subscriber keeps the latest message of each alert and forecast topic
(for the live table); at the end :func:`retained_alerts` connects afresh, as a late
subscriber would, and gets exactly the retained state: each device and type's latest
alert event, ``open`` or ``cleared``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "ALERT_TOPICS",
    "FORECAST_TOPICS",
    "MqttSide",
    "report",
    "retained_alerts",
    "show_retained",
]

#: egress's default topics (IOTML_EGRESS_ALERT_TOPIC / IOTML_EGRESS_FORECAST_TOPIC)
ALERT_TOPICS = "iotml/+/+/alerts/+"
FORECAST_TOPICS = "iotml/+/+/forecast/+"


def _client(name: str, on_message: Any, topics: list[tuple[str, int]]) -> Any:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"iotml-demo-{name}-{os.getpid()}-{time.monotonic_ns() % 10**6}",
        protocol=mqtt.MQTTv5,
    )
    client.on_connect = lambda c, *_: c.subscribe(topics)
    client.on_message = on_message
    return client


def _decode(payload: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


class MqttSide:
    """A subscriber to egress's alert and forecast topics for the whole demo."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.latest: dict[str, dict[str, Any]] = {}  # topic -> latest payload
        self.messages = 0
        self._lock = threading.Lock()
        self._client = _client("live", self._on_message, [(ALERT_TOPICS, 1), (FORECAST_TOPICS, 0)])
        self._client.connect_async(host, port)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        payload = _decode(msg.payload)
        if payload is not None:
            with self._lock:
                self.latest[msg.topic] = payload
                self.messages += 1

    def lines(self) -> list[str]:
        """The table's MQTT section: every alert topic with its latest event."""
        with self._lock:
            alerts = sorted((t, p) for t, p in self.latest.items() if "/alerts/" in t)
            forecasts = sum(1 for t in self.latest if "/forecast/" in t)
            n = self.messages
        out = [f"MQTT (iotml egress): {n} messages, {forecasts} forecast topics; alert topics:"]
        out += [f"  {topic:<56} {p.get('event', '?')}" for topic, p in alerts]
        return out

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def retained_alerts(port: int, host: str = "127.0.0.1", settle: float = 1.5) -> dict[str, Any]:
    """What a subscriber connecting now receives retained on the alert topics."""
    got: dict[str, dict[str, Any]] = {}

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        payload = _decode(msg.payload)
        if msg.retain and payload is not None:
            got[msg.topic] = payload

    client = _client("retained", on_message, [(ALERT_TOPICS, 1)])
    client.connect(host, port)
    client.loop_start()
    try:
        time.sleep(settle)
    finally:
        client.disconnect()
        client.loop_stop()
    return dict(got)


def show_retained(port: int, echo: Callable[[str], Any]) -> dict[str, Any]:
    """The retained alert state (:func:`retained_alerts`), echoed as :func:`report` lines."""
    retained = retained_alerts(port)
    for line in report(retained):
        echo(line)
    return retained


def report(retained: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per retained alert topic: ``mqtt retained <topic> <event> id=<alert_id>``."""
    return [
        f"mqtt retained {topic} {p.get('event', '?')} id={p.get('alert_id', '?')}"
        for topic, p in sorted(retained.items())
    ]
