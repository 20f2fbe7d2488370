"""The window stage: closed windows -> feature rows -> one batched forecast -> alerts.

The stream processor (the windows one record closes) and the batch replay (every window
of a recording) both close windows with :func:`close_windows`, so the two paths compute
predictions and alerts with the same code in the same order.

``close_window`` only touches a device's history and ``step_alerts`` only its pending
forecasts and alert episodes, so building every feature row first, forecasting them in
one model call and then stepping the alerts gives the same states as doing each window
in turn.

A shadow (:class:`Shadow`, a candidate version with the live one's feature layout)
forecasts the same rows in one more batched call; its forecasts wait beside the live ones
(:class:`~models.device.PendingForecast`) and are scored the same way, but make no
prediction and no alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from iotml.core.evaluations import SHADOW, Evaluation
from iotml.core.records import Alert, Prediction
from models.alerts import AlertParams
from models.bands import Baseline, Baselines
from models.device import DeviceState, evolve, new_state
from models.features import FeatureRow, FeatureSpec, WindowStats
from models.pipeline import close_window, make_prediction, score, step_alerts

#: A batched model call: feature rows ``X[n, f]`` -> forecasts ``[n]``.
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class Shadow:
    """A candidate version forecasting the live one's feature rows, scored only."""

    version: str
    predict: Predict


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
    shadow_evaluation: Evaluation | None = None  # the shadow's forecast for it, scored


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
    def shadow_evaluations(self) -> list[Evaluation]:
        return [o.shadow_evaluation for o in self.outcomes if o.shadow_evaluation is not None]

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
    scoring: bool = True,
    shadow: Shadow | None = None,
    bands: Baselines | None = None,
    model_kind: str | None = None,
) -> Closing:
    """Close windows ``(device_id, stats)`` of any devices (oldest first per device):
    feature rows, one ``predict`` call for all of them, then per window the scores of the
    forecasts that targeted it (``scoring``), the alert rule and the prediction record.
    ``predict=None`` runs without a model stage (alerts without forecasts, no
    predictions); ``shadow`` forecasts the same rows in one more call, to be scored;
    ``bands``: the per-device bands the model was trained with (``deviation``);
    ``model_kind``: what makes the forecasts, carried on the predictions."""
    new_states, closed = close_rows(windows, states, spec)
    vectors = [w.row.vector for w in closed if w.row is not None]
    forecasts = _forecast(predict, vectors)
    shadowed = scoring and predict is not None
    shadow_predict = shadow.predict if shadow is not None and shadowed else None
    it, its = iter(forecasts), iter(_forecast(shadow_predict, vectors))
    outcomes: list[WindowOutcome] = []
    for w in closed:
        forecast = next(it) if w.row is not None and predict is not None else None
        device = w.device_id
        evaluation = shadow_evaluation = None
        if scoring:
            evaluation = score(new_states[device], w.stats, spec, model_name)
            if shadow is not None:
                shadow_evaluation = score(new_states[device], w.stats, spec, model_name, SHADOW)
        if bands is not None and new_states[device].band_version != model_version:
            new_states[device] = _rebaseline(
                new_states[device], w.stats, bands, params, model_version
            )
        new_states[device], alerts = step_alerts(
            new_states[device], w.stats, forecast, spec, params, model_version, scoring
        )
        if shadow is not None and shadowed and forecast is not None:
            target = w.stats.end + spec.horizon_ms
            new_states[device] = _with_shadow(new_states[device], target, next(its), shadow)
        prediction = None
        if w.row is not None and forecast is not None:
            st = new_states[device]
            prediction = make_prediction(
                device,
                w.row,
                forecast,
                spec,
                model_name,
                model_version,
                st.tags,
                st.likelihood,
                model_kind,
            )
        outcomes.append(WindowOutcome(w, prediction, alerts, evaluation, shadow_evaluation))
    return Closing(new_states, outcomes)


def _rebaseline(
    state: DeviceState,
    stats: WindowStats,
    bands: Baselines,
    params: AlertParams,
    model_version: str,
) -> DeviceState:
    """A new model version re-baselines the device from its training (the fleet's band
    for a device it had too little history of). A band whose level the device is already
    far off is stale (trained at another time of day, or on another device) rather than a
    fault to report: the device keeps the band's spread, its usual variation, and the
    level starts from this window."""
    seed: Baseline | None = bands.of(state.device_id)
    z = params.deviation_z
    if seed is not None and z is not None and abs(seed.deviation(stats.mean)) > z:
        seed = Baseline(stats.mean, seed.spread, seed.n)
    return evolve(state, band=seed, band_version=model_version)


def _with_shadow(state: DeviceState, target: int, forecast: float, shadow: Shadow) -> DeviceState:
    """``state`` with the shadow's forecast beside the live one pending for ``target``."""
    pending = dict(state.pending)
    live = pending[target]
    pending[target] = live._replace(shadow=float(forecast), shadow_version=shadow.version)
    return evolve(state, pending=pending)


def _forecast(predict: Predict | None, vectors: list[np.ndarray]) -> list[float]:
    if predict is None or not vectors:
        return []
    y = np.asarray(predict(np.stack(vectors)), dtype=np.float64).reshape(-1)
    if len(y) != len(vectors):
        raise ValueError(f"the model gave {len(y)} forecasts for {len(vectors)} feature rows")
    return list(y.tolist())
