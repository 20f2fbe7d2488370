"""The per-device pipeline: readings -> closed windows -> feature rows -> alerts.

Pure functions over a plain, JSON-serialisable :class:`DeviceState` (the processor keeps it
in quixstreams state; ``iotml evaluate``/``batch`` keep it in a dict). Per closed window,
callers do::

    state, row = close_window(state, stats, spec)
    forecast = forecaster.predict(row.vector[None])[0] if row else None   # batch this
    state, alerts = step_alerts(state, stats, forecast, spec, params, model_version)

and per reading ``observe`` (clears ``device_silent``); ``silence`` opens ``device_silent``
from the processor's clock. ``add_reading``/``advance`` are an optional windower with the
lateness rule below, which ``iotml batch``/``evaluate`` use:

* a window ``[s, e)`` closes once the device's watermark (largest event time seen)
  reaches ``e + grace_ms``;
* a reading whose window has already closed is **late**: it is not used (the processor
  dead-letters it; the replay counts it).
"""

from __future__ import annotations

from collections.abc import Mapping

from iotml.core.evaluations import LIVE, SHADOW, Evaluation
from iotml.core.records import Alert, Prediction
from models import checks
from models.alerts import AlertParams, Check, EpisodeState, step_episode
from models.device import DeviceState, PendingForecast, evolve
from models.features import FeatureRow, FeatureSpec, WindowStats, feature_row, window_bounds

_NAN = float("nan")  # a pending forecast's persistence value when it is not scored


def close_window(
    state: DeviceState, stats: WindowStats, spec: FeatureSpec
) -> tuple[DeviceState, FeatureRow | None]:
    """Append a closed window to the history; the feature row when there is enough
    contiguous, usable history (see :mod:`models.features`), else ``None``."""
    history = [w for w in state.history if w.start < stats.start][-spec.k :] if spec.k else []
    history.append(stats)
    new = evolve(state, history=history)
    return new, feature_row(history, spec)


def step_alerts(
    state: DeviceState,
    stats: WindowStats,
    forecast: float | None,
    spec: FeatureSpec,
    params: AlertParams,
    model_version: str | None,
    scoring: bool = True,
) -> tuple[DeviceState, list[Alert]]:
    """Run the alert rule for a closed window (after :func:`close_window` and the model).

    ``forecast`` is the model's forecast for ``stats.end + spec.horizon_ms`` (``None`` when
    no feature row was produced); it is remembered for the window it targets, for the
    ``anomaly`` check and (``scoring``) with what scoring it needs."""
    t = stats.end
    pending = {k: v for k, v in state.pending.items() if k >= t}
    scored = pending.pop(t, None)
    earlier = scored.forecast if scored is not None else None
    if forecast is not None:
        last, version = (stats.last, model_version) if scoring else (_NAN, None)
        pending[t + spec.horizon_ms] = PendingForecast(float(forecast), last, version)
    errors, anomaly_check, likelihood = checks.anomaly(state.errors, stats.last, earlier, params)
    band, deviation_check = checks.deviation(
        state.band, state.episodes["deviation"].open, stats.mean, params
    )
    conditions = [
        Check(
            "overheat_predicted",
            forecast is not None
            and params.overheat_threshold is not None
            and forecast > params.overheat_threshold,
            forecast,
            params.overheat_threshold,
            f"forecast {_fmt(forecast)} for +{spec.horizon_ms // 60000} min above "
            f"{_fmt(params.overheat_threshold)}",
        ),
        anomaly_check,
        _range(stats.mean, params),
        deviation_check,
    ]
    episodes = dict(state.episodes)
    alerts: list[Alert] = []
    for check in conditions:
        episodes[check.kind], alert = step_episode(
            episodes[check.kind], check, t, state.device_id, params, model_version, state.tags
        )
        if alert is not None:
            alerts.append(alert)
    if likelihood is None:
        likelihood = state.likelihood
    new = evolve(
        state,
        pending=pending,
        episodes=episodes,
        errors=errors,
        likelihood=likelihood,
        band=band,
    )
    return new, alerts


def observe(
    state: DeviceState, ts: int, model_version: str | None = None, seen_at: int | None = None
) -> tuple[DeviceState, list[Alert]]:
    """A reading at event time ``ts`` arrived (when the partition time was ``seen_at``,
    see :mod:`models.clock`): update ``last_seen``; clear an open ``device_silent``."""
    last_seen = ts if state.last_seen is None else max(state.last_seen, ts)
    seen = state.seen_at if seen_at is None else seen_at
    silent = state.episodes["device_silent"]
    if not silent.open:
        if last_seen == state.last_seen and seen == state.seen_at:
            return state, []
        return evolve(state, last_seen=last_seen, seen_at=seen), []
    episodes = dict(state.episodes)
    episodes["device_silent"], alert = step_episode(
        silent,
        Check("device_silent", False),
        ts,
        state.device_id,
        AlertParams(),
        model_version,
        state.tags,
    )
    new = evolve(state, last_seen=last_seen, seen_at=seen, episodes=episodes)
    return new, [alert] if alert else []


