"""Reading the compacted alert-state topic to its end, a batch at a time, so that the MQTT
loop keeps running (and keepalives keep flowing) while a large topic is read."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from bridge.egress.alertstate import Snapshot, StateEntry
from bridge.egress.messages import ALERT, parse
from bridge.egress.metrics import EgressMetrics
from bridge.errors import BridgeError
from iotml.core.errors import RecordError
from iotml.core.records import Alert

__all__ = ["SnapshotReader"]

log = logging.getLogger(__name__)


class SnapshotReader:
    """Reads ``topic`` from the beginning of every partition up to its end (read-committed);
    :meth:`step` until it returns ``True``, then take :attr:`snapshot`. Raises
    ``KafkaException`` or :class:`BridgeError` when the topic cannot be listed."""

    def __init__(self, kafka_conf: dict[str, Any], topic: str, metrics: EgressMetrics) -> None:
        self.topic = topic
        self.metrics = metrics
        self.snapshot = Snapshot()
        self.records = 0
        self._consumer = Consumer(
            {
                **kafka_conf,
                # never commits: a throwaway group id keeps it out of any real group
                "group.id": f"iotml-egress-state-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        try:
            md = self._consumer.list_topics(topic, timeout=5)
            meta = md.topics[topic]
            if meta.error is not None:
                raise BridgeError(f"cannot read {topic}: {meta.error}")
            parts = sorted(meta.partitions)
        except Exception:
            self._consumer.close()
            raise
        self._open = set(parts)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])

    def step(self, budget: int = 2000, timeout: float = 0.02) -> bool:
        """Read up to ``budget`` records; ``True`` once every partition was read to its end."""
        if not self._open:
            return True
        for m in self._consumer.consume(budget, timeout):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self._open.discard(m.partition())
                continue
            self.records += 1
            self._take(m)
        return not self._open

    def _take(self, m: Any) -> None:
        value = m.value()
        if value is None:
            key = m.key()
            if key is not None:
                self.snapshot.delete(key.decode("utf-8", "replace"))
            return
        try:
            alert, tags = parse(ALERT, value)
        except RecordError as exc:
            self.metrics.rejected.labels(self.topic, exc.reason).inc()
            log.warning(
                "skipping %s[%d]@%d: not an alert event (%s)",
                self.topic,
                m.partition(),
                m.offset(),
                exc,
            )
            return
        assert isinstance(alert, Alert)
        self.snapshot.put(StateEntry(alert, value, tags))

    def close(self) -> None:
        self._consumer.close()
