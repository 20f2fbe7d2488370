"""A messy fleet through the real Kafka: one device's clock off, the open alerts' state."""

from __future__ import annotations

import pytest

from iotml.core.records import Reading
from tests.kafkatools import consume_all
from tests.processortools import (
    alerts_of,
    now_ms,
    preds,
    send,
    synthetic,
    wait_for,
)

pytestmark = [pytest.mark.brokers, pytest.mark.slow]


def test_a_device_nine_minutes_fast_costs_five_neighbours_on_its_partition_no_window(
    kafka_conf, one_partition_topics, processors, unique, tiny_registry
):
    names = one_partition_topics  # one partition: all six share its clock
    normal = [f"dev-{i}" for i in range(5)]
    start = (now_ms() - 900_000) // 10_000 * 10_000
    readings: list[Reading] = []
    for r in synthetic(normal, start, 180):
        readings.append(r)
        if r.device_id == "dev-4":  # the fast one sends right after each round
            fast_ts = r.ts + 540_000
            readings.append(Reading("fast", fast_ts, {"temperature": 30.0}))
    send(kafka_conf, names["topic_readings"], readings)
    proc = processors(
        model_registry=tiny_registry, model_name="tiny", consumer_group=unique("g"), **names
    )
    # 17 windows closed by each device's own readings, the first k=2 only warm up
    wait_for(
        kafka_conf,
        names["topic_predictions"],
        lambda r: sum(p.device_id == "fast" for p in preds(r)) >= 15,
        timeout=120,
        proc=proc,
    )
    assert proc.stop() == 0
    got = preds(consume_all(kafka_conf, names["topic_predictions"], timeout=5))
    per_device = {d: sum(p.device_id == d for p in got) for d in normal}
    print("predictions per normal device:", per_device)
    assert set(per_device.values()) == {15}
    dlq = consume_all(kafka_conf, names["topic_processor_dlq"], timeout=5)
    print("dead letters:", len(dlq))
    assert dlq == []


def test_alert_state_holds_the_latest_event_per_device_and_type(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry
):
    devices = [f"dev-{i}" for i in range(4)]
    start = (now_ms() - 300_000) // 10_000 * 10_000
    first = synthetic(devices, start, 60)
    rest = synthetic(devices[1:], start + 60_000, 60)  # dev-0 goes quiet, then silent
    send(kafka_conf, pipeline_topics["topic_readings"], first + rest)
    proc = processors(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        silence_timeout="20s",
        **pipeline_topics,
    )
    wait_for(
        kafka_conf,
        pipeline_topics["topic_alert_state"],
        lambda r: any(x.key == b"dev-0/device_silent" for x in r),
        timeout=90,
        proc=proc,
    )
    assert proc.stop() == 0
    # both topics read after the stop: the processor goes on alerting until then
    alerts = alerts_of(consume_all(kafka_conf, pipeline_topics["topic_alerts"], timeout=5))
    latest = {(a.device_id, a.type): a for a in alerts}
    state = consume_all(kafka_conf, pipeline_topics["topic_alert_state"], timeout=5)
    last_state = {(rec.key or b"").decode(): rec for rec in state}
    assert "dev-0/device_silent" in last_state
    for key, rec in last_state.items():
        dev, kind = key.split("/")
        assert alerts_of([rec])[0] == latest[(dev, kind)]
