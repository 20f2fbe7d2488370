"""The feature rules of models.features / models.pipeline and the window stage of
models.closing, on hand-computed windows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models import (
    AlertParams,
    FeatureSpec,
    WindowStats,
    add_reading,
    close_window,
    close_windows,
    new_state,
    window_bounds,
)
from models.pipeline import DeviceState

MIN = 60_000
SPEC = FeatureSpec("temperature", window_ms=10 * MIN, k=2, horizon_ms=20 * MIN, min_count=2)


def stats(start_min: int, values: list[float]) -> WindowStats:
    start = start_min * MIN
    pts = [(start + i * MIN, v) for i, v in enumerate(values)]
    return WindowStats.from_points(pts, start, start + 10 * MIN)


def test_windows_are_epoch_aligned_and_end_exclusive() -> None:
    assert window_bounds(0, 600_000) == (0, 600_000)
    assert window_bounds(599_999, 600_000) == (0, 600_000)
    assert window_bounds(600_000, 600_000) == (600_000, 1_200_000)


def test_window_stats_by_hand() -> None:
    w = WindowStats.from_points([(0, 1.0), (30 * MIN, 3.0), (60 * MIN, 5.0)], 0, 3_600_000)
    assert (w.count, w.mean, w.min, w.max, w.first, w.last) == (3, 3.0, 1.0, 5.0, 1.0, 5.0)
    assert w.std == pytest.approx(math.sqrt(8 / 3))
    assert w.slope == pytest.approx(4.0)  # units per hour


def test_out_of_order_points_are_sorted_by_timestamp() -> None:
    w = WindowStats.from_points([(2000, 3.0), (0, 1.0), (1000, 2.0)], 0, 10_000)
    assert (w.first, w.last) == (1.0, 3.0)


def test_duplicate_timestamp_keeps_the_last_value_received() -> None:
    w = WindowStats.from_points([(0, 1.0), (1000, 2.0), (1000, 7.0)], 0, 10_000)
    assert (w.count, w.last, w.mean) == (2, 7.0, 4.0)


def test_feature_row_needs_k_previous_windows() -> None:
    state = new_state("d")
    state, row = close_window(state, stats(0, [10, 11]), SPEC)
    assert row is None
    state, row = close_window(state, stats(10, [12, 13]), SPEC)
    assert row is None
    state, row = close_window(state, stats(20, [14, 16]), SPEC)
    assert row is not None
    f = row.features
    assert f["last"] == 16 and f["mean_delta"] == -1 and f["first_delta"] == -2
    assert f["mean_delta_1"] == 12.5 - 16 and f["last_delta_1"] == 13 - 16
    assert f["mean_delta_2"] == 10.5 - 16 and f["last_delta_2"] == 11 - 16
    assert list(f) == SPEC.names() and row.vector.shape == (len(SPEC.names()),)


def test_a_gap_suppresses_forecasts_until_k_plus_one_contiguous_windows() -> None:
    state = new_state("d")
    for start in (0, 10, 20):
        state, _ = close_window(state, stats(start, [1, 2]), SPEC)
    state, row = close_window(state, stats(40, [1, 2]), SPEC)  # window 30 missing
    assert row is None
    state, row = close_window(state, stats(50, [1, 2]), SPEC)
    assert row is None
    state, row = close_window(state, stats(60, [1, 2]), SPEC)
    assert row is not None


def test_a_window_with_too_few_readings_gives_no_forecast_and_no_nan() -> None:
    state = new_state("d")
    state, _ = close_window(state, stats(0, [1, 2]), SPEC)
    state, _ = close_window(state, stats(10, [1, 2]), SPEC)
    state, row = close_window(state, stats(20, [1]), SPEC)  # min_count is 2
    assert row is None
    state, row = close_window(state, stats(30, [1, 2]), SPEC)
    assert row is None  # the thin window is still among the previous k


def test_time_of_day_features() -> None:
    state = new_state("d")
    day = 86_400_000
    for start in (day // 4 - 20 * MIN, day // 4 - 10 * MIN, day // 4):
        state, row = close_window(state, stats(start // MIN, [1, 2]), SPEC)
    assert row is not None
    assert row.features["tod_sin"] == pytest.approx(1.0)  # 06:00 UTC
    assert row.features["tod_cos"] == pytest.approx(0.0, abs=1e-12)


def test_windower_closes_on_the_watermark_and_flags_late_readings() -> None:
    state = new_state("d")
    state, closed, late = add_reading(state, 1 * MIN, 1.0, SPEC)
    state, closed, late = add_reading(state, 9 * MIN, 2.0, SPEC)
    assert closed == [] and not late
    state, closed, late = add_reading(state, 10 * MIN, 3.0, SPEC)
    assert [(w.start, w.count, w.last) for w in closed] == [(0, 2, 2.0)]
    state, closed, late = add_reading(state, 5 * MIN, 9.0, SPEC)
    assert late and closed == []


def test_grace_keeps_a_window_open_for_late_readings() -> None:
    state = new_state("d")
    state, _, _ = add_reading(state, 1 * MIN, 1.0, SPEC, grace_ms=2 * MIN)
    state, closed, _ = add_reading(state, 11 * MIN, 3.0, SPEC, grace_ms=2 * MIN)
    assert closed == []
    state, closed, late = add_reading(state, 5 * MIN, 2.0, SPEC, grace_ms=2 * MIN)
    assert not late
    state, closed, _ = add_reading(state, 12 * MIN, 4.0, SPEC, grace_ms=2 * MIN)
    assert [(w.count, w.last) for w in closed] == [(2, 2.0)]


def test_device_state_round_trips_through_json() -> None:
    state = new_state("d")
    for i in range(35):
        state, closed, _ = add_reading(state, i * MIN, float(i), SPEC)
        for w in closed:
            state, _ = close_window(state, w, SPEC)
    again = DeviceState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again.to_dict() == state.to_dict()


def test_spec_rejects_a_horizon_that_is_not_a_multiple_of_the_window() -> None:
    with pytest.raises(ValueError, match="multiple"):
        FeatureSpec("t", window_ms=10 * MIN, k=1, horizon_ms=15 * MIN)


class Calls:
    """A model that forecasts last + 1 and remembers its batch sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.sizes.append(len(X))
        return X[:, SPEC.names().index("last")].astype(np.float64) + 1.0


