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

import logging
import time
from collections.abc import Callable
from typing import Any

from iotml.core import headers as h
from iotml.core.evaluations import Evaluation
from iotml.core.eventtime import EventTimeRange, now_ms
from iotml.core.records import Alert
from models import Closing, ModelStage, on_reading, on_time
from models.clock import ClockRules, arrival_time
from processor.clock import HEARTBEAT_ADVANCE, PartitionClock, rules_for, sweep_due
from processor.inference import Inference
from processor.intake import Intake
from processor.metrics import Metrics
from processor.model import ActiveModel
from processor.outputs import (
    ALERT_STATE,
    ALERTS,
    DLQ,
    EVALUATIONS,
    PREDICTIONS,
    Output,
    alert_outputs,
    evaluation_output,
    prediction_output,
)
from processor.state import PartitionStore, StateCache, StateLike

__all__ = ["ALERTS", "ALERT_STATE", "DLQ", "EVALUATIONS", "PREDICTIONS", "Engine", "Output"]

log = logging.getLogger(__name__)

#: The dead-letter reason of a record whose handling raised an unforeseen error.
UNPROCESSABLE = "unprocessable"


class Engine:
    """Turns consumed records into outputs, keeping device state in ``state``.

    ``grace_ms=None`` uses the model's grace period (:attr:`ActiveModel.grace_ms`);
    ``idle_ms=None`` counts a device quiet after one window plus the grace period of
    partition time without a reading; ``ttl_ms`` forgets devices silent that long (0:
    never); ``model_stage=False`` closes windows without calling the model;
    ``scoring=False`` scores no forecast; ``shadow`` gives the candidate version scored
    beside the live one (:mod:`processor.shadow`), never published."""

    def __init__(
        self,
        model: Callable[[], ActiveModel | None],
        metrics: Metrics,
        grace_ms: int | None = None,
        idle_ms: int | None = None,
        event_range: EventTimeRange | None = None,
        model_stage: bool = True,
        now: Callable[[], int] = now_ms,
        ttl_ms: int = 0,
        scoring: bool = True,
        shadow: Callable[[], ActiveModel | None] = lambda: None,
    ) -> None:
        self._model = model
        self._scoring = scoring
        self._shadow = shadow
        self._metrics = metrics
        self._grace_override = grace_ms
        self._grace = grace_ms or 0
        self._idle = idle_ms
        self._ttl = ttl_ms
        self._model_stage = model_stage
        self._intake = Intake(metrics, event_range, now)
        self._inference = Inference(metrics)
        self._states = StateCache()
        self.clocks: dict[int, PartitionClock] = {}
        # metric children looked up once: labels() costs microseconds per record
        self._in_heartbeat = metrics.records_in.labels("heartbeat")
        self._closed_by_reading = metrics.windows_closed.labels("reading")
        self._rules: tuple[tuple[object, ...], ClockRules] | None = None
        self._staged: tuple[ActiveModel | None, ActiveModel | None, ModelStage | None] = (
            None,
            None,
            None,
        )

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
        rules = self._clock_rules(model)
        hdrs = h.decode(headers) if headers else {}
        out: list[Output] = []
        event_time: int | None = None
        kind = hdrs.get(h.HEARTBEAT)
        if kind is not None:
            self._in_heartbeat.inc()
            if kind == HEARTBEAT_ADVANCE:
                event_time = timestamp
        else:
            try:
                arrived = arrival_time(hdrs.get(h.RECEIVED_AT))
                event_time = self._reading(
                    value, topic, partition, offset, part, model, rules, arrived, out
                )
            except Exception as exc:  # one record must never stop the processor
                self._states.drop(partition)
                part = self._states.open(partition, offset, state, model)
                detail = f"{type(exc).__name__}: {exc}"
                log.warning("dead-lettering %s[%d]@%d: %s", topic, partition, offset, detail)
                out = [self._intake.dead(UNPROCESSABLE, detail, value, topic, partition, offset)]
                event_time = None
        before = part.event_time
        if event_time is not None and (before is None or event_time > before):
            part.set_event_time(event_time)
            window = model.spec.window_ms
            if before is not None and sweep_due(before, event_time, window, kind is not None):
                self._sweep(part, model, rules, before, event_time, out)
        self.clocks[partition] = PartitionClock(part.event_time, time.monotonic(), offset)
        self._metrics.devices_cached.set(self._states.cached())
        return out

    def _clock_rules(self, model: ActiveModel) -> ClockRules:
        key = (model.spec, self._grace, model.params.silence_ms)
        if self._rules is None or self._rules[0] != key:
            rules = rules_for(model.spec, self._grace, self._idle, key[2], self._ttl)
            self._rules = (key, rules)
        return self._rules[1]

    def _reading(
        self,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        part: PartitionStore,
        model: ActiveModel,
        rules: ClockRules,
        arrived: int | None,
        out: list[Output],
    ) -> int | None:
        """Handle one reading; returns the partition time after it (``None``: the record
        does not count for the clock)."""
        reading = self._intake.reading(value, topic, partition, offset)
        if isinstance(reading, Output):
            out.append(reading)
            return None
        metric = reading.metrics.get(model.spec.metric)
        if metric is None:
            self._metrics.missing_metric.inc()
        got = on_reading(
            part,
            part.event_time,
            reading.device_id,
            reading.ts,
            metric,
            arrived,
            self._stage(model),
            self._grace,
            rules,
            reading.tags,
        )
        if got.late:
            out.append(
                self._intake.late(
                    reading,
                    value,
                    got.old.watermark,
                    model.spec.window_ms,
                    self._grace,
                    topic,
                    partition,
                    offset,
                )
            )
        if got.closing is not None:
            self._closed_by_reading.inc(len(got.closing.outcomes))
            self._emit(got.closing, out)
        self._emit_alerts(got.alerts, out)
        return got.p

    def _sweep(
        self,
        part: PartitionStore,
        model: ActiveModel,
        rules: ClockRules,
        before: int,
        now_et: int,
        out: list[Output],
    ) -> None:
        """Handle the devices due as the partition time moves from ``before`` to
        ``now_et`` (:func:`models.partition.on_time`)."""
        done = on_time(part, before, now_et, self._stage(model), self._grace, rules)
        if done.clock_closed:
            self._metrics.windows_closed.labels("clock").inc(done.clock_closed)
        if done.closing is not None:
            self._emit(done.closing, out)
        self._emit_alerts(done.alerts, out)
        if done.forgotten:
            self._metrics.devices_forgotten.inc(done.forgotten)

    def _stage(self, model: ActiveModel) -> ModelStage:
        """The model as the window stage needs it (no forecasts without the model stage);
        built again only when the live or the shadow model changes, not per record."""
        candidate = self._shadow() if self._scoring else None
        live, shadowed, stage = self._staged
        if stage is not None and live is model and shadowed is candidate:
            return stage
        predict = self._inference.predictor(model) if self._model_stage else None
        shadow = self._inference.shadow(model, candidate) if self._scoring else None
        m = model
        bands = m.artifact.bands if m.artifact is not None else None
        kind = m.artifact.kind if m.artifact is not None else None
        stage = ModelStage(
            m.spec, m.params, m.name, m.version, predict, self._scoring, shadow, bands, kind
        )
        self._staged = (model, candidate, stage)
        return stage

    def _emit(self, closing: Closing, out: list[Output]) -> None:
        """Per closed window: its scored forecasts, its prediction, then its alerts."""
        for outcome in closing.outcomes:
            if outcome.evaluation is not None:
                self._score(outcome.evaluation, out)
            if outcome.shadow_evaluation is not None:
                self._score(outcome.shadow_evaluation, out)
            if outcome.prediction is not None:
                out.append(prediction_output(outcome.prediction))
                self._metrics.predictions.inc()
            self._emit_alerts(outcome.alerts, out)

    def _score(self, e: Evaluation, out: list[Output]) -> None:
        out.append(evaluation_output(e))
        self._metrics.observe_score(e.model_name, e.model_version, e)

    def _emit_alerts(self, alerts: list[Alert], out: list[Output]) -> None:
        for a in alerts:
            out.extend(alert_outputs(a))
            self._metrics.alerts.labels(a.type, a.event).inc()
