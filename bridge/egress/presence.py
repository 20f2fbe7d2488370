"""Egress runs as ONE instance per consumer group; a second one is noticed.

Egress assigns itself every partition (no group membership, :mod:`bridge.egress.inputs`),
so Kafka alone would let two instances with the same group run side by side, each
publishing everything and committing over the other's offsets: duplicates, and retained
states written out of order. Scaling out would need the alerts and the alert-state
topic split alike between instances, which their keys (device, and device/type) do not
give; one instance publishes thousands of messages a second, far more than a fleet's
alerts.

To notice a second instance, each one also joins the group ``<egress_group>.instances``
with a consumer subscribed to the alerts topic that never reads (its partitions are
paused as soon as they are assigned). An instance alone there is assigned every
partition; with another one, only part of them or none. A crashed instance leaves the
group after the short session timeout below, and Kafka completes a rebalance only then,
so a restart after ``kill -9`` is not mistaken for a second instance.

* at start, egress reads nothing until it is alone; still not alone after
  :data:`START_GRACE_S` (long enough for a predecessor's graceful stop), it refuses to run;
* a running instance that another one joins logs an ERROR every minute while it lasts
  and sets ``iotml_egress_other_instance`` to 1.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from bridge.egress.metrics import EgressMetrics
from bridge.egress.settings import EgressSettings
from bridge.errors import BridgeError

__all__ = ["START_GRACE_S", "Presence"]

log = logging.getLogger(__name__)

START_GRACE_S = 20.0
_SESSION_TIMEOUT_MS = 6000  # the broker's default group.min.session.timeout.ms
_LOG_EVERY_S = 60.0


class Presence:
    """Single-threaded: :meth:`start`, then :meth:`check` every loop turn."""

    def __init__(self, settings: EgressSettings, metrics: EgressMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.group = f"{settings.egress_group}.instances"
        self._topic = settings.topic_alerts
        self._consumer: Consumer | None = None
        self._alone: bool | None = None  # None until the first assignment
        self._ever_alone = False
        self._started = 0.0
        self._next_log = 0.0

    @property
    def alone(self) -> bool:
        """Whether this is the only instance (as of the last assignment)."""
        return bool(self._alone)

    def start(self) -> None:
        self._started = time.monotonic()
        self._consumer = Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": self.group,
                "client.id": f"{self.settings.mqtt_client_id}.presence",
                "enable.auto.commit": False,
                "session.timeout.ms": _SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": _SESSION_TIMEOUT_MS // 3,
                "topic.metadata.refresh.interval.ms": 10_000,  # notice a topic created late
                "logger": logging.getLogger("bridge.egress.kafka"),
            }
        )
        self._consumer.subscribe([self._topic], on_assign=self._on_assign)

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        consumer.pause(partitions)  # membership only: nothing is ever read (or resumed)
        try:
            total = len(consumer.list_topics(self._topic, timeout=5).topics[self._topic].partitions)
        except (KafkaException, KeyError):
            total = 0
        if total:  # else the topic is missing yet: the rebalance once it exists tells
            self._alone = len(partitions) == total

    def check(self) -> None:
        """Serve the membership; raises :class:`BridgeError` when another instance was
        there first."""
        if self._consumer is None:
            return
        self._consumer.poll(0)
        if self._alone is None:
            return
        self.metrics.other_instance.set(0 if self._alone else 1)
        if self._alone:
            self._ever_alone = True
            return
        now = time.monotonic()
        if not self._ever_alone and now - self._started >= START_GRACE_S:
            raise BridgeError(
                f"another iotml egress is running with consumer group "
                f"{self.settings.egress_group} (its members share {self.group}): egress "
                "must run as a single instance per group and MQTT broker; refusing to start"
            )
        if self._ever_alone and now >= self._next_log:
            self._next_log = now + _LOG_EVERY_S
            log.error(
                "another iotml egress joined consumer group %s: egress must run as a single "
                "instance (both publish everything and commit over each other's offsets); "
                "stop one of them",
                self.settings.egress_group,
            )

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
