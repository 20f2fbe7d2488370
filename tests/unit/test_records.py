"""The shared record contracts and their JSON Schemas agree."""

from __future__ import annotations

import json

import jsonschema
import pytest

from iotml.core import headers as h
from iotml.core.deadletters import DeadLetter
from iotml.core.errors import RecordError
from iotml.core.records import Alert, Prediction, Reading
from iotml.core.schemas import schema


def test_reading_round_trips_and_matches_schema():
    r = Reading(device_id="d1", ts=1_700_000_000_000, metrics={"temp": 71.5}, tags={"site": "a"})
    obj = json.loads(r.to_json())
    jsonschema.validate(obj, schema("reading"))
    assert Reading.from_json(r.to_json()) == r


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1,2]", "wrong_type"),
        (b'{"v":2,"device_id":"d","ts":1,"metrics":{"t":1}}', "unsupported_version"),
        (b'{"v":1,"device_id":"","ts":1,"metrics":{"t":1}}', "bad_device_id"),
        (b'{"v":1,"device_id":"a/b","ts":1,"metrics":{"t":1}}', "bad_device_id"),
        (b'{"v":1,"device_id":7,"ts":1,"metrics":{"t":1}}', "wrong_type"),
        (b'{"v":true,"device_id":"d","ts":1,"metrics":{"t":1}}', "unsupported_version"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":[1]}', "wrong_type"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":1e999}}', "number_out_of_range"),
        (b'{"v":1,"device_id":"d","ts":1e300,"metrics":{"t":1}}', "number_out_of_range"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":1,"t":2}}', "duplicate_key"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"\\u0000":1}}', "bad_metric_name"),
        (b"", "empty"),
        (b"\xc0\xaf", "invalid_utf8"),
        (b"[" * 40 + b"]" * 40, "too_deep"),
        (b'{"v":1,"device_id":"d","ts":"x","metrics":{"t":1}}', "wrong_type"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{}}', "no_metric"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":"hot"}}', "wrong_type"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":true}}', "wrong_type"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":NaN}}', "not_finite"),
        (b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":1},"tags":{"a":1}}', "wrong_type"),
    ],
)
def test_invalid_readings_are_rejected_with_a_reason(payload, reason):
    with pytest.raises(RecordError) as err:
        Reading.from_json(payload)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"v": 1, "device_id": "d", "ts": 1, "metrics": {"t": 10**400}}, "number_out_of_range"),
        ({"v": 1, "device_id": "d", "ts": 2**63, "metrics": {"t": 1}}, "number_out_of_range"),
        ({"v": 1, "device_id": "d", "ts": float("nan"), "metrics": {"t": 1}}, "not_finite"),
        ({"v": 1, "device_id": "d", "ts": 1.5, "metrics": {"t": 1}}, "wrong_type"),
        ({"v": 1, "device_id": "\ud800", "ts": 1, "metrics": {"t": 1}}, "bad_device_id"),
        ({"v": 1, "device_id": "d", "ts": 1, "metrics": {5: 1}}, "wrong_type"),
    ],
)
def test_from_dict_refuses_values_json_cannot_carry(obj, reason):
    with pytest.raises(RecordError) as err:
        Reading.from_dict(obj)
    assert err.value.reason == reason


def test_a_reading_json_string_with_a_lone_surrogate_is_invalid_utf8():
    with pytest.raises(RecordError) as err:
        Reading.from_json('{"v":1,"device_id":"d","ts":1,"metrics":{"\ud800":1}}')
    assert err.value.reason == "invalid_utf8"


def test_reading_json_over_one_mebibyte_is_oversize():
    big = b'{"v":1,"device_id":"d","ts":1,"metrics":{"t":1}}' + b" " * (1 << 20)
    with pytest.raises(RecordError) as err:
        Reading.from_json(big)
    assert err.value.reason == "oversize"


def test_prediction_features_must_be_an_object():
    obj = {"v": 1, "device_id": "d", "metric": "t", "features": [1, 2]}
    with pytest.raises(RecordError) as err:
        Prediction.from_dict(obj)
    assert err.value.reason == "wrong_type"


def test_prediction_matches_schema_and_round_trips():
    p = Prediction(
        device_id="d1",
        metric="temp",
        window_start=0,
        window_end=1800_000,
        horizon_ms=3600_000,
        target_ts=5400_000,
        forecast=80.1,
        last_value=79.0,
        features={"mean": 79.5},
        model_name="temp",
        model_version="v1",
    )
    jsonschema.validate(p.to_dict(), schema("prediction"))
    assert Prediction.from_json(p.to_json()) == p


def test_alert_matches_schema_and_round_trips():
    a = Alert(
        alert_id="abc",
        device_id="d1",
        type="anomaly",
        event="open",
        ts=10,
        episode_start=5,
        value=1.0,
        threshold=2.0,
        model_version="v1",
        message="drop",
    )
    jsonschema.validate(a.to_dict(), schema("alert"))
    assert Alert.from_json(a.to_json()) == a


def test_dead_letter_headers_match_schema():
    d = DeadLetter(
        reason="invalid_json",
        payload=b"{",
        received_at=123,
        detail="x",
        source_topic="readings",
        source_partition=2,
        source_offset=7,
        mqtt_topic="s/a",
    )
    headers = h.decode(d.headers())
    jsonschema.validate(headers, schema("dead_letter"))
    assert headers[h.ERROR_REASON] == "invalid_json"
    assert headers[h.SOURCE_OFFSET] == "7"


def test_non_finite_numbers_are_never_written_as_json():
    p = Prediction(
        device_id="d1",
        metric="temp",
        window_start=0,
        window_end=1,
        horizon_ms=1,
        target_ts=2,
        forecast=float("nan"),
        last_value=1.0,
        features={},
        model_name="m",
        model_version="v1",
    )
    with pytest.raises(ValueError):
        p.to_json()
    a = Alert(
        alert_id="a",
        device_id="d",
        type="anomaly",
        event="open",
        ts=1,
        episode_start=1,
        value=float("inf"),
    )
    with pytest.raises(ValueError):
        a.to_json()
