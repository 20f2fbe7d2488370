"""The Kafka side of egress: one consumer that reads every partition of its input topics.

Egress runs as one instance per MQTT broker, so the consumer assigns itself all
partitions (no group membership: a restart after ``kill -9`` resumes at once instead of
waiting for the dead member's session to time out) and commits under its group id only
the offsets the :class:`~bridge.egress.tracker.CommitTracker` releases. Auto-commit is
off; a group without committed offsets starts at ``egress_start`` and commits that
position at once, so a crash before the first regular commit cannot skip records.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition

from bridge.egress.metrics import EgressMetrics
from bridge.egress.settings import EgressSettings
from bridge.egress.tracker import CommitTracker, TopicPartitionKey
from iotml.core.kafka_connect import brokers_up

__all__ = ["Inputs"]

log = logging.getLogger(__name__)


class Inputs:
    """Single-threaded, except ``kafka_up`` (read by the health endpoint)."""

    def __init__(self, settings: EgressSettings, tracker: CommitTracker, metrics: EgressMetrics):
        self.settings = settings
        self.tracker = tracker
        self.metrics = metrics
        self.kafka_up = False
        self.position: dict[TopicPartitionKey, int] = {}  # next offset to read
        self._consumer: Consumer | None = None

    @property
    def attached(self) -> bool:
        return bool(self.position)

    def _config(self) -> dict[str, Any]:
        s = self.settings
        return {
            **s.kafka_config(),
            "group.id": s.egress_group,
            "client.id": s.mqtt_client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            # every start offset is explicit; this only applies to a committed offset that
            # retention has deleted since: publish what is left rather than skip to the end
            "auto.offset.reset": "earliest",
            # end-of-partition events say where a partition ends now, past transaction
            # markers. Never pause()/resume() this consumer: librdkafka (>= 2.2, issue
            # #4844) counts such an event as a message, so a resume would fetch one offset
            # too far and skip a record. Egress stops calling read() instead.
            "enable.partition.eof": True,
            "queued.max.messages.kbytes": 16_384,  # prefetch while egress does not read
            "statistics.interval.ms": 2_000,
            "error_cb": self._on_error,
            "stats_cb": self._on_stats,
            "on_commit": self._on_commit,
            "logger": logging.getLogger("bridge.egress.kafka"),
        }

    # ---- health ----

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_up(False)
        if err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            log.warning("Kafka: %s", err)

    def _on_stats(self, stats_json: str) -> None:
        up = brokers_up(stats_json)
        if up is not None:
            self._set_up(up)

    def _set_up(self, up: bool) -> None:
        if up != self.kafka_up:
            log.info("Kafka %s", "reachable" if up else "unreachable")
        self.kafka_up = up
        self.metrics.kafka_connected.set(1 if up else 0)

    # ---- assignment ----

    def attach(self) -> bool:
        """Assign every partition of the input topics at its committed offset; ``False``
        (logged) while Kafka cannot be reached or a topic is missing."""
        s = self.settings
        if self._consumer is None:
            self._consumer = Consumer(self._config())
        consumer = self._consumer
        topics = s.input_topics()
        try:
            md = consumer.list_topics(timeout=5)
            self._set_up(True)
            needed = [*topics, s.topic_alert_state, s.topic_egress_dlq]
            missing = [t for t in needed if t not in md.topics]
            if missing:
                log.warning(
                    "Kafka topics %s do not exist: create them with `iotml topics ensure`; "
                    "retrying",
                    missing,
                )
                return False
            tps = [TopicPartition(t, p) for t in topics for p in sorted(md.topics[t].partitions)]
            start = self._start_offsets(consumer.committed(tps, timeout=10))
        except KafkaException as exc:
            log.warning("cannot attach to Kafka at %s: %s; retrying", s.kafka_bootstrap, exc)
            return False
        consumer.assign(start)
        for tp in start:
            key = (tp.topic, tp.partition)
            self.position[key] = tp.offset
            self.tracker.start(key, tp.offset)
        log.info(
            "reading %s (%d partitions) as group %s",
            ", ".join(topics),
            len(start),
            s.egress_group,
        )
        return True

    def _start_offsets(self, committed: list[TopicPartition]) -> list[TopicPartition]:
        """Committed offsets; for partitions without one, ``egress_start``, committed now."""
        assert self._consumer is not None
        fresh: list[TopicPartition] = []
        out: list[TopicPartition] = []
        for tp in committed:
            if tp.offset >= 0:
                out.append(TopicPartition(tp.topic, tp.partition, tp.offset))
                continue
            low, high = self._consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            at = high if self.settings.egress_start == "latest" else low
            fresh.append(TopicPartition(tp.topic, tp.partition, at))
        if fresh:
            self._consumer.commit(offsets=fresh, asynchronous=False)
            log.info(
                "group %s had no committed offsets for %d partition(s): starting at the %s",
                self.settings.egress_group,
                len(fresh),
                "end" if self.settings.egress_start == "latest" else "beginning",
            )
        return out + fresh

    # ---- reading ----

    def read(self, max_records: int, timeout: float) -> list[Any]:
        """Up to ``max_records`` records (errors and end-of-partition events handled). Also
        serves the consumer's callbacks (health, commit results)."""
        if self._consumer is None or not self.position:
            return []
        records = []
        for m in self._consumer.consume(max_records, timeout):
            err = m.error()
            key = (m.topic(), m.partition())
            if err is None:
                records.append(m)
                self.position[key] = m.offset() + 1
            elif err.code() == KafkaError._PARTITION_EOF:
                # past any transaction markers: the end of what can be read now
                self.position[key] = max(self.position.get(key, 0), m.offset())
                self.tracker.skip_to(key, m.offset())
            elif err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                log.warning("Kafka consumer: %s", err)
        return records

    def ends(self, topic: str) -> dict[TopicPartitionKey, int]:
        """The end offsets of ``topic``'s assigned partitions, now (raises KafkaException)."""
        assert self._consumer is not None
        return {
            key: self._consumer.get_watermark_offsets(
                TopicPartition(*key), timeout=5, cached=False
            )[1]
            for key in self.position
            if key[0] == topic
        }

    def caught_up(self, targets: dict[TopicPartitionKey, int]) -> bool:
        return all(self.position.get(k, 0) >= end for k, end in targets.items())

    # ---- commits ----

    def commit(self, *, wait: bool = False) -> None:
        """Commit what the tracker releases; ``wait``: synchronously (shutdown)."""
        offsets = self.tracker.committable()
        if self._consumer is None or not offsets:
            return
        parts = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if wait:
                self._consumer.commit(offsets=parts, asynchronous=False)
                self.tracker.committed(offsets)
                self.metrics.commits.inc()
            else:
                self._consumer.commit(offsets=parts, asynchronous=True)
        except KafkaException as exc:
            log.warning("Kafka commit failed (%s); retrying at the next interval", exc)

    def _on_commit(self, err: KafkaError | None, parts: list[TopicPartition]) -> None:
        if err is not None:
            if err.code() != KafkaError._NO_OFFSET:
                log.warning("Kafka commit failed (%s); retrying at the next interval", err)
            return
        done = {(tp.topic, tp.partition): tp.offset for tp in parts if tp.error is None}
        done = {k: o for k, o in done.items() if o != OFFSET_INVALID}
        self.tracker.committed(done)
        self.metrics.commits.inc()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
