"""Produce/consume helpers for broker tests (plain confluent-kafka, no iotml code)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    timestamp: int


def create_topics(
    conf: Mapping[str, Any], names: Iterable[str], partitions: int = 1, config: dict | None = None
) -> None:
    admin = AdminClient(dict(conf))
    futures = admin.create_topics(
        [NewTopic(n, partitions, 1, config=config or {}) for n in names], operation_timeout=30
    )
    for f in futures.values():
        f.result(30)


def produce(
    conf: Mapping[str, Any],
    topic: str,
    records: Iterable[tuple[bytes | str | None, bytes | str]],
    timestamp: int | None = None,
) -> int:
    """Produce ``(key, value)`` pairs and wait for delivery; returns the count."""
    producer = Producer({**conf, "acks": "all", "linger.ms": 5})
    n = 0
    for key, value in records:
        kwargs: dict[str, Any] = {}
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        producer.produce(topic, value, key, **kwargs)
        n += 1
        if n % 10000 == 0:
            producer.flush(30)
    assert producer.flush(60) == 0, "records not delivered"
    return n


def end_offsets(conf: Mapping[str, Any], topic: str) -> dict[int, int]:
    """The end offset of every partition of ``topic``. Retries while a topic just created
    has no leader yet (the controller elects it a moment after CreateTopics returns)."""
    consumer = Consumer({**conf, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                md = consumer.list_topics(topic, timeout=10)
                return {
                    p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in md.topics[topic].partitions
                }
            except KafkaException as exc:
                retriable = exc.args[0].code() in (
                    KafkaError.NOT_LEADER_FOR_PARTITION,
                    KafkaError.LEADER_NOT_AVAILABLE,
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                )
                if not retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def consume_all(
    conf: Mapping[str, Any],
    topic: str,
    min_count: int = 0,
    timeout: float = 60.0,
    idle: float = 1.0,
) -> list[Record]:
    """Every record of ``topic`` from the start. Waits until at least ``min_count`` are read
    (or ``timeout``), then until every partition is read to its end and ``idle`` seconds
    pass without a new record."""
    consumer = Consumer(
        {
            **conf,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        md = consumer.list_topics(topic, timeout=10)
        parts = list(md.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.2)
            for m in batch:
                if m.error():
                    continue
                ts = m.timestamp()[1]
                hdrs = {k: (v or b"").decode("utf-8", "replace") for k, v in (m.headers() or [])}
                out.append(
                    Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), hdrs, ts)
                )
            if batch:
                last_new = time.monotonic()
            elif len(out) >= min_count and time.monotonic() - last_new >= idle:
                positions = {
                    tp.partition: tp.offset
                    for tp in consumer.position([TopicPartition(topic, p) for p in parts])
                }
                ends = end_offsets(conf, topic)
                if all(positions.get(p, 0) >= ends[p] or ends[p] == 0 for p in parts):
                    break
    finally:
        consumer.close()
    return out
