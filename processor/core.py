"""The processor's per-partition engine: one call per consumed record, outputs as values.

Why not quixstreams' window API
    Its windows are per key and close only when that key sends again; its late-record
    callback cannot dead-letter with our headers; and it cannot close many devices'
    windows at once (quiet devices, batched inference). The window rule itself belongs
    to ``models`` (``add_reading``/``advance``, the same code ``iotml batch`` runs), so
    the processor keeps ``models.DeviceState`` in quixstreams state and calls the
    ``models`` pipeline functions in the batch path's order. quixstreams still does
    consumption, offsets, state stores with changelog topics and recovery, checkpoints,
    transactions (exactly-once) and producing.

Partition-wide state
    The readings topic is consumed with a constant key, so the quixstreams ``State`` a
    record sees is its partition's whole store (state is per partition in any case).
    That lets one record act on every device of the partition: a heartbeat or the
    partition clock closes the windows of quiet devices and opens ``device_silent``, and
    the windows closed together go through the model in one batch. Keys:

    * ``meta``: the partition's event time (largest reading or heartbeat time);
    * ``<ns>/index``: the device ids seen in the partition;
    * ``<ns>/h/<device>``: hot per-reading part of the device state (watermark,
      last_seen, open windows), written per reading;
    * ``<ns>/c/<device>``: the rest (closed-window history, pending forecasts, alert
      episodes), written only when a window closes or an alert changes.

    ``<ns>`` is a digest of the model's metric, window, K and features: a model with
    another window starts from fresh device state rather than misreading the old one.

Clocks
    A device's windows close on its own readings (its watermark, as in ``iotml batch``).
    Each time the partition's event time crosses a window boundary, devices whose last
    reading is more than ``idle_ms`` behind it are advanced to the partition time (their
    windows close, ``device_silent`` may open). When a whole partition is idle, the
    heartbeat records of :mod:`processor.heartbeat` move its event time on.

A read-through cache keeps the decoded device states of each partition in memory; it is
dropped whenever a record does not directly follow the last one this process handled in
that partition (rebalance, restart, rewind), so another replica's writes are never missed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from iotml.core import headers as h
from iotml.core.errors import RecordError
from iotml.core.eventtime import EventTimeRange, now_ms
from iotml.core.records import Alert, DeadLetter, Reading
from models import (
    DeviceState,
    WindowStats,
    add_reading,
    advance,
    close_window,
    make_prediction,
    new_state,
    observe,
    silence,
    step_alerts,
)
from processor.metrics import Metrics
from processor.model import ActiveModel

log = logging.getLogger(__name__)

PREDICTIONS, ALERTS, DLQ = "predictions", "alerts", "dlq"
LATE = "late"
HEARTBEAT_ADVANCE, HEARTBEAT_PROBE = "advance", "probe"


class StateLike(Protocol):
    """The part of quixstreams' ``State`` the engine uses."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def set(self, key: Any, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce: ``topic`` is a role (predictions, alerts, dlq)."""

    topic: str
    key: str | None
    value: bytes
    timestamp: int
    headers: list[tuple[str, bytes]]


@dataclass(slots=True)
class PartitionClock:
    """What the heartbeat thread needs to know about a partition (read from another
    thread: written as whole attributes only)."""

    event_time: int | None = None
    wall: float = 0.0  # time.monotonic() when the last record was handled
    offset: int = -1


@dataclass(slots=True)
class _Partition:
    ns: str = ""
    last_offset: int = -2
    event_time: int | None = None
    index: set[str] | None = None
    devices: dict[str, DeviceState] = field(default_factory=dict)


def namespace(model: ActiveModel) -> str:
    """State key namespace of a model's feature layout."""
    return hashlib.sha256(model.fingerprint().encode()).hexdigest()[:10]


