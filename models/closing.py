"""The window stage: closed windows -> feature rows -> one batched forecast -> alerts.

The stream processor (the windows one record closes) and the batch replay (every window
of a recording) both close windows with :func:`close_windows`, so the two paths compute
predictions and alerts with the same code in the same order.

``close_window`` only touches a device's history and ``step_alerts`` only its pending
forecasts and alert episodes, so building every feature row first, forecasting them in
one model call and then stepping the alerts gives the same states as doing each window
in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction
from models.alerts import AlertParams
from models.device import DeviceState, new_state
from models.features import FeatureRow, FeatureSpec, WindowStats
from models.pipeline import close_window, make_prediction, score, step_alerts

#: A batched model call: feature rows ``X[n, f]`` -> forecasts ``[n]``.
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A device's closed window and its feature row (``None`` without enough history)."""

    device_id: str
    stats: WindowStats
    row: FeatureRow | None


@dataclass(frozen=True, slots=True)
class WindowOutcome:
    """What closing one window produced."""

    window: ClosedWindow
    prediction: Prediction | None
    alerts: list[Alert]
    evaluation: Evaluation | None = None  # the earlier forecast for this window, scored


@dataclass(slots=True)
class Closing:
    """The result of :func:`close_windows`."""

    states: dict[str, DeviceState]  # every device given or closed, updated
    outcomes: list[WindowOutcome]  # one per window, in the order given

    @property
    def windows(self) -> list[ClosedWindow]:
        return [o.window for o in self.outcomes]

    @property
    def predictions(self) -> list[Prediction]:
        return [o.prediction for o in self.outcomes if o.prediction is not None]

    @property
    def evaluations(self) -> list[Evaluation]:
        return [o.evaluation for o in self.outcomes if o.evaluation is not None]

    @property
    def alerts(self) -> list[Alert]:
        return [a for o in self.outcomes for a in o.alerts]


def close_rows(
    windows: Iterable[tuple[str, WindowStats]],
    states: Mapping[str, DeviceState],
    spec: FeatureSpec,
) -> tuple[dict[str, DeviceState], list[ClosedWindow]]:
    """Append closed windows ``(device_id, stats)`` (oldest first per device) to their
    devices' history; returns the new states (a device missing from ``states`` starts
    fresh) and the feature rows, in the order given."""
    out = dict(states)
    closed: list[ClosedWindow] = []
    for device, stats in windows:
        state = out.get(device) or new_state(device)
        out[device], row = close_window(state, stats, spec)
        closed.append(ClosedWindow(device, stats, row))
    return out, closed


def close_windows(
    windows: Iterable[tuple[str, WindowStats]],
    states: Mapping[str, DeviceState],
    spec: FeatureSpec,
    params: AlertParams,
    model_name: str,
    model_version: str,
    predict: Predict | None,
) -> Closing:
    """Close windows ``(device_id, stats)`` of any devices (oldest first per device):
    feature rows, one ``predict`` call for all of them, then per window the alert rule
    and the prediction record. ``predict=None`` runs without a model stage (alerts
    without forecasts, no predictions)."""
    new_states, closed = close_rows(windows, states, spec)
    vectors = [w.row.vector for w in closed if w.row is not None]
    forecasts = _forecast(predict, vectors)
    it = iter(forecasts)
    outcomes: list[WindowOutcome] = []
    for w in closed:
        forecast = next(it) if w.row is not None and predict is not None else None
        device = w.device_id
        evaluation = score(new_states[device], w.stats, spec, model_name)
        new_states[device], alerts = step_alerts(
            new_states[device], w.stats, forecast, spec, params, model_version
        )
        prediction = None
        if w.row is not None and forecast is not None:
            prediction = make_prediction(device, w.row, forecast, spec, model_name, model_version)
        outcomes.append(WindowOutcome(w, prediction, alerts, evaluation))
    return Closing(new_states, outcomes)


def _forecast(predict: Predict | None, vectors: list[np.ndarray]) -> list[float]:
    if predict is None or not vectors:
        return []
    y = np.asarray(predict(np.stack(vectors)), dtype=np.float64).reshape(-1)
    if len(y) != len(vectors):
        raise ValueError(f"the model gave {len(y)} forecasts for {len(vectors)} feature rows")
    return list(y.tolist())
