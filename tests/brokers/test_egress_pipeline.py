"""The loop closed through the real brokers: simulated devices publish over MQTT, the bridge
writes Kafka, the processor forecasts and alerts, and egress publishes both back to MQTT.

The evidence of issue 11 from a running pipeline: alerts and forecasts arrive on the
templated topics, with ``{site}`` taken from the devices' own MQTT topics (the bridge makes
it a tag, the processor carries it); a subscriber connecting after an alert opened
receives it retained; after the clear, a new subscriber receives no open alert for that
device and type. A simulator fault forces the alert: one device stops sending
(``device_silent`` opens), then a new simulator run brings it back (it clears).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bridge.settings import BridgeSettings, SimulatorSettings
from bridge.simulate import Simulator
from iotml.stack import MosquittoBroker
from tests.bridgetools import running
from tests.egresstools import (
    Subscriber,
    egress,
    egress_topics,
    log_on_failure,
    retained,
    token,
    until,
)

__all__ = ["egress", "egress_topics"]  # fixtures, defined with their helpers

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

DEVICES = 4  # the simulator spreads them over site-0 and site-1


@contextmanager
def simulating(
    broker: MosquittoBroker, prefix: str, client_id: str, *faults: str
) -> Iterator[None]:
    sim = Simulator(
        SimulatorSettings(
            mqtt_url=broker.url,
            sim_devices=DEVICES,
            sim_device_prefix=prefix,
            sim_faults=list(faults),
            sim_client_id=client_id,
            sim_progress=0,
        ),
        echo=lambda _line: None,
    )
    thread = threading.Thread(target=sim.run, name="simulator")
    thread.start()
    try:
        yield
    finally:
        sim.stop()
        thread.join(60)


def test_alerts_and_forecasts_of_a_running_pipeline_reach_mqtt_on_their_sites_topics(
    make_settings: Callable[..., BridgeSettings],
    processors: Callable[..., Any],
    egress_topics: dict[str, str],
    topics: Callable[..., str],
    egress: Callable[..., Any],
    tiny_registry: Any,
    mosquitto_broker: MosquittoBroker,
    unique: Callable[[str], str],
):
    prefix = token()
    devices = [f"{prefix}-{i:04d}" for i in range(DEVICES)]
    site = {d: f"site-{i % 2}" for i, d in enumerate(devices)}
    quiet = devices[1]
    silent_topic = f"iotml/{site[quiet]}/{quiet}/alerts/device_silent"
    port = mosquitto_broker.port
    bridge_settings = make_settings(mqtt_client_id=unique("bridge"))
    out = egress(mosquitto_broker)  # on egress_topics: alerts, alert-state, predictions
    out.wait_ready()
    live = Subscriber(port, ["iotml/#"])
    proc = processors(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        silence_timeout="10s",
        topic_readings=bridge_settings.topic_readings,
        topic_predictions=egress_topics["topic_predictions"],
        topic_alerts=egress_topics["topic_alerts"],
        topic_alert_state=egress_topics["topic_alert_state"],
        topic_evaluations=topics("evaluations", 4),
        topic_processor_dlq=topics("processor-dlq"),
    )

    def forecasts() -> dict[str, dict[str, Any]]:
        return {
            m.topic: json.loads(m.payload)
            for m in list(live.messages)
            if "/forecast/" in m.topic and f"/{prefix}-" in m.topic
        }

    with running(bridge_settings), log_on_failure(out):
        with simulating(mosquitto_broker, prefix, unique("sim-a"), f"{quiet}:dropout@20s"):
            until(lambda: live.payloads(silent_topic), "device_silent opening", 150, 0.5)
            until(lambda: len(forecasts()) >= 2, "forecasts", 60, 0.5)
        (opened,) = live.payloads(silent_topic)
        assert opened["event"] == "open" and opened["tags"] == {"site": site[quiet]}

        # forecasts on their device's site, carrying the tags they were published for
        for topic, p in forecasts().items():
            assert topic == f"iotml/{site[p['device_id']]}/{p['device_id']}/forecast/temperature"
            assert p["tags"] == {"site": site[p["device_id"]]}
            assert p["model_name"] == "tiny"

        # a subscriber connecting after the alert opened receives it retained
        assert retained(port, silent_topic)[silent_topic] == opened

        # the device comes back: the alert clears, and the retained state with it
        with simulating(mosquitto_broker, prefix, unique("sim-b")):
            until(lambda: len(live.payloads(silent_topic)) >= 2, "the clear", 60, 0.5)
        live.close()
    cleared = live.payloads(silent_topic)[-1]
    assert cleared["event"] == "cleared" and cleared["alert_id"] == opened["alert_id"]
    now = retained(port, f"iotml/+/{quiet}/alerts/+")
    assert now[silent_topic] == cleared
    assert not [t for t, a in now.items() if a["event"] == "open" and "device_silent" in t]
    assert proc.stop() == 0
    assert out.stop() == 0