class Engine:
    """Turns consumed records into outputs, keeping device state in ``state``."""

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
        self._range = event_range
        self._model_stage = model_stage
        self._now = now
        self._parts: dict[int, _Partition] = {}
        self._ns: tuple[ActiveModel | None, str] = (None, "")
        self.clocks: dict[int, PartitionClock] = {}
        # metric children looked up once: labels() costs microseconds per record
        self._in_reading = metrics.records_in.labels("reading")
        self._in_heartbeat = metrics.records_in.labels("heartbeat")
        self._closed_by_reading = metrics.windows_closed.labels("reading")

    # -- entry point -------------------------------------------------------------------

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
        model = self._model()
        if model is None:  # the app only runs with a model; defensive
            raise RuntimeError("no model loaded")
        self._grace = self._grace_override if self._grace_override is not None else model.grace_ms
        part = self._partition(partition, offset, state, model)
        hdrs = h.decode(headers) if headers else {}
        out: list[Output] = []
        event_time: int | None = None
        kind = hdrs.get(h.HEARTBEAT)
        if kind is not None:
            self._in_heartbeat.inc()
            if kind == HEARTBEAT_ADVANCE:
                event_time = timestamp
        else:
            event_time = self._reading(value, topic, partition, offset, part, state, model, out)
        before = part.event_time
        if event_time is not None and (before is None or event_time > before):
            part.event_time = event_time
            state.set("meta", event_time)
            window = model.spec.window_ms
            if kind is not None or before is None or event_time // window > before // window:
                self._sweep(part, state, model, event_time, out)
        self.clocks[partition] = PartitionClock(part.event_time, time.monotonic(), offset)
        return out

    # -- readings ----------------------------------------------------------------------

    def _reading(
        self,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        part: _Partition,
        state: StateLike,
        model: ActiveModel,
        out: list[Output],
    ) -> int | None:
        """Handle one reading; returns its event time when it counts for the clock."""
        try:
            if value is None:
                raise RecordError("empty", "record has no value")
            reading = Reading.from_json(value)
            reason = self._range.check(reading.ts, self._now()) if self._range else None
            if reason is not None:
                raise RecordError(reason, f"ts={reading.ts}")
        except RecordError as exc:
            self._metrics.records_in.labels("invalid").inc()
            out.append(self._dead(exc.reason, exc.detail, value, topic, partition, offset))
            return None
        self._in_reading.inc()
        spec = model.spec
        metric = reading.metrics.get(spec.metric)
        if metric is None:
            self._metrics.missing_metric.inc()
            return reading.ts
        dev = reading.device_id
        old = self._device(part, state, dev)
        st, closed, late = add_reading(old, reading.ts, metric, spec, self._grace)
        if late:
            start = reading.ts - reading.ts % spec.window_ms
            detail = (
                f"window [{start}, {start + spec.window_ms}) of {dev} closed "
                f"(device watermark {old.watermark}, grace {self._grace} ms)"
            )
            out.append(self._dead(LATE, detail, value, topic, partition, offset, dev))
            return reading.ts
        if closed:
            self._closed_by_reading.inc(len(closed))
            st = self._close({dev: (st, closed)}, model, out)[dev]
        st, alerts = observe(st, reading.ts, model.version)
        self._emit_alerts(alerts, out)
        self._save(part, state, dev, st, old)
        return reading.ts

    # -- the partition clock -----------------------------------------------------------

    def _sweep(
        self,
        part: _Partition,
        state: StateLike,
        model: ActiveModel,
        now_et: int,
        out: list[Output],
    ) -> None:
        """Advance quiet devices to the partition's event time ``now_et``."""
        spec = model.spec
        idle = self._idle if self._idle is not None else spec.window_ms + self._grace
        silence_ms = model.params.silence_ms
        batch: dict[str, tuple[DeviceState, list[WindowStats]]] = {}
        olds: dict[str, DeviceState] = {}
        for dev in sorted(self._index(part, state)):
            old = self._device(part, state, dev)
            if old.last_seen is None:
                continue
            quiet = old.last_seen <= now_et - idle
            silent_due = 0 < silence_ms <= now_et - old.last_seen
            if not (quiet or silent_due):
                continue
            st, closed = advance(old, now_et, spec, self._grace) if quiet else (old, [])
            olds[dev] = old
            batch[dev] = (st, closed)
        if not batch:
            return
        n = sum(len(c) for _, c in batch.values())
        if n:
            self._metrics.windows_closed.labels("clock").inc(n)
        closed_states = self._close(batch, model, out)
        for dev, st in closed_states.items():
            st, alerts = silence(st, now_et, model.params, model.version)
            self._emit_alerts(alerts, out)
            self._save(part, state, dev, st, olds[dev])

    # -- the window stage: features, one batched model call, alerts ----------------------

    def _close(
        self,
        batch: Mapping[str, tuple[DeviceState, list[WindowStats]]],
        model: ActiveModel,
        out: list[Output],
    ) -> dict[str, DeviceState]:
        """Close windows of several devices with one model call; the calls to ``models``
        per window are those of the batch path (``close_window``, forecast,
        ``step_alerts``). ``close_window`` only touches the history and ``step_alerts``
        only the pending forecasts and episodes, so closing all windows first and then
        stepping the alerts gives the same states as doing each window in turn."""
        spec = model.spec
        states: dict[str, DeviceState] = {}
        rows = []
        for dev, (st, closed) in batch.items():
            for stats in closed:
                st, row = close_window(st, stats, spec)
                rows.append((dev, stats, row))
            states[dev] = st
        forecasts = self._predict(model, [r.vector for _, _, r in rows if r is not None])
        i = 0
        for dev, stats, row in rows:
            forecast: float | None = None
            if row is not None and forecasts is not None:
                forecast = float(forecasts[i])
                i += 1
            states[dev], alerts = step_alerts(
                states[dev], stats, forecast, spec, model.params, model.version
            )
            if row is not None and forecast is not None:
                p = make_prediction(dev, row, forecast, spec, model.name, model.version)
                hdrs = [(h.MODEL_VERSION, model.version.encode())]
                out.append(Output(PREDICTIONS, dev, p.to_json(), p.window_end, hdrs))
                self._metrics.predictions.inc()
            self._emit_alerts(alerts, out)
        return states

    def _predict(self, model: ActiveModel, vectors: list[np.ndarray]) -> np.ndarray | None:
        if not vectors or not self._model_stage:
            return None
        X = np.stack(vectors)
        t0 = time.perf_counter()
        y = model.forecaster.predict(X)
        self._metrics.inference_seconds.observe(time.perf_counter() - t0)
        self._metrics.inference_rows.observe(len(vectors))
        return y

    def _emit_alerts(self, alerts: list[Alert], out: list[Output]) -> None:
        for a in alerts:
            hdrs = [(h.MODEL_VERSION, a.model_version.encode())] if a.model_version else []
            out.append(Output(ALERTS, a.device_id, a.to_json(), a.ts, hdrs))
            self._metrics.alerts.labels(a.type, a.event).inc()

    def _dead(
        self,
        reason: str,
        detail: str,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        key: str | None = None,
    ) -> Output:
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
        return Output(DLQ, key, dl.payload, received, dl.headers())

    # -- state -------------------------------------------------------------------------

    def _partition(
        self, partition: int, offset: int, state: StateLike, model: ActiveModel
    ) -> _Partition:
        part = self._parts.get(partition)
        if self._ns[0] is not model:
            self._ns = (model, namespace(model))
        ns = self._ns[1]
        if part is None or offset != part.last_offset + 1 or part.ns != ns:
            part = _Partition(ns=ns, event_time=state.get("meta"))
            self._parts[partition] = part
        part.last_offset = offset
        return part

    def _index(self, part: _Partition, state: StateLike) -> set[str]:
        if part.index is None:
            part.index = set(state.get(f"{part.ns}/index") or [])
        return part.index

    def _device(self, part: _Partition, state: StateLike, dev: str) -> DeviceState:
        st = part.devices.get(dev)
        if st is not None:
            return st
        hot = state.get(f"{part.ns}/h/{dev}")
        if hot is None:
            st = new_state(dev)
        else:
            cold = state.get(f"{part.ns}/c/{dev}") or {}
            st = DeviceState.from_dict(
                {
                    **cold,
                    "device_id": dev,
                    "watermark": hot[0],
                    "last_seen": hot[1],
                    "buffer": hot[2],
                }
            )
        part.devices[dev] = st
        return st

    def _save(
        self, part: _Partition, state: StateLike, dev: str, st: DeviceState, old: DeviceState
    ) -> None:
        index = self._index(part, state)
        if dev not in index:
            index.add(dev)
            state.set(f"{part.ns}/index", sorted(index))
        part.devices[dev] = st
        if (
            st.buffer is not old.buffer
            or st.watermark != old.watermark
            or st.last_seen != old.last_seen
            or old.last_seen is None
        ):
            buffer = [[s, [[t, v] for t, v in pts]] for s, pts in sorted(st.buffer.items())]
            state.set(f"{part.ns}/h/{dev}", [st.watermark, st.last_seen, buffer])
        if (
            st.history is not old.history
            or st.pending is not old.pending
            or st.episodes is not old.episodes
        ):
            cold = st.to_dict()
            for hot_key in ("buffer", "watermark", "last_seen", "device_id"):
                cold.pop(hot_key, None)
            state.set(f"{part.ns}/c/{dev}", cold)
