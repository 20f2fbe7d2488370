"""Hostile input through the real Mosquitto and Kafka: no message stops the bridge or vanishes,
and a shutdown (graceful or kill -9) with unconfirmed hostile messages in flight loses
nothing and acknowledges nothing Kafka has not confirmed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import bridge.translate
from bridge.settings import BridgeSettings
from iotml.core import headers as h
from iotml.stack import KafkaBroker, MosquittoBroker
from iotml.stack.procs import free_port
from tests.bridgetools import metric, readings, running, seqs, wait_ready
from tests.kafkatools import Record, consume_all
from tests.mqtttools import publish

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

ROUTES = ["sensors/{site}/{device}/{metric}", "gateway/{site}/#"]
SENSOR = "sensors/site-0/dev-hostile/temperature"
GATEWAY = "gateway/site-0/uplink"  # a route without {device}: the payload names the device
MARKER = b"__unforeseen__"  # the injected parser raises on this payload
ONE_MB = b'{"temperature": 1, "pad": "' + b"x" * (1 << 20) + b'"}'

#: (MQTT topic, payload, the dead-letter reason expected)
HOSTILE = [
    (SENSOR, MARKER, "unprocessable"),
    (SENSOR, ONE_MB, "oversize"),
    (SENSOR, b'{"temperature": ' + b"9" * 400 + b"}", "number_out_of_range"),
    (SENSOR, b'{"ts": ' + b"9" * 400 + b', "temperature": 20}', "number_out_of_range"),
    (GATEWAY, b'{"device_id": "\\ud800", "temperature": 20}', "bad_device_id"),
]

# The same injection in a bridge process of its own (for kill -9 and SIGTERM).
INJECT = f"""
import sys
import pytest
import bridge.translate
from iotml.cli import main

real = bridge.translate.parse_payload

def parse(payload, *args, **kwargs):
    if payload == {MARKER!r}:
        raise ZeroDivisionError("injected: an exception nobody foresaw")
    return real(payload, *args, **kwargs)

with pytest.MonkeyPatch.context() as patch:
    patch.setattr(bridge.translate, "parse_payload", parse)
    main(sys.argv[1:])
