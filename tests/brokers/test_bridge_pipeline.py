"""The bridge through the real Mosquitto and Kafka: the evidence of issue 3."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.payloads import REASONS
from bridge.settings import BridgeSettings
from iotml.core import headers as h
from iotml.core.eventtime import now_ms
from iotml.core.http import HealthServer
from iotml.stack import KafkaBroker, MosquittoBroker
from tests.bridgetools import kill_9_mid_stream_and_restart, metric, readings, running, seqs
from tests.kafkatools import consume_all, end_offsets
from tests.mqtttools import publish

pytestmark = pytest.mark.brokers


def test_10000_qos1_readings_arrive_exactly_once_keyed_by_device_with_headers(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
):
    settings = make_settings()
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("fw", "2.1.0")]
    props.ContentType = "application/json"
    with running(settings) as bridge:
        server = HealthServer(bridge.metrics.registry, bridge.ready, "127.0.0.1", 0).start()
        try:
            ready = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=5)
            assert ready.status == 200
            publish(mosquitto_broker.port, readings(10_000), props=props)
            records = consume_all(kafka_conf, settings.topic_readings, 10_000, timeout=90)
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics").read()
        finally:
            server.stop()
    assert sorted(seqs(records)) == list(range(10_000))  # no loss, no duplicate
    for r in records[:200]:
        value = json.loads(r.value)
        assert r.key == value["device_id"].encode()
        assert r.timestamp == value["ts"]
        assert value["tags"] == {"site": r.headers[h.MQTT_TOPIC].split("/")[1]}
        assert (
            r.headers[h.MQTT_TOPIC]
            == f"sensors/{value['tags']['site']}/{value['device_id']}/temperature"
        )
        assert r.headers[h.MQTT_QOS] == "1"
        assert r.headers[h.MQTT_RETAIN] == "0"
        assert r.headers[h.MQTT_CONTENT_TYPE] == "application/json"
        assert r.headers[h.MQTT_USER_PROPERTY_PREFIX + "fw"] == "2.1.0"
        assert abs(int(r.headers[h.RECEIVED_AT]) - now_ms()) < 120_000
    by_key = {}
    for r in records:  # one device, one partition
        assert by_key.setdefault(r.key, r.partition) == r.partition
    assert sum(end_offsets(kafka_conf, settings.topic_readings_dlq).values()) == 0
    assert b"iotml_bridge_acked_total 10000.0" in metrics
    assert b"iotml_bridge_published_total 10000.0" in metrics


def fuzz_payloads(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    now = now_ms()
    makers: list[Callable[[], bytes]] = [
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
        lambda: b'{"temperature": %d' % rng.randrange(100),
        lambda: b'{"temperature": NaN}',
        lambda: b'{"temperature": -Infinity, "ts": %d}' % now,
        lambda: b'{"temperature": 1e999}',
        lambda: b'{"temperature": "%d"}' % rng.randrange(100),
        lambda: b'{"temperature": null}',
        lambda: b'{"temperature": {"c": 1}}',
        lambda: b"[1, 2, 3]",
        lambda: b'"hello"',
        lambda: b"true",
        lambda: b"",
        lambda: b"{}",
        lambda: b'{"ts": %d}' % now,
        lambda: b'{"ts": 1, "temperature": 2}',
        lambda: b'{"ts": 99999999999999, "temperature": 2}',
        lambda: b'{"ts": "last tuesday", "temperature": 2}',
        lambda: b'{"temperature": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        lambda: b'{"temperature": 1, "pad": "' + b"x" * 70_000 + b'"}',
    ]
    out = []
    for i in range(n):
        payload = rng.choice(makers)()
        # One in ten on a topic the subscription brings but no route matches.
        topic = f"sensors/s/dev-{i % 7}/temperature" if i % 10 else f"sensors/s/dev-{i}"
        out.append((topic, payload))
    return out


def test_fuzzed_malformed_payloads_all_land_in_the_dead_letter_topic_with_a_reason(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
):
    settings = make_settings(mqtt_subscribe=["sensors/#"])
    bad = fuzz_payloads(random.Random(42), 3000)
    good = readings(50)
    with running(settings) as bridge:
        publish(mosquitto_broker.port, bad + good)
        dead = consume_all(kafka_conf, settings.topic_readings_dlq, len(bad), timeout=90)
        ok = consume_all(kafka_conf, settings.topic_readings, len(good), timeout=30)
        assert bridge.ready()[0], "the bridge stopped being ready"
    assert sorted(seqs(ok)) == list(range(50))
    assert Counter((r.headers[h.MQTT_TOPIC], r.value) for r in dead) == Counter(bad)
    reasons = Counter(r.headers[h.ERROR_REASON] for r in dead)
    assert set(reasons) <= set(REASONS)
    assert {"invalid_json", "not_finite", "wrong_type", "no_metric", "no_route", "oversize"} <= set(
        reasons
    )
    assert {"ts_too_old", "ts_in_future", "bad_timestamp", "empty_payload"} <= set(reasons)
    for r in dead:
        assert r.headers[h.RECEIVED_AT] == str(r.timestamp)
    sample = metric(bridge, "iotml_bridge_dead_letters_total", reason="no_route")
    assert sample == reasons["no_route"] == 300


def test_kafka_down_for_30s_while_devices_publish_loses_nothing_and_stays_bounded(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_broker: KafkaBroker,
    kafka_conf: dict[str, Any],
):
    cap = 500
    settings = make_settings(max_in_flight=cap)
    total = 6000
    with running(settings) as bridge:
        publish(mosquitto_broker.port, readings(1000))
        peak = [0]
        try:
            kafka_broker.stop()
            outage_started = time.monotonic()
            watcher_stop = threading.Event()

            def watch() -> None:
                while not watcher_stop.is_set():
                    peak[0] = max(peak[0], bridge.acks.in_flight)
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            publish(mosquitto_broker.port, readings(total - 1000, start=1000), pace=0.004)
            time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
            assert not bridge.ready()[0]
            acked_during_outage = metric(bridge, "iotml_bridge_acked_total")
        finally:
            kafka_broker.start()
        records = consume_all(kafka_conf, settings.topic_readings, total, timeout=120)
        watcher_stop.set()
        watcher.join()
        assert metric(bridge, "iotml_bridge_acked_total") >= total
    assert set(seqs(records)) == set(range(total))  # duplicates allowed, loss not
    assert peak[0] <= cap  # memory bounded: never more than the cap held
    assert acked_during_outage <= 1000 + cap


def test_kill_9_mid_stream_then_restart_loses_nothing_and_sigterm_exits_cleanly(
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
):
    total = 10_000
    run = kill_9_mid_stream_and_restart(make_settings(), mosquitto_broker.port, kafka_conf, total)
    assert run.killed_at < total
    assert set(seqs(run.records)) == set(range(total))  # duplicates allowed, loss not
    assert run.returncode == 0
    assert b"stopped cleanly" in run.out
    assert b"password" not in run.out.lower()
