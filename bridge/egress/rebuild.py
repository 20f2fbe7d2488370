"""Rebuilding the retained alert state after each MQTT (re)connection.

The broker may have lost its retained messages (a restart without persistence, a new
broker), and at the first start of a consumer group the events before it were never
published. So, once connected:

1. read the compacted alert-state topic to its end (a batch per loop turn);
2. note where the ``alerts`` partitions end now, and wait until egress has read (and
   published) that far: every event of the snapshot has then been published, or was
   before this run, so re-publishing a state can never overtake an older event;
3. publish each state again, retained, in event-time order, unless a newer event of that
   device and type is retained already (:class:`~bridge.egress.alertstate.RetainedBook`).

A disconnection cancels a rebuild in progress; the next connection starts a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from confluent_kafka import KafkaException

from bridge.egress.alertstate import Snapshot, StateEntry
from bridge.egress.inputs import Inputs
from bridge.egress.messages import Outgoing
from bridge.egress.metrics import EgressMetrics
from bridge.egress.outbox import Outbox
from bridge.egress.settings import EgressSettings
from bridge.egress.snapshot import SnapshotReader
from bridge.egress.tracker import TopicPartitionKey
from bridge.errors import BridgeError

__all__ = ["Rebuild"]

log = logging.getLogger(__name__)

_RETRY_S = 2.0


class Rebuild:
    """Driven by the egress loop: :meth:`request`, then :meth:`step` each turn."""

    def __init__(
        self, settings: EgressSettings, inputs: Inputs, outbox: Outbox, metrics: EgressMetrics
    ) -> None:
        self.settings = settings
        self.inputs = inputs
        self.outbox = outbox
        self.metrics = metrics
        self._wanted = False
        self._retry_at = 0.0
        self._reader: SnapshotReader | None = None
        self._snapshot: Snapshot | None = None
        self._targets: dict[TopicPartitionKey, int] | None = None
        self._queue: Iterator[StateEntry] | None = None
        self._published = 0

    def request(self) -> None:
        """Start a new rebuild (dropping one in progress)."""
        self.cancel()
        self._wanted = True
        self._retry_at = 0.0

    def cancel(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._wanted = False
        self._reader = self._snapshot = self._targets = self._queue = None

    def step(self, room: int) -> list[Outgoing]:
        """Advance; the messages to publish now (at most about ``room``)."""
        if self._wanted and time.monotonic() >= self._retry_at:
            self._start()
        if self._reader is not None:
            if not self._reader.step():
                return []
            self._snapshot = self._reader.snapshot
            log.info(
                "alert-state read: %d record(s), %d device/type state(s), %d open",
                self._reader.records,
                len(self._snapshot.entries),
                self._snapshot.open_count,
            )
            self.metrics.open_alerts.set(self._snapshot.open_count)
            self._reader.close()
            self._reader = None
        if self._snapshot is None:
            return []
        if self._targets is None:
            try:
                self._targets = self.inputs.ends(self.settings.topic_alerts)
            except KafkaException as exc:
                log.warning("cannot read the end offsets of alerts (%s); retrying", exc)
                return []
        if self._queue is None:
            if not self.inputs.caught_up(self._targets):
                return []
            self._queue = self._snapshot.in_order()
            self._published = 0
        return self._drain(room)

    def _start(self) -> None:
        try:
            self._reader = SnapshotReader(
                self.settings.kafka_config(), self.settings.topic_alert_state, self.metrics
            )
            self._wanted = False
        except (KafkaException, BridgeError) as exc:
            log.warning("cannot read %s (%s); retrying", self.settings.topic_alert_state, exc)
            self._retry_at = time.monotonic() + _RETRY_S

    def _drain(self, room: int) -> list[Outgoing]:
        assert self._queue is not None and self._snapshot is not None
        out: list[Outgoing] = []
        while len(out) < room:
            entry = next(self._queue, None)
            if entry is None:
                log.info(
                    "retained alert state rebuilt: %d of %d state(s) published again "
                    "(the others have a newer event retained)",
                    self._published,
                    len(self._snapshot.entries),
                )
                self.metrics.rebuilds.inc()
                self._snapshot = self._targets = self._queue = None
                break
            messages = self.outbox.for_state(entry)
            self._published += 1 if messages else 0
            out.extend(messages)
        return out