"""


@pytest.fixture
def unforeseen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload parser raises an exception nobody foresaw on :data:`MARKER`."""
    real = bridge.translate.parse_payload

    def parse(payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if payload == MARKER:
            raise ZeroDivisionError("injected: an exception nobody foresaw")
        return real(payload, *args, **kwargs)

    monkeypatch.setattr(bridge.translate, "parse_payload", parse)


@pytest.fixture
def hostile_settings(
    kafka_broker: KafkaBroker,
    mosquitto_broker: MosquittoBroker,
    topics: Callable[..., str],
    unique: Callable[[str], str],
) -> BridgeSettings:
    return BridgeSettings(
        kafka_bootstrap=kafka_broker.bootstrap,
        mqtt_url=mosquitto_broker.url,
        mqtt_client_id=unique("bridge"),
        topic_readings=topics("readings", partitions=4),
        topic_readings_dlq=topics("readings-dlq"),
        routes=ROUTES,
        http_port=0,
        mqtt_reconnect_max=2000,
    )


def mixed(valid: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Each hostile message just before a valid reading (so some come first in a read)."""
    out: list[tuple[str, bytes]] = []
    for i, message in enumerate(valid):
        if i < len(HOSTILE):
            out.append(HOSTILE[i][:2])
        out.append(message)
    return out


def assert_every_hostile_message_is_dead_lettered(dead: list[Record]) -> None:
    for topic, payload, reason in HOSTILE:
        found = [
            r
            for r in dead
            if r.headers[h.MQTT_TOPIC] == topic
            and r.headers[h.ERROR_REASON] == reason
            and is_dead_letter_of(r, payload)
        ]
        assert found, f"no {reason} dead letter for {payload[:40]!r}"
    [unforeseen] = {r.headers[h.ERROR_DETAIL] for r in dead if r.value == MARKER}
    assert unforeseen == "ZeroDivisionError: injected: an exception nobody foresaw"


def is_dead_letter_of(record: Record, payload: bytes) -> bool:
    """The dead letter holds ``payload``, or a prefix of it described by its headers."""
    if record.headers.get(h.ERROR_TRUNCATED) != "true":
        return record.value == payload
    value = record.value or b""
    return (
        payload.startswith(value)
        and len(value) < len(payload)
        and record.headers[h.ERROR_ORIGINAL_SIZE] == str(len(payload))
        and record.headers[h.ERROR_SHA256] == hashlib.sha256(payload).hexdigest()
    )


@pytest.mark.usefixtures("unforeseen")
def test_hostile_messages_among_valid_readings_are_dead_lettered_and_the_bridge_runs_on(
    hostile_settings: BridgeSettings, mosquitto_broker: MosquittoBroker, kafka_conf: dict
):
    settings = hostile_settings
    with running(settings) as bridge_:
        publish(mosquitto_broker.port, mixed(readings(10)))
        ok = consume_all(kafka_conf, settings.topic_readings, 10, timeout=60)
        dead = consume_all(kafka_conf, settings.topic_readings_dlq, len(HOSTILE), timeout=60)
        assert bridge_.ready() == (True, "ok")
        by_reason = {
            reason: metric(bridge_, "iotml_bridge_dead_letters_total", reason=reason)
            for _, _, reason in HOSTILE
        }
        truncated = metric(bridge_, "iotml_bridge_dead_letters_truncated_total")
    print(f"readings: {len(ok)}, dead letters: {by_reason}, truncated: {truncated:.0f}")
    assert sorted(seqs(ok)) == list(range(10))  # every valid reading, once
    assert len(dead) == len(HOSTILE)
    assert_every_hostile_message_is_dead_lettered(dead)
    [big] = [r for r in dead if r.headers[h.ERROR_REASON] == "oversize"]
    assert len(big.value or b"") <= settings.max_dead_letter_bytes
    assert by_reason == {
        "unprocessable": 1,
        "oversize": 1,
        "number_out_of_range": 2,
        "bad_device_id": 1,
    }
    assert truncated == 1


# ---- shutdown with unconfirmed hostile messages in flight ----


def bridge_process(settings: BridgeSettings, http_port: int) -> subprocess.Popen[bytes]:
    """``iotml bridge`` in a process of its own, with the unforeseen failure injected."""
    args = [
        sys.executable, "-c", INJECT, "bridge",
        "--kafka-bootstrap", settings.kafka_bootstrap, "--mqtt-url", settings.mqtt_url,
        "--mqtt-client-id", settings.mqtt_client_id,
        "--topic-readings", settings.topic_readings,
        "--topic-readings-dlq", settings.topic_readings_dlq,
        "--routes", ROUTES[0], "--routes", ROUTES[1],
        "--http-port", str(http_port), "--http-host", "127.0.0.1",
        "--shutdown-timeout", "2s",
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def scrape(port: int, name: str) -> float:
    """A sample of the bridge process's /metrics (0 if absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def kafka_paused(broker: KafkaBroker) -> Iterator[None]:
    """Kafka stops answering (SIGSTOP) with its connections open: records stay unconfirmed."""
    pid = broker.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
    broker.wait_ready(60)


def stop_line(out: bytes) -> str:
    return [line for line in out.decode().splitlines() if "bridge.runtime: stopped" in line][-1]


def stop_with_hostile_messages_in_flight(
    settings: BridgeSettings, mqtt_port: int, kafka: KafkaBroker, sig: signal.Signals
) -> bytes:
    """Run a bridge process; once 5 readings are acked, pause Kafka, publish the hostile
    messages among 10 more readings, let the bridge read them all, stop it with ``sig``
    (Kafka still paused), then resume Kafka. Returns the process's output."""
    port = free_port()
    proc = bridge_process(settings, port)
    try:
        wait_ready(proc, port)
        publish(mqtt_port, readings(5))
        wait_for(lambda: scrape(port, "iotml_bridge_acked_total") == 5, "5 acks")
        with kafka_paused(kafka):
            publish(mqtt_port, mixed(readings(10, start=5)))
            wait_for(lambda: scrape(port, "iotml_bridge_received_total") == 20, "20 reads")
            assert scrape(port, "iotml_bridge_acked_total") == 5
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def restart_and_catch_up(settings: BridgeSettings, kafka_conf: dict) -> tuple[float, bytes]:
    """Start the bridge again, wait for every reading and dead letter; returns how many
    messages the broker redelivered to it, and its output after SIGTERM."""
    port = free_port()
    proc = bridge_process(settings, port)
    try:
        wait_ready(proc, port)
        ok = consume_all(kafka_conf, settings.topic_readings, 15, timeout=90)
        dead = consume_all(kafka_conf, settings.topic_readings_dlq, len(HOSTILE), timeout=60)
        assert set(seqs(ok)) == set(range(15))  # nothing lost; duplicates allowed
        assert_every_hostile_message_is_dead_lettered(dead)
        wait_for(lambda: scrape(port, "iotml_bridge_acked_total") >= 15, "15 acks")
        redelivered = scrape(port, "iotml_bridge_received_total")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return redelivered, out


def test_graceful_stop_with_unconfirmed_hostile_messages_acks_only_what_kafka_confirmed(
    hostile_settings: BridgeSettings,
    mosquitto_broker: MosquittoBroker,
    kafka_broker: KafkaBroker,
    kafka_conf: dict,
):
    out = stop_with_hostile_messages_in_flight(
        hostile_settings, mosquitto_broker.port, kafka_broker, signal.SIGTERM
    )
    assert stop_line(out).endswith(
        "stopped: 5 of 20 message(s) read were confirmed by Kafka and acked; 15 left unacked "
        "in the broker's session for the next start (15 not confirmed by Kafka, or behind one "
        "that was not, within the 2s shutdown timeout; 0 confirmed after their MQTT "
        "connection was lost)"
    )
    redelivered, out = restart_and_catch_up(hostile_settings, kafka_conf)
    assert redelivered == 15  # exactly the messages left unacknowledged
    assert stop_line(out).endswith(
        "stopped cleanly: all 15 message(s) read were confirmed by Kafka and acked"
    )


def test_kill_9_with_unconfirmed_hostile_messages_loses_nothing_and_acked_nothing_unconfirmed(
    hostile_settings: BridgeSettings,
    mosquitto_broker: MosquittoBroker,
    kafka_broker: KafkaBroker,
    kafka_conf: dict,
):
    out = stop_with_hostile_messages_in_flight(
        hostile_settings, mosquitto_broker.port, kafka_broker, signal.SIGKILL
    )
    assert b"stopped" not in out
    redelivered, out = restart_and_catch_up(hostile_settings, kafka_conf)
    assert redelivered == 15  # the 5 hostile and 10 valid messages, never acknowledged
    assert stop_line(out).endswith(
        "stopped cleanly: all 15 message(s) read were confirmed by Kafka and acked"
    )
