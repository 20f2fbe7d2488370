"""Validation of consumed readings and dead-lettering of the rejected ones.

Every rejected record goes to the processor's dead-letter topic with the reason, the
source topic/partition/offset in headers, and a count per reason. A record that is not a
valid reading (no value, a :class:`iotml.core.errors.RecordError` from the schema, an event
time outside the accepted range) also counts as an ``invalid`` input record; a valid
reading for a window that has already closed is dead-lettered as ``late``.
"""

from __future__ import annotations

from collections.abc import Callable

from iotml.core.deadletters import DEFAULT_MAX_BYTES, DeadLetter, fit_dead_letter
from iotml.core.errors import RecordError
from iotml.core.eventtime import EventTimeRange
from iotml.core.records import Reading
from processor.metrics import Metrics
from processor.outputs import DLQ, Output

LATE = "late"


class Intake:
    """Turns consumed record values into readings or dead letters."""

    def __init__(
        self, metrics: Metrics, event_range: EventTimeRange | None, now: Callable[[], int]
    ) -> None:
        self._metrics = metrics
        self._range = event_range
        self._now = now
        self._valid = metrics.records_in.labels("reading")

    def reading(
        self, value: bytes | None, topic: str, partition: int, offset: int
    ) -> Reading | Output:
        """The reading in ``value``, or the dead letter that rejects it."""
        try:
            if value is None:
                raise RecordError("empty", "record has no value")
            reading = Reading.from_json(value)
            reason = self._range.check(reading.ts, self._now()) if self._range else None
            if reason is not None:
                raise RecordError(reason, f"ts={reading.ts}")
        except RecordError as exc:
            self._metrics.records_in.labels("invalid").inc()
            return self.dead(exc.reason, exc.detail, value, topic, partition, offset)
        self._valid.inc()
        return reading

    def late(
        self,
        reading: Reading,
        value: bytes | None,
        watermark: int | None,
        window_ms: int,
        grace_ms: int,
        topic: str,
        partition: int,
        offset: int,
    ) -> Output:
        """The dead letter of a reading whose window closed before it arrived."""
        start = reading.ts - reading.ts % window_ms
        detail = (
            f"window [{start}, {start + window_ms}) of {reading.device_id} closed "
            f"(device watermark {watermark}, grace {grace_ms} ms)"
        )
        return self.dead(LATE, detail, value, topic, partition, offset, reading.device_id)

    def dead(
        self,
        reason: str,
        detail: str,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        key: str | None = None,
    ) -> Output:
        """A dead letter for the record at ``topic``/``partition``/``offset``."""
        self._metrics.dlq.labels(reason).inc()
        received = self._now()
        dl = DeadLetter(
            reason=reason,
            payload=value or b"",
            received_at=received,
            detail=detail,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
        )
        value, headers = fit_dead_letter(
            dl.payload, key.encode() if key else None, dl.headers(), DEFAULT_MAX_BYTES
        )
        return Output(DLQ, key, value, received, headers)