def silence(
    state: DeviceState, now_ms: int, params: AlertParams, model_version: str | None = None
) -> tuple[DeviceState, list[Alert]]:
    """Open ``device_silent`` when no reading arrived for ``params.silence_ms`` of event
    time before ``now_ms``. The episode starts at ``last_seen + silence_ms`` whatever the
    clock tick, so its ``alert_id`` is deterministic."""
    silent = state.episodes["device_silent"]
    if params.silence_ms <= 0 or state.last_seen is None or silent.open:
        return state, []
    start = state.last_seen + params.silence_ms
    if now_ms < start:
        return state, []
    pending = EpisodeState(episode_start=start, open=False, last_cleared=silent.last_cleared)
    quiet_min = params.silence_ms // 60000
    check = Check("device_silent", True, None, None, f"no reading for {quiet_min} min")
    # min_duration applies to the model-driven alerts; silence_ms is this one's duration
    rule = AlertParams(cooldown_ms=params.cooldown_ms)
    new_ep, alert = step_episode(
        pending, check, start, state.device_id, rule, model_version, state.tags
    )
    if alert is None:
        return state, []
    episodes = dict(state.episodes)
    episodes["device_silent"] = new_ep
    return evolve(state, episodes=episodes), [alert]


def score(
    state: DeviceState, stats: WindowStats, spec: FeatureSpec, model_name: str, role: str = LIVE
) -> Evaluation | None:
    """The forecast that targeted the window ``stats`` closes, scored against its actual
    (the window's last value, when it has ``min_count`` readings) and against persistence,
    exactly as ``iotml evaluate`` scores it (``role=SHADOW``: the shadow version's forecast
    for the same target). Call before :func:`step_alerts`, which drops the pending forecast."""
    pending = state.pending.get(stats.end)
    if pending is None or stats.count < spec.min_count or pending.last_value != pending.last_value:
        return None  # nothing targeted it, too few readings, or a state from before scoring
    forecast, version = pending.forecast, pending.model_version
    if role == SHADOW:
        if pending.shadow is None:
            return None
        forecast, version = pending.shadow, pending.shadow_version
    return Evaluation(
        device_id=state.device_id,
        metric=spec.metric,
        target_ts=stats.end,
        horizon_ms=spec.horizon_ms,
        forecast=forecast,
        actual=stats.last,
        persistence=pending.last_value,
        model_name=model_name,
        model_version=version or "unknown",
        tags=state.tags,
        role=role,
    )


def forget(state: DeviceState, t: int, model_version: str | None = None) -> list[Alert]:
    """The ``cleared`` events of every open alert of a device about to be forgotten (its
    time-to-live ran out): consumers never keep an alert open for a device that is gone."""
    alerts = []
    for kind, episode in state.episodes.items():
        if episode.open:
            check = Check(kind, False, None, None, "device forgotten: silent past its time-to-live")
            _, alert = step_episode(
                episode, check, t, state.device_id, AlertParams(), model_version, state.tags
            )
            if alert is not None:
                alerts.append(alert)
    return alerts


def add_reading(
    state: DeviceState, ts: int, value: float, spec: FeatureSpec, grace_ms: int = 0
) -> tuple[DeviceState, list[WindowStats], bool]:
    """Windower: add one reading; returns the new state, the windows it closed (oldest
    first) and whether the reading was late (then it was not used)."""
    start, end = window_bounds(ts, spec.window_ms)
    if state.watermark is not None and end + grace_ms <= state.watermark:
        return state, [], True
    buffer = dict(state.buffer)
    # extends the open window's list in place (O(1) per reading): callers keep only the
    # returned state, as everywhere in this module
    buffer.setdefault(start, []).append((ts, float(value)))
    watermark = ts if state.watermark is None else max(state.watermark, ts)
    new = evolve(state, buffer=buffer, watermark=watermark)
    new, closed = advance(new, watermark, spec, grace_ms)
    return new, closed, False


def advance(
    state: DeviceState, watermark: int, spec: FeatureSpec, grace_ms: int = 0
) -> tuple[DeviceState, list[WindowStats]]:
    """Close the buffered windows with ``end + grace_ms <= watermark`` (oldest first)."""
    done = sorted(s for s in state.buffer if s + spec.window_ms + grace_ms <= watermark)
    if not done:
        return state, []
    buffer = {s: pts for s, pts in state.buffer.items() if s not in done}
    closed = [WindowStats.from_points(state.buffer[s], s, s + spec.window_ms) for s in done]
    mark = watermark if state.watermark is None else max(state.watermark, watermark)
    return evolve(state, buffer=buffer, watermark=mark), closed


def make_prediction(
    device_id: str,
    row: FeatureRow,
    forecast: float,
    spec: FeatureSpec,
    model_name: str,
    model_version: str,
    tags: Mapping[str, str] | None = None,
    anomaly_likelihood: float | None = None,
    model_kind: str | None = None,
) -> Prediction:
    """The ``predictions`` record for a feature row and its forecast (carrying the
    device's ``tags`` and what made it, ``model_kind``)."""
    return Prediction(
        device_id=device_id,
        metric=spec.metric,
        window_start=row.window_start,
        window_end=row.window_end,
        horizon_ms=spec.horizon_ms,
        target_ts=row.window_end + spec.horizon_ms,
        forecast=float(forecast),
        last_value=row.last_value,
        features=row.features,
        model_name=model_name,
        model_version=model_version,
        tags=tags if tags is not None else {},
        anomaly_likelihood=anomaly_likelihood,
        model_kind=model_kind,
    )


def _range(mean: float, params: AlertParams) -> Check:
    if params.low_limit is not None and mean < params.low_limit:
        return Check("out_of_range", True, mean, params.low_limit, f"mean {mean:.3f} below limit")
    if params.high_limit is not None and mean > params.high_limit:
        return Check("out_of_range", True, mean, params.high_limit, f"mean {mean:.3f} above limit")
    return Check("out_of_range", False, mean)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
