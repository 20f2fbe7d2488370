"""Replaying recorded readings through the pipeline (training, ``evaluate`` and ``batch``).

This is the batch twin of the stream processor: readings go through the same windower
(:mod:`models.pipeline`) per device in arrival order, and the closed windows through the
same window stage (:func:`models.closing.close_windows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from iotml.core.records import Alert, Prediction
from models.clock import ClockRules
from models.closing import ClosedWindow, Closing, close_rows, close_windows
from models.device import DeviceState, new_state
from models.features import FeatureSpec, WindowStats
from models.partition import MemoryStore, ModelStage, close_stage, on_reading, on_time, sweep_due
from models.pipeline import add_reading, advance

if TYPE_CHECKING:
    from models.registry import Artifact

#: One reading of the model's metric: (device_id, event time ms, value), in arrival order.
Point = tuple[str, int, float]

#: A reading as the stream saw it: (Kafka partition, arrival time ms or ``None``,
#: (device_id, event time ms, value or ``None`` when it lacks the model's metric, tags)).
Sample = tuple[str, int, float | None, Mapping[str, str]]
Record = tuple[int, int | None, Sample]


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
    closed, late, states = _windows(points, spec, grace_ms, flush)
    states, windows = close_rows(closed, states, spec)
    return WindowedSeries(windows, late, states)


def _windows(
    points: Iterable[Point], spec: FeatureSpec, grace_ms: int, flush: bool
) -> tuple[list[tuple[str, WindowStats]], int, dict[str, DeviceState]]:
    """The windower alone: closed windows ``(device_id, stats)`` in closing order, the
    number of late readings and the windower's state per device."""
    states: dict[str, DeviceState] = {}
    closed: list[tuple[str, WindowStats]] = []
    late = 0
    for device, ts, value in points:
        state = states.get(device) or new_state(device)
        state, done, is_late = add_reading(state, ts, value, spec, grace_ms)
        late += is_late
        closed.extend((device, stats) for stats in done)
        states[device] = state
    if flush:
        states, flushed = _close_open(states, spec, grace_ms)
        closed.extend(flushed)
    return closed, late, states


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


def run_clocked(
    records: Iterable[Record],
    artifact: Artifact,
    grace_ms: int,
    rules: ClockRules,
    flush: bool = False,
) -> BatchView:
    """What the stream processor produced for recorded readings, partition by partition,
    with its partition clock (:mod:`models.partition`): quiet devices' windows close when
    the stream would close them, ``device_silent`` opens and forgotten devices' alerts
    clear. ``flush`` then closes the windows still open at the end. Outputs are in the
    stream's order within each partition, partitions one after the other."""
    if artifact.forecaster is None:
        raise ValueError("the artifact was loaded without its model")
    by_partition: dict[int, list[tuple[int | None, Sample]]] = {}
    for partition, arrived, point in records:
        by_partition.setdefault(partition, []).append((arrived, point))
    ordered = (
        (partition, arrived, point)
        for partition in sorted(by_partition)
        for arrived, point in by_partition[partition]
    )
    view = BatchView()
    for part in iter_clocked(ordered, artifact, grace_ms, rules, flush):
        view.predictions.extend(part.predictions)
        view.alerts.extend(part.alerts)
        view.windows.extend(part.windows)
        view.late += part.late
    return view


def iter_clocked(
    records: Iterable[Record],
    artifact: Artifact,
    grace_ms: int,
    rules: ClockRules,
    flush: bool = False,
    chunk: int = 10_000,
) -> Iterator[BatchView]:
    """:func:`run_clocked` as a stream, for records that come partition after partition
    (each partition's records together, in Kafka order): the outputs of every ``chunk``
    readings as they are produced (the last view may be empty). Only the current
    partition's device states are held, so memory does not grow with the input."""
    if artifact.forecaster is None:
        raise ValueError("the artifact was loaded without its model")
    spec = artifact.spec
    model = ModelStage(
        spec,
        artifact.alert_params,
        artifact.name,
        artifact.version,
        artifact.forecaster.predict,
        bands=artifact.bands,
        kind=artifact.kind,
    )
    view = BatchView()
    store: MemoryStore | None = None
    current: int | None = None
    done: set[int] = set()
    p: int | None = None
    count = 0
    for partition, arrived, (device, ts, value, tags) in records:
        if store is None or partition != current:
            if store is not None and current is not None:
                if flush:
                    _flush(store, model, grace_ms, view)
                done.add(current)
            if partition in done:
                raise ValueError(f"the records of partition {partition} are not together")
            store, current, p = MemoryStore(spec.window_ms), partition, None
        got = on_reading(store, p, device, ts, value, arrived, model, grace_ms, rules, tags)
        view.late += got.late
        if got.closing is not None:
            _add(view, got.closing)
        view.alerts.extend(got.alerts)
        if p is not None and got.p > p and sweep_due(p, got.p, spec.window_ms, False):
            swept = on_time(store, p, got.p, model, grace_ms, rules)
            if swept.closing is not None:
                _add(view, swept.closing)
            view.alerts.extend(swept.alerts)
        p = got.p if p is None else max(p, got.p)
        count += 1
        if count >= chunk:
            yield view
            view, count = BatchView(), 0
    if store is not None and flush:
        _flush(store, model, grace_ms, view)
    yield view


def _add(view: BatchView, closing: Closing) -> None:
    view.windows.extend(closing.windows)
    for outcome in closing.outcomes:
        if outcome.prediction is not None:
            view.predictions.append(outcome.prediction)
        view.alerts.extend(outcome.alerts)


def _flush(store: MemoryStore, model: ModelStage, grace_ms: int, view: BatchView) -> None:
    """Close every window still open, as if each device's clock had moved on."""
    states, closed = _close_open(dict(store.states), model.spec, grace_ms)
    closing = close_stage(closed, states, model)
    store.states.update(closing.states)
    _add(view, closing)


def _close_open(
    states: dict[str, DeviceState], spec: FeatureSpec, grace_ms: int
) -> tuple[dict[str, DeviceState], list[tuple[str, WindowStats]]]:
    """Take every device's open windows out of ``states`` (updated in place) as if its
    clock had moved one window plus the grace period past its watermark."""
    closed: list[tuple[str, WindowStats]] = []
    for device, state in states.items():
        if state.watermark is None:
            continue
        end = state.watermark + spec.window_ms + grace_ms
        states[device], done = advance(state, end, spec, grace_ms)
        closed.extend((device, stats) for stats in done)
    return states, closed


def run(
    points: Sequence[Point], artifact: Artifact, grace_ms: int = 0, flush: bool = False
) -> BatchView:
    """Features, forecasts and alerts for recorded readings, exactly as the processor
    computes them (:func:`models.closing.close_windows`, with one model call for all
    windows; alerts run in window order per device)."""
    if artifact.forecaster is None:
        raise ValueError("the artifact was loaded without its model")
    closed, late, _ = _windows(points, artifact.spec, grace_ms, flush)
    closing = close_windows(
        closed,
        {},
        artifact.spec,
        artifact.alert_params,
        artifact.name,
        artifact.version,
        artifact.forecaster.predict,
        bands=artifact.bands,
        model_kind=artifact.kind,
    )
    return BatchView(
        predictions=closing.predictions,
        alerts=closing.alerts,
        windows=closing.windows,
        late=late,
    )
