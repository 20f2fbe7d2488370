"""What `iotml egress` publishes for each record: topic, payload, retain flag, MQTT 5
properties, forecast expiry, and the retained state when events come out of order."""

from __future__ import annotations

import json

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.egress.alertstate import RetainedBook, Snapshot, StateEntry
from bridge.egress.messages import mqtt_properties, parse
from bridge.egress.metrics import EgressMetrics
from bridge.egress.outbox import Outbox
from bridge.egress.settings import EgressSettings
from iotml.core.errors import RecordError
from iotml.core.records import Alert, Prediction

NOW = 1_764_070_000_000


def alert(event: str = "open", ts: int = NOW, device: str = "press-7", kind: str = "anomaly"):
    start = NOW - 60_000
    return Alert(
        alert_id=f"{device}:{kind}:{start}",
        device_id=device,
        type=kind,
        event=event,
        ts=ts,
        episode_start=start,
        value=3.5,
        threshold=2.0,
        model_version="v7",
        message="residual too large",
    )


def prediction(target_ts: int) -> Prediction:
    return Prediction(
        device_id="press-7",
        metric="temperature",
        window_start=target_ts - 80_000,
        window_end=target_ts - 60_000,
        horizon_ms=60_000,
        target_ts=target_ts,
        forecast=81.5,
        last_value=80.0,
        features={"mean": 80.2},
        model_name="m",
        model_version="v7",
    )


@pytest.fixture
def metrics() -> EgressMetrics:
    return EgressMetrics()


@pytest.fixture
def outbox(metrics: EgressMetrics) -> Outbox:
    return Outbox(EgressSettings(), metrics)


def counter(metrics: EgressMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def test_an_open_alert_is_published_retained_on_its_type_topic_as_the_kafka_record(outbox):
    raw = alert().to_json()
    (message,) = outbox.for_record("alerts", raw, NOW)
    assert message.topic == "iotml/_/press-7/alerts/anomaly"
    assert message.retain is True
    assert message.payload == raw


def test_the_clear_replaces_the_retained_message_with_the_cleared_event_not_an_empty_one(
    outbox,
):
    outbox.for_record("alerts", alert("open").to_json(), NOW)
    (cleared,) = outbox.for_record("alerts", alert("cleared", NOW + 5_000).to_json(), NOW)
    assert cleared.retain is True and cleared.topic == "iotml/_/press-7/alerts/anomaly"
    assert json.loads(cleared.payload)["event"] == "cleared"


def test_alert_tags_fill_the_site_when_records_carry_them(outbox):
    raw = json.dumps({**alert().to_dict(), "tags": {"site": "plant-a"}}).encode()
    (message,) = outbox.for_record("alerts", raw, NOW)
    assert message.topic == "iotml/plant-a/press-7/alerts/anomaly"


def test_an_older_event_is_published_but_not_retained(outbox, metrics):
    outbox.for_record("alerts", alert("cleared", NOW + 5_000).to_json(), NOW)
    (replayed,) = outbox.for_record("alerts", alert("open").to_json(), NOW)
    assert replayed.retain is False
    assert counter(metrics, "iotml_egress_alerts_not_retained_total") == 1


def test_the_same_event_again_is_retained_again(outbox):
    outbox.for_record("alerts", alert().to_json(), NOW)
    (again,) = outbox.for_record("alerts", alert().to_json(), NOW)
    assert again.retain is True


def test_alert_messages_carry_alert_id_and_model_version_as_user_properties(outbox):
    (message,) = outbox.for_record("alerts", alert().to_json(), NOW)
    props = mqtt_properties(message)
    assert props.ContentType == "application/json"
    assert props.PayloadFormatIndicator == 1
    assert dict(props.UserProperty) == {"alert_id": alert().alert_id, "model_version": "v7"}
    assert not hasattr(props, "MessageExpiryInterval")


def test_a_forecast_expires_at_its_target_time_rounded_up(outbox):
    raw = prediction(NOW + 60_500).to_json()
    (message,) = outbox.for_record("predictions", raw, NOW)
    assert message.topic == "iotml/_/press-7/forecast/temperature"
    assert message.expiry_s == 61
    assert message.retain is False
    assert mqtt_properties(message).MessageExpiryInterval == 61


def test_a_forecast_whose_target_time_passed_is_skipped_and_counted(outbox, metrics):
    assert outbox.for_record("predictions", prediction(NOW).to_json(), NOW) == []
    assert outbox.for_record("predictions", prediction(NOW - 1).to_json(), NOW) == []
    assert counter(metrics, "iotml_egress_forecasts_expired_total") == 2


def test_forecasts_are_retained_only_when_configured(metrics):
    box = Outbox(EgressSettings(egress_forecast_retain=True), metrics)
    (message,) = box.for_record("predictions", prediction(NOW + 10_000).to_json(), NOW)
    assert message.retain is True and message.expiry_s == 10


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "invalid_json"),
        (b"[1]", "wrong_type"),
        (None, "empty"),
        (json.dumps({**alert().to_dict(), "event": "maybe"}).encode(), "wrong_type"),
        (json.dumps({**alert().to_dict(), "v": 9}).encode(), "unsupported_version"),
    ],
)
def test_a_record_that_is_not_an_alert_is_rejected_with_a_reason(raw, reason):
    with pytest.raises(RecordError) as info:
        parse("alert", raw)
    assert info.value.reason == reason


def test_properties_are_publish_properties():
    props = mqtt_properties(
        Outbox(EgressSettings(), EgressMetrics()).for_record("alerts", alert().to_json(), NOW)[0]
    )
    assert isinstance(props, Properties) and props.packetType == PacketTypes.PUBLISH


def test_the_book_retains_the_newest_event_per_device_and_type():
    book = RetainedBook()
    assert book.offer(alert("open", NOW))
    assert book.offer(alert("cleared", NOW + 1))
    assert not book.offer(alert("open", NOW))
    assert book.offer(alert("open", NOW, kind="out_of_range"))  # another type
    assert book.offer(alert("open", NOW, device="other"))  # another device


def test_a_clear_at_the_same_time_as_the_open_is_the_newer_event():
    book = RetainedBook()
    assert book.offer(alert("cleared", NOW))
    assert not book.offer(alert("open", NOW))


def test_a_snapshot_keeps_the_newest_event_of_each_key_and_honours_tombstones():
    snap = Snapshot()
    for a in (alert("cleared", NOW + 9), alert("open", NOW), alert("open", NOW, kind="x")):
        snap.put(StateEntry(a, a.to_json(), {}))
    assert snap.entries["press-7/anomaly"].alert.event == "cleared"
    snap.delete("press-7/x")
    assert list(snap.entries) == ["press-7/anomaly"]
    assert snap.open_count == 0


def test_a_state_older_than_the_retained_event_is_not_published_again(outbox):
    outbox.for_record("alerts", alert("cleared", NOW + 5).to_json(), NOW)
    old = alert("open", NOW)
    assert outbox.for_state(StateEntry(old, old.to_json(), {})) == []
    newer = alert("open", NOW + 10)
    (state,) = outbox.for_state(StateEntry(newer, newer.to_json(), {}))
    assert state.retain is True and state.kind == "state"
