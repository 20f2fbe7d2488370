"""The fleet state: open alerts (rebuilt from alert-state), deltas and bounds."""

from __future__ import annotations

from dashboard.fleet import FleetState
from tests.dashboardtools import alert, prediction


def test_open_alerts_are_rebuilt_from_the_alert_state_snapshot():
    fleet = FleetState(max_points=10, max_devices=100)
    fleet.load_alert_state(
        [alert(1, "anomaly", "open", 1_000, 1_000), alert(2, "anomaly", "cleared", 2_000, 500)]
    )
    assert [(a.device_id, a.type) for a in fleet.open_alerts()] == [("dev-0001", "anomaly")]
    assert fleet.snapshot()["alerts"][0]["device"] == "dev-0001"


def test_a_repeated_alert_event_is_applied_once():
    fleet = FleetState(max_points=10, max_devices=100)
    a = alert(1, "anomaly", "open", 1_000, 1_000)
    assert fleet.add_alert(a) is True
    assert fleet.add_alert(a) is False


def test_an_older_event_does_not_reopen_a_cleared_alert():
    fleet = FleetState(max_points=10, max_devices=100)
    fleet.add_alert(alert(1, "anomaly", "cleared", 5_000, 1_000))
    fleet.add_alert(alert(1, "anomaly", "open", 1_000, 1_000))
    assert fleet.open_alerts() == []


def test_a_delta_holds_the_changes_since_the_last_one():
    fleet = FleetState(max_points=10, max_devices=100)
    fleet.add_prediction(prediction(0, 1_000_000), sent_at=123)
    fleet.add_alert(alert(1, "anomaly", "open", 1_000, 1_000))
    delta = fleet.take_delta()
    assert delta is not None
    assert {d["id"] for d in delta["devices"]} == {"dev-0000", "dev-0001"}
    assert len(delta["points"]["dev-0000"]) == 1
    assert [a["event"] for a in delta["alerts"]] == ["open"]
    assert delta["sent"] == {"dev-0000": 123}
    assert fleet.take_delta() is None


def test_a_repeated_forecast_is_not_in_the_delta():
    fleet = FleetState(max_points=10, max_devices=100)
    fleet.add_prediction(prediction(0, 1_000_000))
    fleet.take_delta()
    assert fleet.add_prediction(prediction(0, 1_000_000)) is False
    delta = fleet.take_delta()
    assert delta is not None and delta["points"] == {}


def test_the_device_heard_from_least_recently_is_forgotten_beyond_the_cap():
    fleet = FleetState(max_points=10, max_devices=2)
    fleet.add_prediction(prediction(0, 1_000_000))
    fleet.add_alert(alert(0, "anomaly", "open", 1_000, 1_000))
    fleet.add_prediction(prediction(1, 1_000_000))
    fleet.add_prediction(prediction(0, 1_010_000))  # dev-0000 is the most recent now
    fleet.add_prediction(prediction(2, 1_000_000))
    assert fleet.device("dev-0001") is None and fleet.device("dev-0000") is not None
    assert fleet.device_count == 2 and fleet.evicted == 1


def test_the_device_view_holds_its_points_episodes_and_summary():
    fleet = FleetState(max_points=5, max_devices=10)
    for i in range(8):
        fleet.add_prediction(prediction(3, 1_000_000 + i * 10_000))
    fleet.add_alert(alert(3, "anomaly", "open", 1_050_000, 1_040_000))
    view = fleet.device("dev-0003")
    assert view is not None
    assert len(view["points"]) == 5
    assert view["episodes"] == [[1_040_000, None, "anomaly", "dev-0003:anomaly:1040000"]]
    assert view["open"] == ["anomaly"] and view["mv"] == "3"
    assert fleet.device("dev-9999") is None


def test_the_snapshot_has_a_row_with_a_sparkline_per_device():
    fleet = FleetState(max_points=100, max_devices=10, spark_points=4)
    for i in range(6):
        fleet.add_prediction(prediction(0, 1_000_000 + i * 10_000))
    snap = fleet.snapshot()
    assert snap["meta"] == {"max_points": 100, "spark": 4}
    [row] = snap["devices"]
    assert row["id"] == "dev-0000" and len(row["spark"]) == 4 and row["open"] == []
