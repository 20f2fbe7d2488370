"""A device's bounded buffer: points, scores, live skill and alert episodes."""

from __future__ import annotations

from dashboard.buffers import EPISODES_KEPT, DeviceBuffer
from tests.dashboardtools import alert, evaluation, prediction


def test_a_buffer_never_holds_more_than_its_points():
    buf = DeviceBuffer("dev-0000", max_points=10)
    for i in range(25):
        buf.add_prediction(prediction(0, 1_000_000 + i * 10_000))
    assert len(buf.points) == 10
    assert buf.points[0][0] == 1_000_000 + 15 * 10_000


def test_a_repeated_or_older_forecast_is_not_added_twice():
    buf = DeviceBuffer("dev-0000", max_points=10)
    p = prediction(0, 1_000_000)
    assert buf.add_prediction(p) is not None
    assert buf.add_prediction(p) is None
    assert buf.add_prediction(prediction(0, 990_000)) is None
    assert len(buf.points) == 1


def test_a_point_is_actual_at_window_end_and_forecast_at_target():
    buf = DeviceBuffer("dev-0000", max_points=10)
    p = prediction(0, 1_000_000)
    assert buf.add_prediction(p) == (p.window_end, p.last_value, p.target_ts, p.forecast)
    assert (buf.model_version, buf.horizon_ms, buf.metric) == ("3", 20_000, "temperature")


def test_skill_compares_the_model_with_persistence_from_evaluations():
    buf = DeviceBuffer("dev-0000", max_points=10)
    for i in range(5):
        buf.add_evaluation(evaluation(prediction(0, 1_000_000 + i * 10_000)))
    assert buf.recent_error is not None and buf.recent_error > 0
    assert buf.skill is not None and 0 < buf.skill < 1


def test_without_evaluations_forecasts_are_scored_when_their_target_window_arrives():
    buf = DeviceBuffer("dev-0000", max_points=100)
    for i in range(2):  # targets 20 s ahead: nothing to score yet
        buf.add_prediction(prediction(0, 1_000_000 + i * 10_000))
    assert buf.recent_error is None
    buf.add_prediction(prediction(0, 1_020_000))
    first = prediction(0, 1_000_000)
    assert buf.recent_error == abs(prediction(0, 1_020_000).last_value - first.forecast)


def test_evaluations_replace_scores_derived_from_predictions():
    buf = DeviceBuffer("dev-0000", max_points=100)
    for i in range(5):
        buf.add_prediction(prediction(0, 1_000_000 + i * 10_000))
    e = evaluation(prediction(0, 2_000_000))
    buf.add_evaluation(e)
    assert buf.recent_error == e.abs_error


def test_an_episode_opens_and_clears_by_alert_id():
    buf = DeviceBuffer("dev-0003", max_points=10)
    buf.add_alert(alert(3, "anomaly", "open", 5_000, 4_000))
    assert [ep.to_json() for ep in buf.episodes] == [
        [4_000, None, "anomaly", "dev-0003:anomaly:4000"]
    ]
    buf.add_alert(alert(3, "anomaly", "cleared", 9_000, 4_000))
    assert buf.episodes[0].end == 9_000 and len(buf.episodes) == 1


def test_episodes_are_bounded():
    buf = DeviceBuffer("dev-0003", max_points=10)
    for i in range(EPISODES_KEPT + 5):
        buf.add_alert(alert(3, "anomaly", "open", i * 1000, i * 1000))
    assert len(buf.episodes) == EPISODES_KEPT


def test_the_sparkline_is_the_latest_actual_values():
    buf = DeviceBuffer("dev-0000", max_points=100)
    for i in range(10):
        buf.add_prediction(prediction(0, 1_000_000 + i * 10_000))
    assert buf.sparkline(3) == [p[1] for p in list(buf.points)[-3:]]
