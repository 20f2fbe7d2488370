"""The hostile corpus straight into ``readings``: every bad record dead-lettered with its
reason, every good one processed, the processor never stops."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from iotml.core import headers as h
from tests import hostile, valid_inputs
from tests.processortools import now_ms, preds, synthetic, wait_for

pytestmark = [pytest.mark.brokers, pytest.mark.slow]


_EPOCH_MS = re.compile(rb"(?<![0-9])1[0-9]{12}(?![0-9])")


def shifted(entry: hostile.Hostile, now: int) -> hostile.Hostile:
    """``entry`` as if the corpus were written at ``now`` instead of :data:`tests.hostile.NOW`: every
    epoch-ms time within a year of NOW moves by ``now - NOW`` (for the real brokers, whose
    clocks say now)."""

    def move(m: re.Match[bytes]) -> bytes:
        value = int(m.group())
        return (
            b"%d" % (value + now - hostile.NOW)
            if abs(value - hostile.NOW) < 366 * hostile.DAY_MS
            else m.group()
        )

    return entry._replace(payload=_EPOCH_MS.sub(move, entry.payload))


def test_every_hostile_record_is_dead_lettered_with_its_reason_and_the_rest_flows(
    kafka_conf, topics, processors, unique, tiny_registry
):
    from confluent_kafka import Producer

    names = {
        "topic_readings": topics("readings", 1),  # one partition: offsets name the entries
        "topic_predictions": topics("predictions", 1),
        "topic_alerts": topics("alerts", 1),
        "topic_processor_dlq": topics("processor-dlq", 1),
        "topic_alert_state": topics("alert-state", 1),
        "topic_evaluations": topics("evaluations", 1),
    }
    now = now_ms()
    # records larger than Kafka carries never reach the processor (the producer refuses them)
    bad = [
        shifted(e, now)
        for e in hostile.CORPUS
        if e.processor is not None and len(e.payload) < 1_000_000
    ]
    # valid shapes, one per device (a second, older one of a device would be late)
    first: dict[str, bytes] = {}
    for rec in valid_inputs.valid_records(8, now):
        first.setdefault(json.loads(rec)["device_id"], rec)
    good = list(first.values())
    n_good = len(good)
    devices = ["dev-a", "dev-b", "dev-c"]
    series = synthetic(devices, (now - 120_000) // 10_000 * 10_000, 60)
    expected: dict[int, str] = {}  # offset -> reason
    producer = Producer({**kafka_conf, "acks": "all", "linger.ms": 5})
    offset = 0
    for i, r in enumerate(series):
        producer.produce(names["topic_readings"], r.to_json(), r.device_id.encode(), timestamp=r.ts)
        offset += 1
        if bad:  # a hostile record after each valid reading
            entry = bad.pop()
            producer.produce(names["topic_readings"], entry.payload, timestamp=now)
            expected[offset] = entry.processor or ""
            offset += 1
        if i % 7 == 0 and good:
            producer.produce(names["topic_readings"], good.pop(), timestamp=now)
            offset += 1
    assert not bad, "the series is long enough to carry the whole corpus"
    assert producer.flush(60) == 0

    proc = processors(
        model_registry=tiny_registry, model_name="tiny", consumer_group=unique("g"), **names
    )
    dlq = wait_for(
        kafka_conf,
        names["topic_processor_dlq"],
        lambda r: len(r) >= len(expected),
        timeout=120,
        proc=proc,
    )
    got_preds = wait_for(
        kafka_conf,
        names["topic_predictions"],
        lambda r: {p.device_id for p in preds(r)} >= set(devices),
        timeout=60,
        proc=proc,
    )
    assert proc.proc is not None and proc.proc.poll() is None, "the processor stopped"
    assert proc.stop() == 0
    assert "Traceback" not in proc.text()

    reasons = {int(r.headers[h.SOURCE_OFFSET]): r.headers[h.ERROR_REASON] for r in dlq}
    wrong = {o: (expected.get(o), reasons.get(o)) for o in expected.keys() | reasons.keys()}
    wrong = {o: pair for o, pair in wrong.items() if pair[0] != pair[1]}
    print(
        f"hostile records: {len(expected)} dead-lettered with "
        f"{len(Counter(expected.values()))} distinct reasons; valid readings: "
        f"{len(series) + n_good}; predictions: {len(got_preds)}"
    )
    assert wrong == {}
    per_device = Counter(p.device_id for p in preds(got_preds))
    assert all(per_device[d] == 3 for d in devices), per_device  # 5 windows closed, k=2
