"""`iotml simulate` and shared subscriptions through the real brokers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import BridgeSettings, SimulatorSettings
from bridge.simulate import Simulator
from iotml.core import headers as h
from iotml.core.eventtime import now_ms
from iotml.stack import MosquittoBroker
from tests.bridgetools import metric, readings, running, seqs
from tests.kafkatools import consume_all
from tests.mqtttools import publish

pytestmark = pytest.mark.brokers


def test_replayed_nab_series_reaches_kafka_stamped_with_the_wall_clock(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
    nab_csv: Path,
    unique: Callable[[str], str],
):
    settings = make_settings()
    sim = SimulatorSettings(
        mqtt_url=mosquitto_broker.url,
        sim_csv=nab_csv,
        sim_devices=5,
        sim_count=400,
        sim_as_fast_as_possible=True,
        sim_speedup=1000,  # 5-minute rows at 0.3 s: far faster than real time
        sim_faults=["dev-0004:malformed"],
        sim_malformed_rate=0.5,
        sim_client_id=unique("sim"),
        sim_progress=0,
    )
    lines: list[str] = []
    with running(settings):
        started = now_ms()
        stats = Simulator(sim, echo=lines.append).run()
        good = consume_all(kafka_conf, settings.topic_readings, 400 - stats.malformed, timeout=60)
        dead = consume_all(kafka_conf, settings.topic_readings_dlq, stats.malformed, timeout=30)
    assert stats.published == stats.acked == 400
    assert 20 <= stats.malformed <= 60  # half of one device in five
    assert len(good) == 400 - stats.malformed and len(dead) == stats.malformed
    assert {r.headers[h.MQTT_TOPIC].split("/")[2] for r in dead} == {"dev-0004"}
    values = [json.loads(r.value) for r in good]
    assert {v["device_id"] for v in values} == {f"dev-{i:04d}" for i in range(5)}
    assert all(started - 1000 <= v["ts"] <= now_ms() for v in values)  # never replay-time
    assert all(0 < v["metrics"]["temperature"] < 150 for v in values)
    assert lines and "published" in lines[-1]


def test_two_bridges_on_a_shared_subscription_split_the_messages(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
    unique: Callable[[str], str],
):
    group = unique("g")
    first = make_settings(mqtt_share_group=group, mqtt_client_id=unique("bridge-a"))
    second = make_settings(mqtt_share_group=group, mqtt_client_id=unique("bridge-b"))
    with running(first) as a, running(second) as b:
        publish(mosquitto_broker.port, readings(2000))
        records = consume_all(kafka_conf, first.topic_readings, 2000, timeout=60)
        share_a = metric(a, "iotml_bridge_received_total")
        share_b = metric(b, "iotml_bridge_received_total")
    assert sorted(seqs(records)) == list(range(2000))
    assert share_a > 0 and share_b > 0 and share_a + share_b == 2000
