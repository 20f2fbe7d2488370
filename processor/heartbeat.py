"""Heartbeats: records the processor writes into idle partitions of its own input.

quixstreams runs code only when a record arrives, so a partition whose devices all went
quiet would never close their last windows nor notice the silence. Every ``interval`` this
thread looks at the partitions this process has handled records from:

* it measures the lag (end offset minus the next offset to process; also exported as the
  consumer-lag metric);
* when the lag is zero (caught up) and nothing arrived for ``interval`` of wall time, it
  writes an *advance* heartbeat (header ``iotml.heartbeat: advance``, empty value) whose
  timestamp is the partition's event time plus the wall time it has been idle, never
  beyond the wall clock. The engine moves the partition clock to that time.

The event time is judged from the partition's own last record rather than from the wall
clock, and only once caught up, so a processor restarted after downtime first works
through its backlog in event-time order and does not declare it late. The heartbeat goes
into the input partition itself, so it is ordered after every record before it and is
replayed identically after a crash (exactly-once stays deterministic).

A partition this process has not handled a record from (just assigned, nothing new since)
gets a *probe* heartbeat when its end offset stands still; the owner learns the partition's
stored event time from it and takes over the advancing. Heartbeats are not readings: the
engine never dead-letters or counts them as input readings.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from iotml.core import headers as h
from iotml.core.eventtime import now_ms
from processor.clock import HEARTBEAT_ADVANCE, HEARTBEAT_PROBE, PartitionClock
from processor.metrics import Metrics

log = logging.getLogger(__name__)

#: Rounds a silent partition without a local clock waits between probes.
PROBE_EVERY = 6


class Heartbeats:
    """The heartbeat/lag thread of one processor instance."""

    def __init__(
        self,
        kafka_conf: Mapping[str, Any],
        topic: str,
        clocks: Mapping[int, PartitionClock],
        interval_ms: int,
        metrics: Metrics,
    ) -> None:
        self._conf = dict(kafka_conf)
        self._topic = topic
        self._clocks = clocks
        self._interval = max(interval_ms, 200) / 1000.0
        self._send = interval_ms > 0
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ends: dict[int, list[int]] = {}  # recent end offsets per partition
        self._probed: dict[int, int] = {}  # partition -> round of the last probe
        self._round = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="iotml-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        from confluent_kafka import Consumer, Producer

        producer = Producer({**self._conf, "linger.ms": 0, "acks": "all"})
        probe = Consumer(
            {
                **self._conf,
                "group.id": f"iotml-processor-probe-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        try:
            while not self._stop.wait(self._interval):
                try:
                    self.tick(producer, probe)
                except Exception:  # never let a probe error stop the heartbeats
                    log.exception("heartbeat round failed")
        finally:
            producer.flush(10)
            probe.close()

    def tick(self, producer: Any, probe: Any) -> None:
        """One round: lag per partition, heartbeats where idle and caught up."""
        from confluent_kafka import TopicPartition

        self._round += 1
        md = probe.list_topics(self._topic, timeout=10)
        topic = md.topics.get(self._topic)
        if topic is None or topic.error is not None:
            return
        now_wall = time.monotonic()
        for p in sorted(topic.partitions):
            end = probe.get_watermark_offsets(
                TopicPartition(self._topic, p), timeout=10, cached=False
            )[1]
            history = self._ends.setdefault(p, [])
            history.append(end)
            del history[:-3]
            clock = self._clocks.get(p)
            if clock is None:
                self._maybe_probe(producer, p, end, history)
                continue
            lag = max(end - (clock.offset + 1), 0)
            self._metrics.consumer_lag.labels(str(p)).set(lag)
            idle_ms = int((now_wall - clock.wall) * 1000)
            if not self._send or lag > 0 or clock.event_time is None:
                continue
            if idle_ms < self._interval * 1000:
                continue
            ts = min(clock.event_time + idle_ms, max(clock.event_time, now_ms()))
            if ts <= clock.event_time:
                continue
            self._produce(producer, p, HEARTBEAT_ADVANCE, ts)
        producer.flush(10)

    def _maybe_probe(self, producer: Any, p: int, end: int, history: list[int]) -> None:
        if not self._send or end <= 0 or len(history) < 3 or len(set(history)) != 1:
            return
        if self._round - self._probed.get(p, -PROBE_EVERY) < PROBE_EVERY:
            return
        self._probed[p] = self._round
        self._produce(producer, p, HEARTBEAT_PROBE, now_ms())

    def _produce(self, producer: Any, partition: int, kind: str, ts: int) -> None:
        producer.produce(
            self._topic,
            value=b"",
            partition=partition,
            timestamp=ts,
            headers=[(h.HEARTBEAT, kind.encode())],
        )
        self._metrics.heartbeats_sent.labels(kind).inc()
        log.debug("heartbeat %s into %s[%d] at %d", kind, self._topic, partition, ts)
