"""The bridge in MQTT 3.1.1 mode (clean session off) through the real Mosquitto and Kafka.

The MQTT 5 evidence is in ``test_bridge_pipeline``; this file reuses its helpers. Every test
also reads Mosquitto's connection log to check that the bridge really connected as MQTT
3.1.1 (``p2``) with clean session off (``c0``), not silently as MQTT 5.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bridge.settings import BridgeSettings
from iotml.core import headers as h
from iotml.stack import MosquittoBroker
from tests.bridgetools import (
    kill_9_mid_stream_and_restart,
    metric,
    readings,
    running,
    seqs,
)
from tests.kafkatools import consume_all, end_offsets
from tests.mqtttools import publish

pytestmark = pytest.mark.brokers

DEVICES = 20


def connections(broker: MosquittoBroker, client_id: str) -> list[str]:
    """Protocol and clean-session flags (e.g. ``p2, c0``) of each connection of ``client_id``."""
    log = (broker.data_dir / "mosquitto.log").read_text(errors="replace")
    pattern = rf"New client connected from \S+ as {re.escape(client_id)} \((p\d, c\d)"
    return re.findall(pattern, log)


def resumed_sessions(caplog: pytest.LogCaptureFixture) -> list[bool]:
    """For each MQTT connection the bridge logged: whether the broker resumed its session."""
    return [
        "(resumed session)" in r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("MQTT connected as")
    ]


def test_2000_qos1_readings_from_several_devices_arrive_exactly_once_keyed_by_device(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
):
    settings = make_settings(mqtt_protocol="3.1.1")
    total = 2000
    with running(settings) as bridge:
        publish(mosquitto_broker.port, readings(total, devices=DEVICES))
        records = consume_all(kafka_conf, settings.topic_readings, total, timeout=60)
    assert sorted(seqs(records)) == list(range(total))  # no loss, no duplicate
    partition_of: dict[bytes | None, int] = {}  # one device, one partition
    for r in records:
        device = r.headers[h.MQTT_TOPIC].split("/")[2]
        assert r.key == device.encode()
        assert r.headers[h.MQTT_QOS] == "1"
        assert partition_of.setdefault(r.key, r.partition) == r.partition
    assert len(partition_of) == DEVICES
    assert len(set(partition_of.values())) > 1  # several devices really spread out
    assert sum(end_offsets(kafka_conf, settings.topic_readings_dlq).values()) == 0
    # Each acked once, after Kafka had it.
    assert metric(bridge, "iotml_bridge_acked_total") == total
    assert connections(mosquitto_broker, settings.mqtt_client_id) == ["p2, c0"]


def test_persistent_session_keeps_3000_readings_published_while_the_bridge_is_stopped(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, logger="bridge.runtime")
    settings = make_settings(mqtt_protocol="3.1.1")  # one client id for both runs
    before, away = 500, 3000  # away > Mosquitto's default queue of 1000 messages
    with running(settings) as first:
        publish(mosquitto_broker.port, readings(before, devices=DEVICES))
        consume_all(kafka_conf, settings.topic_readings, before, timeout=30)
    assert first.acks.in_flight == 0  # graceful stop: everything read was confirmed and acked
    assert metric(first, "iotml_bridge_acked_total") == before
    publish(mosquitto_broker.port, readings(away, devices=DEVICES, start=before))
    with running(settings):
        records = consume_all(kafka_conf, settings.topic_readings, before + away, timeout=60)
    got = Counter(seqs(records))
    assert set(got) == set(range(before + away))  # duplicates allowed, loss not
    assert all(got[i] == 1 for i in range(before))  # acked before the stop: never redelivered
    assert resumed_sessions(caplog) == [False, True]
    assert connections(mosquitto_broker, settings.mqtt_client_id) == ["p2, c0", "p2, c0"]


def test_kill_9_mid_stream_in_mqtt311_mode_then_restart_loses_nothing(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("IOTML_MQTT_PROTOCOL", "3.1.1")  # inherited by the bridge processes
    settings = make_settings(mqtt_protocol="3.1.1")
    total = 6000
    run = kill_9_mid_stream_and_restart(
        settings, mosquitto_broker.port, kafka_conf, total, devices=DEVICES, consume_timeout=60
    )
    assert run.killed_at < total  # killed mid-stream
    assert set(seqs(run.records)) == set(range(total))  # duplicates allowed, loss not
    assert run.returncode == 0
    assert b"resumed session" in run.out
    assert b"stopped cleanly" in run.out
    assert connections(mosquitto_broker, settings.mqtt_client_id) == ["p2, c0", "p2, c0"]
