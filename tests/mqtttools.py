"""The MQTT publisher for broker tests (plain paho, no iotml code)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties


def publish(
    port: int,
    messages: Sequence[tuple[str, bytes]],
    *,
    qos: int = 1,
    props: Properties | None = None,
    pace: float = 0.0,
    client: mqtt.Client | None = None,
    host: str = "127.0.0.1",
) -> None:
    """Publish ``(topic, payload)`` messages and wait until the broker acknowledged them all.

    ``client``: a configured, not yet connected client (TLS, credentials); by default a
    plain MQTT 5 one. ``pace``: seconds per message, to spread them out in time.
    """
    if client is None:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"pub-{os.urandom(4).hex()}",
            protocol=mqtt.MQTTv5,
        )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    connected = threading.Event()

    def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
        if not reason.is_failure:
            connected.set()

    client.on_connect = on_connect
    acked = [0]
    client.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    client.connect(host, port)
    client.loop_start()
    try:
        assert connected.wait(10), "the publisher could not connect"
        for i, (topic, payload) in enumerate(messages):
            client.publish(topic, payload, qos=qos, properties=props)
            if pace and i % 50 == 49:
                time.sleep(pace * 50)
            while i - acked[0] > 5000:
                time.sleep(0.001)
        deadline = time.monotonic() + 60
        while qos and acked[0] < len(messages) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not qos or acked[0] == len(messages), "the broker did not acknowledge every message"
    finally:
        client.disconnect()
        client.loop_stop()
