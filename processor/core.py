"""The processor's per-partition engine: one call per consumed record, outputs as values.

Why not quixstreams' window API
    Its windows are per key and close only when that key sends again; its late-record
    callback cannot dead-letter with our headers; and it cannot close many devices'
    windows at once (quiet devices, batched inference). The window rule itself belongs
    to ``models`` (``add_reading``/``advance`` and ``close_windows``, the same code
    ``iotml batch`` runs), so the processor keeps ``models.DeviceState`` in quixstreams
    state and calls the ``models`` pipeline functions in the batch path's order.
    quixstreams still does consumption, offsets, state stores with changelog topics and
    recovery, checkpoints, transactions (exactly-once) and producing.

Partition-wide state
    The readings topic is consumed with a constant key, so the quixstreams ``State`` a
    record sees is its partition's whole store (:mod:`processor.state`). That lets one
    record act on every device of the partition: a heartbeat or the partition clock
    (:mod:`processor.clock`) closes the windows of quiet devices and opens
    ``device_silent``, and the windows closed together go through the model in one batch
    (:mod:`processor.inference`).

The engine only orchestrates: records are validated and dead-lettered by
:mod:`processor.intake`, and what it produces is built by :mod:`processor.outputs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from iotml.core import headers as h
from iotml.core.eventtime import EventTimeRange, now_ms
from iotml.core.records import Alert
from models import DeviceState, WindowStats, add_reading, close_windows, observe, silence
from processor.clock import HEARTBEAT_ADVANCE, PartitionClock, sweep, sweep_due
from processor.inference import Inference
from processor.intake import Intake
from processor.metrics import Metrics
from processor.model import ActiveModel
from processor.outputs import ALERTS, DLQ, PREDICTIONS, Output, alert_output, prediction_output
from processor.state import PartitionStore, StateCache, StateLike

__all__ = ["ALERTS", "DLQ", "PREDICTIONS", "Engine", "Output"]


class Engine:
    """Turns consumed records into outputs, keeping device state in ``state``.

    ``grace_ms=None`` uses the model's grace period (:attr:`ActiveModel.grace_ms`);
    ``idle_ms=None`` advances a device once it is one window plus the grace behind the
    partition; ``model_stage=False`` closes windows without calling the model."""

    def __init__(
        self,
        model: Callable[[], ActiveModel | None],
        metrics: Metrics,
        grace_ms: int | None = None,
        idle_ms: int | None = None,
        event_range: EventTimeRange | None = None,
        model_stage: bool = True,
        now: Callable[[], int] = now_ms,
    ) -> None:
        self._model = model
        self._metrics = metrics
        self._grace_override = grace_ms
        self._grace = grace_ms or 0
        self._idle = idle_ms
        self._model_stage = model_stage
        self._intake = Intake(metrics, event_range, now)
        self._inference = Inference(metrics)
        self._states = StateCache()
        self.clocks: dict[int, PartitionClock] = {}
        # metric children looked up once: labels() costs microseconds per record
        self._in_heartbeat = metrics.records_in.labels("heartbeat")
        self._closed_by_reading = metrics.windows_closed.labels("reading")

    def process(
        self,
        value: bytes | None,
        headers: Any,
        timestamp: int,
        topic: str,
        partition: int,
        offset: int,
        state: StateLike,
    ) -> list[Output]:
        """Handle the record at ``topic``/``partition``/``offset``; the records to produce."""
        model = self._model()
        if model is None:  # the app only runs with a model; defensive
            raise RuntimeError("no model loaded")
        self._grace = self._grace_override if self._grace_override is not None else model.grace_ms
        part = self._states.open(partition, offset, state, model)
        hdrs = h.decode(headers) if headers else {}
        out: list[Output] = []
        event_time: int | None = None
        kind = hdrs.get(h.HEARTBEAT)
        if kind is not None:
            self._in_heartbeat.inc()
            if kind == HEARTBEAT_ADVANCE:
                event_time = timestamp
        else:
            event_time = self._reading(value, topic, partition, offset, part, model, out)
        before = part.event_time
        if event_time is not None and (before is None or event_time > before):
            part.set_event_time(event_time)
            if sweep_due(before, event_time, model.spec.window_ms, kind is not None):
                self._sweep(part, model, event_time, out)
        self.clocks[partition] = PartitionClock(part.event_time, time.monotonic(), offset)
        return out

    def _reading(
        self,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        part: PartitionStore,
        model: ActiveModel,
        out: list[Output],
    ) -> int | None:
        """Handle one reading; returns its event time when it counts for the clock."""
        reading = self._intake.reading(value, topic, partition, offset)
        if isinstance(reading, Output):
            out.append(reading)
            return None
        spec = model.spec
        metric = reading.metrics.get(spec.metric)
        if metric is None:
            self._metrics.missing_metric.inc()
            return reading.ts
        dev = reading.device_id
        old = part.device(dev)
        st, closed, late = add_reading(old, reading.ts, metric, spec, self._grace)
        if late:
            out.append(
                self._intake.late(
                    reading,
                    value,
                    old.watermark,
                    spec.window_ms,
                    self._grace,
                    topic,
                    partition,
                    offset,
                )
            )
            return reading.ts
        if closed:
            self._closed_by_reading.inc(len(closed))
            st = self._close([(dev, stats) for stats in closed], {dev: st}, model, out)[dev]
        st, alerts = observe(st, reading.ts, model.version)
        self._emit_alerts(alerts, out)
        part.save(dev, st, old)
        return reading.ts

    def _sweep(
        self, part: PartitionStore, model: ActiveModel, now_et: int, out: list[Output]
    ) -> None:
        """Advance quiet devices to the partition's event time ``now_et``."""
        devices = ((dev, part.device(dev)) for dev in sorted(part.device_ids()))
        params = model.params
        due = sweep(devices, now_et, model.spec, self._grace, self._idle, params.silence_ms)
        if not due.advanced:
            return
        if due.closed:
            self._metrics.windows_closed.labels("clock").inc(len(due.closed))
        states = self._close(due.closed, due.advanced, model, out)
        for dev, st in states.items():
            st, alerts = silence(st, now_et, params, model.version)
            self._emit_alerts(alerts, out)
            part.save(dev, st, due.old[dev])

    def _close(
        self,
        windows: Iterable[tuple[str, WindowStats]],
        states: Mapping[str, DeviceState],
        model: ActiveModel,
        out: list[Output],
    ) -> dict[str, DeviceState]:
        """Close windows with one model call (:func:`models.close_windows`); per window,
        its prediction and then its alerts go to ``out``. Returns the new states."""
        predict = self._inference.predictor(model) if self._model_stage else None
        closing = close_windows(
            windows, states, model.spec, model.params, model.name, model.version, predict
        )
        for outcome in closing.outcomes:
            if outcome.prediction is not None:
                out.append(prediction_output(outcome.prediction))
                self._metrics.predictions.inc()
            self._emit_alerts(outcome.alerts, out)
        return closing.states

    def _emit_alerts(self, alerts: list[Alert], out: list[Output]) -> None:
        for a in alerts:
            out.append(alert_output(a))
            self._metrics.alerts.labels(a.type, a.event).inc()
