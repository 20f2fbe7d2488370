"""Hostile input, as data: what devices (or anyone who can publish) may send.

Each :class:`Hostile` entry is one payload and the reason expected where it enters:

* ``bridge``: the payload published over MQTT on ``topic`` (``None``: :data:`DEFAULT_TOPIC`),
  routed by :data:`ROUTES` and parsed by ``bridge.payloads.parse_payload`` at :data:`NOW`;
* ``processor``: the same bytes as the value of a record on the ``readings`` topic, whose
  canonical form is ``{"v":1,"device_id":...,"ts":...,"metrics":{...}}``, parsed by
  ``Reading.from_json`` and checked against the event-time range at :data:`NOW`.

A reason of ``None`` means the entry does not apply there (it aims at the other entry point).
Most entries are canonical readings published on :data:`GATEWAY_TOPIC`, a route that names
neither device nor metric, so the bridge reads the same fields as the processor (it takes
``"v": 1`` for one more metric). ``tests.valid_inputs`` has valid payloads and records to
mix in.
"""

from __future__ import annotations

from typing import NamedTuple

NOW = 1_750_000_000_000  # the receive time and processor clock, epoch ms
DAY_MS = 86_400_000
ROUTES = ("sensors/{site}/{device}/{metric}", "gateway/{site}/#")
DEFAULT_TOPIC = "sensors/plant-a/dev-1/temperature"
GATEWAY_TOPIC = "gateway/plant-a/up"
MAX_PAYLOAD_BYTES = 65_536  # the bridge's default IOTML_MAX_PAYLOAD_BYTES

HUGE = b"9" * 400  # an integer beyond the range of a double
GIANT = b"9" * 5000  # more digits than Python converts by default (4300)


class Hostile(NamedTuple):
    name: str
    topic: str | None  # MQTT topic at the bridge; None: DEFAULT_TOPIC
    payload: bytes
    bridge: str | None  # reason at the bridge; None: not applicable there
    processor: str | None  # reason at the processor; None: not applicable there


def reading(
    *,
    v: bytes = b"1",
    device: bytes = b'"dev-1"',
    ts: bytes | None = None,
    metrics: bytes = b'{"temperature":71.5}',
    tags: bytes | None = None,
) -> bytes:
    """A canonical reading with raw JSON fragments spliced in (any of them may be hostile)."""
    ts = b"%d" % NOW if ts is None else ts
    out = b'{"v":%s,"device_id":%s,"ts":%s,"metrics":%s' % (v, device, ts, metrics)
    if tags is not None:
        out += b',"tags":%s' % tags
    return out + b"}"


def _both(name: str, payload: bytes, reason: str, topic: str | None = GATEWAY_TOPIC) -> Hostile:
    return Hostile(name, topic, payload, reason, reason)


def _garbage(n: int) -> bytes:
    """Deterministic binary noise (not UTF-8)."""
    return bytes((i * 167 + 13) % 256 for i in range(n))


