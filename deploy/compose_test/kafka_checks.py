"""What the compose test reads from the host's Kafka: the outputs and the processor group."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

BOOTSTRAP = "localhost:9092"  # the EXTERNAL listener the README's host tools use
PREDICTIONS, ALERTS = "predictions", "alerts"


class NotSeen(Exception):
    """An expected record did not arrive in time."""


class Outputs:
    """Every prediction and alert on the host's Kafka, read from the start of each topic."""

    def __init__(self) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"compose-test-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        meta = self.consumer.list_topics(timeout=30)
        parts = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in (PREDICTIONS, ALERTS)
            for p in meta.topics[topic].partitions
        ]
        self.consumer.assign(parts)  # no group membership: nothing to rebalance
        self.predictions: list[tuple[int, int, dict[str, Any]]] = []  # partition, offset, value
        self.alerts: list[dict[str, Any]] = []
        self.first_seen: dict[str, float] = {}  # topic -> time.monotonic() of its first record

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self.consumer.poll(min(left, 1.0))
            if msg is None or msg.error():
                continue
            value = json.loads(msg.value() or b"{}")
            self.first_seen.setdefault(str(msg.topic()), time.monotonic())
            if msg.topic() == PREDICTIONS:
                self.predictions.append((msg.partition(), msg.offset(), value))
            else:
                self.alerts.append(value)

    def wait(self, what: str, ready: Callable[[], object], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise NotSeen(f"no {what} on {BOOTSTRAP} within {timeout:.0f}s")
            self.poll(2.0)

    def end_offsets(self) -> dict[int, int]:
        return {
            p: self.consumer.get_watermark_offsets(TopicPartition(PREDICTIONS, p), timeout=10)[1]
            for p in self.consumer.list_topics(PREDICTIONS, timeout=10)
            .topics[PREDICTIONS]
            .partitions
        }

    def close(self) -> None:
        self.consumer.close()


def partitions_per_member(admin: AdminClient, group_id: str, topic: str) -> list[list[int]] | None:
    """The partitions of ``topic`` assigned to each member of the consumer group, once the
    group is stable (None while it rebalances)."""
    group = admin.describe_consumer_groups([group_id])[group_id].result(timeout=10)
    if group.state.name != "STABLE":
        return None
    return [
        sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic)
        for m in group.members
    ]
