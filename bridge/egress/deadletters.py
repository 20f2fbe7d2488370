"""Records egress cannot publish go to its dead-letter topic, at least once.

A Kafka record that is not what its topic holds (not JSON, not a valid record), whose
MQTT topic cannot be published on, or whose message the MQTT broker refused for good (an
MQTT 5 PUBACK reason code of 0x80 or more: not authorised, topic name invalid...) is
written to ``topic_egress_dlq`` as the bridge and the processor write theirs: the record's
key and value (cut to fit, :func:`~iotml.core.deadletters.fit_dead_letter`), the reason,
detail and source topic/partition/offset in headers.

The record's offset is done only once Kafka confirmed its dead letter: the
:class:`~bridge.egress.tracker.CommitTracker` waits for a negative token (MQTT message ids
are positive), so a crash before then handles the record again, and while the dead-letter
topic is missing or not authorised the commits wait and egress retries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from bridge.delivery import TOPIC_UNUSABLE
from bridge.egress.metrics import EgressMetrics
from bridge.egress.settings import EgressSettings
from bridge.egress.tracker import CommitTracker
from bridge.errors import BridgeError
from iotml.core.deadletters import DeadLetter, fit_dead_letter, shrink
from iotml.core.eventtime import now_ms

__all__ = ["MQTT_REFUSED", "DeadLetters", "Source"]

log = logging.getLogger(__name__)

#: The reason of a message the MQTT broker refused in its PUBACK (the other reasons are
#: the records' validation reasons and :data:`~bridge.egress.messages.BAD_MQTT_TOPIC`).
MQTT_REFUSED = "mqtt_refused"

_RETRY_S = 1.0
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
#: Failures that pass: Kafka down or slow, the topic missing or not authorised yet.
_RETRY = TOPIC_UNUSABLE | {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
}


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from, and what it held."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, m: Any) -> Source:
        return cls(m.topic(), m.partition(), m.offset(), m.key(), m.value())


@dataclass(frozen=True, slots=True)
class _Letter:
    token: int
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int


class DeadLetters:
    """Single-threaded: :meth:`send` and :meth:`poll` from the egress loop."""

    def __init__(
        self, settings: EgressSettings, tracker: CommitTracker, metrics: EgressMetrics
    ) -> None:
        self.topic = settings.topic_egress_dlq
        self.tracker = tracker
        self.metrics = metrics
        self._limit = settings.max_dead_letter_bytes
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                "logger": logging.getLogger("bridge.egress.kafka"),
            }
        )
        self._last_token = 0
        self._in_flight = 0
        self._retry: list[tuple[float, _Letter]] = []

    @property
    def pending(self) -> int:
        """Dead letters not yet confirmed by Kafka."""
        return self._in_flight + len(self._retry)

    def send(self, source: Source, reason: str, detail: str) -> int:
        """Write the dead letter of ``source``; returns the token its record waits for
        (register it with the tracker before the next :meth:`poll`)."""
        self._last_token -= 1
        self.metrics.dead_letters.labels(reason).inc()
        log.warning(
            "dead-lettering %s[%d]@%d to %s: %s: %s",
            source.topic,
            source.partition,
            source.offset,
            self.topic,
            reason,
            detail,
        )
        received = now_ms()
        dl = DeadLetter(
            reason=reason,
            payload=source.value or b"",
            received_at=received,
            detail=detail,
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
        )
        value, headers = fit_dead_letter(dl.payload, source.key, dl.headers(), self._limit)
        if value is not dl.payload:
            self.metrics.dead_letters_truncated.inc()
        self._produce(_Letter(self._last_token, value, source.key, headers, received))
        return self._last_token

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports; send again what is due for a retry."""
        self._producer.poll(timeout)
        if self._retry and self._retry[0][0] <= time.monotonic():
            now = time.monotonic()
            due = [letter for at, letter in self._retry if at <= now]
            self._retry = [(at, letter) for at, letter in self._retry if at > now]
            for letter in due:
                self._produce(letter)

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every dead letter to be confirmed."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self.poll(0.05)

    def _produce(self, letter: _Letter) -> None:
        try:
            self._producer.produce(
                self.topic,
                letter.value,
                letter.key,
                headers=letter.headers,
                timestamp=letter.timestamp,
                on_delivery=lambda err, _msg: self._delivered(letter, err),
            )
        except (BufferError, KafkaException) as exc:
            log.warning("dead letter not queued (%s); retrying", exc)
            self._retry.append((time.monotonic() + _RETRY_S, letter))
            return
        self._in_flight += 1

    def _delivered(self, letter: _Letter, err: KafkaError | None) -> None:
        self._in_flight -= 1
        if err is None:
            self.tracker.ack(letter.token)
            return
        if err.fatal():
            raise BridgeError(f"Kafka producer fatal error: {err}")
        code = err.code()
        if code in _RETRY or (code not in _TOO_LARGE and err.retriable()):
            log.error(
                "dead letter not written to %s (%s): retrying, holding commits", self.topic, err
            )
            self._retry.append((time.monotonic() + _RETRY_S, letter))
            return
        smaller = shrink(letter.value, letter.key, letter.headers, code in _TOO_LARGE)
        if smaller is not None:
            value, key, headers = smaller
            log.warning("Kafka refused a dead letter (%s): sending it smaller", err)
            self._produce(replace(letter, value=value, key=key, headers=headers))
            return
        # as the bridge does: a record Kafka refuses even in the minimal form is given up
        log.error("Kafka refused a dead letter even in its minimal form (%s): dropped", err)
        self.metrics.dead_letters_lost.inc()
        self.tracker.ack(letter.token)

    def close(self, timeout: float = 5.0) -> None:
        self._producer.flush(timeout)
