"""The demo trains a model only when the registry has none, and shows the MQTT side."""

from __future__ import annotations

import threading

from iotml.demo import needs_model
from iotml.demo_mqtt import MqttSide, report
from tests.model_fixtures import train_tiny_artifact


def test_demo_trains_only_when_the_registry_has_no_model(tmp_path):
    assert needs_model(tmp_path, "temp")
    train_tiny_artifact(tmp_path, name="temp")
    assert not needs_model(tmp_path, "temp")


def test_the_demo_reports_each_retained_alert_topic_with_its_state():
    retained = {
        "iotml/site-1/dev-0003/alerts/anomaly": {"event": "open", "alert_id": "anomaly-1"},
        "iotml/site-0/dev-0000/alerts/out_of_range": {"event": "cleared", "alert_id": "o-2"},
    }
    assert report(retained) == [
        "mqtt retained iotml/site-0/dev-0000/alerts/out_of_range cleared id=o-2",
        "mqtt retained iotml/site-1/dev-0003/alerts/anomaly open id=anomaly-1",
    ]


def test_the_demo_table_shows_the_alert_topics_egress_published():
    side = MqttSide.__new__(MqttSide)  # no broker: the view alone
    side.latest = {
        "iotml/site-1/dev-0003/alerts/anomaly": {"event": "open"},
        "iotml/site-1/dev-0003/forecast/temperature": {"forecast": 1.0},
    }
    side.messages, side._lock = 5, threading.Lock()
    lines = side.lines()
    assert lines[0] == "MQTT (iotml egress): 5 messages, 1 forecast topics; alert topics:"
    assert lines[1].split() == ["iotml/site-1/dev-0003/alerts/anomaly", "open"]
