"""Replaying recorded readings through the pipeline (training, ``evaluate`` and ``batch``).

This is the batch twin of the stream processor: readings go through the same windower,
feature, model and alert functions of :mod:`models.pipeline`, per device in arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from iotml.core.records import Alert, Prediction
from models.features import FeatureRow, FeatureSpec, WindowStats
from models.pipeline import (
    DeviceState,
    add_reading,
    advance,
    close_window,
    make_prediction,
    new_state,
    step_alerts,
)

if TYPE_CHECKING:
    from models.registry import Artifact

#: One reading of the model's metric: (device_id, event time ms, value), in arrival order.
Point = tuple[str, int, float]


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    device_id: str
    stats: WindowStats
    row: FeatureRow | None


@dataclass
class WindowedSeries:
    windows: list[ClosedWindow]
    late: int
    states: dict[str, DeviceState]


def window_series(
    points: Iterable[Point], spec: FeatureSpec, grace_ms: int = 0, flush: bool = False
) -> WindowedSeries:
    """Closed windows and feature rows per device, in closing order. With ``flush`` the
    windows still open at the end are closed too (the stream would wait for more data)."""
    states: dict[str, DeviceState] = {}
    out: list[ClosedWindow] = []
    late = 0
    for device, ts, value in points:
        state = states.get(device) or new_state(device)
        state, closed, is_late = add_reading(state, ts, value, spec, grace_ms)
        late += is_late
        for stats in closed:
            state, row = close_window(state, stats, spec)
            out.append(ClosedWindow(device, stats, row))
        states[device] = state
    if flush:
        for device, state in states.items():
            if state.watermark is None:
                continue
            state, closed = advance(
                state, state.watermark + spec.window_ms + grace_ms, spec, grace_ms
            )
            for stats in closed:
                state, row = close_window(state, stats, spec)
                out.append(ClosedWindow(device, stats, row))
            states[device] = state
    return WindowedSeries(out, late, states)


def training_examples(
    windows: Sequence[ClosedWindow], spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, last, window_end)`` for every feature row whose target window (the one
    ending ``horizon`` later) closed with enough readings; ``y`` is its last value."""
    targets: dict[tuple[str, int], float] = {
        (w.device_id, w.stats.end): w.stats.last for w in windows if w.stats.count >= spec.min_count
    }
    X, y, last, ends = [], [], [], []
    for w in windows:
        if w.row is None:
            continue
        target = targets.get((w.device_id, w.row.window_end + spec.horizon_ms))
        if target is None:
            continue
        X.append(w.row.vector)
        y.append(target)
        last.append(w.row.last_value)
        ends.append(w.row.window_end)
    n = len(X)
    width = len(spec.names())
    return (
        np.asarray(X, dtype=np.float32).reshape(n, width),
        np.asarray(y, dtype=np.float64),
        np.asarray(last, dtype=np.float64),
        np.asarray(ends, dtype=np.int64),
    )


@dataclass
class BatchView:
    """What the stream would have produced for the same readings."""

    predictions: list[Prediction] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    windows: list[ClosedWindow] = field(default_factory=list)
    late: int = 0


def run(
    points: Sequence[Point], artifact: Artifact, grace_ms: int = 0, flush: bool = False
) -> BatchView:
    """Features, forecasts and alerts for recorded readings, exactly as the processor
    computes them (forecasts are batched; alerts run in window order per device)."""
    if artifact.forecaster is None:
        raise ValueError("the artifact was loaded without its model")
    spec, params, version = artifact.spec, artifact.alert_params, artifact.version
    series = window_series(points, spec, grace_ms, flush)
    rows = [w.row for w in series.windows if w.row is not None]
    forecasts = (
        artifact.forecaster.predict(np.stack([r.vector for r in rows])) if rows else np.zeros(0)
    )
    it = iter(forecasts.tolist())
    view = BatchView(windows=series.windows, late=series.late)
    states: dict[str, DeviceState] = {}
    for w in series.windows:
        state = states.get(w.device_id) or new_state(w.device_id)
        forecast = next(it) if w.row is not None else None
        if w.row is not None and forecast is not None:
            view.predictions.append(
                make_prediction(w.device_id, w.row, forecast, spec, artifact.name, version)
            )
        state, alerts = step_alerts(state, w.stats, forecast, spec, params, version)
        view.alerts.extend(alerts)
        states[w.device_id] = state
    return view