def three_windows(device: str) -> list[tuple[str, WindowStats]]:
    return [(device, stats(start, [10, 11])) for start in (0, 10, 20)]


def test_closing_windows_of_several_devices_makes_one_model_call() -> None:
    predict = Calls()
    windows = three_windows("a") + three_windows("b")
    params = AlertParams(overheat_threshold=100.0)
    closing = close_windows(windows, {}, SPEC, params, "m", "v1", predict)
    assert predict.sizes == [2]  # the first k windows of each device have no row
    assert [(p.device_id, p.window_start, p.forecast) for p in closing.predictions] == [
        ("a", 20 * MIN, 12.0),
        ("b", 20 * MIN, 12.0),
    ]
    assert [(w.device_id, w.row is not None) for w in closing.windows] == [
        ("a", False),
        ("a", False),
        ("a", True),
        ("b", False),
        ("b", False),
        ("b", True),
    ]
    assert {t: p.forecast for t, p in closing.states["a"].pending.items()} == {50 * MIN: 12.0}


def test_closing_windows_gives_the_states_of_closing_them_one_by_one() -> None:
    params = AlertParams(overheat_threshold=11.5)
    closing = close_windows(three_windows("a"), {}, SPEC, params, "m", "v1", Calls())
    state = new_state("a")
    for _, w in three_windows("a"):
        state, _ = close_window(state, w, SPEC)
    assert closing.states["a"].history == state.history
    assert [(a.type, a.event) for a in closing.alerts] == [("overheat_predicted", "open")]
    assert closing.states["a"].episodes["overheat_predicted"].open


def test_closing_windows_without_a_model_stage_gives_no_predictions() -> None:
    closing = close_windows(three_windows("a"), {}, SPEC, AlertParams(), "m", "v1", None)
    assert closing.predictions == [] and closing.states["a"].pending == {}
    assert closing.windows[-1].row is not None
