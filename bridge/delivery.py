"""Getting records into Kafka: the producer, its health, delivery reports and the policy for
records Kafka refuses.

Records are produced in :class:`~bridge.acks.AckBatch` es, one per read of the MQTT socket;
:meth:`Delivery.confirmed` hands back, in receive order, the batches Kafka has confirmed
in full. One record can never stop the bridge. The policy:

* a delivery error a retry can fix (broker down, leader moved...): produce the record again;
* a reading no retry can fix (:data:`PERMANENT`: too large, not authorised...), or one
  ``produce()`` raises for: send it to the dead-letter topic instead, with reason
  ``kafka_rejected`` (a Kafka error) or ``unprocessable`` (any other exception);
* every dead letter is cut to ``max_dead_letter_bytes``
  (:func:`~iotml.core.deadletters.fit_dead_letter`). One Kafka still refuses as too large
  is cut harder, down to no payload and only the essential headers; one refused for any
  other reason of its own goes in that minimal form. If Kafka refuses even that, the
  refusal is logged at ERROR with the MQTT topic, counted
  (``iotml_bridge_dead_letters_refused``), and the message is acknowledged without it:
  holding it would stop the bridge on one message;
* the dead-letter topic itself unusable (:data:`TOPIC_UNUSABLE`: missing, not authorised):
  an infrastructure failure; try again every second, holding the batch (and so the MQTT
  acks of it and of every later batch);
* a fatal producer error: :class:`~bridge.errors.BridgeError`, the bridge stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from bridge.acks import AckBatch, AckQueue
from bridge.errors import BridgeError
from bridge.metrics import BridgeMetrics
from bridge.settings import BridgeSettings
from bridge.translate import KafkaRecord, mqtt_topic_of
from iotml.core import headers as h
from iotml.core.deadletters import UNPROCESSABLE, describe, fit_dead_letter, header_bytes, shrink
from iotml.core.eventtime import now_ms
from iotml.core.kafka_connect import brokers_up

__all__ = ["PERMANENT", "TOPIC_UNUSABLE", "Delivery"]

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
#: Refusals of a whole topic, not of one record: for the dead-letter topic, a pause.
TOPIC_UNUSABLE = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
    }
)
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
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
        self._delayed: list[tuple[float, AckBatch, KafkaRecord]] = []
        self._max_dead_letter = settings.max_dead_letter_bytes

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
        up = brokers_up(stats_json)
        if up is not None:
            self._set_up(up)

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
        """Produce ``records`` as part of ``batch``, then seal it. A record Kafka or
        ``produce()`` refuses is handled by the policy above, never raised."""
        put = self._put
        readings = 0
        for record in records:
            if record.reason is None:
                readings += put(record, batch, False)
            else:
                self._dead_letter(record, batch, counted=False)
        batch.readings += readings
        batch.seal()

    def _put(self, record: KafkaRecord, batch: AckBatch, counted: bool) -> bool:
        """Produce ``record`` for ``batch``; False if ``produce()`` refused it (then handled
        by the policy). ``counted``: already in ``batch.remaining`` (produced before)."""
        producer = self._producer
        assert producer is not None
        topic, value, key, timestamp, headers, _ = record
        while True:
            try:
                producer.produce(
                    topic, value, key, timestamp=timestamp, headers=headers,
                    on_delivery=batch.delivered,
                )  # fmt: skip
                break
            except BufferError:
                producer.poll(0.01)  # local queue full: serve delivery reports first
            except Exception as exc:
                self._refused(batch, record, exc, counted)
                return False
        if not counted:
            batch.remaining += 1
        return True

    def _dead_letter(self, record: KafkaRecord, batch: AckBatch, counted: bool) -> None:
        """Produce a new dead letter, cut to fit, and count it by reason."""
        _, value, key, _, headers, reason = record
        fitted, fitted_headers = fit_dead_letter(value, key, headers, self._max_dead_letter)
        if fitted is not value:
            self.metrics.dead_letters_truncated.inc()
        self.metrics.dead_letters.labels(reason or UNPROCESSABLE).inc()
        batch.dead += 1
        self._put(record._replace(value=fitted, headers=fitted_headers), batch, counted)

    def _refused(self, batch: AckBatch, record: KafkaRecord, error: Any, counted: bool) -> None:
        """Kafka refused ``record`` for good: ``error`` is the :class:`KafkaError` of its
        delivery report, or the exception ``produce()`` raised."""
        err = _kafka_error(error)
        if err is not None and err.fatal():
            raise BridgeError(f"Kafka producer fatal error: {err}")
        code = err.code() if err is not None else None
        detail = err.str() if err is not None else describe(error)
        where = f"{record.topic} from MQTT topic {mqtt_topic_of(record.headers)}"
        dlq = self.settings.topic_readings_dlq
        if record.topic != dlq:
            log.error("Kafka refused a record for %s (%s): dead-lettering it", where, detail)
            reason = "kafka_rejected" if err is not None else UNPROCESSABLE
            detail_h = (h.ERROR_DETAIL, header_bytes(detail))
            headers = [*record.headers, (h.ERROR_REASON, reason.encode()), detail_h]
            dead = KafkaRecord(dlq, record.value, record.key, now_ms(), headers, reason)
            if counted:
                batch.readings -= 1
            self._dead_letter(dead, batch, counted)
        elif code in TOPIC_UNUSABLE:
            log.error("Kafka refused the dead-letter topic (%s): retrying, holding acks", detail)
            if not counted:
                batch.remaining += 1
            self._delayed.append((time.monotonic() + _DEAD_LETTER_RETRY_S, batch, record))
        elif smaller := shrink(record.value, record.key, record.headers, code in _TOO_LARGE):
            value, key, headers = smaller
            timestamp = record.timestamp if code in _TOO_LARGE else now_ms()
            log.warning(
                "Kafka refused a dead letter for %s (%s): sending it smaller", where, detail
            )
            self._put(KafkaRecord(dlq, value, key, timestamp, headers), batch, counted)
        else:
            log.error(
                "Kafka refused a dead letter for %s even in its minimal form (%s): "
                "acknowledging the message without it",
                where,
                detail,
            )
            name = err.name() if err is not None else type(error).__name__
            self.metrics.dead_letters_refused.labels(name).inc()
            if counted:
                batch.remaining -= 1

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
        due = [(b, r) for t, b, r in self._delayed if t <= now]
        self._delayed = [d for d in self._delayed if d[0] > now]
        for batch, record in due:
            self._put(record, batch, counted=True)
        for batch, err, msg in failures:
            if err.fatal():
                raise BridgeError(f"Kafka producer fatal error: {err}")
            self.metrics.kafka_retries.inc()
            record = KafkaRecord(
                msg.topic(), msg.value() or b"", msg.key(), msg.timestamp()[1], msg.headers() or []
            )
            if err.code() in PERMANENT:
                self._refused(batch, record, err, counted=True)
            else:
                log.warning("Kafka delivery failed (%s); producing the record again", err)
                self._put(record, batch, counted=True)


def _kafka_error(error: Any) -> KafkaError | None:
    """The :class:`KafkaError` in ``error`` (itself, or a :class:`KafkaException`'s)."""
    if isinstance(error, KafkaException) and error.args:
        error = error.args[0]
    return error if isinstance(error, KafkaError) else None
