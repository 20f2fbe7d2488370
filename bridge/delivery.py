"""Getting records into Kafka: the producer, its health, delivery reports and the retry policy.

Records are produced in :class:`~bridge.acks.AckBatch` es, one per read of the MQTT socket;
:meth:`Delivery.confirmed` hands back, in receive order, the batches Kafka has confirmed
in full. The bad-delivery policy:

* a delivery error a retry can fix (broker down, leader moved...): produce the record again;
* one no retry can fix (:data:`PERMANENT`: too large, not authorised...): send the record to
  the dead-letter topic with reason ``kafka_rejected``;
* a dead letter Kafka rejects: try it again every second, holding its batch (and so the
  MQTT acks of it and of every later batch);
* a fatal producer error: :class:`~bridge.errors.BridgeError`, the bridge stops.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from bridge.acks import AckBatch, AckQueue
from bridge.errors import BridgeError
from bridge.metrics import BridgeMetrics
from bridge.settings import BridgeSettings
from bridge.translate import KafkaRecord
from iotml.core import headers as h
from iotml.core.eventtime import now_ms

__all__ = ["PERMANENT", "Delivery"]

log = logging.getLogger(__name__)

#: Delivery errors no retry can fix: the record goes to the dead-letter topic instead.
PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
    }
)
_DEAD_LETTER_RETRY_S = 1.0


class Delivery:
    """The bridge's Kafka side. :meth:`start` it, then :meth:`send` and :meth:`confirmed`.

    Single-threaded: delivery reports run inside :meth:`confirmed` (``poll``), never
    concurrently with :meth:`send`. ``kafka_up`` and ``acks.in_flight`` may be read from
    any thread.
    """

    def __init__(self, settings: BridgeSettings, metrics: BridgeMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.acks = AckQueue()
        self.kafka_up = False
        self._producer: Producer | None = None
        self._delayed: list[tuple[float, AckBatch, Any]] = []

    # ---- the producer and Kafka's health ----

    @property
    def started(self) -> bool:
        return self._producer is not None

    def start(self, topics: Iterable[str]) -> None:
        """Create the producer and warn about any of ``topics`` that does not exist."""
        self._producer = Producer(self._config())
        self._check_topics({self.settings.topic_readings_dlq, *topics})

    def _config(self) -> dict[str, Any]:
        s = self.settings
        return {
            **s.kafka_config(),
            "client.id": s.mqtt_client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": s.kafka_linger,
            "compression.type": s.kafka_compression,
            "batch.num.messages": 10_000,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": max(100_000, 4 * s.max_in_flight),
            "message.timeout.ms": s.kafka_delivery_timeout,
            "statistics.interval.ms": 2_000,
            "error_cb": self._on_error,
            "stats_cb": self._on_stats,
            "logger": logging.getLogger("bridge.kafka"),
        }

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_up(False)
        if err.fatal():
            log.error("Kafka producer fatal error: %s", err)
        elif err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            log.warning("Kafka: %s", err)  # connection failures: librdkafka logs them

    def _on_stats(self, stats_json: str) -> None:
        try:
            brokers = json.loads(stats_json).get("brokers", {})
        except ValueError:
            return
        self._set_up(any(b.get("state") == "UP" for b in brokers.values()))

    def _set_up(self, up: bool) -> None:
        if up != self.kafka_up:
            log.info("Kafka %s", "reachable" if up else "unreachable: holding MQTT acks")
        self.kafka_up = up
        self.metrics.kafka_connected.set(1 if up else 0)

    def _check_topics(self, wanted: set[str]) -> None:
        assert self._producer is not None
        try:
            md = self._producer.list_topics(timeout=2)
        except KafkaException as exc:
            log.warning("Kafka not reachable yet (%s); will keep trying", exc)
            return
        self._set_up(True)
        missing = sorted(t for t in wanted if t not in md.topics)
        if missing:
            log.warning(
                "Kafka topics %s do not exist: create them with `iotml topics ensure`", missing
            )

    # ---- producing ----

    def send(self, records: Iterable[KafkaRecord], batch: AckBatch) -> None:
        """Produce ``records`` as part of ``batch`` and count the dead letters among them."""
        produce = self._produce
        delivered = batch.delivered
        dead_letters = self.metrics.dead_letters
        readings = dead = 0
        for topic, value, key, timestamp, headers, reason in records:
            produce(topic, value, key, timestamp, headers, delivered)
            if reason is None:
                readings += 1
            else:
                dead_letters.labels(reason).inc()
                dead += 1
        batch.remaining += readings + dead
        batch.readings += readings
        batch.dead += dead

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        timestamp: int,
        headers: h.Headers,
        on_delivery: Any,
    ) -> None:
        producer = self._producer
        assert producer is not None
        while True:
            try:
                producer.produce(
                    topic, value, key, timestamp=timestamp, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:
                producer.poll(0.01)  # local queue full: serve delivery reports first

    def flush(self, timeout: float) -> None:
        if self._producer is not None:
            self._producer.flush(timeout)

    # ---- delivery reports ----

    def confirmed(self, timeout: float) -> list[AckBatch]:
        """Serve delivery reports for up to ``timeout`` s, retry failures, and pop the
        batches now confirmed in full, oldest first."""
        producer = self._producer
        assert producer is not None
        producer.poll(timeout)
        if self.acks.failures or self._delayed:
            self._retry_failures()
        batches = list(self.acks.ready())
        if batches:
            now = time.monotonic()
            observe = self.metrics.latency.observe
            published = 0
            for batch in batches:
                published += batch.readings
                observe(now - batch.started)
            if published:
                self.metrics.published.inc(published)
                if not self.kafka_up:
                    self._set_up(True)
        return batches

    def _retry_failures(self) -> None:
        failures = list(self.acks.failures)
        self.acks.failures.clear()
        now = time.monotonic()
        due = [(b, m) for t, b, m in self._delayed if t <= now]
        self._delayed = [d for d in self._delayed if d[0] > now]
        for batch, msg in due:
            self._reproduce(batch, msg)
        dlq = self.settings.topic_readings_dlq
        for batch, err, msg in failures:
            if err.fatal():
                raise BridgeError(f"Kafka producer fatal error: {err}")
            self.metrics.kafka_retries.inc()
            if err.code() not in PERMANENT:
                log.warning("Kafka delivery failed (%s); producing the record again", err)
                self._reproduce(batch, msg)
            elif msg.topic() != dlq:
                log.error(
                    "Kafka rejected a record for %s (%s): dead-lettering it", msg.topic(), err
                )
                headers = (msg.headers() or []) + h.encode(
                    {h.ERROR_REASON: "kafka_rejected", h.ERROR_DETAIL: str(err)[:1000]}
                )
                self.metrics.dead_letters.labels("kafka_rejected").inc()
                self._produce(dlq, msg.value(), msg.key(), now_ms(), headers, batch.delivered)
            else:
                log.error("Kafka rejected a dead letter (%s); retrying in 1s, not acking", err)
                self._delayed.append((now + _DEAD_LETTER_RETRY_S, batch, msg))

    def _reproduce(self, batch: AckBatch, msg: Any) -> None:
        self._produce(
            msg.topic(),
            msg.value(),
            msg.key(),
            msg.timestamp()[1],
            msg.headers() or [],
            batch.delivered,
        )
