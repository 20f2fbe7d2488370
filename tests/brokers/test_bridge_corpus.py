"""The hostile corpus over MQTT into the bridge, mixed with valid readings: every hostile
message in ``readings-dlq`` with the reason its entry expects, every valid one in
``readings``, and the bridge still running."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import pytest

import bridge.runtime
from bridge.settings import BridgeSettings
from iotml.core import headers as h
from tests import hostile, valid_inputs
from tests.bridgetools import running
from tests.kafkatools import consume_all
from tests.mqtttools import publish

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

# A conforming broker never delivers these topics (MQTT forbids U+0000 and wildcards in
# a PUBLISH topic; Mosquitto also refuses control characters): the unit tests cover them.
_UNPUBLISHABLE = re.compile("[\x00-\x1f\x7f-\x9f+#]")


def test_every_hostile_message_is_dead_lettered_with_its_reason_and_valid_ones_arrive(
    kafka_broker, mosquitto_broker, kafka_conf, topics, unique, monkeypatch
):
    # the corpus is written for the clock at hostile.NOW: the bridge reads that clock
    monkeypatch.setattr(bridge.runtime, "now_ms", lambda: hostile.NOW)
    settings = BridgeSettings(
        kafka_bootstrap=kafka_broker.bootstrap,
        mqtt_url=mosquitto_broker.url,
        mqtt_client_id=unique("bridge"),
        mqtt_subscribe=["sensors/#", "gateway/#"],
        topic_readings=topics("readings", partitions=4),
        topic_readings_dlq=topics("readings-dlq"),
        routes=list(hostile.ROUTES),
        http_port=0,
    )
    entries = [e for e in hostile.CORPUS if e.bridge is not None]
    sendable = [e for e in entries if not _UNPUBLISHABLE.search(e.topic or "")]
    valid = valid_inputs.valid_payloads(len(sendable), hostile.NOW)
    messages: list[tuple[str, bytes]] = []
    expected: Counter[tuple[str, str, str]] = Counter()  # (topic, sha256, reason)
    for entry, good in zip(sendable, valid, strict=True):
        topic = entry.topic or hostile.DEFAULT_TOPIC
        messages += [(topic, entry.payload), good]
        expected[(topic, hashlib.sha256(entry.payload).hexdigest(), entry.bridge or "")] += 1

    with running(settings) as b:
        publish(mosquitto_broker.port, messages)
        dead = consume_all(kafka_conf, settings.topic_readings_dlq, timeout=60, idle=2.0)
        good = consume_all(kafka_conf, settings.topic_readings, timeout=30, idle=2.0)
        assert b.ready()[0], "the bridge is not ready after the corpus"

    got: Counter[tuple[str, str, str]] = Counter(
        (
            r.headers[h.MQTT_TOPIC],
            r.headers.get(h.ERROR_SHA256) or hashlib.sha256(r.value or b"").hexdigest(),
            r.headers[h.ERROR_REASON],
        )
        for r in dead
    )
    print(
        f"bridge corpus: {len(sendable)} hostile messages sent ({len(entries) - len(sendable)} "
        f"unpublishable over MQTT), {len(dead)} dead letters with "
        f"{len({k[2] for k in got})} reasons; {len(valid)} valid -> {len(good)} readings"
    )
    assert got == expected
    assert len(good) == len(valid)
