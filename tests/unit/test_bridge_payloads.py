import json

import pytest

from bridge.payloads import REASONS, encode_reading, parse_payload, parse_timestamp
from bridge.routes import RouteTable, Target
from iotml.core.errors import RecordError
from iotml.core.eventtime import EventTimeRange
from iotml.core.records import Reading

NOW = 1_750_000_000_000
RANGE = EventTimeRange()
TARGET = RouteTable.parse(["sensors/{site}/{device}/{metric}"], "readings").resolve(
    "sensors/s1/dev-1/temperature"
)
NO_DEVICE = Target(kafka_topic="readings", key=None, device=None, metric=None, tags={})


def parse(payload: bytes, target: Target | None = TARGET, **kw) -> Reading:
    assert target is not None
    return parse_payload(payload, target, NOW, RANGE, **kw)


def reason(payload: bytes, target: Target | None = TARGET, **kw) -> str:
    with pytest.raises(RecordError) as err:
        parse(payload, target, **kw)
    assert err.value.reason in REASONS
    return err.value.reason


def test_json_object_with_metrics_and_timestamp_becomes_a_reading():
    r = parse(b'{"ts": %d, "temperature": 71.5, "load": 1}' % (NOW - 5000))
    assert r == Reading("dev-1", NOW - 5000, {"temperature": 71.5, "load": 1.0}, {"site": "s1"})


def test_missing_timestamp_means_receive_time():
    assert parse(b'{"temperature": 20}').ts == NOW


def test_bare_number_is_named_after_the_topic_metric():
    assert parse(b"21.5").metrics == {"temperature": 21.5}


def test_value_field_is_named_after_the_topic_metric():
    assert parse(b'{"value": 3}').metrics == {"temperature": 3.0}


def test_device_id_comes_from_payload_when_pattern_has_none():
    assert parse(b'{"device_id": "gw-9", "rpm": 1200}', NO_DEVICE).device_id == "gw-9"
    assert reason(b'{"rpm": 1200}', NO_DEVICE) == "no_device"


def test_nested_metrics_and_tags_are_merged():
    r = parse(b'{"metrics": {"a": 1, "b": 2.5}, "tags": {"fw": "2.1"}}')
    assert r.metrics == {"a": 1.0, "b": 2.5}
    assert r.tags == {"fw": "2.1", "site": "s1"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_750_000_000, 1_750_000_000_000),  # seconds
        (1_750_000_000.25, 1_750_000_000_250),
        (1_750_000_000_123, 1_750_000_000_123),  # milliseconds
        (1_750_000_000_123_456, 1_750_000_000_123),  # microseconds
        (1_750_000_000_123_456_789, 1_750_000_000_123),  # nanoseconds
        ("2025-06-15T15:06:40Z", 1_750_000_000_000),
        ("2025-06-15T17:06:40.5+02:00", 1_750_000_000_500),
        ("2025-06-15T15:06:40", 1_750_000_000_000),  # no offset: UTC
        ("1750000000", 1_750_000_000_000),
    ],
)
def test_timestamps_in_seconds_millis_micros_nanos_and_iso8601(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "empty_payload"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_utf8"),
        (b'{"temperature": 1, "temperature": 2}', "duplicate_key"),
        (b'{"temperature": %s}' % (b"9" * 400), "number_out_of_range"),
        (b'{"ts": %s, "t": 1}' % (b"9" * 400), "number_out_of_range"),
        (b'{"temperature": NaN}', "not_finite"),
        (b'{"temperature": Infinity}', "not_finite"),
        (b'{"temperature": 1e999}', "number_out_of_range"),
        (b"NaN", "not_finite"),
        (b'{"temperature": "hot"}', "wrong_type"),
        (b'{"temperature": true}', "wrong_type"),
        (b'{"temperature": [1]}', "wrong_type"),
        (b"[1, 2]", "wrong_type"),
        (b'"text"', "wrong_type"),
        (b"{}", "no_metric"),
        (b'{"ts": 1750000000}', "no_metric"),
        (b'{"ts": "yesterday", "t": 1}', "bad_timestamp"),
        (b'{"ts": -5, "t": 1}', "bad_timestamp"),
        (b'{"ts": true, "t": 1}', "bad_timestamp"),
        (b'{"ts": 86400, "t": 1}', "ts_too_old"),
        (b'{"ts": 4102444800, "t": 1}', "ts_in_future"),
        (b'{"device_id": 5, "t": 1}', "wrong_type"),
        (b'{"%s": 1}' % (b"m" * 300), "bad_metric_name"),
        (b'{"t\\u0001": 1}', "bad_metric_name"),
        (b'{"device_id": "a/b", "t": 1}', "bad_device_id"),  # checked even when unused
    ],
)
def test_bad_payloads_raise_a_reason_code(payload: bytes, expected: str):
    assert reason(payload) == expected


def test_bare_number_on_a_topic_without_metric_has_no_metric():
    assert reason(b"21.5", NO_DEVICE) == "no_metric"


def test_oversize_payload_is_rejected_before_parsing():
    assert reason(b'{"t": 1}' + b" " * 100, max_bytes=64) == "oversize"


def test_deeply_nested_json_is_too_deep_not_a_crash():
    assert reason(b"[" * 30_000 + b"]" * 30_000) == "too_deep"


def test_device_id_with_a_lone_surrogate_is_a_bad_device_id():
    assert reason(b'{"device_id": "\\ud800", "rpm": 1}', NO_DEVICE) == "bad_device_id"


def test_a_metric_given_twice_is_a_duplicate_key():
    assert reason(b'{"temperature": 1, "metrics": {"temperature": 2}}') == "duplicate_key"


def test_huge_integer_timestamp_is_out_of_range_not_a_crash():
    with pytest.raises(RecordError) as err:
        parse_timestamp(10**400)
    assert err.value.reason == "number_out_of_range"


def test_encode_reading_matches_the_shared_record_encoding():
    r = parse(b'{"ts": %d, "temperature": 71.5}' % NOW)
    assert encode_reading(r) == r.to_json()
    assert Reading.from_json(encode_reading(r)) == r
    assert json.loads(encode_reading(r))["tags"] == {"site": "s1"}