CORPUS: tuple[Hostile, ...] = (
    # -- size and emptiness ----------------------------------------------------------------
    Hostile("empty", None, b"", "empty_payload", "empty"),
    _both("whitespace_only", b" \n\t ", "invalid_json"),
    _both(
        "oversize_1mb",
        reading(tags=b'{"pad":"' + b"x" * (1 << 20) + b'"}'),
        "oversize",
    ),
    # -- bytes that are not UTF-8, strings that cannot be -----------------------------------
    _both("binary_garbage", _garbage(512), "invalid_utf8"),
    _both("binary_control_bytes", b"\x00\x01\x02\x03\x1b[2J\x7f", "invalid_json"),
    _both("invalid_utf8_in_device_id", reading(device=b'"dev-\xff"'), "invalid_utf8"),
    _both("overlong_slash", reading(device=b'"dev\xc0\xaf1"'), "invalid_utf8"),
    _both("overlong_nul", reading(device=b'"dev\xc0\x80"'), "invalid_utf8"),
    _both("utf8_encoded_surrogate", reading(device=b'"\xed\xa0\x80"'), "invalid_utf8"),
    _both("truncated_utf8_sequence", reading(device=b'"dev-\xe2\x82"'), "invalid_utf8"),
    _both("latin1_payload", reading(device='"gerät"'.encode("latin-1")), "invalid_utf8"),
    _both("utf16_payload", reading().decode().encode("utf-16"), "invalid_utf8"),
    _both("bom_prefixed", b"\xef\xbb\xbf" + reading(), "invalid_json"),
    _both("lone_high_surrogate_device_id", reading(device=b'"\\ud800"'), "bad_device_id"),
    _both("lone_low_surrogate_device_id", reading(device=b'"dev-\\udc00"'), "bad_device_id"),
    _both(
        "reversed_surrogate_pair_device_id", reading(device=b'"\\udc00\\ud800"'), "bad_device_id"
    ),
    _both(
        "lone_surrogate_metric_name",
        reading(metrics=b'{"temp\\ud800":1}'),
        "invalid_utf8",
    ),
    _both("lone_surrogate_tag", reading(tags=b'{"site":"\\udfff"}'), "invalid_utf8"),
    _both("lone_surrogate_top_level_string", b'"\\ud800"', "invalid_utf8"),
    # -- structure -------------------------------------------------------------------------
    _both("nested_arrays_5000", b"[" * 5000 + b"]" * 5000, "too_deep"),
    _both("nested_objects_5000", b'{"a":' * 5000 + b"1" + b"}" * 5000, "too_deep"),
    _both("nested_unterminated_5000", b"[" * 5000, "too_deep"),
    _both("nested_100_then_nan", b"[" * 100 + b"NaN" + b"]" * 100, "too_deep"),
    _both(
        "nested_33_in_metric",
        reading(metrics=b'{"temperature":' + b"[" * 31 + b"1" + b"]" * 31 + b"}"),
        "too_deep",
    ),
    _both(
        "nested_32_in_metric_is_a_type_error",
        reading(metrics=b'{"temperature":' + b"[" * 30 + b"1" + b"]" * 30 + b"}"),
        "wrong_type",
    ),
    _both("trailing_garbage", reading() + b"x", "invalid_json"),
    _both("truncated_json", reading()[:-7], "invalid_json"),
    _both("single_quotes", b"{'temperature': 1}", "invalid_json"),
    _both("raw_control_char_in_string", reading(device=b'"dev\x01"'), "invalid_json"),
    _both("top_level_array", b"[1,2]", "wrong_type"),
    _both("top_level_string", b'"hello"', "wrong_type"),
    _both("top_level_null", b"null", "wrong_type"),
    _both("top_level_true", b"true", "wrong_type"),
    Hostile("top_level_number_without_metric", GATEWAY_TOPIC, b"21.5", "no_metric", "wrong_type"),
    # -- duplicate keys: refused, never last-one-wins ---------------------------------------
    _both(
        "duplicate_device_id",
        b'{"v":1,"device_id":"dev-1","device_id":"dev-2","ts":%d,"metrics":{"t":1}}' % NOW,
        "duplicate_key",
    ),
    _both("duplicate_metric", reading(metrics=b'{"t":1,"t":2}'), "duplicate_key"),
    _both(
        "duplicate_metric_spaced",
        reading(metrics=b'{"t" : 1, "t" :\n2}'),
        "duplicate_key",
    ),
    _both(
        "duplicate_metric_with_colons_in_strings",
        reading(device=b'"aa:bb:cc:dd"', metrics=b'{"t":1,"t":2}', tags=b'{"url":"a\\":b"}'),
        "duplicate_key",
    ),
    _both(
        "duplicate_key_in_nested_list",
        reading(tags=b'{"a":"b"}', metrics=b'{"t":[{"x":1,"x":2}]}'),
        "duplicate_key",
    ),
    _both(
        "duplicate_device_id_hiding_a_lone_surrogate",
        b'{"v":1,"device_id":"\\ud800","device_id":"dev-1","ts":%d,"metrics":{"t":1}}' % NOW,
        "duplicate_key",
    ),
    _both(
        "duplicate_metric_hiding_a_huge_int",
        b'{"temperature":%s,"temperature":2}' % HUGE,
        "number_out_of_range",
        None,
    ),
    _both(
        "duplicate_key_default_route", b'{"temperature":1,"temperature":2}', "duplicate_key", None
    ),
    Hostile(
        "metric_top_level_and_in_metrics",
        None,
        b'{"temperature":1,"metrics":{"temperature":2}}',
        "duplicate_key",
        None,
    ),
    Hostile("value_and_topic_metric", None, b'{"value":1,"temperature":2}', "duplicate_key", None),
    # -- numbers ---------------------------------------------------------------------------
    _both(
        "huge_int_metric_default_route", b'{"temperature":%s}' % HUGE, "number_out_of_range", None
    ),
    _both("huge_int_ts_default_route", b'{"ts":%s,"t":1}' % HUGE, "number_out_of_range", None),
    _both("huge_int_metric", reading(metrics=b'{"temperature":%s}' % HUGE), "number_out_of_range"),
    _both("huge_negative_int_metric", reading(metrics=b'{"t":-%s}' % HUGE), "number_out_of_range"),
    _both("huge_int_ts", reading(ts=HUGE), "number_out_of_range"),
    _both("int_5000_digits", reading(metrics=b'{"t":%s}' % GIANT), "number_out_of_range"),
    _both("float_overflow", reading(metrics=b'{"t":1e999}'), "number_out_of_range"),
    _both("float_overflow_negative", reading(metrics=b'{"t":-1.5e400}'), "number_out_of_range"),
    Hostile(
        "ts_beyond_int64",
        GATEWAY_TOPIC,
        reading(ts=b"9223372036854775808"),
        "ts_in_future",  # the bridge reads it as nanoseconds: the year 2262
        "number_out_of_range",
    ),
    _both("nan", reading(metrics=b'{"t":NaN}'), "not_finite"),
    _both("infinity", reading(metrics=b'{"t":Infinity}'), "not_finite"),
    _both("negative_infinity", reading(metrics=b'{"t":-Infinity}'), "not_finite"),
    _both("bare_nan", b"NaN", "not_finite", None),
    _both("metric_string", reading(metrics=b'{"temperature":"71.5"}'), "wrong_type"),
    _both("metric_true", reading(metrics=b'{"temperature":true}'), "wrong_type"),
    _both("metric_null", reading(metrics=b'{"temperature":null}'), "wrong_type"),
    _both("metric_list", reading(metrics=b'{"temperature":[71.5]}'), "wrong_type"),
    _both("metric_object", reading(metrics=b'{"temperature":{"value":71.5}}'), "wrong_type"),
    Hostile("version_true", GATEWAY_TOPIC, reading(v=b"true"), "wrong_type", "unsupported_version"),
    Hostile("version_2", GATEWAY_TOPIC, reading(v=b"2"), None, "unsupported_version"),
    Hostile("metrics_empty", GATEWAY_TOPIC, reading(metrics=b"{}"), None, "no_metric"),
    Hostile("no_metric_at_all", None, b"{}", "no_metric", "unsupported_version"),
    _both("tag_not_a_string", reading(tags=b'{"site":1}'), "wrong_type"),
    # -- device ids ------------------------------------------------------------------------
    _both("device_id_empty", reading(device=b'""'), "bad_device_id"),
    _both("device_id_129_bytes", reading(device=b'"%s"' % (b"d" * 129)), "bad_device_id"),
    _both(
        "device_id_128_two_byte_chars",
        reading(device=('"' + "é" * 128 + '"').encode()),
        "bad_device_id",
    ),
    _both(
        "device_id_33_four_byte_chars",
        reading(device=('"' + "😀" * 33 + '"').encode()),
        "bad_device_id",
    ),
    _both("device_id_plus", reading(device=b'"dev+1"'), "bad_device_id"),
    _both("device_id_hash", reading(device=b'"dev#1"'), "bad_device_id"),
    _both("device_id_slash", reading(device=b'"plant-a/dev-1"'), "bad_device_id"),
    _both("device_id_nul", reading(device=b'"dev\\u0000"'), "bad_device_id"),
    _both("device_id_ansi_escape", reading(device=b'"dev\\u001b[31m"'), "bad_device_id"),
    _both("device_id_newline", reading(device=b'"dev\\n1"'), "bad_device_id"),
    _both("device_id_del", reading(device=b'"dev\\u007f"'), "bad_device_id"),
    _both("device_id_c1_nel", reading(device=b'"dev\\u0085"'), "bad_device_id"),
    _both("device_id_number", reading(device=b"5"), "wrong_type"),
    _both("device_id_null", reading(device=b"null"), "wrong_type"),
    Hostile(
        "device_id_missing",
        GATEWAY_TOPIC,
        b'{"v":1,"ts":%d,"metrics":{"t":1}}' % NOW,
        "no_device",
        "wrong_type",
    ),
    Hostile(
        "device_id_slash_default_route", None, b'{"device_id":"a/b","t":1}', "bad_device_id", None
    ),
    Hostile(
        "topic_device_control_char",
        "sensors/plant-a/dev\x01/temperature",
        b"1",
        "bad_device_id",
        None,
    ),
    Hostile("topic_device_plus", "sensors/plant-a/dev+1/temperature", b"1", "bad_device_id", None),
    Hostile("topic_device_hash", "sensors/plant-a/dev#1/temperature", b"1", "bad_device_id", None),
    Hostile("topic_device_c1", "sensors/plant-a/dev\x9b/temperature", b"1", "bad_device_id", None),
    Hostile(
        "topic_device_129_bytes",
        "sensors/plant-a/" + "d" * 129 + "/temperature",
        b"1",
        "bad_device_id",
        None,
    ),
    # -- metric names ----------------------------------------------------------------------
    _both("metric_name_control_char", reading(metrics=b'{"temp\\u0007":1}'), "bad_metric_name"),
    _both("metric_name_empty", reading(metrics=b'{"":1}'), "bad_metric_name"),
    _both("metric_name_too_long", reading(metrics=b'{"%s":1}' % (b"m" * 300)), "bad_metric_name"),
    Hostile("topic_metric_nul", "sensors/plant-a/dev-1/temp\x00", b"1", "bad_metric_name", None),
    # -- event time ------------------------------------------------------------------------
    _both("ts_9_days_old", reading(ts=b"%d" % (NOW - 9 * DAY_MS)), "ts_too_old"),
    _both("ts_2_hours_ahead", reading(ts=b"%d" % (NOW + 2 * 3_600_000)), "ts_in_future"),
    _both("ts_1970", reading(ts=b"1000"), "ts_too_old"),
    _both("ts_year_3000", reading(ts=b"32503680000000"), "ts_in_future"),
    Hostile("ts_negative", GATEWAY_TOPIC, reading(ts=b"-5"), "bad_timestamp", "ts_too_old"),
    Hostile("ts_true", GATEWAY_TOPIC, reading(ts=b"true"), "bad_timestamp", "wrong_type"),
    Hostile("ts_null", GATEWAY_TOPIC, reading(ts=b"null"), "bad_timestamp", "wrong_type"),
    Hostile("ts_word", GATEWAY_TOPIC, reading(ts=b'"yesterday"'), "bad_timestamp", "wrong_type"),
    Hostile("ts_nan_string", GATEWAY_TOPIC, reading(ts=b'"NaN"'), "bad_timestamp", "wrong_type"),
    Hostile("ts_fraction", GATEWAY_TOPIC, reading(ts=b"%d.5" % NOW), None, "wrong_type"),
    Hostile("ts_iso_year_3000", None, b'{"ts":"3000-01-01T00:00:00Z","t":1}', "ts_in_future", None),
    Hostile("ts_iso_year_1", None, b'{"ts":"0001-01-01T00:00:00+14:00","t":1}', "ts_too_old", None),
    Hostile("ts_string_too_long", None, b'{"ts":"%s","t":1}' % (b"1" * 100), "bad_timestamp", None),
)
