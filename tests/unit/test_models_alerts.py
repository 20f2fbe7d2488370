"""The alert state machine: min duration, cooldown, clear, deterministic ids."""

from __future__ import annotations

from models import AlertParams, FeatureSpec, WindowStats, alert_id, new_state, step_alerts
from models.pipeline import observe, silence

MIN = 60_000
SPEC = FeatureSpec("temperature", window_ms=10 * MIN, k=0, horizon_ms=10 * MIN, min_count=1)


def window(i: int, value: float) -> WindowStats:
    return WindowStats.from_points([(i * 10 * MIN, value)], i * 10 * MIN, (i + 1) * 10 * MIN)


def run(values: list[float], forecasts: list[float | None], params: AlertParams):
    state, events = new_state("dev-1"), []
    for i, (v, f) in enumerate(zip(values, forecasts, strict=True)):
        state, alerts = step_alerts(state, window(i, v), f, SPEC, params, "v0001")
        events += [(a.type, a.event, a.ts // MIN, a.episode_start // MIN) for a in alerts]
    return state, events


def test_overheat_opens_after_the_minimum_duration_and_clears() -> None:
    params = AlertParams(overheat_threshold=50.0, min_duration_ms=20 * MIN)
    _, events = run([40] * 6, [55, 55, 55, 55, 45, 45], params)
    # condition from the window ending at 10 min; held for 20 min at 30 min
    assert events == [
        ("overheat_predicted", "open", 30, 10),
        ("overheat_predicted", "cleared", 50, 10),
    ]


def test_a_condition_shorter_than_the_minimum_duration_never_opens() -> None:
    params = AlertParams(overheat_threshold=50.0, min_duration_ms=20 * MIN)
    _, events = run([40] * 5, [55, 55, 45, 55, 45], params)
    assert events == []


def test_cooldown_delays_the_next_episode() -> None:
    params = AlertParams(overheat_threshold=50.0, cooldown_ms=30 * MIN)
    _, events = run([40] * 6, [55, 45, 55, 55, 55, 55], params)
    assert events == [
        ("overheat_predicted", "open", 10, 10),
        ("overheat_predicted", "cleared", 20, 10),
        ("overheat_predicted", "open", 50, 30),
    ]


def test_anomaly_scores_the_forecast_made_one_horizon_earlier_in_both_directions() -> None:
    params = AlertParams(residual_threshold=5.0)
    # forecast at window i is for window i+1 (horizon = 1 window)
    _, events = run([50, 50, 40, 50, 60], [50, 50, 50, 50, 50], params)
    assert events == [
        ("anomaly", "open", 30, 30),  # actual 40 vs 50
        ("anomaly", "cleared", 40, 30),
        ("anomaly", "open", 50, 50),  # actual 60 vs 50
    ]


def test_out_of_range_uses_the_window_mean() -> None:
    _, events = run([5, 20, 95], [None, None, None], AlertParams(low_limit=10, high_limit=90))
    assert [e[:2] for e in events] == [
        ("out_of_range", "open"),
        ("out_of_range", "cleared"),
        ("out_of_range", "open"),
    ]


def test_alert_ids_are_deterministic_per_episode() -> None:
    params = AlertParams(overheat_threshold=50.0)
    _state, _ = run([40, 40], [55, 45], params)
    a = alert_id("dev-1", "overheat_predicted", 10 * MIN)
    assert a == alert_id("dev-1", "overheat_predicted", 10 * MIN)
    assert a != alert_id("dev-1", "overheat_predicted", 20 * MIN)
    _s1, first = step_alerts(new_state("dev-1"), window(0, 40), 55, SPEC, params, "v1")
    _s2, again = step_alerts(new_state("dev-1"), window(0, 40), 55, SPEC, params, "v2")
    assert first[0].alert_id == again[0].alert_id


def test_device_silent_opens_from_the_last_reading_and_clears_on_return() -> None:
    params = AlertParams(silence_ms=5 * MIN)
    state, _ = observe(new_state("dev-1"), 0)
    state, alerts = silence(state, 4 * MIN, params)
    assert alerts == []
    state, alerts = silence(state, 9 * MIN, params)
    assert [(a.event, a.episode_start) for a in alerts] == [("open", 5 * MIN)]
    state, alerts = silence(state, 10 * MIN, params)
    assert alerts == []
    state, alerts = observe(state, 11 * MIN)
    assert [(a.type, a.event, a.ts) for a in alerts] == [("device_silent", "cleared", 11 * MIN)]
