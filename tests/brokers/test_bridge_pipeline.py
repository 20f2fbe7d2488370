"""The bridge through the real Mosquitto and Kafka: the evidence of issue 3."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.payloads import REASONS
from bridge.runtime import Bridge
from bridge.settings import BridgeSettings
from iotml.core import headers as h
from iotml.core.eventtime import now_ms
from iotml.core.http import HealthServer
from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from tests.kafkatools import consume_all, end_offsets
from tests.mqtttools import publish

pytestmark = pytest.mark.brokers


def metric(bridge: Bridge, name: str, **labels: str) -> float:
    """A sample from the bridge's metrics registry, as ``/metrics`` shows it (0 if absent)."""
    value = bridge.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def readings(n: int, devices: int = 20, start: int = 0) -> list[tuple[str, bytes]]:
    ts = now_ms()
    return [
        (
            f"sensors/site-{i % 3}/dev-{i % devices:03d}/temperature",
            b'{"ts":%d,"temperature":%.2f,"seq":%d}' % (ts + i % 1000, 20 + i % 50, i),
        )
        for i in range(start, start + n)
    ]


def seqs(records: Sequence[Any]) -> list[int]:
    return [int(json.loads(r.value)["metrics"]["seq"]) for r in records]


@pytest.fixture
def make_settings(
    kafka_broker: KafkaBroker,
    mosquitto_broker: MosquittoBroker,
    topics: Callable[..., str],
    unique: Callable[[str], str],
) -> Callable[..., BridgeSettings]:
    readings_topic = topics("readings", partitions=4)
    dlq_topic = topics("readings-dlq")

    def make(**overrides: Any) -> BridgeSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_broker.bootstrap,
            "mqtt_url": mosquitto_broker.url,
            "mqtt_client_id": unique("bridge"),
            "topic_readings": readings_topic,
            "topic_readings_dlq": dlq_topic,
            "http_port": 0,
            "mqtt_reconnect_max": 2000,
        }
        values.update(overrides)
        return BridgeSettings(**values)

    return make


@contextmanager
def running(settings: BridgeSettings) -> Iterator[Bridge]:
    bridge = Bridge(settings)
    thread = threading.Thread(target=bridge.run, name="bridge-under-test")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not bridge.ready()[0]:
            assert thread.is_alive(), "the bridge stopped"
            assert time.monotonic() < deadline, f"bridge not ready: {bridge.ready()[1]}"
            time.sleep(0.05)
        time.sleep(0.3)  # the SUBACK
        yield bridge
    finally:
        bridge.stop()
        thread.join(60)
        assert not thread.is_alive()


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


def bridge_process(settings: BridgeSettings, http_port: int) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "iotml", "bridge",
        "--kafka-bootstrap", settings.kafka_bootstrap, "--mqtt-url", settings.mqtt_url,
        "--mqtt-client-id", settings.mqtt_client_id,
        "--topic-readings", settings.topic_readings,
        "--topic-readings-dlq", settings.topic_readings_dlq,
        "--http-port", str(http_port), "--http-host", "127.0.0.1",
        "--max-in-flight", "2000",
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "bridge process exited"
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                time.sleep(0.3)
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("bridge process not ready")


@dataclass(frozen=True)
class KillRun:
    killed_at: int  # records in Kafka when the bridge was killed
    records: list[Any]  # everything in Kafka after the restarted bridge caught up
    returncode: int  # of the restarted bridge, stopped with SIGTERM
    out: bytes  # its output


def kill_9_mid_stream_and_restart(
    settings: BridgeSettings,
    mqtt_port: int,
    kafka_conf: dict[str, Any],
    total: int,
    devices: int = 20,
    consume_timeout: float = 120,
) -> KillRun:
    """Publish ``total`` readings while a bridge process runs, SIGKILL it at ~30 %, start
    it again, read everything back, then stop it with SIGTERM."""
    port = free_port()
    proc = bridge_process(settings, port)
    try:
        wait_ready(proc, port)
        publisher = threading.Thread(
            target=publish,
            args=(mqtt_port, readings(total, devices=devices)),
            kwargs={"pace": 0.0003},
        )
        publisher.start()
        while sum(end_offsets(kafka_conf, settings.topic_readings).values()) < total * 0.3:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = sum(end_offsets(kafka_conf, settings.topic_readings).values())
        publisher.join(120)
        proc = bridge_process(settings, port)
        wait_ready(proc, port)
        records = consume_all(kafka_conf, settings.topic_readings, total, timeout=consume_timeout)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return KillRun(killed_at, records, proc.returncode, out)


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
