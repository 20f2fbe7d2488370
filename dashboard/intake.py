"""Reading Kafka into the fleet state, on a thread of its own.

At start: the compacted alert-state topic is read to its end (the open alerts, however long
ago they opened), then every partition of predictions, alerts and evaluations is assigned
at the offset of ``now - dashboard_history`` (``offsets_for_times``), so the pages start
from the recent past. No consumer group: the dashboard commits nothing and every replica
reads everything. A topic that does not exist (yet) is looked for again every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from dashboard.fleet import FleetState
from dashboard.metrics import DashboardMetrics
from dashboard.settings import DashboardSettings
from iotml.core.errors import RecordError
from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction

__all__ = ["SENT_AT_HEADER", "Intake", "read_alert_state"]

log = logging.getLogger(__name__)

#: Optional header (epoch ms) a producer may set on predictions; passed on to the pages
#: so that the delay from production to a browser can be measured (the benchmark does).
SENT_AT_HEADER = "iotml.sent_at"
_RETRY_S = 2.0
_BATCH = 1000


def _consumer(settings: DashboardSettings, purpose: str, **extra: Any) -> Consumer:
    return Consumer(
        {
            **settings.kafka_config(),
            # never commits: a throwaway group id keeps it out of every real group
            "group.id": f"iotml-dashboard-{purpose}-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **extra,
        }
    )


def _partitions(consumer: Consumer, topic: str) -> list[int] | None:
    """The partitions of ``topic``; ``None`` when it does not exist."""
    meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
    if meta is None or meta.error is not None:
        return None
    return sorted(meta.partitions)


def read_alert_state(settings: DashboardSettings, on_bad: Callable[[str], None]) -> list[Alert]:
    """The newest event per device and type on the compacted alert-state topic (empty when
    the topic does not exist). Tombstones delete their key."""
    topic = settings.topic_alert_state
    consumer = _consumer(settings, "state", **{"enable.partition.eof": True})
    latest: dict[str, Alert] = {}
    try:
        parts = _partitions(consumer, topic)
        if not parts:
            log.info("no %s topic: no open alerts to rebuild", topic)
            return []
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        open_parts = set(parts)
        while open_parts:
            for m in consumer.consume(_BATCH, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        open_parts.discard(m.partition())
                    continue
                key = (m.key() or b"").decode("utf-8", "replace")
                if m.value() is None:
                    latest.pop(key, None)
                    continue
                try:
                    alert = Alert.from_json(m.value())
                except RecordError as exc:
                    on_bad(exc.reason)
                    continue
                current = latest.get(key)
                if current is None or alert.ts >= current.ts:
                    latest[key] = alert
    finally:
        consumer.close()
    alerts = list(latest.values())
    log.info(
        "%s read: %d state(s), %d open",
        topic,
        len(alerts),
        sum(1 for a in alerts if a.event == "open"),
    )
    return alerts


class Intake:
    """Feeds ``fleet`` (under ``lock``) from Kafka until :meth:`stop`."""

    def __init__(
        self,
        settings: DashboardSettings,
        fleet: FleetState,
        lock: threading.Lock,
        metrics: DashboardMetrics,
    ) -> None:
        self.settings, self.fleet, self.lock, self.metrics = settings, fleet, lock, metrics
        self.attached = False
        self.kafka_up = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._assigned: set[str] = set()
        self._parsers: dict[str, Callable[[Any], None]] = {
            settings.topic_predictions: self._prediction,
            settings.topic_alerts: self._alert,
            settings.topic_evaluations: self._evaluation,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="iotml-dashboard-kafka")
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume()
            except KafkaException as exc:
                self.kafka_up = False
                log.warning("Kafka: %s; retrying in %.0fs", exc, _RETRY_S)
                self._stopping.wait(_RETRY_S)

    def _consume(self) -> None:
        s = self.settings
        if not self.attached:
            alerts = read_alert_state(s, self._bad(s.topic_alert_state))
            with self.lock:
                self.fleet.load_alert_state(alerts)
        consumer = _consumer(s, "live")
        try:
            next_look = 0.0
            while not self._stopping.is_set():
                if time.monotonic() >= next_look and len(self._assigned) < len(self._parsers):
                    self._assign_new(consumer)
                    next_look = time.monotonic() + _RETRY_S
                messages = consumer.consume(_BATCH, 0.1) if self._assigned else []
                if not self._assigned:
                    self._stopping.wait(0.1)
                self.kafka_up = True
                if messages:
                    with self.lock:
                        for m in messages:
                            self._take(m)
        finally:
            consumer.close()
            self._assigned.clear()

    def _assign_new(self, consumer: Consumer) -> None:
        """Assign the partitions of each input topic not assigned yet, at the offset of the
        start of the history window."""
        since = int(time.time() * 1000) - self.settings.dashboard_history
        wanted: list[TopicPartition] = []
        for topic in self._parsers:
            if topic in self._assigned:
                continue
            parts = _partitions(consumer, topic)
            if parts is None:
                log.info("no %s topic (yet): showing what exists", topic)
                continue
            query = [TopicPartition(topic, p, since) for p in parts]
            for tp in consumer.offsets_for_times(query, timeout=10):
                # -1: no record that recent: start at the end, new records only
                wanted.append(
                    tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, OFFSET_END)
                )
            self._assigned.add(topic)
        if wanted:
            consumer.incremental_assign(wanted)
        self.attached = True

    def _take(self, m: Any) -> None:
        if m.error() is not None:
            if m.error().code() != KafkaError._PARTITION_EOF:
                log.warning("Kafka: %s", m.error())
            return
        topic = m.topic()
        self.metrics.consumed.labels(topic).inc()
        if m.value() is None:
            return  # a tombstone: nothing to show
        try:
            self._parsers[topic](m)
        except RecordError as exc:
            self._bad(topic)(exc.reason)
            log.warning("skipping %s[%d]@%d: %s", topic, m.partition(), m.offset(), exc)
        except Exception:  # one record must never stop the page
            self._bad(topic)("unprocessable")
            log.exception("skipping %s[%d]@%d", topic, m.partition(), m.offset())

    def _prediction(self, m: Any) -> None:
        sent_at = None
        for key, value in m.headers() or ():
            if key == SENT_AT_HEADER and value and value.isdigit():
                sent_at = int(value)
        self.fleet.add_prediction(Prediction.from_json(m.value()), sent_at)

    def _alert(self, m: Any) -> None:
        self.fleet.add_alert(Alert.from_json(m.value()))

    def _evaluation(self, m: Any) -> None:
        self.fleet.add_evaluation(Evaluation.from_json(m.value()))

    def _bad(self, topic: str) -> Callable[[str], None]:
        return lambda reason: self.metrics.rejected.labels(topic, reason).inc()
